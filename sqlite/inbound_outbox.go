package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
)

// The inbound outbox (dispatcher.InboundOutbox): one row per POST in
// inbound_posts. These methods take and return the plain types below,
// whose identical aliases the dispatcher declares, so that neither package
// imports the other.

// InboundPost is a pending POST: one message to one filter.
type InboundPost = struct {
	ID         int64
	Message    int64
	Filter     string
	Recipients []string // envelope-to: the recipients that matched the filter
	WebhookID  string
	Attempts   int
	Created    time.Time // capture time; the retry period counts from it
	LastReason string
}

// InboundAttempt is the outcome of one attempt at a POST, or the end of a
// POST without an attempt (its retry period ran out, its filter is gone).
type InboundAttempt = struct {
	Post      int64
	At        time.Time
	Attempted bool   // a request was made: count it
	State     string // queued, deferred, succeeded or failed
	Status    int    // HTTP status, 0 without an answer
	Reason    string // "" on success
	Response  []byte // the first bytes of the answer, for the detail view
	Next      time.Time
}

// DueInbound returns up to limit POSTs in state queued or deferred that are
// due at now, in due order, leaving out the filters named in skip (those
// whose endpoint is backing off).
func (s *Store) DueInbound(ctx context.Context, now time.Time, skip []string, limit int) ([]InboundPost, error) {
	query := `SELECT id, message, filter, recipients, webhook_id, attempts, created_at, last_reason
		FROM inbound_posts WHERE state IN ('queued', 'deferred') AND next_attempt_at <= ?`
	args := []any{boundNanos(now)}
	if len(skip) > 0 {
		query += " AND filter NOT IN (?" + strings.Repeat(", ?", len(skip)-1) + ")"
		for _, f := range skip {
			args = append(args, f)
		}
	}
	query += " ORDER BY next_attempt_at, id LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read due inbound posts: %w", err)
	}
	defer rows.Close()
	var out []InboundPost
	for rows.Next() {
		var p InboundPost
		var rcpts string
		var created int64
		if err := rows.Scan(&p.ID, &p.Message, &p.Filter, &rcpts, &p.WebhookID, &p.Attempts, &created, &p.LastReason); err != nil {
			return nil, fmt.Errorf("read due inbound posts: %w", err)
		}
		p.Recipients = strings.Split(rcpts, ",")
		p.Created = time.Unix(0, created).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read due inbound posts: %w", err)
	}
	return out, nil
}

// ExpireInbound fails, in one transaction and without an attempt, every
// queued or deferred POST of filter captured before createdBefore: the
// posts of a filter whose retry period ran out while its endpoint failed,
// or of a deleted filter. Each gets the reason prefix + ": " + its own last
// reason (or fallback when it was never tried); their log rows follow, and
// messages left without a pending POST lose their content. It returns how
// many POSTs it failed.
func (s *Store) ExpireInbound(ctx context.Context, filter string, createdBefore, at time.Time, prefix, fallback string) (int, error) {
	now := s.now().UnixNano()
	run := context.WithoutCancel(ctx) // as in Capture
	var n int
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(run, `UPDATE inbound_posts SET state = 'failed',
				last_reason = ? || CASE WHEN last_reason <> '' THEN ': ' || last_reason WHEN ? <> '' THEN ': ' || ? ELSE '' END,
				next_attempt_at = ?, updated_at = ?
			WHERE filter = ? AND state IN ('queued', 'deferred') AND created_at < ?
			RETURNING id, message, last_reason`,
			prefix, fallback, fallback, boundNanos(at), now, filter, boundNanos(createdBefore))
		if err != nil {
			return err
		}
		type ended struct {
			post, msg int64
			reason    string
		}
		var all []ended
		for rows.Next() {
			var e ended
			if err := rows.Scan(&e.post, &e.msg, &e.reason); err != nil {
				rows.Close()
				return err
			}
			all = append(all, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		msgs := map[int64]bool{}
		for _, e := range all {
			if _, err := tx.ExecContext(run, `UPDATE inbound_log SET status = 'failed', reason = ?, updated_at = ? WHERE post = ?`,
				e.reason, now, e.post); err != nil {
				return err
			}
			msgs[e.msg] = true
		}
		for m := range msgs {
			if _, err := tx.ExecContext(run, `DELETE FROM inbound_messages WHERE id = ? AND NOT EXISTS
				(SELECT 1 FROM inbound_posts WHERE message = ? AND state IN ('queued', 'deferred'))`, m, m); err != nil {
				return err
			}
		}
		n = len(all)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire inbound posts of filter %q: %w", filter, err)
	}
	return n, nil
}

// NextInboundDue returns the earliest next attempt of a pending POST of a
// filter not named in skip; ok is false when there is none.
func (s *Store) NextInboundDue(ctx context.Context, skip []string) (time.Time, bool, error) {
	query := `SELECT min(next_attempt_at) FROM inbound_posts WHERE state IN ('queued', 'deferred')`
	var args []any
	if len(skip) > 0 {
		query += " AND filter NOT IN (?" + strings.Repeat(", ?", len(skip)-1) + ")"
		for _, f := range skip {
			args = append(args, f)
		}
	}
	var next sql.NullInt64
	if err := s.r.QueryRowContext(ctx, query, args...).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("read next inbound post: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, next.Int64).UTC(), true, nil
}

// PendingInbound returns how many POSTs are queued or deferred.
func (s *Store) PendingInbound(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM inbound_posts WHERE state IN ('queued', 'deferred')`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count inbound posts: %w", err)
	}
	return n, nil
}

// InboundMessage returns a captured message for posting. Its attachments'
// Content read the stored chunks one at a time as they are read.
// Recipients are not filled in: each POST carries its own.
func (s *Store) InboundMessage(ctx context.Context, id int64) (*event.InboundMessage, error) {
	m := &event.InboundMessage{}
	var received int64
	var headers, problems string
	var natt int
	err := s.r.QueryRowContext(ctx, `SELECT host, queue_id, received, client_addr, envelope_from, header_from,
			subject, message_id, size, headers, text_body, html_body, attachments, problems
		FROM inbound_messages WHERE id = ?`, id).
		Scan(&m.Host, &m.QueueID, &received, &m.ClientAddr, &m.EnvelopeFrom, &m.From, &m.Subject, &m.MessageID,
			&m.Size, &headers, &m.Text, &m.HTML, &natt, &problems)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read inbound message %d: no such message", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read inbound message %d: %w", id, err)
	}
	m.Received = time.Unix(0, received).UTC()
	if err := json.Unmarshal([]byte(headers), &m.Headers); err != nil {
		return nil, fmt.Errorf("read inbound message %d: headers: %w", id, err)
	}
	if err := json.Unmarshal([]byte(problems), &m.Problems); err != nil {
		return nil, fmt.Errorf("read inbound message %d: problems: %w", id, err)
	}
	if natt == 0 {
		return m, nil // most mail: no second query
	}
	rows, err := s.r.QueryContext(ctx, `SELECT idx, filename, content_type, size FROM inbound_attachments
		WHERE message = ? ORDER BY idx`, id)
	if err != nil {
		return nil, fmt.Errorf("read inbound message %d: attachments: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a event.Attachment
		var idx int
		if err := rows.Scan(&idx, &a.Filename, &a.ContentType, &a.Size); err != nil {
			return nil, fmt.Errorf("read inbound message %d: attachments: %w", id, err)
		}
		a.Content = &chunkReader{ctx: ctx, db: s.r, message: id, idx: idx}
		m.Attachments = append(m.Attachments, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read inbound message %d: attachments: %w", id, err)
	}
	return m, nil
}

// chunkReader reads one attachment chunk by chunk.
type chunkReader struct {
	ctx     context.Context
	db      *sql.DB
	message int64
	idx     int
	seq     int
	buf     []byte
	done    bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.done {
			return 0, io.EOF
		}
		c.seq++
		err := c.db.QueryRowContext(c.ctx, `SELECT data FROM inbound_chunks WHERE message = ? AND idx = ? AND seq = ?`,
			c.message, c.idx, c.seq).Scan(&c.buf)
		if errors.Is(err, sql.ErrNoRows) {
			c.done = true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read attachment %d of message %d: %w", c.idx, c.message, err)
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// Inbound post states, as the dispatcher writes them.
var inboundStates = map[string]bool{
	string(event.InboundQueued): true, string(event.InboundDeferred): true,
	string(event.InboundSucceeded): true, string(event.InboundFailed): true,
}

// RecordInbound's statements, prepared once (writeStmts): a POST's
// outcome is recorded for every message posted.
const (
	inboundPostMessageSQL = `SELECT p.message, EXISTS (SELECT 1 FROM inbound_posts o
			WHERE o.message = p.message AND o.id <> p.id AND o.state IN ('queued', 'deferred'))
		FROM inbound_posts p WHERE p.id = ?`
	updateInboundPostSQL = `UPDATE inbound_posts SET state = ?, attempts = attempts + ?,
			next_attempt_at = ?, last_status = ?, last_reason = ?, last_response = ?, updated_at = ?
		WHERE id = ?`
	updateInboundLogSQL = `UPDATE inbound_log SET status = ?, reason = ?, updated_at = ?,
			post = CASE WHEN ? THEN NULL ELSE post END
		WHERE post = ?`
	dropInboundSQL = `DELETE FROM inbound_messages WHERE id = ?`
)

// RecordInbound stores the outcomes of attempts at POSTs in one
// transaction: each POST's state, attempts, next attempt, last status and
// reason, and the state and reason of its inbound log rows. When a POST
// ends and no other POST of its message is pending, the message goes
// instead (WIRE.md §5: once posted or given up, the message data is
// dropped), with its POSTs and attachments; the log rows stay, unlinked.
// The POST's own row is then not updated first: it is about to go.
func (s *Store) RecordInbound(ctx context.Context, attempts ...InboundAttempt) error {
	for _, a := range attempts {
		if !inboundStates[a.State] {
			return fmt.Errorf("record inbound attempt at post %d: unknown state %q", a.Post, a.State)
		}
	}
	now := s.now().UnixNano()
	run := context.WithoutCancel(ctx) // as in Capture
	return s.write(ctx, false, func(tx *sql.Tx) error {
		for _, a := range attempts {
			if err := s.recordInbound(run, tx, a, now); err != nil {
				return fmt.Errorf("record inbound attempt at post %d: %w", a.Post, err)
			}
		}
		return nil
	})
}

func (s *Store) recordInbound(ctx context.Context, tx *sql.Tx, a InboundAttempt, now int64) error {
	at := boundNanos(a.At)
	next := at
	if !a.Next.IsZero() {
		next = boundNanos(a.Next)
	}
	attempted := 0
	if a.Attempted {
		attempted = 1
	}
	resp := a.Response
	if resp == nil {
		resp = []byte{}
	}
	var msg int64
	var others bool
	err := tx.StmtContext(ctx, s.stmts.inboundPostMessage).QueryRowContext(ctx, a.Post).Scan(&msg, &others)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("no inbound post %d", a.Post)
	}
	if err != nil {
		return err
	}
	ends := a.State == string(event.InboundSucceeded) || a.State == string(event.InboundFailed)
	drop := ends && !others
	if !drop {
		if _, err := tx.StmtContext(ctx, s.stmts.updateInboundPost).ExecContext(ctx,
			a.State, attempted, next, a.Status, a.Reason, resp, now, a.Post); err != nil {
			return err
		}
	}
	if _, err := tx.StmtContext(ctx, s.stmts.updateInboundLog).ExecContext(ctx,
		a.State, a.Reason, now, drop, a.Post); err != nil {
		return err
	}
	if drop {
		_, err := tx.StmtContext(ctx, s.stmts.dropInbound).ExecContext(ctx, msg)
		return err
	}
	return nil
}
