package sqlite

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

// openTest opens a store in a fresh file under t.TempDir and closes it when
// the test ends.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "posthorn.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

var (
	testZone  = time.FixedZone("CEST", 2*3600)
	testStart = time.Date(2025, 6, 1, 9, 30, 0, 0, testZone)
	testTypes = []event.Type{event.Queued, event.Succeeded, event.Succeeded, event.Deferred, event.Failed, event.Bounced}
)

// genEvents makes n events numbered from first, shaped like what the log
// reader produces from a busy relay: hex ids, long queue IDs, a relay with
// an address, and a remote server's reply as the reason.
func genEvents(first, n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		k := first + i
		sum := sha256.Sum256([]byte(fmt.Sprint("event ", k)))
		qid := fmt.Sprintf("4bX%07dZq%03x", k/4, k%4096)
		e := event.Event{
			ID:         hex.EncodeToString(sum[:16]),
			Type:       testTypes[k%len(testTypes)],
			Time:       testStart.Add(time.Duration(k) * 3 * time.Millisecond),
			Host:       "mx1.example.net",
			QueueID:    qid,
			MessageID:  fmt.Sprintf("<20250601093000.%d@app.example.com>", k/4),
			ReturnPath: "bounces+12345@app.example.com",
			To:         fmt.Sprintf("user%d@example.org", k),
			Relay:      "mx.example.org[192.0.2.25]:25",
			DSN:        "2.0.0",
			Reason:     "250 2.0.0 OK 1748770200 d2e1a72fcca58-7482b3a1c5asi123456b3a.200 - gsmtp",
			Delay:      "0.84",
			SourceIP:   "198.51.100.7",
			SenderIP:   "192.0.2.25",
			Attempt:    1,
		}
		switch e.Type {
		case event.Deferred:
			e.DSN = "4.7.0"
			e.Reason = "host mx.example.org[192.0.2.25] said: 421 4.7.0 Try again later (in reply to end of DATA command)"
			e.Attempt = 2
		case event.Failed, event.Bounced:
			e.DSN = "5.1.1"
			e.Reason = "host mx.example.org[192.0.2.25] said: 550 5.1.1 <user@example.org>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)"
			if e.Type == event.Bounced {
				e.Class = event.ClassUnknownUser
			}
		case event.Queued:
			e.Relay, e.DSN, e.Reason, e.Delay, e.SenderIP, e.Attempt = "", "", "", "", "", 0
		}
		out[i] = e
	}
	return out
}

// genMessages makes the open-message rows that go with events [first, first+n).
func genMessages(first, n int) []event.Message {
	var out []event.Message
	for k := first; k < first+n; k += 4 {
		out = append(out, event.Message{
			MessageKey: event.MessageKey{Host: "mx1.example.net", QueueID: fmt.Sprintf("4bX%07dZq%03x", k/4, k%4096)},
			MessageID:  fmt.Sprintf("<20250601093000.%d@app.example.com>", k/4),
			ReturnPath: "bounces+12345@app.example.com",
			ClientIP:   "198.51.100.7",
			FirstSeen:  testStart.Add(time.Duration(k) * 3 * time.Millisecond),
			LastSeen:   testStart.Add(time.Duration(k+3) * 3 * time.Millisecond),
			State:      []byte(`{"rcpt":["a@example.org","b@example.org"],"attempts":1}`),
		})
	}
	return out
}

// queryPlan returns SQLite's EXPLAIN QUERY PLAN details for a statement,
// joined by "; ".
func queryPlan(t testing.TB, db *sql.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var details []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		details = append(details, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(details, "; ")
}
