package milter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/posthorn/posthorn/event"
)

// Suppression is what the outbound role needs to enforce the suppression
// list. cmd/posthorn adapts the store to it (normalising addresses), so
// that this package knows neither the store nor the list's rules.
type Suppression interface {
	// IsBlocked reports whether mail to addr (as the client gave it) must
	// not be sent.
	IsBlocked(ctx context.Context, addr string) (bool, error)
	// RecordSuppressed stores the records of one refused recipient (a
	// failed and a bounced event) in one transaction, and returns nil only
	// once they are stored. Events whose id is already stored are skipped,
	// so recording the same refusal again adds nothing.
	RecordSuppressed(ctx context.Context, evs []event.Event) error
}

// SuppressAction says what the outbound role does with a recipient on the
// suppression list.
type SuppressAction string

const (
	// SuppressReject refuses the recipient at RCPT; the client sees 550
	// and Postfix bounces nothing, since it never accepted the recipient.
	SuppressReject SuppressAction = "reject"
	// SuppressDiscard accepts the recipient and takes it off the message
	// at its end: the client cannot tell the address is suppressed.
	SuppressDiscard SuppressAction = "discard"
)

// suppressedDSN: RFC 3463 X.7.1, "delivery not authorized, message
// refused" — the sender's own policy refuses the address.
const suppressedDSN = "5.7.1"

// replySuppressed is the refusal of a suppressed recipient (RFC 5321
// §4.2.2: 550, mailbox unavailable for policy reasons).
func replySuppressed(addr string) Reply {
	return Reply{550, suppressedDSN + " <" + addr + ">: recipient is suppressed"}
}

// replyTempLookup: the list could not be read or the refusal not stored;
// RFC 3463 4.3.0, the client retries rather than the mail going out to a
// suppressed address or its refusal being lost.
var replyTempLookup = Reply{451, "4.3.0 Temporary failure checking the recipient, try again later"}

// suppressedEvents are the Event Webhook's records of a suppressed
// recipient: a failed deliveries record and its bounces record of class
// 10 (WIRE.md §2). Their ids hash the host, the transaction (the instant
// of MAIL and its number in this process) and the recipient, so the same
// RCPT given twice in one transaction is stored once. The queue ID is not
// part of them: Postfix creates the queue file only once a recipient is
// accepted (smtpd_delay_open_until_valid_rcpt), so it can appear halfway
// through a transaction.
func suppressedEvents(host string, txn uint64, start time.Time, queueID, from, rcpt string) []event.Event {
	h := sha256.New()
	for _, s := range []string{host, strconv.FormatUint(txn, 10), strconv.FormatInt(start.UnixNano(), 10), rcpt} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	id := "suppressed-" + hex.EncodeToString(h.Sum(nil)[:12])
	failed := event.Event{
		ID:         id + "-failed",
		Type:       event.Failed,
		Time:       start.UTC(),
		Host:       host,
		QueueID:    queueID,
		ReturnPath: from,
		To:         rcpt,
		DSN:        suppressedDSN,
		Reason:     replySuppressed(rcpt).String(),
		Attempt:    1,
	}
	bounced := failed
	bounced.ID, bounced.Type, bounced.Class = id+"-bounced", event.Bounced, event.ClassBlocked
	return []event.Event{failed, bounced}
}
