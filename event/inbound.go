package event

import (
	"io"
	"time"
)

// InboundStatus is the status column of the inbound log (WIRE.md §5).
type InboundStatus string

const (
	InboundQueued    InboundStatus = "queued"    // captured; the POST is waiting for its first attempt
	InboundSucceeded InboundStatus = "succeeded" // the endpoint answered 2xx
	InboundDeferred  InboundStatus = "deferred"  // a temporary failure; another attempt will follow
	InboundFailed    InboundStatus = "failed"    // permanent failure or retry period over; data dropped
	InboundDenied    InboundStatus = "denied"    // refused: domain not allowed, spam rule or no filter
)

// Valid reports whether s is one of the known statuses.
func (s InboundStatus) Valid() bool {
	switch s {
	case InboundQueued, InboundSucceeded, InboundDeferred, InboundFailed, InboundDenied:
		return true
	}
	return false
}

// Header is one header field of a received message, as WIRE.md §3 posts it:
// the name as written, the value unfolded and decoded to UTF-8.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// InboundRecipient is one accepted envelope recipient of a captured message
// and the names of the enabled filters it matched, in filter order.
type InboundRecipient struct {
	Address string
	Filters []string
}

// Attachment is one attachment of a received message. Content yields the
// decoded bytes exactly once; it is set when a message is handed to the
// store and when the store hands it back for posting.
type Attachment struct {
	Filename    string // decoded to UTF-8; "" when the part named none
	ContentType string // media type without parameters, e.g. application/pdf
	Size        int64  // decoded bytes
	Content     io.Reader
}

// InboundMessage is a message the inbound milter captured for the Inbound
// Webhook: the envelope, what the filters need, and the parsed content that
// is posted (WIRE.md §3).
type InboundMessage struct {
	Host         string    // this mail server (the daemon's hostname)
	QueueID      string    // Postfix queue ID
	Received     time.Time // when the milter saw the end of the message
	ClientAddr   string    // SMTP client address
	EnvelopeFrom string    // MAIL FROM, "" for the null sender
	Recipients   []InboundRecipient
	Size         int64 // header and body bytes as received

	Headers     []Header // in message order, duplicates kept
	From        string   // header From, decoded
	Subject     string   // decoded Subject
	MessageID   string   // Message-ID with its <>
	Text        string   // text/plain body decoded to UTF-8
	HTML        string   // text/html body decoded to UTF-8
	Attachments []Attachment
	// Problems lists what the MIME parser could not read (a truncated
	// multipart, an unknown charset ...). The message is still captured
	// with whatever could be read.
	Problems []string
}

// InboundLogEntry is one row of the inbound log (WIRE.md §5): a message,
// one recipient, one filter (empty for mail refused before a filter
// applied).
type InboundLogEntry struct {
	ID        int64 // set by the store; the order rows were written in
	Time      time.Time
	Status    InboundStatus
	From      string // header From ("" when refused before the headers)
	To        string // envelope recipient
	Host      string
	MessageID string // with its <>
	QueueID   string
	Filter    string
	Reason    string
}

// InboundQuery selects inbound log rows, oldest first. Paging is by ID:
// pass the ID of the last row of a page as AfterID.
type InboundQuery struct {
	Since    time.Time       // inclusive; zero: none
	Until    time.Time       // exclusive; zero: none
	Statuses []InboundStatus // empty: all
	AfterID  int64
	Limit    int // 0: no limit
}

// Observation is what the outbound milter role saw of one message on its
// way out, per queue ID: the facts the maillog lacks, which the Event
// Webhook fills into its records (WIRE.md §2: from, subject, apiData).
type Observation struct {
	Host         string
	QueueID      string
	Time         time.Time
	EnvelopeFrom string
	Recipients   []string // accepted envelope recipients, in RCPT order
	From         string   // header From, decoded
	Subject      string   // decoded Subject
	MessageID    string   // with its <>
	APIData      string   // value of the configured metadata header, decoded
}
