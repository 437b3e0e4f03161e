package sqlite

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/event"
)

func sessionID(c byte) string { return strings.Repeat(string(c), 64) }

func TestConsoleUsers(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})

	if err := s.AddUser(ctx, "alice", "$h1"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, "alice", "$h2"); !errors.Is(err, ErrUserExists) {
		t.Errorf("adding alice again: got %v, want ErrUserExists", err)
	}
	if err := s.AddUser(ctx, "bob", "$hb"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, "", "$h"); err == nil {
		t.Error("a user without a name was added")
	}
	users, err := s.Users(ctx)
	if err != nil || !slices.Equal(users, []string{"alice", "bob"}) {
		t.Errorf("Users = %v, %v", users, err)
	}
	if h, ok, err := s.UserPasswordHash(ctx, "alice"); h != "$h1" || !ok || err != nil {
		t.Errorf("hash of alice = %q %v %v", h, ok, err)
	}
	if _, ok, err := s.UserPasswordHash(ctx, "carol"); ok || err != nil {
		t.Errorf("hash of carol: ok %v err %v", ok, err)
	}

	now := time.Unix(1_750_000_000, 0)
	for _, sess := range []struct {
		id   string
		user string
	}{{sessionID('a'), "alice"}, {sessionID('b'), "alice"}, {sessionID('c'), "bob"}} {
		if err := s.CreateSession(ctx, sess.id, sess.user, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, sessionID('d'), "carol", now); err == nil {
		t.Error("a session of a user that does not exist was created")
	}

	// A new password ends the user's sessions, and only the user's.
	if err := s.SetUserPassword(ctx, "alice", "$h3"); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := s.UserPasswordHash(ctx, "alice"); h != "$h3" {
		t.Errorf("hash after SetUserPassword = %q", h)
	}
	for id, want := range map[string]bool{sessionID('a'): false, sessionID('b'): false, sessionID('c'): true} {
		if _, _, _, ok, err := s.Session(ctx, id); ok != want || err != nil {
			t.Errorf("session %c after alice's new password: ok %v (want %v), err %v", id[0], ok, want, err)
		}
	}
	if err := s.SetUserPassword(ctx, "carol", "$h"); !errors.Is(err, ErrNoUser) {
		t.Errorf("password of carol: got %v, want ErrNoUser", err)
	}

	// Deleting a user deletes the user's sessions.
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok, _ := s.Session(ctx, sessionID('c')); ok {
		t.Error("bob's session survived bob")
	}
	if err := s.DeleteUser(ctx, "bob"); !errors.Is(err, ErrNoUser) {
		t.Errorf("deleting bob again: got %v, want ErrNoUser", err)
	}
}

func TestConsoleSessions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	if err := s.AddUser(ctx, "alice", "$h"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_750_000_000, 123)
	if err := s.CreateSession(ctx, sessionID('a'), "alice", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, sessionID('a'), "alice", t0); err == nil {
		t.Error("two sessions with one id")
	}
	if err := s.CreateSession(ctx, "short", "alice", t0); err == nil {
		t.Error("a session id that is no SHA-256 hex was stored")
	}
	if err := s.CreateSession(ctx, sessionID('b'), "alice", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(10 * time.Minute)
	if err := s.TouchSession(ctx, sessionID('a'), t1); err != nil {
		t.Fatal(err)
	}
	user, created, seen, ok, err := s.Session(ctx, sessionID('a'))
	if err != nil || !ok || user != "alice" || !created.Equal(t0) || !seen.Equal(t1) {
		t.Errorf("Session = %q %v %v %v %v", user, created, seen, ok, err)
	}

	// Session a was last seen at t1 and b at t0+1h: pruning the idle ones
	// before t1+1s removes a only; then pruning by age removes b.
	if n, err := s.PruneSessions(ctx, t1.Add(time.Second), t0.Add(-time.Hour)); n != 1 || err != nil {
		t.Errorf("PruneSessions idle = %d %v, want 1", n, err)
	}
	if _, _, _, ok, _ := s.Session(ctx, sessionID('a')); ok {
		t.Error("idle session a survived pruning")
	}
	if n, err := s.PruneSessions(ctx, t0, t0.Add(2*time.Hour)); n != 1 || err != nil {
		t.Errorf("PruneSessions old = %d %v, want 1", n, err)
	}
	if err := s.DeleteSession(ctx, sessionID('z')); err != nil {
		t.Errorf("deleting a missing session: %v", err)
	}
}

func TestConsoleLoginFailures(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	t0 := time.Unix(1_750_000_000, 0)
	for i := range 5 {
		if err := s.AddLoginFailure(ctx, []string{"addr:192.0.2.1", "user:alice"}, t0.Add(time.Duration(i)*20*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// Failures at 0, 20, 40, 60, 80 s: three of them at or after 40 s.
	for key, want := range map[string]int{"addr:192.0.2.1": 3, "user:alice": 3, "user:bob": 0} {
		if n, err := s.LoginFailures(ctx, key, t0.Add(40*time.Second)); n != want || err != nil {
			t.Errorf("LoginFailures(%s) = %d %v, want %d", key, n, err, want)
		}
	}
	// A failure two hours later prunes the old ones.
	if err := s.AddLoginFailure(ctx, []string{"user:bob"}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.LoginFailures(ctx, "user:alice", time.Time{}); n != 0 {
		t.Errorf("%d old failures of alice survived pruning", n)
	}
}

// commitEvents stores events [0, n) of genEvents.
func commitEvents(t testing.TB, s *Store, n int) []event.Event {
	t.Helper()
	evs := genEvents(0, n)
	for i := 0; i < n; i += 5000 {
		if err := s.Commit(context.Background(), event.Batch{Events: evs[i:min(i+5000, n)]}); err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

// consoleQueries are the shapes of query the console sends.
func consoleQueries() map[string]event.Query {
	mid := testStart.Add(1200 * 3 * time.Millisecond)
	return map[string]event.Query{
		"all":            {},
		"limit":          {Limit: 101},
		"one type":       {Types: []event.Type{event.Failed}, Limit: 101},
		"two types":      {Types: []event.Type{event.Deferred, event.Queued, event.Deferred}, Limit: 101},
		"period":         {Since: testStart.Add(300 * 3 * time.Millisecond), Until: mid, Limit: 50},
		"period, types":  {Since: testStart.Add(300 * 3 * time.Millisecond), Until: mid, Types: []event.Type{event.Bounced, event.Succeeded}},
		"empty period":   {Since: mid, Until: mid},
		"unknown type":   {Types: []event.Type{"nonesuch"}, Limit: 10},
		"from mid":       {Since: mid, Types: []event.Type{event.Queued}},
		"before the end": {Until: mid, Limit: 7},
	}
}

// want filters evs like the store should.
func want(evs []event.Event, q event.Query) []event.Event {
	var out []event.Event
	for _, e := range evs {
		if (!q.Since.IsZero() && e.Time.Before(q.Since)) || (!q.Until.IsZero() && !e.Time.Before(q.Until)) {
			continue
		}
		if len(q.Types) > 0 && !slices.Contains(q.Types, e.Type) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// sameEvents compares events ignoring the zone their time is read back in.
func sameEvents(t *testing.T, name string, got, want []event.Event) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("%s: (-want +got):\n%s", name, diff)
	}
}

func TestRecentEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	evs := commitEvents(t, s, 2500)
	for name, q := range consoleQueries() {
		all := want(evs, q)
		slices.Reverse(all)
		if q.Limit > 0 && len(all) > q.Limit {
			all = all[:q.Limit]
		}
		got, err := s.RecentEvents(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameEvents(t, name, got, all)

		// Paging on from the last row gives the rows after it.
		if len(got) == 0 || q.Limit == 0 {
			continue
		}
		last := got[len(got)-1]
		next := q
		next.AfterTime, next.AfterID = last.Time, last.ID
		got2, err := s.RecentEvents(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		rest := want(evs, q)
		slices.Reverse(rest)
		rest = rest[min(len(rest), q.Limit):]
		rest = rest[:min(len(rest), q.Limit)]
		sameEvents(t, name+", next page", got2, rest)
	}
	if _, err := s.RecentEvents(ctx, event.Query{Limit: -1}); err == nil {
		t.Error("a negative limit was accepted")
	}
}

func TestEachEvent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	// More than two pages of eachPage rows.
	evs := commitEvents(t, s, 2*eachPage+500)
	for name, q := range consoleQueries() {
		var got []event.Event
		if err := s.EachEvent(ctx, q, func(e *event.Event) error {
			got = append(got, *e)
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// EachEvent ignores the limit: a download holds every row.
		sameEvents(t, name, got, want(evs, q))
	}

	// fn's error stops the walk and comes back.
	stop := errors.New("stop")
	n := 0
	err := s.EachEvent(ctx, event.Query{}, func(*event.Event) error {
		n++
		if n == 1500 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 1500 {
		t.Errorf("EachEvent after fn's error: %v after %d rows", err, n)
	}
}

func TestEventAtAndCounts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	evs := commitEvents(t, s, 600)
	e := evs[321]
	got, ok, err := s.EventAt(ctx, e.Time, e.ID)
	if err != nil || !ok {
		t.Fatalf("EventAt: %v %v", ok, err)
	}
	sameEvents(t, "EventAt", []event.Event{got}, []event.Event{e})
	if _, ok, err := s.EventAt(ctx, e.Time.Add(time.Nanosecond), e.ID); ok || err != nil {
		t.Errorf("EventAt with the wrong time: %v %v", ok, err)
	}

	since := evs[100].Time
	wantCounts := map[event.Type]int64{}
	for _, e := range evs[100:] {
		wantCounts[e.Type]++
	}
	counts, err := s.CountEventsSince(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("CountEventsSince (-want +got):\n%s", diff)
	}
}

// TestConsolePlans checks that the console's queries read one index range
// and sort nothing: with a million rows a sort or a table scan per page
// view would miss the 100 ms target (issue 5).
func TestConsolePlans(t *testing.T) {
	s := openTest(t, Options{})
	q := event.Query{Since: testStart, Until: testStart.Add(time.Hour), AfterTime: testStart, AfterID: "x", Limit: 101}
	type plan struct {
		name, sql string
		args      []any
		index     string
		// walk: the query reads the index in order up to its LIMIT (no
		// period given), or a partial index whole (the waiting rows),
		// which SQLite calls a SCAN of the index.
		walk bool
	}
	var plans []plan
	for _, typ := range []event.Type{"", event.Failed} {
		where, args := periodWhere(q, typ, "<")
		index := "events_time"
		if typ != "" {
			index = "events_type_time"
		}
		plans = append(plans, plan{"recent " + string(typ), "SELECT " + eventColumns + " FROM events WHERE " + where +
			" ORDER BY time DESC, id DESC LIMIT 101", args, index, false})
	}
	where, args := periodWhere(q, "", ">")
	plans = append(plans,
		plan{"each, types", "SELECT " + eventColumns + " FROM events WHERE " + where +
			" AND +type IN (?, ?) ORDER BY time, id LIMIT 1000", append(args, "failed", "queued"), "events_time", false},
		plan{"at", "SELECT " + eventColumns + " FROM events WHERE time = ? AND id = ?", []any{1, "x"}, "events_time", false},
		plan{"count", "SELECT count(*) FROM events WHERE type = ? AND time >= ?", []any{"failed", 1}, "COVERING INDEX events_type_time", false},
		plan{"failures", "SELECT count(*) FROM login_failures WHERE key = ? AND at >= ?", []any{"k", 1}, "login_failures_key", false},
		plan{"session", "SELECT user_name, created_at, seen_at FROM sessions WHERE id = ?", []any{"x"}, "sqlite_autoindex_sessions_1", false},
		plan{"inbound recent", "SELECT " + inboundColumns + " FROM inbound_log WHERE 1 AND received >= ? AND received < ? ORDER BY received DESC, id DESC LIMIT 101",
			[]any{1, 2}, "inbound_log_received", false},
		plan{"inbound recent status", "SELECT " + inboundColumns + " FROM inbound_log WHERE 1 AND status = ? AND received >= ? ORDER BY received DESC, id DESC LIMIT 101",
			[]any{"denied", 1}, "inbound_log_status", false},
		plan{"post of event: batch", `SELECT batch_id, first_seq, last_seq FROM webhook_batches
			WHERE family = ? AND last_seq >= ? ORDER BY last_seq LIMIT 1`, []any{"deliveries", 1}, "webhook_batches_family_seq", false},
		plan{"post of event: attempt", `SELECT attempt, at FROM webhook_attempts WHERE batch_id = ? ORDER BY attempt DESC LIMIT 1`,
			[]any{"x"}, "sqlite_autoindex_webhook_attempts_1", false},
		plan{"dashboard post counts", `SELECT count(*) FROM webhook_batches WHERE state = ? AND first_time >= ?`,
			[]any{"failed", 1}, "COVERING INDEX webhook_batches_state_time", false},
		plan{"dashboard filter backlog", `SELECT filter, count(*), min(created_at) FROM inbound_posts
			WHERE state IN ('queued', 'deferred') GROUP BY filter ORDER BY filter`, nil, "inbound_posts_filter", true},
		plan{"dashboard filter attempt", `SELECT updated_at, state, last_status, last_reason FROM inbound_posts
			WHERE filter = ? AND state IN ('queued', 'deferred') AND attempts > 0 ORDER BY created_at DESC LIMIT 1`,
			[]any{"f"}, "inbound_posts_filter", false},
	)
	// The post log (WebhookLog): the screen newest first, the CSV oldest
	// first in pages, each status on its own index range.
	for _, wq := range []struct {
		name  string
		q     WebhookLogQuery
		index string
		walk  bool
	}{
		{"posts", WebhookLogQuery{Newest: true, Limit: 101}, "webhook_batches_time", true},
		{"posts period", WebhookLogQuery{Newest: true, Since: testStart, Until: testStart.Add(time.Hour), Limit: 101}, "webhook_batches_time", false},
		{"posts status", WebhookLogQuery{Newest: true, Since: testStart, States: []string{"failed"}, Limit: 101}, "webhook_batches_state_time", false},
		{"posts csv page", WebhookLogQuery{Since: testStart, AfterReceived: testStart, AfterID: "x", Limit: 1000}, "webhook_batches_time", false},
		{"posts csv status page", WebhookLogQuery{States: []string{"failed"}, AfterReceived: testStart, AfterID: "x", Limit: 1000}, "webhook_batches_state_time", false},
	} {
		where, args, err := wq.q.where()
		if err != nil {
			t.Fatal(err)
		}
		order := " ORDER BY first_time, batch_id"
		if wq.q.Newest {
			order = " ORDER BY first_time DESC, batch_id DESC"
		}
		plans = append(plans, plan{wq.name, "SELECT " + batchColumns + " FROM webhook_batches" + where + order + " LIMIT ?",
			append(args, wq.q.Limit), wq.index, wq.walk})
	}
	// The event CSV with the endpoint of each event's post: besides the
	// events' own range, one seek per row of the batches' (family,
	// last_seq) index, their key and the attempts' key.
	text := queryPlan(t, s.r, "SELECT "+eventColumns+", "+postedEndpoint+" FROM events WHERE "+where+
		" ORDER BY time, id LIMIT 1000", args...)
	for _, want := range []string{"USING INDEX events_time", "USING INDEX webhook_batches_family_seq",
		"SEARCH b USING INDEX sqlite_autoindex_webhook_batches_1", "SEARCH a USING INDEX sqlite_autoindex_webhook_attempts_1"} {
		if !strings.Contains(text, want) {
			t.Errorf("event CSV with endpoints: plan %q lacks %q", text, want)
		}
	}
	if strings.Contains(text, "TEMP B-TREE") || strings.Contains(text, "SCAN") {
		t.Errorf("event CSV with endpoints: plan %q sorts or scans", text)
	}

	for _, p := range plans {
		text := queryPlan(t, s.r, p.sql, p.args...)
		walked := strings.Contains(text, " USING INDEX "+p.index) || strings.Contains(text, " USING COVERING INDEX "+p.index)
		scan := strings.Contains(text, "SCAN") && !(p.walk && walked)
		// The post log orders by (first_time, batch_id) over the
		// (first_time) index, which retention pages by (first_time,
		// rowid): SQLite sorts the posts of one and the same nanosecond
		// only, never a period ("FOR LAST TERM").
		sorts := strings.Contains(strings.ReplaceAll(text, "USE TEMP B-TREE FOR LAST TERM OF ORDER BY", ""), "TEMP B-TREE")
		if sorts || !strings.Contains(text, p.index) || scan {
			t.Errorf("%s: plan %q, want a search of %s without a sort", p.name, text, p.index)
		}
	}
}
