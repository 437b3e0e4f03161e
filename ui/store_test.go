package ui

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
)

// StorePosts is the post log over a real store that the console's tests
// use: internal/console's production adapter, which this package cannot
// import (it imports ui), so console_test.go (package ui_test, in the same
// test binary) sets it.
var StorePosts func(*sqlite.Store) PostLog

func storePosts(s *sqlite.Store) PostLog {
	if StorePosts == nil {
		panic("ui tests: StorePosts not set (console_test.go sets it)")
	}
	return StorePosts(s)
}

// testEndpoint carries a token in its query, which the console must never
// show.
const testEndpoint = "https://hooks.example.com/posthorn?token=SECRET-TOKEN"

// seedPosts stores n posts of three delivery events each, a minute apart,
// the newest at testNow, cycling through the statuses queued, succeeded,
// deferred, failed; failed ones have two attempts. reason, when set,
// replaces the reason of post i.
func seedPosts(t testing.TB, s *sqlite.Store, n int, reasons map[int]string) {
	t.Helper()
	ctx := context.Background()
	last, err := s.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	var formed []sqlite.Formed
	for i := range n {
		at := testNow.Add(-time.Duration(n-1-i) * time.Minute).UTC()
		first := last + int64(3*i) + 1
		for k := range 3 {
			evs = append(evs, event.Event{ID: fmt.Sprintf("post%04d-%d", i, k), Type: event.Succeeded,
				Time: at.Add(time.Duration(k) * 500 * time.Millisecond), Host: "mx1.example.net",
				To: fmt.Sprintf("user%d@example.org", 3*i+k), QueueID: fmt.Sprintf("4bX%05dQ", i), DSN: "2.0.0", Reason: "250 2.0.0 OK"})
		}
		formed = append(formed, sqlite.Formed{ID: fmt.Sprintf("b%04d", i), Family: "deliveries", First: first, Last: first + 2,
			Events: 3, FirstTime: at, LastTime: at.Add(time.Second), Host: "mx1.example.net", Endpoint: testEndpoint})
	}
	if err := s.Commit(ctx, event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := s.Form(ctx, formed, map[string]int64{"deliveries": last + int64(3*n)}, testNow); err != nil {
		t.Fatal(err)
	}
	for i, f := range formed {
		at := f.FirstTime
		record := func(a sqlite.Attempt) {
			t.Helper()
			a.BatchID, a.Host, a.Endpoint = f.ID, "mx1.example.net", testEndpoint
			if r, ok := reasons[i]; ok {
				a.Reason = r
			}
			if err := s.Record(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		switch postStatuses[i%4] {
		case PostSucceeded:
			record(sqlite.Attempt{Attempt: 1, At: at.Add(time.Minute), State: PostSucceeded, Status: 200, Response: []byte("ok")})
		case PostDeferred:
			record(sqlite.Attempt{Attempt: 1, At: at.Add(time.Minute), State: PostDeferred, Status: 503, Reason: "HTTP 503",
				Response: []byte("busy, try later"), Next: at.Add(10 * time.Minute)})
		case PostFailed:
			record(sqlite.Attempt{Attempt: 1, At: at.Add(time.Minute), State: PostDeferred, Status: 503, Reason: "HTTP 503",
				Response: []byte("busy, try later"), Next: at.Add(2 * time.Minute)})
			record(sqlite.Attempt{Attempt: 2, At: at.Add(2 * time.Minute), State: PostFailed, Status: 400, Reason: "HTTP 400: bad request",
				Response: []byte(`{"error":"<script>x</script>"}`)})
		}
	}
}

// withPosts turns on the post log over the env's store.
func withPosts(o *Options) { o.Posts = storePosts(o.Store.(*sqlite.Store)) }

// formBatch stores a batch of family over seqs [first, last] (as the
// dispatcher forms them) and records its attempts.
func formBatch(t testing.TB, s *sqlite.Store, id, family string, first, last int64, attempts ...sqlite.Attempt) {
	t.Helper()
	ctx := context.Background()
	err := s.Form(ctx, []sqlite.Formed{{ID: id, Family: family, First: first, Last: last, Events: int(last - first + 1),
		FirstTime: testNow, LastTime: testNow, Host: "mx1.example.net"}}, map[string]int64{family: last}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range attempts {
		a.BatchID = id
		if err := s.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
}
