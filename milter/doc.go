// Package milter is Posthorn's mail filter for Postfix (milter protocol 6,
// github.com/d--j/go-milter). It has two roles, each on its own listener:
//
//   - inbound, on the smtpd that receives mail: it enforces the allowed
//     recipient domains at RCPT, the two spam rules and the named filters
//     at the end of the headers, captures matching mail, parses it and
//     hands it to the Spool, and answers Postfix only after the Spool has
//     stored it durably;
//   - outbound, on the smtpd that relays submitted mail: it records per
//     queue ID the envelope recipients, header From, Subject and the
//     metadata header, which the Event Webhook fills into its records.
//
// The policy (Policy) and the MIME parser (Parse) are pure functions of
// their input, tested without a network. The package imports event and
// settings only; the store is reached through the Spool interface.
package milter
