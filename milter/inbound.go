package milter

import (
	"context"
	"log/slog"
	"strings"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/posthorn/posthorn/event"
)

// inbound is one milter connection of the inbound role, which Postfix
// opens per SMTP session; it holds one transaction (MAIL to end of
// message) at a time.
type inbound struct {
	gomilter.NoOpMilter
	srv    *Server
	client string

	// The transaction.
	active  bool
	refuse  bool   // shutting down: refuse the transaction
	refusal *Reply // the answer decided at the end of the headers
	policy  *Policy
	from    string
	rcpts   []string          // recipients captured (RcptCapture)
	pass    []string          // recipients passed through (RcptPass)
	bounces []BounceRecipient // recipients that are bounce addresses (dsn.go)
	queueID string
	fields  []Field
	size    int64 // header and body bytes
	tooBig  bool
	body    *spill
	matches [][]string

	bounceDecision string // the bounce sink's outcome
}

// log is the logger of the transaction. Decisions are logged at debug
// level: the inbound log in the store and Postfix's own log record them,
// and spam would flood the daemon's log.
func (t *inbound) log() *slog.Logger {
	l := t.srv.o.Log.With("role", "inbound", "queue_id", t.queueID)
	if _, id := t.headerFromAndID(); id != "" {
		l = l.With("message_id", id)
	}
	return l
}

// debug logs at debug level, building the transaction's logger only when
// that level is on: it is off in production, and the milter answers
// every message after this.
func (t *inbound) debug(msg string, args ...any) {
	if t.srv.o.Log.Enabled(context.Background(), slog.LevelDebug) {
		t.log().Debug(msg, args...)
	}
}

func (t *inbound) Connect(_ string, _ string, _ uint16, addr string, _ gomilter.Modifier) (*gomilter.Response, error) {
	t.client = addr
	return gomilter.RespContinue, nil
}

// finish drops the message data but keeps the transaction counted.
func (t *inbound) finish() {
	if t.body != nil {
		t.body.Close()
		t.body = nil
	}
	t.fields, t.matches = nil, nil
}

// reset ends the transaction: after the end of the message, an abort
// (RSET, a rejected message) or the end of the connection.
func (t *inbound) reset() {
	if t.body != nil {
		t.body.Close()
	}
	if t.active {
		t.srv.end()
	}
	*t = inbound{srv: t.srv, client: t.client}
}

func (t *inbound) MailFrom(from string, _ string, _ gomilter.Modifier) (*gomilter.Response, error) {
	t.reset()
	if !t.srv.begin() {
		// MAIL is sent without waiting for an answer (OptNoMailReply):
		// the refusal goes out at the first RCPT.
		t.refuse = true
		return gomilter.RespContinue, nil
	}
	t.active = true
	t.policy = t.srv.policy.Load()
	t.from = from
	return gomilter.RespContinue, nil
}

func (t *inbound) RcptTo(rcpt string, _ string, m gomilter.Modifier) (*gomilter.Response, error) {
	if t.refuse {
		return respond(replyShuttingDown), nil
	}
	if !t.active {
		// Postfix sends MAIL first; a client that does not gets nothing.
		return respond(replyTempStore), nil
	}
	if q := m.Get(gomilter.MacroQueueId); q != "" {
		t.queueID = q
	}
	// A bounce address is accepted whatever the inbound settings say:
	// it is Posthorn's own, not an inbound domain's mailbox.
	if b, ok := t.srv.bounces.Match(rcpt); ok {
		t.bounces = append(t.bounces, b)
		return gomilter.RespContinue, nil
	}
	d := t.policy.Recipient(rcpt)
	switch d.Verdict {
	case RcptCapture:
		t.rcpts = append(t.rcpts, rcpt)
		return gomilter.RespContinue, nil
	case RcptPass:
		t.pass = append(t.pass, rcpt)
		return gomilter.RespContinue, nil
	}
	t.debug("recipient refused", "rcpt", rcpt, "from", t.from, "reply", d.Reply.String())
	if d.Verdict != RcptUnknownDomain || t.policy.LogDenied() {
		t.deny([]string{rcpt}, "", "", d.Reason)
	}
	// A reply code answers for this recipient only (MILTER.md §1.3).
	return respond(d.Reply), nil
}

// deny writes denied rows to the inbound log. A store failure does not
// change the answer: the mail is refused either way.
func (t *inbound) deny(rcpts []string, from, messageID, reason string) {
	now := t.srv.o.Now()
	rows := make([]event.InboundLogEntry, len(rcpts))
	for i, r := range rcpts {
		rows[i] = event.InboundLogEntry{Time: now, Status: event.InboundDenied, From: from, To: r,
			Host: t.srv.o.Host, MessageID: messageID, QueueID: t.queueID, Reason: reason}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.srv.o.Spool.LogInbound(ctx, rows); err != nil {
		t.log().Warn("inbound log: denied mail not recorded", "err", err)
	}
}

func (t *inbound) Data(m gomilter.Modifier) (*gomilter.Response, error) {
	if q := m.Get(gomilter.MacroQueueId); q != "" {
		t.queueID = q
	}
	if len(t.rcpts) == 0 && len(t.bounces) == 0 {
		// Only pass-through recipients: Postfix goes on as if the milter
		// were not there.
		t.reset()
		return gomilter.RespAccept, nil
	}
	return gomilter.RespContinue, nil
}

// The end of the headers is not answered (OptNoEOHReply): Headers decides,
// and EndOfMessage answers.

func (t *inbound) Header(name, value string, _ gomilter.Modifier) (*gomilter.Response, error) {
	// name: value CRLF, as the message holds it.
	t.size += int64(len(name) + len(value) + 4)
	if t.size > t.srv.o.MaxMessageSize {
		t.tooBig = true
	}
	if !t.tooBig && len(t.fields) < maxHeaderFields {
		t.fields = append(t.fields, Field{Name: name, Raw: value})
	}
	return gomilter.RespContinue, nil
}

// maxHeaderFields bounds the header fields kept per message. Postfix
// limits each field's size (header_size_limit), not their number; a
// message of a million empty fields must not cost a million structs.
const maxHeaderFields = 10000

func (t *inbound) Headers(m gomilter.Modifier) (*gomilter.Response, error) {
	if q := m.Get(gomilter.MacroQueueId); q != "" {
		t.queueID = q
	}
	if !t.active {
		return respond(replyTempStore), nil
	}
	if t.tooBig {
		return nil, nil
	}
	if len(t.rcpts) == 0 {
		// Bounce mail only: the spam rules and filters are for inbound
		// mail, and a bounce's From is a mailer daemon anywhere.
		t.size += 2 // the empty line after the header
		t.body = newSpill(t.srv.o.TempDir, 256<<10)
		return nil, nil
	}
	for i := range t.fields {
		t.fields[i].Value = decodeValue(t.fields[i].Raw, "")
	}
	d := t.policy.Message(t.fields, t.rcpts)
	if d.Reject {
		from, mid := t.headerFromAndID()
		t.debug("message refused", "from", from, "reply", d.Reply.String())
		t.deny(t.rcpts, from, mid, d.Reason)
		t.refusal = &d.Reply
		return nil, nil
	}
	t.matches = d.Matches
	t.size += 2 // the empty line after the header
	t.body = newSpill(t.srv.o.TempDir, 256<<10)
	return nil, nil
}

func (t *inbound) headerFromAndID() (from, messageID string) {
	for _, f := range t.fields {
		switch {
		case from == "" && strings.EqualFold(f.Name, "From"):
			from = f.Value
		case messageID == "" && strings.EqualFold(f.Name, "Message-Id"):
			messageID = unfold(f.Raw)
		}
	}
	return from, messageID
}

func (t *inbound) BodyChunk(chunk []byte, _ gomilter.Modifier) (*gomilter.Response, error) {
	t.size += int64(len(chunk))
	if t.size > t.srv.o.MaxMessageSize {
		// Body replies are off; the refusal waits for the end of the
		// message. Nothing more is kept meanwhile.
		t.tooBig = true
	}
	if t.body != nil && !t.tooBig {
		if _, err := t.body.Write(chunk); err != nil {
			t.log().Error("capture: spool the body", "err", err)
			t.body.Close()
			t.body = nil
		}
	}
	return nil, nil
}

func (t *inbound) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	// The transaction stays open until Postfix's ABORT, which follows the
	// answer: Shutdown must not close the connection between the store's
	// commit and the answer reaching Postfix.
	defer t.finish()
	if obs := t.srv.o.Observe; obs != nil {
		start := time.Now()
		decision := DecisionTempfail
		defer func() { obs(decision, time.Since(start)) }()
		resp, err := t.endOfMessage(m)
		switch {
		case err != nil:
		case (resp == gomilter.RespAccept || resp == gomilter.RespDiscard) && len(t.rcpts) == 0 && t.bounceDecision != "":
			decision = t.bounceDecision
		case resp == gomilter.RespAccept || resp == gomilter.RespDiscard:
			decision = DecisionCaptured
		case t.refusal != nil || t.tooBig:
			decision = DecisionRefused
		}
		return resp, err
	}
	return t.endOfMessage(m)
}

func (t *inbound) endOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	if q := m.Get(gomilter.MacroQueueId); q != "" {
		t.queueID = q
	}
	switch {
	case t.refusal != nil:
		return respond(*t.refusal), nil
	case t.tooBig:
		t.debug("message refused", "reply", replyTooBig.String(), "size", t.size)
		return respond(replyTooBig), nil
	case !t.active || (t.matches == nil && len(t.bounces) == 0):
		return respond(replyTempStore), nil
	case t.body == nil:
		return respond(replyTempStore), nil // the body could not be spooled; logged
	}
	var err error
	if len(t.bounces) > 0 {
		// Before the capture: reading a bounce again is harmless (the
		// sink knows it), capturing a message twice is not.
		progress(m, func() { t.bounceDecision, err = t.bounce() })
		if err != nil {
			t.log().Error("bounce mail not stored: message tempfailed", "err", err, "reply", replyTempStore.String())
			return respond(replyTempStore), nil
		}
	}
	if len(t.rcpts) > 0 {
		progress(m, func() { err = t.capture() })
		if err != nil {
			t.log().Error("capture failed: message tempfailed", "err", err, "reply", replyTempStore.String())
			return respond(replyTempStore), nil
		}
	}
	if t.srv.o.AfterCapture == Deliver {
		return gomilter.RespAccept, nil
	}
	if len(t.pass) == 0 {
		return gomilter.RespDiscard, nil
	}
	// Discarding would drop the pass-through recipients' copy too: take
	// the captured recipients and the bounce addresses off the message
	// instead.
	taken := append([]string(nil), t.rcpts...)
	for _, b := range t.bounces {
		taken = append(taken, b.Address)
	}
	for _, r := range taken {
		if err := m.DeleteRecipient(r); err != nil {
			t.log().Error("capture: remove captured recipient", "rcpt", r, "err", err)
			return respond(replyTempStore), nil
		}
	}
	return gomilter.RespAccept, nil
}

// capture parses the spooled message and hands it to the spool.
func (t *inbound) capture() error {
	ctx, cancel := context.WithTimeout(context.Background(), t.srv.o.CaptureTimeout)
	defer cancel()
	p, err := Parse(t.fields, t.body.Reader(), t.srv.o.Parse)
	if err != nil {
		return err
	}
	defer p.Close()
	msg := &event.InboundMessage{
		Host:         t.srv.o.Host,
		QueueID:      t.queueID,
		Received:     t.srv.o.Now(),
		ClientAddr:   t.client,
		EnvelopeFrom: t.from,
		Size:         t.size,
		Headers:      p.Headers,
		From:         p.From,
		Subject:      p.Subject,
		MessageID:    p.MessageID,
		Text:         p.Text,
		HTML:         p.HTML,
		Attachments:  p.Attachments,
		Problems:     p.Problems,
	}
	for i, r := range t.rcpts {
		msg.Recipients = append(msg.Recipients, event.InboundRecipient{Address: r, Filters: t.matches[i]})
	}
	if err := t.srv.o.Spool.Capture(ctx, msg); err != nil {
		return err
	}
	t.debug("message captured", "from", p.From, "rcpts", len(t.rcpts), "size", t.size,
		"attachments", len(p.Attachments), "problems", len(p.Problems))
	return nil
}

func (t *inbound) Abort(_ gomilter.Modifier) error {
	t.reset()
	return nil
}

func (t *inbound) Cleanup(_ gomilter.Modifier) { t.reset() }

// progressEvery is how often a long capture tells Postfix it is still
// working, so that milter_content_timeout (300 s) does not run out on a
// large message.
const progressEvery = 10 * time.Second

// progress runs fn, sending progress packets while it lasts.
func progress(m gomilter.Modifier, fn func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if err := m.Progress(); err != nil {
					return
				}
			}
		}
	}()
	fn()
	close(done)
	<-stopped // no packet may follow the answer
}
