// Package event holds the domain types that every Posthorn component shares:
// delivery events, the message facts they carry, and the position of the log
// reader. It imports only the standard library (ARCHITECTURE.md, import rule 1).
package event

import (
	"strconv"
	"time"
)

// Type is what happened to one recipient (deliveries family), the error
// analysis of a permanent failure (bounces family), or a suppression-list change
// (blocks family). The names are WIRE.md's.
type Type string

const (
	Queued     Type = "queued"     // Postfix accepted the message for this recipient
	Succeeded  Type = "succeeded"  // the next hop accepted it
	Deferred   Type = "deferred"   // a temporary failure; Postfix will retry
	Failed     Type = "failed"     // Postfix gave up on this recipient
	Bounced    Type = "bounced"    // the bounces record that goes with a failure
	Registered Type = "registered" // an address was added to the suppression list
	Deleted    Type = "deleted"    // an address was removed from the suppression list
)

// Family returns the webhook event_type a record of this type is posted under.
func (t Type) Family() string {
	switch t {
	case Bounced:
		return "bounces"
	case Registered, Deleted:
		return "blocks"
	}
	return "deliveries"
}

// Valid reports whether t is one of the known types.
func (t Type) Valid() bool {
	switch t {
	case Queued, Succeeded, Deferred, Failed, Bounced, Registered, Deleted:
		return true
	}
	return false
}

// Class is the bounce error class of WIRE.md §2 ("bounces records").
type Class int

const (
	ClassNone          Class = 0
	ClassUnknownHost   Class = 1
	ClassUnknownUser   Class = 2
	ClassTimeout       Class = 3
	ClassPolicy        Class = 4
	ClassOverCapacity  Class = 5
	ClassForwarding    Class = 6
	ClassReceiverError Class = 7
	ClassTooLarge      Class = 8
	ClassAddressFormat Class = 9
	ClassBlocked       Class = 10
	ClassUnsubscribed  Class = 11
	ClassOther         Class = 99
)

var classWords = map[Class]string{
	ClassUnknownHost:   "unknown-host",
	ClassUnknownUser:   "unknown-user",
	ClassTimeout:       "retransmission-timeout",
	ClassPolicy:        "policy",
	ClassOverCapacity:  "over-capacity",
	ClassForwarding:    "forwarding-error",
	ClassReceiverError: "receiver-error",
	ClassTooLarge:      "message-too-large",
	ClassAddressFormat: "address-format",
	ClassBlocked:       "blocked",
	ClassUnsubscribed:  "unsubscribed",
	ClassOther:         "other",
}

// Word is the class as a word, used by the Posthorn-native version 3 format.
func (c Class) Word() string { return classWords[c] }

// String is the class as the hosted service sends it: a number in a string.
func (c Class) String() string { return strconv.Itoa(int(c)) }

// Event is one record of the Event Webhook. The JSON names are the
// version-3 names of WIRE.md, which `posthorn parse` prints.
type Event struct {
	ID         string    `json:"id"`                 // stable: the same log input gives the same id
	Type       Type      `json:"event"`              //
	Time       time.Time `json:"time"`               // when it happened, with the zone it was resolved in
	Host       string    `json:"host"`               // the host name in the log line
	QueueID    string    `json:"queueId"`            // Postfix queue ID of the line that produced it
	MessageID  string    `json:"messageId"`          // Message-ID with its <>
	ReturnPath string    `json:"returnPath"`         // envelope sender ("" for the null sender)
	To         string    `json:"to"`                 // recipient as Postfix logged it
	OrigTo     string    `json:"origTo"`             // the recipient the sender addressed, when it differs from To
	Relay      string    `json:"relay"`              // Postfix's relay= value
	DSN        string    `json:"dsn"`                // enhanced status code, e.g. 5.1.1
	Reason     string    `json:"reason"`             // Postfix's parenthesised reason, "" when none
	Delay      string    `json:"delay"`              // Postfix's delay= in seconds, as logged
	Class      Class     `json:"class,omitempty"`    // bounced only
	SourceIP   string    `json:"sourceIp,omitempty"` // client that submitted the message (smtpd client=); webhooks send it on queued only (WIRE.md)
	SenderIP   string    `json:"senderIp,omitempty"` // server we delivered to (relay=host[ip])
	Attempt    int       `json:"attempt,omitempty"`  // deferred/succeeded/failed: delivery attempt number for this recipient
	Size       int64     `json:"size,omitempty"`     // message size in bytes (qmgr's size=), 0 when the log did not show it

	// Filled from the milter's observation of the message (Inbound issue);
	// "" until then.
	From    string `json:"from,omitempty"`    // header From
	Subject string `json:"subject,omitempty"` // decoded Subject
	APIData string `json:"apiData,omitempty"` // the configured metadata header
}

// Recipient is the address an event is about from the sender's point of
// view: the original recipient when Postfix rewrote or forwarded it.
func (e *Event) Recipient() string {
	if e.OrigTo != "" {
		return e.OrigTo
	}
	return e.To
}

// MessageKey names one message lifetime in the log: a host and a queue ID.
// Short queue IDs are reused after "removed", so a key is only unique while
// the message is open.
type MessageKey struct {
	Host    string
	QueueID string
}

// Message is what the log reader knows about one open message. The reader
// persists it with every commit so that a restart resumes mid-message.
type Message struct {
	MessageKey
	MessageID  string
	ReturnPath string
	ClientIP   string
	FirstSeen  time.Time // first line of this lifetime
	LastSeen   time.Time // newest line of this lifetime
	State      []byte    // the reader's private state, opaque to the store
}

// Cursor is the position of the log reader, committed with the events the
// lines before it produced.
type Cursor struct {
	Source  string // "file:PATH" or "journald"
	Dev     uint64 // identity of the file being read (stat st_dev)
	Inode   uint64 // (stat st_ino)
	Offset  int64  // bytes of that file consumed, always at a line end
	Journal string // journald __CURSOR, for the journald source
}

// Batch is what the log reader commits in one transaction: the events a run
// of lines produced, the open messages whose state changed, the messages
// that closed, and the cursor just after the last line. Committing them
// together is what makes a crash neither lose nor duplicate events.
type Batch struct {
	Events []Event
	Upsert []Message
	Close  []MessageKey
	Cursor Cursor
}

// Query selects stored events for reading: the UI's log, summaries, tests.
// Results come oldest first, ordered by Time and then ID. To page, pass the
// Time and ID of the last event of one page as AfterTime and AfterID.
type Query struct {
	Since     time.Time // inclusive lower bound on Time; zero: none
	Until     time.Time // exclusive upper bound on Time; zero: none
	Types     []Type    // only these types; empty: all
	AfterTime time.Time // paging: only events after (AfterTime, AfterID)
	AfterID   string    // in (Time, ID) order; used when AfterTime is set
	Limit     int       // at most this many; 0: no limit
}
