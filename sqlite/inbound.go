package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// The Inbound Webhook's part of the store (migrations/0003_inbound.sql):
// the milter's Spool (Capture, LogInbound, Observe), the inbound settings,
// the inbound log, and the outbox the inbound dispatcher drains
// (inbound_outbox.go).

// chunkSize is the largest piece of an attachment stored in one row.
const chunkSize = 256 << 10

// ReasonNoFilter is the log reason of a captured message's recipient that
// no filter matched, while another recipient's did.
const ReasonNoFilter = "no filter matched"

// The capture's statements, prepared once (writeStmts): compiling them at
// every capture cost about 60 µs of a small capture's 0.35-0.4 ms on the
// development VM, time the milter waits for.
const (
	insertInboundSQL = `INSERT INTO inbound_messages (host, queue_id, received, client_addr,
			envelope_from, header_from, subject, message_id, size, headers, text_body, html_body,
			attachments, problems, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertInboundPostSQL = `INSERT INTO inbound_posts (message, filter, recipients, webhook_id,
			state, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)`
	insertInboundLogSQL = `INSERT INTO inbound_log (received, received_offset, status,
			header_from, rcpt, host, message_id, queue_id, filter, reason, post, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// Capture stores a captured message in one transaction committed with
// synchronous=FULL — the milter tells Postfix the message is accepted as
// soon as this returns nil, so it must survive a power loss: its content,
// its attachments (read from their Content, in chunks), one queued POST per
// filter that matched any recipient (with the recipients it matched), and
// the inbound log rows: queued per recipient and filter, denied for a
// recipient no filter matched.
func (s *Store) Capture(ctx context.Context, m *event.InboundMessage) error {
	if len(m.Recipients) == 0 {
		return errors.New("capture message: no recipients")
	}
	received, offset, ok := encodeTime(m.Received)
	if !ok {
		return fmt.Errorf("capture message: time %v cannot be stored", m.Received)
	}
	headers, err := json.Marshal(nonNil(m.Headers))
	if err != nil {
		return fmt.Errorf("capture message: %w", err)
	}
	problems, err := json.Marshal(nonNil(m.Problems))
	if err != nil {
		return fmt.Errorf("capture message: %w", err)
	}
	// Posts in the order their filters first matched.
	type post struct {
		filter string
		rcpts  []string
		id     int64
	}
	var posts []*post
	byFilter := map[string]*post{}
	for _, r := range m.Recipients {
		for _, f := range r.Filters {
			p := byFilter[f]
			if p == nil {
				p = &post{filter: f}
				byFilter[f] = p
				posts = append(posts, p)
			}
			p.rcpts = append(p.rcpts, r.Address)
		}
	}
	if len(posts) == 0 {
		return errors.New("capture message: no recipient matched a filter")
	}
	now := s.now().UnixNano()
	// Only when needed: zeroing 256 KiB for every message, and collecting
	// it, was half the cost of capturing a small one.
	var buf []byte
	if len(m.Attachments) > 0 {
		buf = make([]byte, chunkSize)
	}
	// go-sqlite3 runs a statement under a cancellable context in a
	// goroutine of its own (see Commit), which showed in the milter's
	// latency: the transaction runs under a context that is never
	// cancelled, and ctx is checked before COMMIT, so that a capture past
	// its deadline (the milter has answered 451 by then) is rolled back
	// whole. Waits for the writer are bounded without ctx: by the other
	// transactions of this process, and busy_timeout for other processes.
	run := context.WithoutCancel(ctx)
	err = s.write(run, true, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(run, s.stmts.insertInbound).ExecContext(run,
			m.Host, m.QueueID, received, m.ClientAddr, m.EnvelopeFrom, m.From, m.Subject, m.MessageID,
			m.Size, string(headers), m.Text, m.HTML, len(m.Attachments), string(problems), now)
		if err != nil {
			return fmt.Errorf("insert message: %w", err)
		}
		msg, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for i, a := range m.Attachments {
			if err := storeAttachment(run, tx, msg, i+1, a, buf); err != nil {
				return err
			}
		}
		insPost := tx.StmtContext(run, s.stmts.insertInboundPost)
		for _, p := range posts {
			res, err := insPost.ExecContext(run,
				msg, p.filter, strings.Join(p.rcpts, ","), newWebhookID(), received, received, now)
			if err != nil {
				return fmt.Errorf("insert post: %w", err)
			}
			if p.id, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		insLog := tx.StmtContext(run, s.stmts.insertInboundLog)
		for _, r := range m.Recipients {
			rows := r.Filters
			status, reason := event.InboundQueued, ""
			if len(rows) == 0 {
				rows, status, reason = []string{""}, event.InboundDenied, ReasonNoFilter
			}
			for _, f := range rows {
				var postID any
				if p := byFilter[f]; p != nil {
					postID = p.id
				}
				_, err := insLog.ExecContext(run,
					received, offset, string(status), m.From, r.Address, m.Host, m.MessageID, m.QueueID, f, reason, postID, now)
				if err != nil {
					return fmt.Errorf("insert log row: %w", err)
				}
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return fmt.Errorf("capture message: %w", err)
	}
	return nil
}

// storeAttachment writes one attachment's row and its bytes in chunks.
func storeAttachment(ctx context.Context, tx *sql.Tx, msg int64, idx int, a event.Attachment, buf []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO inbound_attachments (message, idx, filename, content_type, size)
		VALUES (?, ?, ?, ?, 0)`, msg, idx, a.Filename, a.ContentType)
	if err != nil {
		return fmt.Errorf("insert attachment %d: %w", idx, err)
	}
	var size int64
	if a.Content != nil {
		for seq := 1; ; seq++ {
			n, rerr := io.ReadFull(a.Content, buf)
			if n > 0 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO inbound_chunks (message, idx, seq, data) VALUES (?, ?, ?, ?)`,
					msg, idx, seq, buf[:n]); err != nil {
					return fmt.Errorf("insert attachment %d: %w", idx, err)
				}
				size += int64(n)
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read attachment %d: %w", idx, rerr)
			}
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE inbound_attachments SET size = ? WHERE message = ? AND idx = ?`, size, msg, idx)
	return err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// newWebhookID returns a webhook-id (Standard Webhooks): random, the same
// for every attempt of one POST, without the dot the signature scheme uses
// as a separator.
func newWebhookID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand documentation, Go 1.24+)
	return "msg_" + hex.EncodeToString(b)
}

// LogInbound writes rows to the inbound log: the milter's denied mail.
func (s *Store) LogInbound(ctx context.Context, rows []event.InboundLogEntry) error {
	if len(rows) == 0 {
		return nil
	}
	now := s.now().UnixNano()
	run := context.WithoutCancel(ctx) // as in Capture
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		for _, r := range rows {
			if !r.Status.Valid() {
				return fmt.Errorf("unknown status %q", r.Status)
			}
			ns, off, ok := encodeTime(r.Time)
			if !ok {
				return fmt.Errorf("time %v cannot be stored", r.Time)
			}
			_, err := tx.ExecContext(run, `INSERT INTO inbound_log (received, received_offset, status,
					header_from, rcpt, host, message_id, queue_id, filter, reason, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				ns, off, string(r.Status), r.From, r.To, r.Host, r.MessageID, r.QueueID, r.Filter, r.Reason, now)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write inbound log: %w", err)
	}
	return nil
}

// InboundLog returns the inbound log rows q selects, in the order they
// were written.
func (s *Store) InboundLog(ctx context.Context, q event.InboundQuery) ([]event.InboundLogEntry, error) {
	var out []event.InboundLogEntry
	err := s.EachInboundLog(ctx, q, func(e *event.InboundLogEntry) error {
		out = append(out, *e)
		return nil
	})
	return out, err
}

// EachInboundLog calls fn for every matching row without holding them all,
// for exports of any size.
func (s *Store) EachInboundLog(ctx context.Context, q event.InboundQuery, fn func(*event.InboundLogEntry) error) error {
	var where []string
	var args []any
	if !q.Since.IsZero() {
		where, args = append(where, "received >= ?"), append(args, boundNanos(q.Since))
	}
	if !q.Until.IsZero() {
		where, args = append(where, "received < ?"), append(args, boundNanos(q.Until))
	}
	if len(q.Statuses) > 0 {
		marks := make([]string, len(q.Statuses))
		for i, st := range q.Statuses {
			if !st.Valid() {
				return fmt.Errorf("read inbound log: unknown status %q", st)
			}
			marks[i] = "?"
			args = append(args, string(st))
		}
		where = append(where, "status IN ("+strings.Join(marks, ", ")+")")
	}
	if q.AfterID > 0 {
		where, args = append(where, "id > ?"), append(args, q.AfterID)
	}
	query := `SELECT id, received, received_offset, status, header_from, rcpt, host, message_id, queue_id,
		filter, reason FROM inbound_log`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	// Write order, which is received order but for a capture whose
	// transaction committed after a later denial: paging by id never
	// skips such a row.
	query += " ORDER BY id"
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read inbound log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e event.InboundLogEntry
		var ns, off int64
		var status string
		if err := rows.Scan(&e.ID, &ns, &off, &status, &e.From, &e.To, &e.Host, &e.MessageID, &e.QueueID,
			&e.Filter, &e.Reason); err != nil {
			return fmt.Errorf("read inbound log: %w", err)
		}
		e.Time, e.Status = decodeTime(ns, off), event.InboundStatus(status)
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read inbound log: %w", err)
	}
	return nil
}

// settingInbound is the settings row of the Inbound Webhook.
const settingInbound = "inbound"

// InboundSettings returns the saved inbound settings; ok is false (and the
// settings are the zero value, which accepts no mail) when none were saved.
func (s *Store) InboundSettings(ctx context.Context) (settings.Inbound, bool, error) {
	var value string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, settingInbound).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return settings.Inbound{}, false, nil
	}
	if err != nil {
		return settings.Inbound{}, false, fmt.Errorf("read inbound settings: %w", err)
	}
	var out settings.Inbound
	if err := json.Unmarshal([]byte(value), &out); err != nil {
		return settings.Inbound{}, false, fmt.Errorf("read inbound settings: stored value: %w", err)
	}
	return out, true, nil
}

// SaveInboundSettings normalizes (settings.Inbound.Normalized) and
// validates the settings and saves them; invalid settings are refused with
// the settings.InboundErrors of Validate. allowHTTP is the daemon config's
// allow_insecure_http.
func (s *Store) SaveInboundSettings(ctx context.Context, in settings.Inbound, allowHTTP bool) error {
	return s.SaveSettings(ctx, nil, &in, allowHTTP)
}

// Observe records what the outbound milter role saw of one message. A
// queue ID seen again (short IDs are reused) replaces the older row.
func (s *Store) Observe(ctx context.Context, o event.Observation) error {
	if o.QueueID == "" {
		return errors.New("record observation: no queue ID")
	}
	rcpts, err := json.Marshal(nonNil(o.Recipients))
	if err != nil {
		return fmt.Errorf("record observation: %w", err)
	}
	seen := o.Time
	if seen.IsZero() {
		seen = s.now()
	}
	run := context.WithoutCancel(ctx) // as in Capture
	err = s.write(ctx, false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(run, `INSERT INTO observations (host, queue_id, seen_at, envelope_from,
				recipients, header_from, subject, message_id, api_data)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (host, queue_id) DO UPDATE SET seen_at = excluded.seen_at,
				envelope_from = excluded.envelope_from, recipients = excluded.recipients,
				header_from = excluded.header_from, subject = excluded.subject,
				message_id = excluded.message_id, api_data = excluded.api_data`,
			o.Host, o.QueueID, boundNanos(seen), o.EnvelopeFrom, string(rcpts), o.From, o.Subject, o.MessageID, o.APIData)
		return err
	})
	if err != nil {
		return fmt.Errorf("record observation %s/%s: %w", o.Host, o.QueueID, err)
	}
	return nil
}

// Observation returns what the outbound role saw of the message host and
// queueID name; ok is false when it saw nothing (the Event Webhook then
// leaves from, subject and apiData empty).
func (s *Store) Observation(ctx context.Context, host, queueID string) (event.Observation, bool, error) {
	o := event.Observation{Host: host, QueueID: queueID}
	var seen int64
	var rcpts string
	// By queue ID, preferring the host: the maillog's host field is often
	// only the first label of the name the milter recorded.
	err := s.r.QueryRowContext(ctx, `SELECT seen_at, envelope_from, recipients, header_from, subject,
			message_id, api_data FROM observations WHERE queue_id = ?
			ORDER BY host = ? DESC, seen_at DESC LIMIT 1`, queueID, host).
		Scan(&seen, &o.EnvelopeFrom, &rcpts, &o.From, &o.Subject, &o.MessageID, &o.APIData)
	if errors.Is(err, sql.ErrNoRows) {
		return event.Observation{}, false, nil
	}
	if err != nil {
		return event.Observation{}, false, fmt.Errorf("read observation %s/%s: %w", host, queueID, err)
	}
	if err := json.Unmarshal([]byte(rcpts), &o.Recipients); err != nil {
		return event.Observation{}, false, fmt.Errorf("read observation %s/%s: recipients: %w", host, queueID, err)
	}
	o.Time = time.Unix(0, seen).UTC()
	return o, true, nil
}

// PruneObservations deletes observations seen before the given time, in
// batches of limit rows (0: all at once); it returns how many it deleted.
func (s *Store) PruneObservations(ctx context.Context, before time.Time, limit int) (int64, error) {
	query := `DELETE FROM observations WHERE seen_at < ?`
	if limit > 0 {
		query = fmt.Sprintf(`DELETE FROM observations WHERE rowid IN
			(SELECT rowid FROM observations WHERE seen_at < ? LIMIT %d)`, limit)
	}
	var n int64
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, boundNanos(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune observations: %w", err)
	}
	return n, nil
}
