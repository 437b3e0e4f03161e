package logtail

import (
	"strings"

	"github.com/posthorn/posthorn/event"
)

// Classify maps a permanent failure to WIRE.md's bounce error class (1–9, 99)
// from the DSN code and the reason text. (Classes 3, 10, 11 are assigned by
// callers: expiry, suppression, unsubscribe.)
//
// The evidence is weighed from the most specific down:
//  1. a phrase that names the cause ("Relay access denied", "mailbox full")
//     wins over the code, because servers often send a code that is too
//     general for the text (554 5.7.1 for relaying);
//  2. the enhanced status code (RFC 3463), or, when Postfix logged only
//     the generic x.0.0, an enhanced code inside the reply text ("553
//     sorry, ... (#5.7.1)");
//  3. vague words ("blocked", "spam", "does not exist"), which are right
//     more often than not but lose to a code.
//
// The "host X said:" that Postfix puts before a remote reply and the "(in
// reply to ... command)" after it are ignored: a host named
// spamfilter.example.com says nothing about the failure.
func Classify(dsn, reason string) event.Class {
	text := replyText(reason)
	if c := classifyText(text, specificPhrases); c != event.ClassNone {
		return c
	}
	code := dsn
	if cls, subject, detail, ok := splitDSN(code); !ok || (subject == 0 && detail == 0) || (cls != 4 && cls != 5) {
		if c := dsnInText(text); c != "" {
			code = c
		}
	}
	if c := classifyDSN(code); c != event.ClassNone {
		return c
	}
	if c := classifyText(text, vaguePhrases); c != event.ClassNone {
		return c
	}
	return event.ClassOther
}

type classPhrase struct {
	phrase string // lower case; matched ASCII-case-insensitively
	class  event.Class
}

// specificPhrases are tried in order, so a phrase listed earlier wins when
// a reason holds two ("User unknown in virtual alias table" is about the
// user, not about aliases; "Sender address rejected: Domain not found" is
// the receiver's policy about our sender, not an unknown host).
var specificPhrases = []classPhrase{
	// Receiving-server errors: relaying refused, domain not served here.
	{"relay access denied", event.ClassReceiverError},
	{"relaying denied", event.ClassReceiverError},
	{"relaying not permitted", event.ClassReceiverError},
	{"relaying not allowed", event.ClassReceiverError},
	{"relay not permitted", event.ClassReceiverError},
	{"unable to relay", event.ClassReceiverError},
	{"not permitted to relay", event.ClassReceiverError},
	{"domain not served", event.ClassReceiverError},
	{"not served here", event.ClassReceiverError},
	{"allowed rcpthosts", event.ClassReceiverError}, // qmail: "that domain isn't in my list of allowed rcpthosts"

	// Refusals of our sender or HELO are the receiver's policy, whatever
	// the reason words that follow.
	{"sender address rejected", event.ClassPolicy},
	{"helo command rejected", event.ClassPolicy},
	{"client host rejected", event.ClassPolicy},
	{"sending quota", event.ClassPolicy},
	{"blocked using", event.ClassPolicy},

	// Over capacity, before "size" so that a full mailbox is not a large message.
	{"mailbox full", event.ClassOverCapacity},
	{"mailbox is full", event.ClassOverCapacity},
	{"quota", event.ClassOverCapacity},
	{"insufficient storage", event.ClassOverCapacity},
	{"insufficient system storage", event.ClassOverCapacity},
	{"storage allocation", event.ClassOverCapacity},
	{"mailbox size limit", event.ClassOverCapacity},

	{"message size exceeds", event.ClassTooLarge},
	{"size exceeds", event.ClassTooLarge},
	{"message too large", event.ClassTooLarge},
	{"message is too large", event.ClassTooLarge},
	{"too large", event.ClassTooLarge},
	{"too big", event.ClassTooLarge},

	{"host or domain name not found", event.ClassUnknownHost},
	{"name service error", event.ClassUnknownHost},
	{"domain not found", event.ClassUnknownHost},
	{"domain does not exist", event.ClassUnknownHost},
	{"host not found", event.ClassUnknownHost},
	{"no mx record", event.ClassUnknownHost},
	{"nxdomain", event.ClassUnknownHost},
	{"null mx", event.ClassUnknownHost},

	{"user unknown", event.ClassUnknownUser},
	{"unknown user", event.ClassUnknownUser},
	{"no such user", event.ClassUnknownUser},
	{"mailbox unavailable", event.ClassUnknownUser},
	{"unknown recipient", event.ClassUnknownUser},
	{"recipient unknown", event.ClassUnknownUser},
	{"no such recipient", event.ClassUnknownUser},
	{"no such mailbox", event.ClassUnknownUser},
	{"mailbox not found", event.ClassUnknownUser},
	{"user not found", event.ClassUnknownUser},
	{"recipient not found", event.ClassUnknownUser},
	// Exchange: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not
	// found by SMTP address lookup" — 5.1.10 alone would read as a null MX
	// (RFC 7505), a domain that takes no mail.
	{"recipientnotfound", event.ClassUnknownUser},
	// Yahoo: "554 delivery error: dd This user doesn't have a yahoo.com account".
	{"user doesn't have a", event.ClassUnknownUser},
	{"couldn't be found", event.ClassUnknownUser},
	{"invalid recipient", event.ClassUnknownUser},
	{"address does not exist", event.ClassUnknownUser},
	{"mailbox does not exist", event.ClassUnknownUser},

	{"bad address syntax", event.ClassAddressFormat},
	{"address syntax", event.ClassAddressFormat}, // Postfix: "Bad recipient address syntax"
	{"malformed address", event.ClassAddressFormat},

	{"forwarding loop", event.ClassForwarding},
	{"mail loop", event.ClassForwarding},
	{"loop detected", event.ClassForwarding},
	{"hop count exceeded", event.ClassForwarding},
	{"too many hops", event.ClassForwarding},
	{"alias expansion", event.ClassForwarding},
	{"include file", event.ClassForwarding},
	{".forward", event.ClassForwarding},
}

// vaguePhrases are tried only when the code says nothing specific.
var vaguePhrases = []classPhrase{
	{"does not exist", event.ClassUnknownUser},
	{"blacklist", event.ClassPolicy},
	{"blocklist", event.ClassPolicy},
	{"denylist", event.ClassPolicy},
	{"spamhaus", event.ClassPolicy},
	{"listed", event.ClassPolicy},
	{"blocked", event.ClassPolicy},
	{"spam", event.ClassPolicy},
	{"unsolicited", event.ClassPolicy},
	{"reputation", event.ClassPolicy},
	{"policy", event.ClassPolicy},
	{"dmarc", event.ClassPolicy},
	{"spf", event.ClassPolicy},
	{"denied", event.ClassPolicy},
	{"not authorized", event.ClassPolicy},
}

func classifyText(text string, table []classPhrase) event.Class {
	for _, p := range table {
		if containsFold(text, p.phrase) {
			return p.class
		}
	}
	return event.ClassNone
}

// classifyDSN maps an enhanced status code (RFC 3463 §3) to a class.
func classifyDSN(dsn string) event.Class {
	cls, subject, detail, ok := splitDSN(dsn)
	if !ok || (cls != 4 && cls != 5) {
		return event.ClassNone
	}
	switch subject {
	case 1: // addressing
		switch detail {
		case 1, 6: // bad destination mailbox; mailbox has moved
			return event.ClassUnknownUser
		case 2, 10: // bad destination system; RFC 7505 null MX
			return event.ClassUnknownHost
		case 3, 7: // bad destination / sender mailbox address syntax
			return event.ClassAddressFormat
		case 8: // bad sender's system address: the receiver refused our sender
			return event.ClassPolicy
		}
	case 2: // mailbox
		switch detail {
		case 1: // mailbox disabled
			return event.ClassUnknownUser
		case 2: // mailbox full
			return event.ClassOverCapacity
		case 3: // message length exceeds administrative limit
			return event.ClassTooLarge
		case 4: // mailing list expansion problem
			return event.ClassForwarding
		}
	case 3: // mail system
		if detail == 4 { // message too big for system
			return event.ClassTooLarge
		}
		return event.ClassReceiverError
	case 4: // network and routing
		switch detail {
		case 4: // unable to route
			return event.ClassUnknownHost
		case 6: // routing loop detected
			return event.ClassForwarding
		}
	case 7: // security or policy
		return event.ClassPolicy
	}
	return event.ClassNone
}

// splitDSN reads "class.subject.detail".
func splitDSN(dsn string) (cls, subject, detail int, ok bool) {
	c, i, ok1 := fixedDigits(dsn, 0, 1, 1)
	if !ok1 || i >= len(dsn) || dsn[i] != '.' {
		return 0, 0, 0, false
	}
	s, i, ok2 := fixedDigits(dsn, i+1, 1, 3)
	if !ok2 || i >= len(dsn) || dsn[i] != '.' {
		return 0, 0, 0, false
	}
	d, i, ok3 := fixedDigits(dsn, i+1, 1, 3)
	if !ok3 || i != len(dsn) {
		return 0, 0, 0, false
	}
	return c, s, d, true
}

// dsnInText finds the first enhanced status code in a reply that is not the
// generic x.0.0, standing alone (not part of an IP address or a version).
func dsnInText(text string) string {
	for i := 0; i+5 <= len(text); i++ {
		c := text[i]
		if (c != '4' && c != '5') || text[i+1] != '.' {
			continue
		}
		if i > 0 && (isDigitByte(text[i-1]) || text[i-1] == '.') {
			continue
		}
		_, j, ok1 := fixedDigits(text, i+2, 1, 3)
		if !ok1 || j >= len(text) || text[j] != '.' {
			continue
		}
		_, k, ok2 := fixedDigits(text, j+1, 1, 3)
		if !ok2 || (k < len(text) && (isDigitByte(text[k]) || text[k] == '.')) {
			continue
		}
		code := text[i:k]
		if _, s, d, _ := splitDSN(code); s != 0 || d != 0 {
			return code
		}
	}
	return ""
}

// replyText drops what Postfix wraps around a remote reply: "host X[ip]
// said: " and " (in reply to ... command)".
func replyText(reason string) string {
	if strings.HasPrefix(reason, "host ") {
		if k := strings.Index(reason, " said: "); k >= 0 {
			reason = reason[k+len(" said: "):]
		}
	}
	if k := strings.LastIndex(reason, " (in reply to "); k >= 0 {
		reason = reason[:k]
	}
	return reason
}

// containsFold reports whether s contains the lower-case ASCII phrase,
// ignoring ASCII case in s, without allocating.
func containsFold(s, phrase string) bool {
	n := len(phrase)
	if n == 0 {
		return true
	}
	first := phrase[0]
	for i := 0; i+n <= len(s); i++ {
		if lowerASCII(s[i]) != first {
			continue
		}
		j := 1
		for j < n && lowerASCII(s[i+j]) == phrase[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
