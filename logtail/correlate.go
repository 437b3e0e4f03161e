package logtail

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
)

// CorrelatorOptions tune the correlator. The zero value is usable.
type CorrelatorOptions struct {
	// MessageTTL bounds memory: a message that sees no line for this much
	// log time without being "removed" (lost log lines, a message parked
	// in the hold queue) is dropped and counted as "outcome unknown".
	// Default 7 days: Postfix's maximal_queue_lifetime defaults to 5 days.
	MessageTTL time.Duration
	// Grace is how far lines may run out of order: a removed message stays
	// known this long so late lines still find it. Default 10 s.
	Grace time.Duration
	// ReportNotifications reports the deliveries of Postfix's own bounce,
	// delay and delivery-status notifications. Off by default: they are
	// linked to the original message, not new mail from the user.
	ReportNotifications bool
	// Persist tracks changed messages for Flush; the store needs it, a
	// one-shot `posthorn parse` does not.
	Persist bool
	// OnUnknown, if set, is told of each message dropped with recipients
	// whose outcome the log never showed.
	OnUnknown func(key event.MessageKey, pending int, why string)
}

// Stats counts what the correlator saw and did.
type Stats struct {
	Events   map[event.Type]int64
	Rejects  int64 // SMTP-time and cleanup refusals (no delivery events)
	Unknown  int64 // recipients whose outcome the log never showed
	Verify   int64 // address-verification results (not deliveries)
	Notified int64 // delivery lines of Postfix's own notifications, not reported
}

// Correlator follows messages by (host, queue ID) from their first line to
// "removed" and turns delivery lines into per-recipient events, following
// ARCHITECTURE.md's event table. It is not safe for concurrent use.
type Correlator struct {
	opts      CorrelatorOptions
	open      map[event.MessageKey]*msgState
	dirty     map[event.MessageKey]struct{}
	closed    []event.MessageKey
	out       []event.Event
	stats     Stats
	now       time.Time // newest log time seen
	lastSweep time.Time
	idBuf     []byte
	// awaiting maps a queue ID named by a loopback "queued as" that has
	// not been seen yet to the message whose recipient waits on it (see
	// heldSent).
	awaiting map[event.MessageKey]event.MessageKey
	// sharedMID counts the open messages per (host, Message-ID), so that
	// the search for a filter race's original (adoptFiltered) runs only
	// when another message has the same Message-ID: apps that submit on
	// loopback would otherwise cost a scan of every open message per
	// delivery.
	sharedMID map[event.MessageKey]int
	created   uint64 // messages first seen so far: msgState.order
}

// msgState is one message lifetime. Exported fields are persisted (JSON
// in event.Message.State) so that a restart resumes mid-message.
type msgState struct {
	key          event.MessageKey
	MessageID    string    `json:",omitempty"`
	ReturnPath   string    `json:",omitempty"`
	ClientIP     string    `json:",omitempty"`
	Size         int64     `json:",omitempty"` // qmgr's size= (bytes), from the first "queue active"
	FirstSeen    time.Time `json:",omitzero"`
	LastSeen     time.Time `json:",omitzero"`
	QueuedAt     time.Time `json:",omitzero"`  // first "queue active"
	Notification bool      `json:",omitempty"` // Postfix's own NDN/DSN/delay notice
	Born         bool      `json:",omitempty"` // has smtpd's client= or pickup's uid= line: not made inside Postfix
	Parent       *link     `json:",omitempty"` // set when this message is a hand-off of another
	Rcpts        []*rcpt   `json:",omitempty"` // in order of first sighting
	RemovedAt    time.Time `json:",omitzero"`  // closed; kept for Grace to catch late lines
	progressed   bool      // has seen qmgr or delivery lines in this lifetime
	stored       bool      // a Flush returned it: the store has a row to delete
	// order is when it was first seen, among the open messages: syslog
	// times have whole seconds, in which an original and its re-injected
	// copy both begin.
	order uint64
}

// link ties a hand-off (content filter re-injection, alias forwarding) to
// the message and recipient the sender submitted.
type link struct {
	QueueID    string
	MessageID  string `json:",omitempty"`
	ReturnPath string `json:",omitempty"`
	ClientIP   string `json:",omitempty"`
	Size       int64  `json:",omitempty"`
	To         string
	OrigTo     string `json:",omitempty"`
	Forward    bool   `json:",omitempty"` // alias expansion: the address changes
	// Adopted: the link was made from the new message's own delivery,
	// logged before the original's "queued as" line (a content filter
	// re-injected and Postfix delivered faster than the filter's client
	// logged): the original's other recipients may not be known yet.
	Adopted bool `json:",omitempty"`
}

// heldSent is a "status=sent (... queued as X)" to a relay on loopback
// while X has not been seen on this host. A content filter's re-injection
// logs X's client= line before it answers, so X usually is known; when it
// is not, the relay may just be a tunnel or proxy (stunnel, an SSH
// forward, a DKIM signer) to another server. The succeeded event is held:
// if X appears while the original is open, it was a hand-off after all;
// when the original is removed (or dropped), the event is released.
type heldSent struct {
	QueueID string
	Event   event.Event
}

type rcpt struct {
	To        string
	OrigTo    string    `json:",omitempty"`
	Queued    bool      `json:",omitempty"` // queued event emitted
	Final     bool      `json:",omitempty"` // succeeded, failed, or handed off
	Attempts  int       `json:",omitempty"`
	LastDSN   string    `json:",omitempty"`
	LastWhy   string    `json:",omitempty"`
	LastRelay string    `json:",omitempty"`
	LastIP    string    `json:",omitempty"`
	LastAt    time.Time `json:",omitzero"`
	Held      *heldSent `json:",omitempty"`
}

// NewCorrelator returns an empty correlator.
func NewCorrelator(o CorrelatorOptions) *Correlator {
	if o.MessageTTL <= 0 {
		o.MessageTTL = 7 * 24 * time.Hour
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	return &Correlator{
		opts:      o,
		open:      map[event.MessageKey]*msgState{},
		dirty:     map[event.MessageKey]struct{}{},
		stats:     Stats{Events: map[event.Type]int64{}},
		awaiting:  map[event.MessageKey]event.MessageKey{},
		sharedMID: map[event.MessageKey]int{},
	}
}

// Restore loads the open messages a previous run persisted.
func (c *Correlator) Restore(msgs []event.Message) error {
	for _, m := range msgs {
		st := &msgState{}
		if len(m.State) > 0 {
			if err := json.Unmarshal(m.State, st); err != nil {
				return &RestoreError{Key: m.MessageKey, Err: err}
			}
		}
		st.key = m.MessageKey
		st.ReturnPath, st.ClientIP = m.ReturnPath, m.ClientIP
		st.MessageID = "" // the state's copy: counted by setMessageID below
		c.setMessageID(st, m.MessageID)
		st.FirstSeen, st.LastSeen = m.FirstSeen, m.LastSeen
		st.progressed = !st.QueuedAt.IsZero() || len(st.Rcpts) > 0
		st.stored = true
		c.open[m.MessageKey] = st
		for _, rc := range st.Rcpts {
			if rc.Held != nil {
				c.awaiting[event.MessageKey{Host: st.key.Host, QueueID: rc.Held.QueueID}] = st.key
			}
		}
		if m.LastSeen.After(c.now) {
			c.now = m.LastSeen
		}
	}
	// Their order of first sighting, as far as their times tell it.
	restored := slices.Collect(maps.Values(c.open))
	slices.SortFunc(restored, func(a, b *msgState) int {
		return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.key.Host, b.key.Host), cmp.Compare(a.key.QueueID, b.key.QueueID))
	})
	for _, st := range restored {
		c.created++
		st.order = c.created
	}
	c.lastSweep = c.now
	return nil
}

// RestoreError names a persisted message whose state could not be read.
type RestoreError struct {
	Key event.MessageKey
	Err error
}

func (e *RestoreError) Error() string {
	return "restore message " + e.Key.Host + "/" + e.Key.QueueID + ": " + e.Err.Error()
}

func (e *RestoreError) Unwrap() error { return e.Err }

// Newest is the newest log time seen (restored or fed).
func (c *Correlator) Newest() time.Time { return c.now }

// Stats returns the counters so far.
func (c *Correlator) Stats() Stats { return c.stats }

// Open is the number of messages currently followed (not yet removed).
func (c *Correlator) Open() int {
	n := 0
	for _, st := range c.open {
		if st.RemovedAt.IsZero() {
			n++
		}
	}
	return n
}

// Feed takes one parsed line, resolved to time t, and returns the events it
// produced. The returned slice is reused by the next call. raw is the line
// as read; it goes into the event ids, so the same input gives the same ids.
func (c *Correlator) Feed(r *Record, t time.Time, raw string) []event.Event {
	c.out = c.out[:0]
	if t.After(c.now) {
		c.now = t
	}
	switch r.Kind {
	case KindClient:
		st := c.begin(r, t)
		st.ClientIP = strings.Clone(r.ClientIP)
		st.Born = true
	case KindPickup:
		st := c.begin(r, t)
		st.ReturnPath = strings.Clone(r.From)
		st.Born = true
	case KindMessageID:
		st := c.lookup(r, t, true)
		c.setMessageID(st, strings.Clone(r.MessageID))
		if isNotificationID(st.MessageID, st.key.QueueID) && st.ReturnPath == "" {
			st.Notification = true
		}
	case KindQueueActive:
		st := c.lookup(r, t, false)
		st.ReturnPath = strings.Clone(r.From)
		if st.QueuedAt.IsZero() {
			st.QueuedAt = t
			st.Size = r.Size
		}
		st.progressed = true
		if st.ReturnPath == "" && isNotificationID(st.MessageID, st.key.QueueID) {
			st.Notification = true
		}
	case KindDelivery:
		c.delivery(r, t, raw)
	case KindExpired:
		c.expired(r, t, raw)
	case KindNotification:
		if r.NewQueue != "" {
			// bounce(8) may log the link after the notification was
			// delivered and removed: mark that one, do not start another.
			key := event.MessageKey{Host: r.Host, QueueID: r.NewQueue}
			st, ok := c.open[key]
			if !ok {
				st = c.create(key, t)
			}
			st.Notification = true
			c.touch(st, t)
		}
		if st := c.find(r.Host, r.QueueID); st != nil {
			c.touch(st, t)
		}
	case KindRemoved:
		if st := c.find(r.Host, r.QueueID); st != nil && st.RemovedAt.IsZero() {
			c.touch(st, t)
			c.remove(st, t, "removed")
		}
	case KindReject:
		c.stats.Rejects++
		if r.QueueID != "" && endsMessage(r) {
			if st := c.find(r.Host, r.QueueID); st != nil && st.RemovedAt.IsZero() {
				c.touch(st, t)
				c.remove(st, t, r.Action)
			}
		}
	}
	c.sweep()
	return c.out
}

// begin starts a new lifetime for the queue ID of a line that only a new
// message logs (smtpd client=, pickup uid=). Short queue IDs are recycled
// (Postfix mail_queue.c), so an older state under the same key is closed.
func (c *Correlator) begin(r *Record, t time.Time) *msgState {
	key := event.MessageKey{Host: r.Host, QueueID: r.QueueID}
	if st, ok := c.open[key]; ok {
		switch {
		case !st.RemovedAt.IsZero():
			c.drop(st)
		case st.progressed:
			// Its "removed" line never came (lost to syslog rate limits).
			c.unknown(st, "queue ID reused before removed")
			c.drop(st)
		default:
			// Known only from a hand-off or notification line logged first.
			c.touch(st, t)
			return st
		}
	}
	return c.create(key, t)
}

func (c *Correlator) lookup(r *Record, t time.Time, starts bool) *msgState {
	return c.lookupKey(event.MessageKey{Host: r.Host, QueueID: r.QueueID}, t, starts)
}

// lookupKey finds the open message for key, or creates it. A removed
// message is still found within Grace unless the line is one that starts a
// lifetime (starts).
func (c *Correlator) lookupKey(key event.MessageKey, t time.Time, starts bool) *msgState {
	if st, ok := c.open[key]; ok {
		if st.RemovedAt.IsZero() || (!starts && t.Sub(st.RemovedAt) <= c.opts.Grace) {
			c.touch(st, t)
			return st
		}
		c.drop(st)
	}
	return c.create(key, t)
}

// find returns the open (or recently removed) message for a line that
// must not create one.
func (c *Correlator) find(host, qid string) *msgState {
	if qid == "" {
		return nil
	}
	return c.open[event.MessageKey{Host: host, QueueID: qid}]
}

func (c *Correlator) create(key event.MessageKey, t time.Time) *msgState {
	key.Host, key.QueueID = strings.Clone(key.Host), strings.Clone(key.QueueID)
	c.created++
	st := &msgState{key: key, FirstSeen: t, LastSeen: t, order: c.created}
	c.open[key] = st
	c.mark(st)
	if pk, ok := c.awaiting[key]; ok {
		delete(c.awaiting, key)
		if p := c.open[pk]; p != nil {
			c.claimHeld(p, st)
		}
	}
	return st
}

// claimHeld turns the held "sent" lines of p that name child's queue ID
// into a hand-off: child appeared, so it is this Postfix's.
func (c *Correlator) claimHeld(p, child *msgState) {
	for _, rc := range p.Rcpts {
		if rc.Held == nil || rc.Held.QueueID != child.key.QueueID {
			continue
		}
		rc.Held = nil
		rc.Final = true
		c.linkChild(p, child, rc.To, rc.OrigTo, false)
	}
	c.mark(p)
}

// settle releases the held "sent" lines of st as succeeded: their queue ID
// never appeared, so the loopback relay was not a content filter.
func (c *Correlator) settle(st *msgState) {
	for _, rc := range st.Rcpts {
		h := rc.Held
		if h == nil {
			continue
		}
		rc.Held = nil
		rc.Final = true
		if k := (event.MessageKey{Host: st.key.Host, QueueID: h.QueueID}); c.awaiting[k] == st.key {
			delete(c.awaiting, k)
		}
		if st.Notification && !c.opts.ReportNotifications {
			c.stats.Notified++
			continue
		}
		c.emit(h.Event)
		c.mark(st)
	}
}

func (c *Correlator) touch(st *msgState, t time.Time) {
	if t.After(st.LastSeen) {
		st.LastSeen = t
	}
	c.mark(st)
}

func (c *Correlator) mark(st *msgState) {
	if c.opts.Persist {
		c.dirty[st.key] = struct{}{}
	}
}

// remove closes a message: it stays findable for Grace, then is dropped.
// Recipients still pending then were deleted by the administrator
// (postsuper -d) or refused with the whole message at END-OF-MESSAGE; the
// log says nothing more of them.
func (c *Correlator) remove(st *msgState, t time.Time, why string) {
	c.settle(st)
	st.RemovedAt = t
	if why != "removed" {
		c.unknown(st, why)
	} else {
		c.unknown(st, "removed without a final status")
	}
	c.mark(st)
}

func (c *Correlator) drop(st *msgState) {
	c.settle(st)
	c.setMessageID(st, "")
	delete(c.open, st.key)
	if c.opts.Persist {
		delete(c.dirty, st.key)
		// Most messages live and die within one batch: the store never
		// saw them, and there is nothing to delete.
		if st.stored {
			c.closed = append(c.closed, st.key)
		}
	}
}

// setMessageID sets st's Message-ID and keeps sharedMID in step.
func (c *Correlator) setMessageID(st *msgState, mid string) {
	if st.MessageID != "" {
		k := event.MessageKey{Host: st.key.Host, QueueID: st.MessageID}
		if c.sharedMID[k]--; c.sharedMID[k] <= 0 {
			delete(c.sharedMID, k)
		}
	}
	st.MessageID = mid
	if mid != "" {
		c.sharedMID[event.MessageKey{Host: st.key.Host, QueueID: mid}]++
	}
}

func (c *Correlator) unknown(st *msgState, why string) {
	n := st.pending()
	if n == 0 {
		return
	}
	c.stats.Unknown += int64(n)
	if c.opts.OnUnknown != nil {
		c.opts.OnUnknown(st.key, n, why)
	}
}

// pending counts recipients seen without a final outcome.
func (st *msgState) pending() int {
	n := 0
	for _, r := range st.Rcpts {
		if !r.Final {
			n++
		}
	}
	return n
}

// sweep drops removed messages after Grace and silent ones after
// MessageTTL, once per minute of log time.
func (c *Correlator) sweep() {
	// Sweep when log time enters a new minute: the phase depends only on
	// log time, so a restarted reader sweeps exactly when an uninterrupted
	// one would.
	if !c.now.Truncate(time.Minute).After(c.lastSweep.Truncate(time.Minute)) {
		return
	}
	c.lastSweep = c.now
	c.settleStale()
	var gone []*msgState
	for _, st := range c.open {
		switch {
		case !st.RemovedAt.IsZero() && c.now.Sub(st.RemovedAt) > c.opts.Grace:
			gone = append(gone, st)
		case st.RemovedAt.IsZero() && c.now.Sub(st.LastSeen) > c.opts.MessageTTL:
			gone = append(gone, st)
		}
	}
	// Map order is random; keep the closed list and callbacks deterministic.
	slices.SortFunc(gone, func(a, b *msgState) int {
		if d := a.LastSeen.Compare(b.LastSeen); d != 0 {
			return d
		}
		return strings.Compare(a.key.QueueID, b.key.QueueID)
	})
	for _, st := range gone {
		c.settle(st)
		if st.RemovedAt.IsZero() {
			c.unknown(st, "no line for "+c.opts.MessageTTL.String())
		}
		c.drop(st)
	}
}

// settleStale releases held "sent" lines whose queue ID has not appeared
// within Grace of log time: a re-injection logs its client= line before
// the filter answers, so it is not coming (the original's "removed" line
// may have been lost, or the message is parked).
func (c *Correlator) settleStale() {
	if len(c.awaiting) == 0 {
		return
	}
	var stale []*msgState
	for _, pk := range c.awaiting {
		p := c.open[pk]
		if p == nil {
			continue
		}
		for _, rc := range p.Rcpts {
			if rc.Held != nil && c.now.Sub(rc.LastAt) > c.opts.Grace && !slices.Contains(stale, p) {
				stale = append(stale, p)
			}
		}
	}
	slices.SortFunc(stale, func(a, b *msgState) int { return strings.Compare(a.key.QueueID, b.key.QueueID) })
	for _, p := range stale {
		c.settle(p)
	}
}

// SettleHeld releases every held "sent" line as succeeded and returns
// those events; the returned slice is reused by the next call. It is for
// the end of a finite input (posthorn parse): a content filter's
// re-injection logs its client= line before the filter answers, so a queue
// ID not seen by the end of the input is no hand-off, the judgement
// settleStale makes after Grace. serve never calls it: its held lines are
// persisted and settled by the log that follows.
func (c *Correlator) SettleHeld() []event.Event {
	c.out = c.out[:0]
	var held []*msgState
	for _, pk := range c.awaiting {
		if p := c.open[pk]; p != nil && !slices.Contains(held, p) {
			held = append(held, p)
		}
	}
	// Map order is random; the output must not be.
	slices.SortFunc(held, func(a, b *msgState) int {
		if d := a.LastSeen.Compare(b.LastSeen); d != 0 {
			return d
		}
		return cmp.Or(strings.Compare(a.key.Host, b.key.Host), strings.Compare(a.key.QueueID, b.key.QueueID))
	})
	for _, p := range held {
		c.settle(p)
	}
	return c.out
}

// Flush returns the messages changed and closed since the last Flush, for
// the store to commit with the events and the cursor.
func (c *Correlator) Flush() (upsert []event.Message, closed []event.MessageKey) {
	for k := range c.dirty {
		st := c.open[k]
		st.stored = true
		state, err := json.Marshal(st)
		if err != nil {
			// msgState holds only strings, bools, ints and times.
			panic("logtail: marshal message state: " + err.Error())
		}
		upsert = append(upsert, event.Message{
			MessageKey: k, MessageID: st.MessageID, ReturnPath: st.ReturnPath, ClientIP: st.ClientIP,
			FirstSeen: st.FirstSeen, LastSeen: st.LastSeen, State: state,
		})
	}
	clear(c.dirty)
	// A key closed and reused within one batch is only an upsert: the new
	// lifetime replaces the old row.
	for _, k := range c.closed {
		if _, reopened := c.open[k]; !reopened {
			closed = append(closed, k)
		}
	}
	c.closed = c.closed[:0]
	slices.SortFunc(upsert, func(a, b event.Message) int { return strings.Compare(a.QueueID, b.QueueID) })
	return upsert, closed
}

func (st *msgState) rcpt(to, origTo string) *rcpt {
	for _, r := range st.Rcpts {
		if r.To == to && r.OrigTo == origTo {
			return r
		}
	}
	r := &rcpt{To: strings.Clone(to), OrigTo: strings.Clone(origTo)}
	st.Rcpts = append(st.Rcpts, r)
	return r
}

func (c *Correlator) delivery(r *Record, t time.Time, raw string) {
	st := c.lookup(r, t, false)
	st.progressed = true
	var typ event.Type
	switch r.Status {
	case "sent":
		typ = event.Succeeded
	case "deferred", "SOFTBOUNCE":
		// SOFTBOUNCE: soft_bounce=yes turned a 5xx into a deferral.
		typ = event.Deferred
	case "bounced":
		typ = event.Failed
	case "deliverable", "undeliverable", "undeliverable-but-not-cached":
		// Address verification probes (ADDRESS_VERIFICATION_README), not mail.
		c.stats.Verify++
		return
	default:
		return
	}
	rc := st.rcpt(r.To, r.OrigTo)
	if rc.Final && typ == event.Deferred {
		return
	}
	hold := false
	if typ == event.Succeeded && r.HandOff != "" {
		switch verdict, child := c.handOffKind(st, r); verdict {
		case handOffYes:
			// A content filter re-injected the message, or local(8) expanded an
			// alias: the new queue ID carries on, and its final hop is what the
			// sender wants to hear about.
			rc.Final = true
			if child == nil {
				// local(8) logged "forwarded as" before the new message's
				// own lines: it is known from here on.
				child = c.lookupKey(event.MessageKey{Host: r.Host, QueueID: r.HandOff}, t, false)
			} else {
				c.touch(child, t)
			}
			if !rc.Queued && child.Parent != nil && child.Parent.Adopted && child.Parent.QueueID == st.key.QueueID {
				// The child's delivery came first and emitted this
				// recipient's queued already (adoptFiltered).
				rc.Queued = st.queuedFor(r.To)
			}
			if !rc.Queued && st.Parent == nil && !st.Notification {
				c.emitQueued(st, rc)
				rc.Queued = true
			}
			c.linkChild(st, child, r.To, r.OrigTo, r.Forward)
			return
		case handOffMaybe:
			hold = true
		}
	}
	if st.Parent == nil && !st.Notification && st.MessageID != "" {
		switch {
		case !st.Born && r.OrigTo != "" && st.ReturnPath != "":
			c.adoptForward(st, r, t)
		case st.Born && isLoopback(st.ClientIP):
			c.adoptFiltered(st, r, t)
		}
	} else if st.Parent != nil && st.Parent.Adopted && !st.Parent.Forward {
		c.adoptRcpt(st, r, t)
	}
	if st.Notification && !c.opts.ReportNotifications {
		c.stats.Notified++
		if typ != event.Deferred {
			rc.Final = true
		}
		return
	}
	rc.Attempts++
	rc.LastDSN, rc.LastWhy, rc.LastRelay, rc.LastIP, rc.LastAt = strings.Clone(r.DSN), strings.Clone(r.Reason), strings.Clone(r.Relay), strings.Clone(r.RelayIP), t
	if !rc.Queued && st.Parent == nil {
		c.emitQueued(st, rc)
	}
	rc.Queued = true
	ev := c.base(st, rc, typ, t, raw)
	ev.Relay, ev.DSN, ev.Reason, ev.Delay, ev.SenderIP = r.Relay, r.DSN, r.Reason, r.Delay, r.RelayIP
	if hold {
		h := &heldSent{QueueID: strings.Clone(r.HandOff), Event: ev}
		h.Event.Relay, h.Event.DSN, h.Event.Reason, h.Event.Delay, h.Event.SenderIP = rc.LastRelay, rc.LastDSN, rc.LastWhy, strings.Clone(r.Delay), rc.LastIP
		rc.Held = h
		c.awaiting[event.MessageKey{Host: st.key.Host, QueueID: h.QueueID}] = st.key
		return
	}
	c.emit(ev)
	if typ == event.Failed {
		rc.Final = true
		ev.Type = event.Bounced
		ev.Class = Classify(r.DSN, r.Reason)
		if st.Parent != nil && st.Parent.Forward && ev.Class != event.ClassUnknownHost {
			// The alias target failed, not the address the sender used.
			ev.Class = event.ClassForwarding
		}
		c.emit(ev)
	} else if typ == event.Succeeded {
		rc.Final = true
	}
}

// linkChild ties child to the recipient (to, origTo) of p that it carries on.
func (c *Correlator) linkChild(p, child *msgState, to, origTo string, forward bool) {
	if p.Parent != nil {
		to, origTo = p.Parent.To, p.Parent.OrigTo
	}
	l := p.facts()
	l.QueueID, l.To, l.OrigTo, l.Forward = p.key.QueueID, strings.Clone(to), strings.Clone(origTo), forward
	child.Parent = &l
	child.Notification = child.Notification || p.Notification
	c.mark(child)
}

// queuedFor tells whether a queued event went out for the recipient to.
func (st *msgState) queuedFor(to string) bool {
	for _, r := range st.Rcpts {
		if r.Queued && strings.EqualFold(r.To, to) {
			return true
		}
	}
	return false
}

func isLoopback(s string) bool {
	ip, err := netip.ParseAddr(s)
	return err == nil && ip.IsLoopback()
}

// endsMessage tells a refusal of the whole message that had a queue ID
// (cleanup or milter at END-OF-MESSAGE, header/body checks, a DISCARD
// action): no qmgr or "removed" line follows. A refusal at RCPT refuses
// only that recipient, and a hold parks the message in the hold queue.
func endsMessage(r *Record) bool {
	switch {
	case r.Action == "milter-hold":
		return false
	case r.Stage == "RCPT" && (r.Action == "reject" || r.Action == "milter-reject"):
		return false
	}
	return true
}

// adoptForward links a message that local(8) made by forwarding (it has no
// client= or uid= line of its own) to the message it came from, when its
// delivery is logged before local(8) logs "forwarded as" — which a real
// Postfix does: qmgr can deliver the new message before local(8) writes
// its line. The parent is the open message with the same Message-ID and
// sender; the recipient the sender addressed is the line's orig_to.
func (c *Correlator) adoptForward(st *msgState, r *Record, t time.Time) {
	if c.sharedMID[event.MessageKey{Host: st.key.Host, QueueID: st.MessageID}] < 2 {
		return
	}
	var p *msgState
	for _, o := range c.open {
		if o != st && o.Born && o.RemovedAt.IsZero() && o.key.Host == st.key.Host && o.order < st.order &&
			o.MessageID != "" && o.MessageID == st.MessageID && o.ReturnPath == st.ReturnPath {
			if p == nil || o.order > p.order {
				p = o // the newest seen before it
			}
		}
	}
	if p == nil {
		return
	}
	prc := p.rcpt(r.OrigTo, "")
	if !prc.Queued && p.Parent == nil && !p.Notification {
		c.emitQueued(p, prc)
		prc.Queued = true
	}
	prc.Final = true
	c.touch(p, t)
	l := p.facts()
	l.QueueID, l.To, l.OrigTo, l.Forward = p.key.QueueID, prc.To, "", true
	st.Parent = &l
	st.Notification = st.Notification || p.Notification
}

type handOffVerdict uint8

const (
	handOffNo    handOffVerdict = iota // a remote server's queue ID: a delivery
	handOffYes                         // a message of this Postfix carries on
	handOffMaybe                       // loopback relay, queue ID not seen yet: hold
)

// handOffKind tells a re-injection into this same Postfix from a server
// that merely said "queued as". The new queue ID is ours when local(8)
// forwarded, or when it has been seen on this host (a re-injecting smtpd
// logs client= before it answers, and the new message may even have been
// delivered already). A relay on loopback whose queue ID has not been
// seen may be a content filter whose lines are late, or a tunnel to
// another server: the outcome is held until one or the other is known.
//
// The new message is returned when it is known (possibly removed already,
// within Grace): a removed one is linked, not started again.
func (c *Correlator) handOffKind(st *msgState, r *Record) (handOffVerdict, *msgState) {
	x := c.find(r.Host, r.HandOff)
	if x == st {
		x = nil
	}
	switch {
	case r.Forward || x != nil:
		return handOffYes, x
	case isLoopback(r.RelayIP):
		return handOffMaybe, nil
	}
	return handOffNo, nil
}

// adoptFiltered links a message that a content filter re-injected (its
// client is on loopback) to the message it came from, when its delivery is
// logged before the original's "status=sent (... queued as NEWQID)" — the
// filter may hand the message back and Postfix deliver it before the
// filter answers the original's smtp client. The parent is the newest
// other open message with the same Message-ID and sender whose recipient
// is still without an outcome.
func (c *Correlator) adoptFiltered(st *msgState, r *Record, t time.Time) {
	if c.sharedMID[event.MessageKey{Host: st.key.Host, QueueID: st.MessageID}] < 2 {
		return
	}
	var p *msgState
	for _, o := range c.open {
		if o == st || !o.RemovedAt.IsZero() || o.key.Host != st.key.Host || !o.progressed || o.Notification ||
			o.MessageID != st.MessageID || o.ReturnPath != st.ReturnPath || o.order > st.order ||
			(o.Parent != nil && o.Parent.QueueID == st.key.QueueID) || o.finalFor(r.To) {
			continue
		}
		if p == nil || o.order > p.order {
			p = o // the newest seen before it
		}
	}
	if p == nil {
		return
	}
	c.linkChild(p, st, r.To, r.OrigTo, false)
	st.Parent.Adopted = true
	c.adoptRcpt(st, r, t)
}

// adoptRcpt gives the recipient of an adopted child's delivery line its
// queued event from the parent, once, if the parent has not logged it.
func (c *Correlator) adoptRcpt(st *msgState, r *Record, t time.Time) {
	p := c.find(st.key.Host, st.Parent.QueueID)
	if p == nil || p.finalFor(r.To) {
		return
	}
	prc := p.rcpt(r.To, r.OrigTo)
	if !prc.Queued && p.Parent == nil {
		c.emitQueued(p, prc)
	}
	prc.Queued, prc.Final = true, true
	c.touch(p, t)
}

// finalFor tells whether the recipient to has an outcome in st.
func (st *msgState) finalFor(to string) bool {
	for _, r := range st.Rcpts {
		if (r.Final || r.Held != nil) && strings.EqualFold(r.To, to) {
			return true
		}
	}
	return false
}

func (c *Correlator) expired(r *Record, t time.Time, raw string) {
	st := c.lookup(r, t, false)
	st.progressed = true
	if st.ReturnPath == "" {
		st.ReturnPath = strings.Clone(r.From)
	}
	if st.Notification && !c.opts.ReportNotifications {
		return
	}
	// qmgr logs expiry once per message (qmgr_active.c), without
	// recipients: every recipient still without an outcome has failed.
	for _, rc := range st.Rcpts {
		if rc.Final {
			continue
		}
		rc.Final = true
		ev := c.base(st, rc, event.Failed, t, raw)
		ev.Relay, ev.SenderIP = rc.LastRelay, rc.LastIP
		ev.DSN = rc.LastDSN
		if strings.HasPrefix(ev.DSN, "4.") {
			// The notification reports the last temporary error as permanent.
			ev.DSN = "5." + ev.DSN[2:]
		}
		ev.Reason = rc.LastWhy
		if ev.Reason == "" {
			ev.Reason = "message expired: " + r.Status
		}
		if !st.QueuedAt.IsZero() {
			ev.Delay = formatDelay(t.Sub(st.QueuedAt))
		}
		c.emit(ev)
		ev.Type, ev.Class = event.Bounced, event.ClassTimeout
		c.emit(ev)
	}
}

func (c *Correlator) emitQueued(st *msgState, rc *rcpt) {
	at := st.QueuedAt
	if at.IsZero() {
		at = st.FirstSeen
	}
	ev := c.base(st, rc, event.Queued, at, "")
	ev.Attempt = 0
	c.emit(ev)
}

// facts are the message-level facts a hand-off inherits.
func (st *msgState) facts() link {
	if st.Parent != nil {
		l := *st.Parent
		l.Adopted = false
		if l.MessageID == "" {
			l.MessageID = st.MessageID
		}
		return l
	}
	return link{MessageID: st.MessageID, ReturnPath: st.ReturnPath, ClientIP: st.ClientIP, Size: st.Size}
}

func (c *Correlator) base(st *msgState, rc *rcpt, typ event.Type, t time.Time, raw string) event.Event {
	ev := event.Event{
		Type: typ, Time: t, Host: st.key.Host, QueueID: st.key.QueueID,
		MessageID: st.MessageID, ReturnPath: st.ReturnPath,
		To: rc.To, OrigTo: rc.OrigTo, Attempt: rc.Attempts,
		SourceIP: st.ClientIP, Size: st.Size,
	}
	if p := st.Parent; p != nil {
		// The sender's facts: a filter's re-injection has its own client
		// (loopback) and a larger size (the filter's headers).
		if p.ClientIP != "" || p.Size != 0 {
			ev.SourceIP, ev.Size = p.ClientIP, p.Size
		}
		if p.MessageID != "" {
			ev.MessageID = p.MessageID
		}
		if ev.ReturnPath == "" {
			ev.ReturnPath = p.ReturnPath
		}
		switch {
		case p.Forward:
			// An alias target: the sender addressed the alias.
			if ev.OrigTo == "" && !strings.EqualFold(p.To, rc.To) {
				ev.OrigTo = p.To
			}
			if p.OrigTo != "" {
				ev.OrigTo = p.OrigTo
			}
		case p.OrigTo != "" && strings.EqualFold(p.To, rc.To):
			// A filter hop keeps the address; the link names one
			// recipient, so only that one inherits its orig_to.
			ev.OrigTo = p.OrigTo
		}
	}
	ev.ID = c.id(&ev, raw)
	return ev
}

// id derives the event id from what the event is and the log line that
// produced it: the same input always gives the same id, and a line read
// twice after a crash gives a duplicate the store ignores.
func (c *Correlator) id(ev *event.Event, raw string) string {
	b := c.idBuf[:0]
	for _, s := range [...]string{string(ev.Type), ev.Host, ev.QueueID, ev.To, ev.OrigTo, raw} {
		b = append(b, s...)
		b = append(b, 0)
	}
	b = strconv.AppendInt(b, ev.Time.UnixNano(), 10)
	c.idBuf = b
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func (c *Correlator) emit(ev event.Event) {
	if ev.Type == event.Bounced {
		// Bounced shares its line with Failed; its own type keeps ids apart.
		ev.ID = c.id(&ev, ev.ID)
	}
	c.stats.Events[ev.Type]++
	c.out = append(c.out, ev)
}

// isNotificationID recognises the Message-ID that cleanup(8) gives a
// message that has none, as Postfix's own notifications have none:
// <YYYYMMDDhhmmss.QUEUEID@myhostname>, or <QUEUEID@myhostname> with
// enable_long_queue_ids (long IDs are unique by themselves). With the null
// sender it marks a notification even when its delivery is logged before
// bounce(8) logs "sender non-delivery notification: QUEUEID", which
// happens with a real Postfix.
func isNotificationID(mid, qid string) bool {
	if qid == "" || !strings.HasPrefix(mid, "<") {
		return false
	}
	if strings.HasPrefix(mid, "<"+qid+"@") {
		return true
	}
	i := strings.Index(mid, "."+qid+"@")
	return i == len("<20060102150405")
}

func formatDelay(d time.Duration) string {
	s := d.Seconds()
	if s >= 10 {
		return strconv.FormatFloat(s, 'f', 0, 64)
	}
	return strconv.FormatFloat(s, 'f', 2, 64)
}
