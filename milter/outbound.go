package milter

import (
	"context"
	"mime"
	"strings"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/posthorn/posthorn/event"
)

// outbound is one milter connection of the outbound role. It records per
// queue ID what the maillog lacks (WIRE.md §2) and accepts; with a
// suppression list it refuses (or drops) suppressed recipients. Without
// one it refuses nothing, which keeps it safe in non_smtpd_milters, where
// a refused recipient is a configuration error that leaves the mail in
// the queue (MILTER_README); there SuppressDiscard is the safe choice.
type outbound struct {
	gomilter.NoOpMilter
	srv *Server

	active  bool
	start   time.Time // of MAIL: the time of suppressed recipients' records
	txn     uint64    // the transaction's number in this process
	from    string
	rcpts   []string
	dropped []string // suppressed recipients, removed at the end (SuppressDiscard)
	queueID string
	// Raw values of the first From, Subject, Message-Id and metadata
	// header.
	hdrFrom, subject, messageID, apiData   string
	haveFrom, haveSubject, haveID, haveAPI bool
	// charset is the message's Content-Type charset, the hint for raw
	// 8-bit header bytes.
	charset string
}

func (o *outbound) reset() {
	if o.active {
		o.srv.end()
	}
	*o = outbound{srv: o.srv}
}

func (o *outbound) MailFrom(from string, _ string, _ gomilter.Modifier) (*gomilter.Response, error) {
	o.reset()
	// Shutdown waits for open transactions; the outbound role never
	// refuses, so while stopping it only stops counting.
	o.active = o.srv.begin()
	o.from = from
	o.start, o.txn = o.srv.o.Now(), o.srv.txns.Add(1)
	return gomilter.RespContinue, nil
}

func (o *outbound) RcptTo(rcpt string, _ string, m gomilter.Modifier) (*gomilter.Response, error) {
	if q := m.Get(gomilter.MacroQueueId); q != "" {
		o.queueID = q
	}
	if o.srv.o.Suppression != nil {
		if resp := o.suppress(gomilter.RemoveAngle(rcpt)); resp != nil {
			return resp, nil
		}
	}
	o.rcpts = append(o.rcpts, rcpt)
	return gomilter.RespContinue, nil
}

// suppress answers for a recipient on the suppression list, after storing
// its records; nil lets the recipient through. A failed look-up or store
// tempfails the recipient: accepting it could send to a suppressed address
// or lose the record of its refusal.
func (o *outbound) suppress(rcpt string) *gomilter.Response {
	sup := o.srv.o.Suppression
	log := o.srv.o.Log.With("role", "outbound", "queue_id", o.queueID, "rcpt", rcpt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	blocked, err := sup.IsBlocked(ctx, rcpt)
	if err != nil {
		log.Error("suppression list not readable: recipient tempfailed", "err", err)
		return respond(replyTempLookup)
	}
	if !blocked {
		return nil
	}
	if o.start.IsZero() {
		// RCPT without MAIL: only a broken client.
		o.start, o.txn = o.srv.o.Now(), o.srv.txns.Add(1)
	}
	if o.srv.o.SuppressAction == SuppressDiscard {
		// Recorded at the end of the message, which is when the
		// recipient is dropped: a transaction the client abandons sends
		// nothing, and has nothing to report.
		o.dropped = append(o.dropped, rcpt)
		return gomilter.RespContinue
	}
	evs := suppressedEvents(o.srv.o.Host, o.txn, o.start, o.queueID, gomilter.RemoveAngle(o.from), rcpt)
	if err := sup.RecordSuppressed(ctx, evs); err != nil {
		log.Error("suppressed recipient not recorded: recipient tempfailed", "err", err)
		return respond(replyTempLookup)
	}
	r := replySuppressed(rcpt)
	log.Info("suppressed recipient refused", "reply", r.String())
	// A reply code answers for this recipient only (MILTER.md §1.3).
	return respond(r)
}

func (o *outbound) Data(m gomilter.Modifier) (*gomilter.Response, error) {
	if q := m.Get(gomilter.MacroQueueId); q != "" {
		o.queueID = q
	}
	return gomilter.RespContinue, nil
}

func (o *outbound) Header(name, value string, _ gomilter.Modifier) (*gomilter.Response, error) {
	first := func(have *bool, dst *string) {
		if !*have {
			*have, *dst = true, value
		}
	}
	switch {
	case strings.EqualFold(name, "From"):
		first(&o.haveFrom, &o.hdrFrom)
	case strings.EqualFold(name, "Subject"):
		first(&o.haveSubject, &o.subject)
	case strings.EqualFold(name, "Message-Id"):
		first(&o.haveID, &o.messageID)
	case strings.EqualFold(name, o.srv.o.MetadataHeader):
		first(&o.haveAPI, &o.apiData)
	case strings.EqualFold(name, "Content-Type") && o.charset == "":
		o.charset = charsetParam(value)
	}
	return gomilter.RespContinue, nil
}

func (o *outbound) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	if q := m.Get(gomilter.MacroQueueId); q != "" {
		o.queueID = q
	}
	obs := event.Observation{
		Host:         o.srv.o.Host,
		QueueID:      o.queueID,
		Time:         o.srv.o.Now(),
		EnvelopeFrom: o.from,
		Recipients:   o.rcpts,
		From:         decodeValue(o.hdrFrom, o.charset),
		Subject:      decodeValue(o.subject, o.charset),
		MessageID:    strings.ToValidUTF8(unfold(o.messageID), "\uFFFD"),
		APIData:      decodeValue(o.apiData, o.charset),
	}
	log := o.srv.o.Log.With("role", "outbound", "queue_id", o.queueID)
	if obs.QueueID == "" {
		// Postfix always sends it when asked (MILTER.md §1.3); without it
		// nothing can be matched with the maillog.
		log.Warn("observation without a queue ID: not recorded")
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := o.srv.o.Spool.Observe(ctx, obs)
		cancel()
		if err != nil {
			// Observation is best effort: the mail goes on, and its
			// events lack from/subject/apiData.
			log.Warn("observation not recorded", "err", err)
		} else {
			log.Debug("message observed", "rcpts", len(obs.Recipients))
		}
	}
	if len(o.dropped) > 0 {
		// Durable before the answer: once Postfix has the message, the
		// dropped recipients' records must not be lost.
		var evs []event.Event
		for _, r := range o.dropped {
			for _, e := range suppressedEvents(o.srv.o.Host, o.txn, o.start, o.queueID, gomilter.RemoveAngle(o.from), r) {
				e.MessageID = obs.MessageID // known by now, unlike at RCPT
				evs = append(evs, e)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := o.srv.o.Suppression.RecordSuppressed(ctx, evs)
		cancel()
		if err != nil {
			log.Error("suppressed recipients not recorded: message tempfailed", "rcpts", o.dropped, "err", err)
			return respond(replyTempLookup), nil
		}
		log.Info("suppressed recipients accepted and dropped", "rcpts", o.dropped)
		if len(o.rcpts) == 0 {
			// Every recipient is suppressed: nothing is left to send.
			return gomilter.RespDiscard, nil
		}
		for _, r := range o.dropped {
			if err := m.DeleteRecipient(r); err != nil {
				log.Error("remove suppressed recipient: message tempfailed", "rcpt", r, "err", err)
				return respond(replyTempLookup), nil
			}
		}
	}
	return gomilter.RespAccept, nil
}

func (o *outbound) Abort(_ gomilter.Modifier) error {
	o.reset()
	return nil
}

func (o *outbound) Cleanup(_ gomilter.Modifier) { o.reset() }

// charsetParam returns the charset parameter of a Content-Type value.
func charsetParam(v string) string {
	_, params, err := mime.ParseMediaType(unfold(v))
	if err != nil {
		return ""
	}
	return params["charset"]
}
