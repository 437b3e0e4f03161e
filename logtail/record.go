package logtail

import (
	"errors"
	"time"
)

// Kind says what a Postfix log line means for the correlator.
type Kind uint8

const (
	// KindOther is a Postfix line that was understood but carries nothing
	// the correlator needs (connect, disconnect, TLS, warnings, master ...).
	KindOther Kind = iota
	// KindClient: smtpd "QID: client=host[ip]" — a new message lifetime.
	KindClient
	// KindPickup: pickup "QID: uid=N from=<s>" — a new local submission.
	KindPickup
	// KindMessageID: cleanup "QID: message-id=<...>".
	KindMessageID
	// KindQueueActive: qmgr "QID: from=<s>, size=N, nrcpt=M (queue active)".
	KindQueueActive
	// KindExpired: qmgr "QID: from=<s>, status=expired|force-expired, returned to sender".
	KindExpired
	// KindDelivery: a delivery agent's "QID: to=<r>, ..., status=S (reason)".
	KindDelivery
	// KindNotification: bounce "QID: sender non-delivery notification: NEWQID"
	// (also delivery status / delay, sender or postmaster).
	KindNotification
	// KindRemoved: qmgr or postsuper "QID: removed".
	KindRemoved
	// KindReject: an SMTP-time or cleanup refusal: "NOQUEUE: reject: ...",
	// "QID: reject: ...", milter-reject, milter-discard, milter-hold,
	// discard, proxy-reject. Action holds the word. Not a delivery.
	KindReject
)

var kindNames = [...]string{"other", "client", "pickup", "message-id", "queue-active", "expired", "delivery", "notification", "removed", "reject"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// Stamp is a log timestamp as written. Syslog and postlogd stamps have no
// year and no zone; RFC 3339 stamps may lack the zone; journald stamps are
// absolute. Resolve turns a Stamp into a time.Time.
type Stamp struct {
	Abs       time.Time // set when the line carried an absolute time (journald)
	Year      int       // 0 when the line has no year
	Month     time.Month
	Day       int
	Hour      int
	Min       int
	Sec       int
	Nsec      int
	Offset    int  // seconds east of UTC, when HasOffset
	HasOffset bool // the stamp carried a zone offset (RFC 3339)
}

// Record is one parsed log line. Strings are slices of the input line; a
// field the line does not carry is "". Parse fills only the fields of its
// Kind.
type Record struct {
	Stamp   Stamp
	Host    string // syslog host field ("" when the format has none)
	Program string // full syslog tag: "postfix/smtp", "postfix-out/submission/smtpd"
	Daemon  string // last element of Program: "smtp", "smtpd", "qmgr" ...
	PID     int
	QueueID string // "" for NOQUEUE and for lines without a queue ID
	Kind    Kind

	// KindClient: ClientIP from client=host[ip]; ClientHost the name.
	ClientHost string
	ClientIP   string

	// KindPickup, KindQueueActive, KindExpired, KindReject: envelope sender
	// without <> ("" for the null sender <>).
	From  string
	Size  int64 // KindQueueActive
	Nrcpt int   // KindQueueActive

	// KindMessageID: the message-id value as logged (usually with <>).
	MessageID string

	// KindDelivery (and KindReject's to=): addresses without <>.
	To       string
	OrigTo   string
	Relay    string // relay= value as logged: "host[ip]:port", "local", "none" ...
	RelayIP  string // the ip inside relay=host[ip]:port, "" when none
	Delay    string
	Delays   string
	DSN      string
	ConnUse  string
	TLS      string
	Status   string // sent, deferred, bounced, expired, force-expired, SOFTBOUNCE, deliverable, undeliverable, undeliverable-but-not-cached
	Reason   string // text inside the outer parentheses after status=, nested parentheses kept
	HandOff  string // KindDelivery: NEWQID from "queued as NEWQID" / "forwarded as NEWQID" in Reason
	Forward  bool   // KindDelivery: HandOff came from "forwarded as" (local alias expansion)
	NewQueue string // KindNotification: the notification's queue ID

	// KindNotification: "non-delivery", "delivery status" or "delay";
	// KindReject: "reject", "milter-reject", "milter-hold", "milter-discard", "discard", "proxy-reject" ...
	Action string
	// KindReject: the SMTP stage ("RCPT", "END-OF-MESSAGE", "CONNECT" ...)
	// and the reply ("554 5.7.1 ...: Relay access denied").
	Stage string
	Reply string
}

// ErrNotPostfix is returned for lines that are not from Postfix (another
// program's syslog line, a blank line). Callers count them and move on.
var ErrNotPostfix = errors.New("not a Postfix log line")

// ParseError describes a Postfix line the parser could not understand.
type ParseError struct {
	Reason string // what was wrong, e.g. "delivery line without status="
}

func (e *ParseError) Error() string { return "unrecognised Postfix line: " + e.Reason }
