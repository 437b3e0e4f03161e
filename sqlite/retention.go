package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"
)

// Retention (ARCHITECTURE.md, "Storage principles": old log rows are pruned
// in small batches). Prune deletes the finished rows of the logs older than
// a cutoff and nothing that is still to be done:
//
//   - Event Webhook log rows (webhook_batches) that succeeded or failed,
//     are not leased now, and whose last event is older than the cutoff,
//     with their attempts;
//   - delivery events, by their time, but none that is not yet in a batch
//     (seq above a family's webhook_progress) and none at or after the first
//     event of a batch that is still kept while its first event is older
//     than the cutoff (a pending one, one with events on both sides of the
//     cutoff, or one this run has not reached): a batch kept keeps all its
//     events, for its detail, a replay and its first attempt. So a batch
//     still pending, a long-deferred one, holds back the pruning of every
//     later event until it ends, at the latest when its retry period does.
//     Their bounce_lookup rows go with them;
//   - inbound log rows that succeeded, failed or were denied (a queued or
//     deferred row belongs to a POST still pending), by the time received;
//   - bounce messages read (dsns), by the time received: long past the day a
//     DSN waits for its delivery;
//   - bounce counts whose last bounce is older than the cutoff;
//   - suppression-list history: entries removed (deleted, lifted by their
//     watch period, or cancelled) before the cutoff. A live entry, scheduled
//     or in effect, is never pruned.
//
// Open messages (message_ttl), observations (observation_ttl,
// PruneObservations), sessions and failed logins have lifetimes of their
// own.
//
// Every transaction reads at most batch log rows and deletes those of them
// it may (with a batch's attempts and an event's bounce_lookup row), and
// the writer connection goes back to the pool between two: database/sql
// hands it to a writer that waits (the log reader's commit, a milter
// capture) before this loop gets it again, so none waits for more than one
// batch. Tables kept in the order of their time index are walked along it
// from the oldest row, and the walk resumes after the last row it read, so
// rows it must keep are read once per run, not once per batch. The three
// smaller tables without a time index (dsns, bounce_counts, blocks) are
// read on a reader connection, which holds no lock, and only the rows
// found are deleted on the writer, each checked again there. (An index on
// bounce_counts' last_at would cost the log reader a write for every
// bounce it counts; the other two stay small next to the logs.)
//
// A table's newest row is never deleted: SQLite gives a new row the largest
// rowid plus one, so deleting the newest rows would hand their numbers out
// again (https://www.sqlite.org/autoinc.html). An event's seq is its
// position in the Event Webhook's progress and must never go back; an
// inbound log row's and a list entry's id name them in the console.

// Pruned counts the rows a Prune deleted, by table.
type Pruned map[string]int64

// Total is the number of rows deleted.
func (p Pruned) Total() int64 {
	var n int64
	for _, k := range p {
		n += k
	}
	return n
}

// PruneTables lists the tables Prune deletes from, in its order.
var PruneTables = []string{"webhook_batches", "webhook_attempts", "events", "bounce_lookup",
	"inbound_log", "dsns", "bounce_counts", "blocks"}

// DefaultPruneBatch is Prune's batch size when none is given. On the
// 2-core development machine a transaction deleting 1,000 events (with
// their two index entries each) took 7 ms, 200,000 events 1.4 s in all,
// and from a million events 10 ms and 10 s (BenchmarkPruneEvents).
const DefaultPruneBatch = 1000

// Prune deletes the finished log rows older than before, at most batch
// rows per transaction (0: DefaultPruneBatch), oldest first, and returns
// how many rows of each table it deleted. It stops at ctx's end; the counts
// then hold what was deleted up to there.
func (s *Store) Prune(ctx context.Context, before time.Time, batch int) (Pruned, error) {
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	cut := boundNanos(before)
	out := Pruned{}
	steps := []struct {
		name string
		run  func(context.Context, int64, int, Pruned) error
	}{
		// Batches first: an event is kept while an old batch that holds
		// it is.
		{"webhook log", s.pruneBatches},
		{"events", s.pruneEvents},
		{"inbound log", s.pruneInboundLog},
		{"bounce messages", s.pruneDSNs},
		{"bounce counts", s.pruneBounceCounts},
		{"suppression-list history", s.pruneBlocks},
	}
	for _, st := range steps {
		if err := st.run(ctx, cut, batch, out); err != nil {
			return out, fmt.Errorf("prune %s: %w", st.name, err)
		}
	}
	return out, nil
}

// walk runs step in write transactions until one reads fewer rows than
// batch; what a step counts in got is added to out once it committed.
// A step reads at most batch rows of the time index, whether it may delete
// them or not, so that a long stretch of rows it must keep (the events
// behind a batch deferred for days) is read over many short transactions,
// not in one that holds the writer.
func (s *Store) walk(ctx context.Context, out Pruned, batch int, step func(tx *sql.Tx, got Pruned) (found int, err error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var found int
		got := Pruned{}
		err := s.write(ctx, false, func(tx *sql.Tx) (err error) {
			clear(got)
			found, err = step(tx, got)
			return err
		})
		if err != nil {
			return err
		}
		for k, n := range got {
			out[k] += n
		}
		if found < batch {
			return nil
		}
	}
}

// pruneBatches deletes finished Event Webhook log rows whose last event
// is before cut, with their attempts, along the first_time index. A batch
// whose events straddle cut is kept, so that its newer events, which the
// events step keeps, still show the post that carried them and can be
// replayed. A lease on a finished batch counts only while it runs: FailOldest
// and Expire fail a batch whose lease ran out (its dispatcher gone), and one
// failed by an older binary may still hold the expired lease.
func (s *Store) pruneBatches(ctx context.Context, cut int64, batch int, out Pruned) error {
	lastT, lastRow := int64(math.MinInt64), int64(math.MinInt64)
	return s.walk(ctx, out, batch, func(tx *sql.Tx, out Pruned) (int, error) {
		rows, err := tx.QueryContext(ctx, `SELECT rowid, first_time, last_time, batch_id, state, coalesce(lease_until > ?, 0)
			FROM webhook_batches WHERE first_time < ? AND (first_time, rowid) > (?, ?)
			ORDER BY first_time, rowid LIMIT ?`, s.now().UnixNano(), cut, lastT, lastRow, batch)
		if err != nil {
			return 0, err
		}
		var ids [][]any
		seen := 0
		for rows.Next() {
			var id, state string
			var last int64
			var leased bool
			if err := rows.Scan(&lastRow, &lastT, &last, &id, &state, &leased); err != nil {
				rows.Close()
				return 0, err
			}
			seen++
			if (state == StateSucceeded || state == StateFailed) && !leased && last < cut {
				ids = append(ids, []any{id})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		// The attempts explicitly rather than by the foreign key's
		// cascade, to count them.
		n, err := execEach(ctx, tx, `DELETE FROM webhook_attempts WHERE batch_id = ?`, ids)
		out["webhook_attempts"] += n
		if err != nil {
			return 0, err
		}
		n, err = execEach(ctx, tx, `DELETE FROM webhook_batches WHERE batch_id = ?`, ids)
		out["webhook_batches"] += n
		return seen, err
	})
}

// pruneEvents deletes events before cut along the (time, id) index, up to
// the bound that keeps what the Event Webhook still needs.
func (s *Store) pruneEvents(ctx context.Context, cut int64, batch int, out Pruned) error {
	lastT, lastID := int64(math.MinInt64), ""
	return s.walk(ctx, out, batch, func(tx *sql.Tx, out Pruned) (int, error) {
		// Read in the transaction: forming batches and a replay move
		// these between two transactions of this walk.
		var upTo int64
		err := tx.QueryRowContext(ctx, `SELECT min(
				coalesce((SELECT min(formed_seq) FROM webhook_progress), 0),
				coalesce((SELECT max(seq) FROM events), 0) - 1,
				coalesce((SELECT min(first_seq) FROM webhook_batches WHERE first_time < ?), 9223372036854775807) - 1)`,
			cut).Scan(&upTo)
		if err != nil {
			return 0, err
		}
		rows, err := tx.QueryContext(ctx, `SELECT seq, time, id, type, message_id FROM events
			WHERE time < ? AND (time, id) > (?, ?) ORDER BY time, id LIMIT ?`, cut, lastT, lastID, batch)
		if err != nil {
			return 0, err
		}
		var events, lookups [][]any
		seen := 0
		for rows.Next() {
			var seq int64
			var typ, msgID string
			if err := rows.Scan(&seq, &lastT, &lastID, &typ, &msgID); err != nil {
				rows.Close()
				return 0, err
			}
			seen++
			if seq > upTo {
				continue
			}
			events = append(events, []any{seq})
			// Only deliveries and bounces are ever in bounce_lookup
			// (bookkeeper.stored).
			if typ == "succeeded" || typ == "bounced" {
				lookups = append(lookups, []any{msgID, seq})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		n, err := execEach(ctx, tx, `DELETE FROM events WHERE seq = ?`, events)
		out["events"] += n
		if err != nil {
			return 0, err
		}
		n, err = execEach(ctx, tx, `DELETE FROM bounce_lookup WHERE message_id = ? AND seq = ?`, lookups)
		out["bounce_lookup"] += n
		return seen, err
	})
}

// pruneInboundLog deletes finished inbound log rows received before cut
// along the (received, id) index.
func (s *Store) pruneInboundLog(ctx context.Context, cut int64, batch int, out Pruned) error {
	lastT, lastID := int64(math.MinInt64), int64(math.MinInt64)
	return s.walk(ctx, out, batch, func(tx *sql.Tx, out Pruned) (int, error) {
		var maxID int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM inbound_log`).Scan(&maxID); err != nil {
			return 0, err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, received, status FROM inbound_log
			WHERE received < ? AND (received, id) > (?, ?) ORDER BY received, id LIMIT ?`, cut, lastT, lastID, batch)
		if err != nil {
			return 0, err
		}
		var ids [][]any
		seen := 0
		for rows.Next() {
			var status string
			if err := rows.Scan(&lastID, &lastT, &status); err != nil {
				rows.Close()
				return 0, err
			}
			seen++
			// Queued and deferred rows follow a POST still pending.
			if lastID < maxID && (status == "succeeded" || status == "failed" || status == "denied") {
				ids = append(ids, []any{lastID})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		n, err := execEach(ctx, tx, `DELETE FROM inbound_log WHERE id = ?`, ids)
		out["inbound_log"] += n
		return seen, err
	})
}

// pruneDSNs deletes the bounce messages received before cut.
func (s *Store) pruneDSNs(ctx context.Context, cut int64, batch int, out Pruned) error {
	var after any = ""
	return s.byReader(ctx, batch, out, "dsns",
		func() (*sql.Rows, error) {
			return s.r.QueryContext(ctx, `SELECT id FROM dsns WHERE id > ? AND received_at < ? ORDER BY id LIMIT ?`,
				after, cut, batch)
		},
		func(rows *sql.Rows) ([]any, error) {
			var id string
			err := rows.Scan(&id)
			after = id
			return []any{id, cut}, err
		},
		`DELETE FROM dsns WHERE id = ? AND received_at < ?`)
}

// pruneBounceCounts deletes the counts of addresses that have not bounced
// (in that class) since cut.
func (s *Store) pruneBounceCounts(ctx context.Context, cut int64, batch int, out Pruned) error {
	var addr any = ""
	var class any = int64(math.MinInt64)
	return s.byReader(ctx, batch, out, "bounce_counts",
		func() (*sql.Rows, error) {
			return s.r.QueryContext(ctx, `SELECT address, class FROM bounce_counts
				WHERE (address, class) > (?, ?) AND last_at < ? ORDER BY address, class LIMIT ?`,
				addr, class, cut, batch)
		},
		func(rows *sql.Rows) ([]any, error) {
			var a string
			var c int64
			err := rows.Scan(&a, &c)
			addr, class = a, c
			return []any{a, c, cut}, err
		},
		`DELETE FROM bounce_counts WHERE address = ? AND class = ? AND last_at < ?`)
}

// pruneBlocks deletes suppression-list entries removed before cut.
func (s *Store) pruneBlocks(ctx context.Context, cut int64, batch int, out Pruned) error {
	var after any = int64(math.MinInt64)
	return s.byReader(ctx, batch, out, "blocks",
		func() (*sql.Rows, error) {
			return s.r.QueryContext(ctx, `SELECT id FROM blocks WHERE id > ? AND removed_at < ? ORDER BY id LIMIT ?`,
				after, cut, batch)
		},
		func(rows *sql.Rows) ([]any, error) {
			var id int64
			err := rows.Scan(&id)
			after = id
			return []any{id, cut}, err
		},
		`DELETE FROM blocks WHERE id = ? AND removed_at IS NOT NULL AND removed_at < ?
			AND id < (SELECT max(id) FROM blocks)`)
}

// byReader pages through the keys query finds on a reader connection
// (scan reads one row's key, and returns the delete's arguments) and
// deletes each page in one write transaction with del, which checks the
// row's age again: it may have changed since the read.
func (s *Store) byReader(ctx context.Context, batch int, out Pruned, table string,
	query func() (*sql.Rows, error), scan func(*sql.Rows) ([]any, error), del string) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := query()
		if err != nil {
			return err
		}
		var page [][]any
		for rows.Next() {
			args, err := scan(rows)
			if err != nil {
				rows.Close()
				return err
			}
			page = append(page, args)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		var deleted int64
		err = s.write(ctx, false, func(tx *sql.Tx) (err error) {
			deleted, err = execEach(ctx, tx, del, page)
			return err
		})
		if err != nil {
			return err
		}
		out[table] += deleted
		if len(page) < batch {
			return nil
		}
	}
}

// execEach runs query once for each of args and counts the rows it
// changed; one statement prepared for all of them.
func execEach(ctx context.Context, tx *sql.Tx, query string, args [][]any) (int64, error) {
	if len(args) == 0 {
		return 0, nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var total int64
	for _, a := range args {
		n, err := affected(st.ExecContext(ctx, a...))
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
