package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
)

// Bounce bookkeeping (0007_bounces.sql), done in the transaction that
// stores the events it is about, so that a batch committed again after a
// crash, which stores nothing new, changes nothing here either:
//
//   - deliveries and bounces of mail whose return path is a bounce address
//     go into bounce_lookup, where RecordDSN finds them by Message-ID;
//   - every bounced event the store keeps, from the log reader's Commit and
//     from RecordDSN, adds one to its recipient's count for its class, and
//     when the rules say the count is reached and the address has no live
//     entry, the address goes on the suppression list, scheduled as the
//     rules say: the bounce and the registration it causes are durable
//     together or not at all.

// BounceRules is the policy the store applies to stored events. The store
// imports neither blocks nor config: cmd/posthorn adapts the bounce
// addresses, blocks.Normalize, blocks.Rules and the block service's
// schedule. The methods run inside the write transaction of a log batch,
// so they must be quick; Schedule is only called when an address is to
// be registered.
type BounceRules interface {
	// Tracks reports whether mail with this return path can bounce back
	// to Posthorn (a bounce address, also in its VERP form), so that its
	// deliveries are kept findable for RecordDSN.
	Tracks(returnPath string) bool
	// Address is the form a recipient is counted and listed in; false
	// when it is not an address the list can hold (it is then not
	// counted).
	Address(rcpt string) (string, bool)
	// Register reports whether an address that has now bounced count
	// times with class c is to be registered.
	Register(c event.Class, count int) bool
	// Schedule returns the suppression list's clock (now), when a
	// registration requested now takes effect (at; at or before now means
	// at once) and when its watch period lifts it (zero: never). It may
	// read the store, whose readers are apart from the writer, but not
	// write to it: the caller holds the write transaction.
	Schedule(ctx context.Context) (now, at, expires time.Time)
	// Registered is told of the entries a committed transaction added,
	// for the log. It must not block.
	Registered(entries []Block)
}

// rulesBox lets SetBounceRules swap the rules while the store is in use.
type rulesBox struct{ r BounceRules }

// SetBounceRules sets (or, with nil, removes) the rules of automatic
// registration. Without rules nothing is counted.
func (s *Store) SetBounceRules(r BounceRules) {
	if r == nil {
		s.bounceRules.Store(nil)
		return
	}
	s.bounceRules.Store(&rulesBox{r})
}

func (s *Store) rules() BounceRules {
	if b := s.bounceRules.Load(); b != nil {
		return b.r
	}
	return nil
}

// countBounceSQL adds to an address's count for a class.
const countBounceSQL = `INSERT INTO bounce_counts (address, class, count, last_at)
	VALUES (?, ?, ?, ?)
	ON CONFLICT (address, class) DO UPDATE SET
		count = count + excluded.count,
		last_at = max(last_at, excluded.last_at)`

// uncounted are the classes a count never includes: none, and the
// suppression list's own refusals (10, 11), which would only count what is
// already listed.
func uncounted(c event.Class) bool {
	return c == event.ClassNone || c == event.ClassBlocked || c == event.ClassUnsubscribed
}

// bookkeeper does the bookkeeping of one write transaction. Deliveries
// are tracked as they are stored; bounces are added up per address and
// class and written once per transaction by flush, so that a batch with
// many bounces to few addresses (a mailing to a dead list, a log read
// again) costs a write per address, not per bounce. It binds its
// statements to the transaction once, on first use: database/sql's
// Tx.StmtContext costs as much as the statement itself.
type bookkeeper struct {
	s                       *Store
	tx                      *sql.Tx
	rules                   BounceRules // nil: only tracking, as RecordDSN without rules
	count, countRead, track *sql.Stmt
	counts                  map[countKey]*pendingCount
	order                   []countKey // first bounce first, so that registrations come in log order
	// rematch lists the Message-IDs of tracked deliveries stored now, for
	// the DSNs that wait for them.
	rematch []string
}

type countKey struct {
	addr  string
	class event.Class
}

type pendingCount struct {
	n    int
	last time.Time
}

func (s *Store) bookkeeper(tx *sql.Tx, rules BounceRules) *bookkeeper {
	return &bookkeeper{s: s, tx: tx, rules: rules}
}

// stored does the bookkeeping of one event stored now at seq: a tracked
// delivery or bounce goes into bounce_lookup (always with track set), a
// bounce is counted at flush.
func (k *bookkeeper) stored(ctx context.Context, e *event.Event, seq int64, track bool) error {
	if e.Type != event.Succeeded && e.Type != event.Bounced {
		return nil
	}
	if track || (k.rules != nil && k.rules.Tracks(e.ReturnPath)) {
		if k.track == nil {
			k.track = k.tx.StmtContext(ctx, k.s.stmts.trackMessage)
		}
		if _, err := k.track.ExecContext(ctx, e.MessageID, strings.ToLower(e.Recipient()), seq); err != nil {
			return fmt.Errorf("track %s: %w", e.MessageID, err)
		}
		if e.Type == event.Succeeded && e.MessageID != "" && !slices.Contains(k.rematch, e.MessageID) {
			k.rematch = append(k.rematch, e.MessageID)
		}
	}
	if e.Type != event.Bounced || k.rules == nil || uncounted(e.Class) {
		return nil
	}
	addr, ok := k.rules.Address(e.Recipient())
	if !ok {
		return nil
	}
	key := countKey{addr, e.Class}
	c := k.counts[key]
	if c == nil {
		if k.counts == nil {
			k.counts = map[countKey]*pendingCount{}
		}
		c = &pendingCount{}
		k.counts[key] = c
		k.order = append(k.order, key)
	}
	c.n++
	if e.Time.After(c.last) {
		c.last = e.Time
	}
	return nil
}

// flush writes the counts added up and registers the addresses whose
// count the rules say is reached. It returns the entries it added and the
// `registered` events stored with those that took effect at once.
func (k *bookkeeper) flush(ctx context.Context) ([]Block, []Pending, error) {
	var added []Block
	var stored []Pending
	// First the DSNs that waited for a delivery stored now: their
	// bounces count with the others.
	for _, id := range k.rematch {
		pend, err := k.rematchDSNs(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		stored = append(stored, pend...)
	}
	k.rematch = nil
	for _, key := range k.order {
		b, pend, err := k.countBounces(ctx, key, k.counts[key])
		if err != nil {
			return nil, nil, err
		}
		if b != nil {
			added = append(added, *b)
			stored = append(stored, pend...)
		}
	}
	k.counts, k.order = nil, nil
	return added, stored, nil
}

// countBounces adds c's bounces to an address's count for a class and,
// when the rules say so, registers the address. It returns the entry it
// added (nil for none) and the `registered` event stored with it when the
// entry took effect at once.
func (k *bookkeeper) countBounces(ctx context.Context, key countKey, c *pendingCount) (*Block, []Pending, error) {
	rules, tx, addr, class := k.rules, k.tx, key.addr, key.class
	// The count is only read back for a class that can register at all:
	// with automatic registration off (the default) counting is one write.
	if !rules.Register(class, math.MaxInt) {
		if k.count == nil {
			k.count = tx.StmtContext(ctx, k.s.stmts.countBounce)
		}
		if _, err := k.count.ExecContext(ctx, addr, int64(class), c.n, c.last.UnixNano()); err != nil {
			return nil, nil, fmt.Errorf("count bounces of %s: %w", addr, err)
		}
		return nil, nil, nil
	}
	if k.countRead == nil {
		k.countRead = tx.StmtContext(ctx, k.s.stmts.countBounceRead)
	}
	var n int
	if err := k.countRead.QueryRowContext(ctx, addr, int64(class), c.n, c.last.UnixNano()).Scan(&n); err != nil {
		return nil, nil, fmt.Errorf("count bounces of %s: %w", addr, err)
	}
	if !rules.Register(class, n) {
		return nil, nil, nil
	}
	if _, err := liveBlock(ctx, tx, addr); err == nil {
		return nil, nil, nil // listed already; the count goes on
	} else if !errors.Is(err, ErrNoBlock) {
		return nil, nil, fmt.Errorf("count bounce of %s: %w", addr, err)
	}
	now, at, expires := rules.Schedule(ctx)
	if at.Before(now) {
		at = now
	}
	if !expires.IsZero() && !expires.After(at) {
		expires = time.Time{} // a watch period that ends first is no watch period
	}
	immediate := !at.After(now)
	var registered, exp any
	if immediate {
		registered = at.UnixNano()
	}
	if !expires.IsZero() {
		exp = expires.UnixNano()
	}
	reason := class.String()
	res, err := tx.ExecContext(ctx, `INSERT INTO blocks (address, reason, occurrences,
		created_at, scheduled_at, registered_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		addr, reason, n, now.UnixNano(), at.UnixNano(), registered, exp)
	if err != nil {
		return nil, nil, fmt.Errorf("register %s after %d bounces of class %d: %w", addr, n, class, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, nil, err
	}
	b, err := scanBlock(tx.QueryRowContext(ctx, `SELECT `+blockColumns+` FROM blocks WHERE id = ?`, id))
	if err != nil {
		return nil, nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE bounce_counts SET count = 0 WHERE address = ? AND class = ?`,
		addr, int64(class)); err != nil {
		return nil, nil, err
	}
	var stored []Pending
	if immediate {
		stored, err = k.s.insertBlockEvents(ctx, tx, []event.Event{blockEvent(b, event.Registered, at)})
		if err != nil {
			return nil, nil, err
		}
	}
	return &b, stored, nil
}

// BounceCount is one address's count for one class.
type BounceCount struct {
	Address string
	Class   event.Class
	Count   int
	Last    time.Time // the time of the newest bounce counted
}

// BounceCounts returns the counts of an address (normalised), by class.
func (s *Store) BounceCounts(ctx context.Context, address string) ([]BounceCount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT address, class, count, last_at FROM bounce_counts
		WHERE address = ? ORDER BY class`, address)
	if err != nil {
		return nil, fmt.Errorf("read bounce counts of %s: %w", address, err)
	}
	defer rows.Close()
	var out []BounceCount
	for rows.Next() {
		var c BounceCount
		var class, last int64
		if err := rows.Scan(&c.Address, &class, &c.Count, &last); err != nil {
			return nil, fmt.Errorf("read bounce counts of %s: %w", address, err)
		}
		c.Class, c.Last = event.Class(class), time.Unix(0, last).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read bounce counts of %s: %w", address, err)
	}
	return out, nil
}

// DSN is a bounce message as RecordDSN matches it: what the inbound milter
// role and the DSN parser read from it.
type DSN struct {
	// ID is the bounce message's own identity: its Message-ID, or a
	// digest of its body when it has none. The same message delivered
	// twice has the same ID.
	ID string
	// Host is this mail server, for records without an original.
	Host string
	// Received is when the bounce message arrived: the time of its
	// records.
	Received time.Time
	// MessageID is the Message-ID of the message it returns, with its
	// <>; "" when the bounce did not return it.
	MessageID string
	// VERP lists the recipients the envelope recipients of the bounce
	// name by VERP; empty when it was not sent to a VERP address.
	VERP []VERPRecipient
	// Recipients are the failed recipients of the report.
	Recipients []DSNRecipient
}

// VERPRecipient is the original recipient a VERP bounce address encodes,
// and that address, the return path of the message copy that bounced.
type VERPRecipient struct {
	Recipient  string
	ReturnPath string
}

// DSNRecipient is one failed recipient of a report.
type DSNRecipient struct {
	Address    string
	Status     string // enhanced status code, e.g. 5.1.1
	Diagnostic string
	Class      event.Class
}

// DSNOutcome is what became of a bounce message or of one of its
// recipients.
type DSNOutcome string

const (
	// DSNRecorded: a bounced event was stored.
	DSNRecorded DSNOutcome = "recorded"
	// DSNKnown: the bounce was already stored, from the maillog (Postfix's
	// own notification of a failure it logged) or from another bounce
	// message about the same delivery.
	DSNKnown DSNOutcome = "known"
	// DSNUnmatched: no delivery of the original to the recipient is
	// stored.
	DSNUnmatched DSNOutcome = "unmatched"
	// DSNRepeated: this bounce message was read before (the sending MTA
	// delivered it again); nothing changed.
	DSNRepeated DSNOutcome = "repeated"
)

// DSNMatch is the outcome for one recipient.
type DSNMatch struct {
	Address string
	Outcome DSNOutcome
	// Why explains DSNKnown and DSNUnmatched.
	Why string
}

// DSNResult is what RecordDSN did.
type DSNResult struct {
	// Outcome is DSNRecorded when any recipient was, else DSNKnown when
	// any was, else DSNUnmatched; DSNRepeated for a message read before.
	Outcome    DSNOutcome
	Recipients []DSNMatch
	// Events are the bounced events stored.
	Events []event.Event
	// Registered are the suppression-list entries the bounces added.
	Registered []Block
}

// dsnEventID derives a bounced event's id from the bounce message and the
// recipient, so that the same bounce gives the same id however often it
// is delivered.
func dsnEventID(dsnID, rcpt string) string {
	h := sha256.New()
	for _, s := range []string{"dsn", dsnID, strings.ToLower(rcpt)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "dsn-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// dsnLookup selects the tracked deliveries and bounces of a message to one
// recipient. The recipient is compared ignoring ASCII case: a report may
// spell it otherwise than Postfix logged it.
const dsnLookup = `SELECT ` + eventColumns + ` FROM events
	WHERE seq IN (SELECT seq FROM bounce_lookup WHERE message_id = ?)
	AND (rcpt_to = ? COLLATE NOCASE OR orig_to = ? COLLATE NOCASE)
	ORDER BY time, id`

// dsnRecipientDelivery finds the latest tracked delivery to a recipient,
// of any message: what makes a VERP bounce believable.
const dsnRecipientDelivery = `SELECT ` + eventColumns + ` FROM events
	WHERE seq IN (SELECT seq FROM bounce_lookup WHERE rcpt = ?) AND type = 'succeeded'
	ORDER BY time DESC, id DESC LIMIT 1`

// dsnAnyDelivery finds any tracked event of a message, for its
// message-level details (queue ID, return path, From, Subject, metadata).
const dsnAnyDelivery = `SELECT ` + eventColumns + ` FROM events
	WHERE seq IN (SELECT seq FROM bounce_lookup WHERE message_id = ?)
	ORDER BY time, id LIMIT 1`

// RecordDSN matches a bounce message to the message it returns and stores
// a bounced event for each recipient whose delivery it reports failed, in
// one durable transaction: the milter tells the sending MTA the bounce is
// accepted right after.
//
// A recipient is matched when a delivery of the original (found by the
// Message-ID the bounce returned) to it is stored; its record then carries
// the original's queue ID, Message-ID, return path, From, Subject and
// metadata. A recipient that already has a bounced event for that message
// is DSNKnown: Postfix sends its own notification of a failure that the
// maillog records too, and two MTAs may report the same failure. With
// VERP the envelope recipient names the recipient and is trusted as is:
// its record is stored even when the original is not, with what the bounce
// tells. Anything else is DSNUnmatched, which the caller logs.
func (s *Store) RecordDSN(ctx context.Context, d DSN) (DSNResult, error) {
	if d.ID == "" {
		return DSNResult{}, errors.New("record dsn: no id")
	}
	ns, _, ok := encodeTime(d.Received)
	if !ok {
		return DSNResult{}, fmt.Errorf("record dsn %s: time %v cannot be stored", d.ID, d.Received)
	}
	rules := s.rules()
	var res DSNResult
	var stored []Pending
	err := s.write(ctx, true, func(tx *sql.Tx) error {
		res, stored = DSNResult{}, stored[:0]
		// A DSN that could not be matched within a day will not be.
		if _, err := tx.ExecContext(ctx, `UPDATE dsns SET pending = NULL WHERE pending IS NOT NULL AND received_at < ?`,
			s.now().Add(-dsnPendingFor).UnixNano()); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `INSERT INTO dsns (id, received_at, message_id, outcome)
			VALUES (?, ?, ?, 'unmatched') ON CONFLICT (id) DO NOTHING`, d.ID, ns, d.MessageID)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			res.Outcome = DSNRepeated
			return nil
		}
		book := s.bookkeeper(tx, rules)
		if res, stored, err = s.applyDSN(ctx, tx, book, d); err != nil {
			return err
		}
		added, pend, err := book.flush(ctx)
		if err != nil {
			return err
		}
		res.Registered, stored = added, append(stored, pend...)
		res.Outcome = DSNUnmatched
		for _, m := range res.Recipients {
			if m.Outcome == DSNRecorded || (m.Outcome == DSNKnown && res.Outcome == DSNUnmatched) {
				res.Outcome = m.Outcome
			}
		}
		return settleDSN(ctx, tx, d, res, true)
	})
	if err != nil {
		return DSNResult{}, fmt.Errorf("record dsn %s: %w", d.ID, err)
	}
	s.recent().add(stored)
	if rules != nil && len(res.Registered) > 0 {
		rules.Registered(res.Registered)
	}
	return res, nil
}

// dsnPendingFor is how long a DSN waits for the delivery it is about to be
// stored: the log reader commits within a fraction of a second, but may
// be catching up after a restart.
const dsnPendingFor = 24 * time.Hour

// applyDSN matches each recipient of a DSN and stores the bounced events
// of those matched for the first time. It is run when the DSN arrives and
// again when a delivery of its original is stored while it waits: a
// recipient recorded before is then "known", and nothing repeats.
func (s *Store) applyDSN(ctx context.Context, tx *sql.Tx, book *bookkeeper, d DSN) (DSNResult, []Pending, error) {
	var res DSNResult
	var stored []Pending
	ns, off, ok := encodeTime(d.Received)
	if !ok {
		return res, nil, fmt.Errorf("time %v cannot be stored", d.Received)
	}
	ins := tx.StmtContext(ctx, s.stmts.insertEvent)
	now := s.now().UnixNano()
	for _, t := range dsnTargets(d) {
		m, e, err := matchDSN(ctx, tx, d, t)
		if err != nil {
			return res, nil, err
		}
		res.Recipients = append(res.Recipients, m)
		if e == nil {
			continue
		}
		r, err := ins.ExecContext(ctx, eventArgs(e, ns, off, now)...)
		if err != nil {
			return res, nil, fmt.Errorf("insert event %q: %w", e.ID, err)
		}
		before := len(stored)
		stored = noteStored(stored, r, e, ns)
		if len(stored) == before {
			continue // cannot happen: a stored one is found by matchDSN
		}
		res.Events = append(res.Events, *e)
		// Tracked whatever its return path, so that a second report of
		// the same bounce is known.
		if err := book.stored(ctx, e, stored[len(stored)-1].Seq, true); err != nil {
			return res, nil, err
		}
	}
	return res, stored, nil
}

// settleDSN records a DSN's outcome, and keeps it waiting while a
// recipient is unmatched and it names its original's Message-ID, by which
// a delivery stored later finds it. first says this is its arrival; a
// later match only ever moves the outcome to recorded.
func settleDSN(ctx context.Context, tx *sql.Tx, d DSN, res DSNResult, first bool) error {
	var pending any // NULL
	if d.MessageID != "" && slices.ContainsFunc(res.Recipients, func(m DSNMatch) bool { return m.Outcome == DSNUnmatched }) {
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		pending = string(b)
	}
	outcome := res.Outcome
	if !first && outcome != DSNRecorded {
		_, err := tx.ExecContext(ctx, `UPDATE dsns SET pending = ? WHERE id = ?`, pending, d.ID)
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE dsns SET outcome = ?, pending = ? WHERE id = ?`, string(outcome), pending, d.ID)
	return err
}

// rematchDSNs applies again the waiting DSNs about a message whose
// delivery was just stored.
func (k *bookkeeper) rematchDSNs(ctx context.Context, messageID string) ([]Pending, error) {
	rows, err := k.tx.QueryContext(ctx, `SELECT pending FROM dsns
		WHERE message_id = ? AND pending IS NOT NULL AND received_at >= ?`,
		messageID, k.s.now().Add(-dsnPendingFor).UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read waiting dsns of %s: %w", messageID, err)
	}
	var waiting []DSN
	for rows.Next() {
		var js string
		var d DSN
		if err := rows.Scan(&js); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal([]byte(js), &d); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read waiting dsn of %s: %w", messageID, err)
		}
		waiting = append(waiting, d)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	var stored []Pending
	for _, d := range waiting {
		res, pend, err := k.s.applyDSN(ctx, k.tx, k, d)
		if err != nil {
			return nil, fmt.Errorf("match waiting dsn %s: %w", d.ID, err)
		}
		if len(res.Events) > 0 {
			res.Outcome = DSNRecorded
		}
		if err := settleDSN(ctx, k.tx, d, res, false); err != nil {
			return nil, err
		}
		stored = append(stored, pend...)
	}
	return stored, nil
}

// dsnTarget is a recipient RecordDSN looks for.
type dsnTarget struct {
	DSNRecipient
	returnPath string // the VERP address; "" when not named by VERP
}

// dsnTargets decides which recipients a bounce is about. Without VERP they
// are the report's failed recipients. With VERP they are the recipients
// the envelope names, each with the report's result for it, or for a
// single-recipient report whatever address it gives (the remote may
// report the address the mail was forwarded to). A VERP recipient the
// report says nothing about is left out: the report did not say it failed.
func dsnTargets(d DSN) []dsnTarget {
	var out []dsnTarget
	seen := map[string]bool{}
	add := func(t dsnTarget) {
		k := strings.ToLower(t.Address)
		if t.Address == "" || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, t)
	}
	if len(d.VERP) == 0 {
		for _, r := range d.Recipients {
			add(dsnTarget{DSNRecipient: r})
		}
		return out
	}
	for _, v := range d.VERP {
		var found *DSNRecipient
		for i := range d.Recipients {
			if strings.EqualFold(d.Recipients[i].Address, v.Recipient) {
				found = &d.Recipients[i]
				break
			}
		}
		if found == nil && len(d.Recipients) == 1 {
			found = &d.Recipients[0]
		}
		if found == nil {
			continue
		}
		r := *found
		r.Address = v.Recipient
		add(dsnTarget{DSNRecipient: r, returnPath: v.ReturnPath})
	}
	return out
}

// matchDSN finds what is stored of one recipient's delivery of the
// original and returns the bounced event to store (nil for none).
func matchDSN(ctx context.Context, tx *sql.Tx, d DSN, t dsnTarget) (DSNMatch, *event.Event, error) {
	m := DSNMatch{Address: t.Address}
	var delivered *event.Event
	if d.MessageID != "" {
		evs, err := queryEvents(ctx, tx, dsnLookup, d.MessageID, t.Address, t.Address)
		if err != nil {
			return m, nil, err
		}
		for i := range evs {
			switch evs[i].Type {
			case event.Bounced:
				m.Outcome, m.Why = DSNKnown, "its bounce is already stored (event "+evs[i].ID+")"
				return m, nil, nil
			case event.Succeeded:
				delivered = &evs[i] // the last delivery, if there were several
			}
		}
		if delivered == nil && t.returnPath != "" {
			// The recipient's delivery is not stored, but VERP names the
			// recipient: the message's own details still apply.
			evs, err := queryEvents(ctx, tx, dsnAnyDelivery, d.MessageID)
			if err != nil {
				return m, nil, err
			}
			if len(evs) > 0 {
				delivered = &evs[0]
				delivered.To, delivered.OrigTo = t.Address, ""
			}
		}
	}
	if delivered == nil && t.returnPath != "" {
		// VERP names the recipient, but anyone can send mail to a bounce
		// address: it is believed only for a recipient Posthorn saw mail
		// of a bounce address delivered to. Without a known original, that
		// delivery's details are the best guess at the message.
		evs, err := queryEvents(ctx, tx, dsnRecipientDelivery, strings.ToLower(t.Address))
		if err != nil {
			return m, nil, err
		}
		if len(evs) == 0 {
			m.Outcome, m.Why = DSNUnmatched, "VERP names "+t.Address+", but no mail to it from a bounce address is stored"
			return m, nil, nil
		}
		if d.MessageID == "" {
			delivered = &evs[0]
		}
	}
	if delivered == nil && t.returnPath == "" {
		m.Outcome = DSNUnmatched
		if d.MessageID == "" {
			m.Why = "the bounce does not return the original's Message-ID"
		} else {
			m.Why = "no delivery of " + d.MessageID + " to " + t.Address + " is stored"
		}
		return m, nil, nil
	}
	e := &event.Event{
		ID:        dsnEventID(d.ID, t.Address),
		Type:      event.Bounced,
		Time:      d.Received,
		Host:      d.Host,
		MessageID: d.MessageID,
		To:        t.Address,
		DSN:       t.Status,
		Reason:    t.Diagnostic,
		Class:     t.Class,
	}
	if e.Class == event.ClassNone {
		e.Class = event.ClassOther
	}
	if delivered != nil {
		e.Host, e.QueueID, e.MessageID, e.ReturnPath = delivered.Host, delivered.QueueID, delivered.MessageID, delivered.ReturnPath
		e.To, e.OrigTo = delivered.To, delivered.OrigTo
		e.From, e.Subject, e.APIData = delivered.From, delivered.Subject, delivered.APIData
	} else {
		e.ReturnPath = t.returnPath
	}
	m.Outcome = DSNRecorded
	return m, e, nil
}
