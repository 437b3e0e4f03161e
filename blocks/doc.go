// Package blocks is the policy of Posthorn's suppression list ("Blocks",
// issue 7) with no storage of its own: how an address is normalised, when a
// scheduled registration takes effect at the daily execution time in a
// zone, when a watch period lifts an entry, when repeated bounces register
// an address automatically, and how a bounce message (a DSN, RFC 3464, or
// one of the common non-standard texts) names the recipient that failed.
//
// It imports only the standard library and event (ARCHITECTURE.md import
// rules); the store, the CLI and the scheduler loop live elsewhere.
package blocks
