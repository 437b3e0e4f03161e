package outboxtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// Harness is an Outbox under test with the means to look into it.
type Harness struct {
	Outbox dispatcher.Outbox
	// Store stores events as the log reader does.
	Store func(t testing.TB, evs ...event.Event)
	// Inspect returns what the outbox holds about a batch.
	Inspect func(t testing.TB, id string) (Batch, bool)
	// IDs lists every batch id, in any order.
	IDs func(t testing.TB) []string
	// FailOn makes the named Outbox method return an error wrapping
	// ErrInjected until it is called again with "".
	FailOn func(method string)
	// Replay re-queues every failed batch at now, as `posthorn replay
	// --status failed` does from another process, and returns how many.
	Replay func(t testing.TB, now time.Time) int
}

// Batch is what an outbox holds about one batch.
type Batch struct {
	ID, Family, State string
	ContentType       string
	Body              []byte   // nil until frozen
	Events            []string // event ids, in stored order
	Attempts          int
	Next              time.Time // zero unless queued or deferred
	Leased            bool
	Reason            string
	Host              string
	First             int64
	Records           []dispatcher.Attempt // Next need not be kept
}

// at is the fake clock's start.
var at = time.Date(2026, 3, 14, 5, 6, 7, 0, time.UTC)

const (
	composition = "mail.example.com"
	hostname    = "mx1.example.com"
	testKey     = "key-123"
)

var testSecret = settings.Secret("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

// Run runs every scenario, each against a fresh harness.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	for _, sc := range []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"FormsAndDelivers", testFormsAndDelivers},
		{"RetriesFrozenBatch", testRetriesFrozenBatch},
		{"PermanentFailure", testPermanentFailure},
		{"LogsAndReports", testLogsAndReports},
		{"DeadEndpointBacksOff", testDeadEndpointBacksOff},
		{"RetryPeriodEnds", testRetryPeriodEnds},
		{"Restart", testRestart},
		{"InvalidSettingsWait", testInvalidSettingsWait},
		{"FormError", testFormError},
		{"StopMidAttempt", testStopMidAttempt},
		{"SwitchedOffFamily", testSwitchedOffFamily},
		{"NothingPosted", testNothingPosted},
		{"FrozenAtFirstAttempt", testFrozenAtFirstAttempt},
		{"EncodeFailure", testEncodeFailure},
		{"MaxPending", testMaxPending},
		{"Run", testRun},
		{"Observations", testObservations},
		{"FailOldestSkipsLeased", testFailOldestSkipsLeased},
		{"Order", testOrder},
		{"OutageLongerThanPeriod", testOutageLongerThanPeriod},
		{"FixResumes", testFixResumes},
		{"ReplayDuringProbe", testReplayDuringProbe},
		{"PeriodEndsTogether", testPeriodEndsTogether},
		{"LiftError", testLiftError},
		{"NextClaim", testNextClaim},
		{"PreparedBody", testPreparedBody},
		{"StreamFormsTogether", testStreamFormsTogether},
		{"TurnedOff", testTurnedOff},
		{"FailingFormsLessOften", testFailingFormsLessOften},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, newHarness(t)) })
	}
}

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// seen is what the receiver saw of one request.
type seen struct {
	header http.Header
	body   []byte
}

// script is a receiver that answers from a list of statuses (the last one
// repeats) and passes on what it saw.
type script struct {
	mu       sync.Mutex
	statuses []int
	headers  map[int]http.Header
	seen     chan seen
	before   func() // runs before answering
}

func newScript(statuses ...int) *script {
	return &script{statuses: statuses, headers: map[int]http.Header{}, seen: make(chan seen, 1000)}
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	status := s.statuses[0]
	if len(s.statuses) > 1 {
		s.statuses = s.statuses[1:]
	}
	before := s.before
	s.mu.Unlock()
	s.seen <- seen{header: r.Header.Clone(), body: body}
	if before != nil {
		before()
	}
	for k, v := range s.headers[status] {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "answer %d", status)
}

// drain returns what the receiver saw so far, without waiting.
func (s *script) drain() []seen {
	var out []seen
	for {
		select {
		case r := <-s.seen:
			out = append(out, r)
		default:
			return out
		}
	}
}

type rig struct {
	h     Harness
	clock *clock
	recv  *script
	mu    sync.Mutex
	s     settings.EventWebhook
	d     *dispatcher.Dispatcher
	opts  dispatcher.Options
}

// startTLS starts an HTTPS receiver and writes its certificate to a PEM
// file for the ca_file setting.
func startTLS(t *testing.T, h http.Handler) (url, caFile string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile
}

func newRig(t *testing.T, h Harness, handler http.Handler, change func(*settings.EventWebhook)) *rig {
	t.Helper()
	url, ca := startTLS(t, handler)
	recv, _ := handler.(*script)
	s := settings.Default()
	s.Endpoint = url + "/events"
	s.Deliveries, s.Bounces = true, true
	s.JSON = true
	s.Timezone = "UTC"
	s.Interval = 5
	s.APIKey = testKey
	s.SigningSecret = testSecret
	s.CAFile = ca
	if change != nil {
		change(&s)
	}
	if err := s.Validate(false); err != nil {
		t.Fatal(err)
	}
	r := &rig{h: h, clock: &clock{t: at}, recv: recv, s: s}
	r.opts = dispatcher.Options{
		Outbox:            h.Outbox,
		Settings:          r.settings,
		ServerComposition: composition,
		Hostname:          hostname,
		Version:           "1.2.3",
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:               r.clock.Now,
		Rand:              func() float64 { return 0.5 },
	}
	r.d = r.newDispatcher(t)
	return r
}

func (r *rig) settings() settings.EventWebhook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s
}

func (r *rig) change(f func(*settings.EventWebhook)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.s)
}

// newDispatcher starts another process on the same outbox.
func (r *rig) newDispatcher(t *testing.T) *dispatcher.Dispatcher {
	t.Helper()
	d, err := dispatcher.New(r.opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (r *rig) form(t *testing.T) time.Time {
	t.Helper()
	next, err := r.d.Form(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func (r *rig) deliver(t *testing.T) time.Time {
	t.Helper()
	next, err := r.d.Deliver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func (r *rig) batch(t *testing.T, id string) Batch {
	t.Helper()
	b, ok := r.h.Inspect(t, id)
	if !ok {
		t.Fatalf("no batch %s", id)
	}
	return b
}

// batches returns every batch, in the order their events were stored.
func (r *rig) batches(t *testing.T) []Batch {
	t.Helper()
	var out []Batch
	for _, id := range r.h.IDs(t) {
		out = append(out, r.batch(t, id))
	}
	slices.SortFunc(out, func(a, b Batch) int { return int(a.First - b.First) })
	return out
}

func manyEvents(prefix string, typ event.Type, n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{ID: fmt.Sprintf("%s-%04d", prefix, i), Type: typ, Time: at.Add(time.Duration(i) * time.Millisecond),
			Host: "mx1", QueueID: "4Q1", To: fmt.Sprintf("r%d@example.com", i), MessageID: "<m@example.com>"}
	}
	return evs
}

func eventIDs(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// verify checks a Standard Webhooks signature made at ts.
func verify(h http.Header, body []byte, ts time.Time) error {
	key, err := testSecret.SigningKey()
	if err != nil {
		return err
	}
	id := h.Get(dispatcher.HeaderWebhookID)
	if got := h.Get(dispatcher.HeaderWebhookTimestamp); got != strconv.FormatInt(ts.Unix(), 10) {
		return fmt.Errorf("webhook-timestamp %s, want %d", got, ts.Unix())
	}
	want := dispatcher.Sign(key, id, ts, body)
	if !hmac.Equal([]byte(h.Get(dispatcher.HeaderWebhookSignature)), []byte(want)) {
		return errors.New("signature does not verify")
	}
	return nil
}

func testFormsAndDelivers(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	deliveries := manyEvents("d", event.Succeeded, 250)
	bounces := manyEvents("b", event.Bounced, 3)
	blocks := manyEvents("k", event.Registered, 2) // blocks are off
	h.Store(t, deliveries[:120]...)
	h.Store(t, bounces...)
	h.Store(t, blocks...)
	h.Store(t, deliveries[120:]...)

	next := r.form(t)
	// Two full batches of 100 at once; 50 deliveries and 3 bounces wait.
	if n := len(h.IDs(t)); n != 2 {
		t.Fatalf("%d batches formed, want 2", n)
	}
	if !next.Equal(at.Add(time.Second)) { // within Poll, before the interval
		t.Errorf("Form wants to run again at %v", next)
	}
	// Nothing new, interval not over: nothing happens.
	r.clock.Set(at.Add(4 * time.Second))
	if r.form(t); len(h.IDs(t)) != 2 {
		t.Fatalf("Form before the interval: %d batches", len(h.IDs(t)))
	}
	r.clock.Set(at.Add(5 * time.Second))
	r.form(t)
	got := r.batches(t)
	want := [][]event.Event{deliveries[:100], deliveries[100:200], bounces, deliveries[200:]}
	if len(got) != len(want) {
		t.Fatalf("%d batches after the interval, want %d", len(got), len(want))
	}
	for i, w := range want {
		b := got[i]
		fam := w[0].Type.Family()
		if b.ID != dispatcher.BatchID(fam, eventIDs(w)) || b.Family != fam || b.State != dispatcher.StateQueued ||
			!slices.Equal(b.Events, eventIDs(w)) || b.Body != nil || b.Host != hostname {
			t.Errorf("batch %d: %+v", i, b)
		}
	}

	r.deliver(t)
	posts := r.recv.drain()
	if len(posts) != 4 {
		t.Fatalf("%d posts, want 4", len(posts))
	}
	for _, p := range posts {
		id := p.header.Get(dispatcher.HeaderWebhookID)
		b := r.batch(t, id)
		var w []event.Event
		for _, ws := range want {
			if dispatcher.BatchID(ws[0].Type.Family(), eventIDs(ws)) == id {
				w = ws
			}
		}
		ct, body, _ := dispatcher.Encode(r.s, composition, b.Family, w)
		if !bytes.Equal(p.body, body) || !bytes.Equal(b.Body, body) || b.ContentType != ct || p.header.Get("Content-Type") != ct {
			t.Errorf("post of %s is not its events encoded and frozen", id)
		}
		if err := verify(p.header, p.body, at.Add(5*time.Second)); err != nil {
			t.Errorf("post of %s: %v", id, err)
		}
		if b.State != dispatcher.StateSucceeded || b.Attempts != 1 || len(b.Records) != 1 || b.Leased {
			t.Fatalf("batch %s: state %s, %d attempts, records %+v", id, b.State, b.Attempts, b.Records)
		}
		rec := b.Records[0]
		if rec.Attempt != 1 || rec.Status != 200 || rec.State != dispatcher.StateSucceeded || string(rec.Response) != "answer 200" ||
			rec.Endpoint != r.s.Endpoint || rec.Host != hostname || !rec.At.Equal(at.Add(5*time.Second)) || rec.Reason != "HTTP 200 OK" {
			t.Errorf("batch %s: record %+v", id, rec)
		}
	}
	if _, ok, _ := h.Outbox.NextDue(context.Background()); ok {
		t.Error("a batch is still due")
	}
	if n, _ := h.Outbox.PendingEvents(context.Background()); n != 0 {
		t.Errorf("%d events pending after delivery", n)
	}
	if st := r.d.Stats(); st.BatchesSucceeded != 4 || st.EventsSucceeded != 253 || st.EventsFormed != 253 {
		t.Errorf("stats %+v", st)
	}
}

// A temporary failure holds the endpoint until the batch's next attempt,
// which carries the same id and bytes, a new signature and attempt 2.
func testRetriesFrozenBatch(t *testing.T, h Harness) {
	recv := newScript(503, 200)
	recv.headers[503] = http.Header{"Retry-After": {"60"}}
	r := newRig(t, h, recv, nil)
	h.Store(t, manyEvents("d", event.Queued, 100)...)
	h.Store(t, manyEvents("e", event.Queued, 100)...)
	r.form(t)

	// Held until Retry-After's minute, but back within Poll to look for
	// a replay.
	if next := r.deliver(t); !next.Equal(at.Add(time.Second)) {
		t.Errorf("Deliver wants to run again at %v, want within Poll", next)
	}
	first := r.recv.drain()
	if len(first) != 1 { // the second batch is not tried against a failing endpoint
		t.Fatalf("%d posts while the endpoint fails, want 1", len(first))
	}
	id := first[0].header.Get(dispatcher.HeaderWebhookID)
	b := r.batch(t, id)
	if b.State != dispatcher.StateDeferred || !b.Next.Equal(at.Add(time.Minute)) || len(b.Records) != 1 ||
		b.Records[0].Reason != "HTTP 503 Service Unavailable" || b.Records[0].Status != 503 || !bytes.Equal(b.Body, first[0].body) {
		t.Fatalf("after 503: %+v", b)
	}
	if n, _ := h.Outbox.PendingEvents(context.Background()); n != 200 {
		t.Errorf("%d events pending, want 200", n)
	}
	r.clock.Set(at.Add(30 * time.Second))
	if r.deliver(t); len(r.recv.drain()) != 0 {
		t.Fatal("posted during the hold")
	}
	// Settings that change the payload do not change a frozen batch. A
	// change lifts the hold and makes the deferred batch due: it goes out
	// again first, then the batch not yet tried, encoded with the new
	// settings.
	r.change(func(s *settings.EventWebhook) { s.JSON = false })
	r.deliver(t)
	second := r.recv.drain()
	if len(second) != 2 {
		t.Fatalf("%d posts after the settings changed, want the deferred batch and the one not yet tried", len(second))
	}
	retry := second[0]
	if retry.header.Get(dispatcher.HeaderWebhookID) != id || !bytes.Equal(retry.body, first[0].body) {
		t.Error("the first post after the change is not the frozen batch")
	}
	if a, b := first[0].header.Get(dispatcher.HeaderAttempt), retry.header.Get(dispatcher.HeaderAttempt); a != "1" || b != "2" {
		t.Errorf("attempt headers %s, %s", a, b)
	}
	if err := verify(retry.header, retry.body, at.Add(30*time.Second)); err != nil {
		t.Errorf("retry signature: %v", err)
	}
	if second[1].header.Get(dispatcher.HeaderWebhookID) == id || second[1].header.Get("Content-Type") != dispatcher.ContentTypeForm {
		t.Error("the batch first attempted after the change was not encoded with the new settings")
	}
	for _, b := range r.batches(t) {
		if b.State != dispatcher.StateSucceeded {
			t.Errorf("batch %s: %s", b.ID, b.State)
		}
	}
	if b := r.batch(t, id); len(b.Records) != 2 || b.Records[1].Attempt != 2 || b.Attempts != 2 {
		t.Errorf("records %+v", b.Records)
	}
}

// A permanent failure fails that batch and the next goes on.
func testPermanentFailure(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(400, 200), nil)
	h.Store(t, manyEvents("d", event.Queued, 200)...)
	r.form(t)
	r.deliver(t)
	posts := r.recv.drain()
	if len(posts) != 2 {
		t.Fatalf("%d posts, want 2", len(posts))
	}
	a := r.batch(t, posts[0].header.Get(dispatcher.HeaderWebhookID))
	b := r.batch(t, posts[1].header.Get(dispatcher.HeaderWebhookID))
	if a.State != dispatcher.StateFailed || b.State != dispatcher.StateSucceeded || a.Reason != "HTTP 400 Bad Request" || !a.Next.IsZero() {
		t.Errorf("states %s (%q) %s, want failed succeeded", a.State, a.Reason, b.State)
	}
	if st := r.d.Stats(); st.BatchesFailed != 1 || st.EventsFailed != 100 {
		t.Errorf("stats %+v", st)
	}
}

// Each attempt is one log line and one report, however many events the
// batch holds, naming the endpoint without the token in its query.
func testLogsAndReports(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(503), func(s *settings.EventWebhook) { s.Endpoint += "?token=SECRET" })
	var logs syncBuffer
	r.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	var reports []dispatcher.PostReport
	r.opts.Observe = func(p dispatcher.PostReport) { reports = append(reports, p) }
	r.d = r.newDispatcher(t)
	h.Store(t, manyEvents("d", event.Queued, 100)...) // one full batch
	r.form(t)
	r.deliver(t)
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "event webhook post") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "events=100") ||
		!strings.Contains(lines[0], "endpoint="+strings.TrimSuffix(r.s.Endpoint, "?token=SECRET")) {
		t.Errorf("attempt log lines %q, want one warning with the endpoint and the event count", lines)
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("the log shows the endpoint's token:\n%s", logs.String())
	}
	if len(reports) != 1 || reports[0].Webhook != dispatcher.WebhookEvent || reports[0].State != dispatcher.StateDeferred ||
		reports[0].Status != 503 || strings.Contains(reports[0].Endpoint, "SECRET") || reports[0].At.IsZero() {
		t.Errorf("reports %+v, want one deferred 503 without the token", reports)
	}
}

// syncBuffer is a log destination safe for the dispatcher's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A dead endpoint is probed along the retry schedule, whichever batch is
// due, not once per batch.
func testDeadEndpointBacksOff(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(503), nil)
	h.Store(t, manyEvents("d", event.Queued, 500)...)
	r.form(t)
	var probes []time.Duration
	for r.clock.Now().Sub(at) <= 30*time.Minute {
		next := r.deliver(t)
		for range r.recv.drain() {
			probes = append(probes, r.clock.Now().Sub(at))
		}
		r.clock.Set(next)
	}
	// 0 s, then 10 s, 1 min, 5 min, 15 min after the probe before.
	want := []time.Duration{0, 10 * time.Second, 70 * time.Second, 370 * time.Second, 1270 * time.Second}
	if !slices.Equal(probes, want) {
		t.Errorf("probes at %v, want %v", probes, want)
	}
}

// A batch that keeps failing is failed when the retry period ends.
func testRetryPeriodEnds(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(500), func(s *settings.EventWebhook) { s.RetryPeriod = settings.Duration(time.Hour) })
	h.Store(t, manyEvents("d", event.Queued, 100)...)
	r.form(t)
	id := h.IDs(t)[0]
	for range 20 {
		next, ok, _ := h.Outbox.NextDue(context.Background())
		if !ok {
			break
		}
		r.clock.Set(next)
		r.deliver(t)
	}
	b := r.batch(t, id)
	// 0 s, 10 s, 1 min 10 s, 6 min 10 s, 21 min 10 s, 51 min 10 s, and the
	// last at the hour (retry.go's schedule without jitter).
	if b.State != dispatcher.StateFailed || len(b.Records) != 7 || len(r.recv.drain()) != 7 ||
		!b.Records[6].At.Equal(at.Add(time.Hour)) || b.Attempts != 7 {
		t.Errorf("state %s after %d attempts, last at %v", b.State, len(b.Records), b.Records[len(b.Records)-1].At)
	}
}

// After a crash, a batch claimed but never recorded is claimed again —
// at once once leases are released at start, else when its lease ends —
// with the same id and bytes and the next attempt number; events that
// were not formed form the same batch again.
func testRestart(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	ctx := context.Background()
	h.Store(t, manyEvents("d", event.Queued, 100)...)
	h.Store(t, manyEvents("b", event.Bounced, 5)...)
	r.form(t)
	if len(h.IDs(t)) != 1 {
		t.Fatalf("%d batches, want the full one", len(h.IDs(t)))
	}
	// The first process claims the batch, freezes its body and dies during
	// the POST.
	ids, err := h.Outbox.ClaimDue(ctx, at, at.Add(time.Hour), 1)
	if err != nil || len(ids) != 1 {
		t.Fatalf("claim: %v %v", ids, err)
	}
	inFlight := ids[0]
	evs, err := h.Outbox.BatchEvents(ctx, inFlight)
	if err != nil {
		t.Fatal(err)
	}
	_, body, err := dispatcher.Encode(r.s, composition, "deliveries", evs)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Outbox.FreezeBody(ctx, inFlight, dispatcher.ContentTypeJSON, body); err != nil {
		t.Fatal(err)
	}
	// A second freeze (the same batch attempted again) keeps the first.
	if _, kept, err := h.Outbox.FreezeBody(ctx, inFlight, dispatcher.ContentTypeJSON, []byte("other")); err != nil || !bytes.Equal(kept, body) {
		t.Fatalf("second FreezeBody returned %q, %v", kept, err)
	}
	// The open bounces batch dies with the process, unformed.
	wantBounces := dispatcher.BatchID("bounces", eventIDs(manyEvents("b", event.Bounced, 5)))

	r.d = r.newDispatcher(t)
	r.clock.Set(at.Add(10 * time.Second))
	r.form(t) // opens the bounces batch again
	r.clock.Set(at.Add(15 * time.Second))
	r.form(t)
	if next := r.deliver(t); len(r.recv.drain()) != 1 || !next.Equal(at.Add(time.Hour)) {
		t.Fatalf("before the lease ended: want only the bounces posted, and the leased batch due at its lease's end (got %v)", next)
	}
	if n, err := h.Outbox.ReleaseLeases(ctx); err != nil || n != 1 {
		t.Fatalf("ReleaseLeases = %d, %v; want 1", n, err)
	}
	r.deliver(t)
	got := r.recv.drain()
	if len(got) != 1 || got[0].header.Get(dispatcher.HeaderWebhookID) != inFlight {
		t.Fatalf("%d posts after the release, want the in-flight batch", len(got))
	}
	if got[0].header.Get(dispatcher.HeaderAttempt) != "2" || !bytes.Equal(got[0].body, body) {
		t.Errorf("re-claimed batch: attempt %s, same bytes %v", got[0].header.Get(dispatcher.HeaderAttempt), bytes.Equal(got[0].body, body))
	}
	if b := r.batch(t, wantBounces); b.State != dispatcher.StateSucceeded || len(b.Events) != 5 {
		t.Errorf("bounces formed again: %+v", b)
	}
	// Nothing formed twice.
	r.clock.Set(at.Add(time.Minute))
	r.d = r.newDispatcher(t)
	r.form(t)
	if n := len(h.IDs(t)); n != 2 {
		t.Errorf("%d batches after another restart, want 2", n)
	}
}

// Forming goes on with an invalid endpoint; delivery waits for it.
func testInvalidSettingsWait(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	good := r.s.Endpoint
	h.Store(t, manyEvents("d", event.Queued, 100)...)
	r.change(func(s *settings.EventWebhook) { s.Endpoint = "http://insecure.example/" })
	r.form(t)
	if len(h.IDs(t)) != 1 {
		t.Fatal("no batch formed while the endpoint is invalid")
	}
	if _, err := r.d.Deliver(context.Background()); err == nil {
		t.Error("Deliver with invalid settings: no error")
	}
	if len(r.recv.drain()) != 0 {
		t.Error("posted with invalid settings")
	}
	r.change(func(s *settings.EventWebhook) { s.Endpoint = good })
	if r.deliver(t); len(r.recv.drain()) != 1 {
		t.Error("not posted once the settings are fixed")
	}
}

// A store error while forming loses nothing: the events are read again.
func testFormError(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	h.Store(t, manyEvents("d", event.Queued, 150)...)
	h.FailOn("Form")
	if _, err := r.d.Form(context.Background()); !errors.Is(err, ErrInjected) {
		t.Fatalf("Form = %v, want the injected error", err)
	}
	h.FailOn("")
	for _, sec := range []time.Duration{1, 10} { // the rest waits for its interval
		r.clock.Set(at.Add(sec * time.Second))
		r.form(t)
	}
	seenIDs := map[string]int{}
	for _, b := range r.batches(t) {
		for _, id := range b.Events {
			seenIDs[id]++
		}
	}
	if len(seenIDs) != 150 {
		t.Errorf("%d events formed after the error, want all 150", len(seenIDs))
	}
	for id, n := range seenIDs {
		if n != 1 {
			t.Errorf("event %s in %d batches", id, n)
		}
	}
}

// Stopping mid-attempt records it as deferred and due at once.
func testStopMidAttempt(t *testing.T, h Harness) {
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	r := newRig(t, h, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		cancel()
		<-release
	}), nil)
	t.Cleanup(func() { close(release) })
	h.Store(t, manyEvents("d", event.Queued, 100)...)
	r.form(t)
	r.d.Deliver(ctx)
	b := r.batch(t, h.IDs(t)[0])
	if b.State != dispatcher.StateDeferred || !b.Next.Equal(at) || len(b.Records) != 1 ||
		b.Records[0].Reason != "interrupted: the daemon is stopping" || b.Leased {
		t.Errorf("after stop: %+v", b)
	}
}

// Events of a switched-off family are skipped for good; a batch open when
// its family is switched off is posted with what it holds.
func testSwitchedOffFamily(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	blocks := manyEvents("k", event.Registered, 3)
	h.Store(t, blocks[:1]...)
	h.Store(t, manyEvents("d", event.Queued, 10)...)
	r.form(t) // blocks off: k-0000 skipped; 10 deliveries open
	r.change(func(s *settings.EventWebhook) { s.Blocks = true })
	h.Store(t, blocks[1:2]...)
	r.form(t) // k-0001 opens a blocks batch
	r.change(func(s *settings.EventWebhook) { s.Blocks, s.Deliveries = false, false })
	h.Store(t, blocks[2:]...)
	later := manyEvents("l", event.Queued, 5)
	h.Store(t, later...)
	r.form(t) // both open batches close; k-0002 and the l- events are skipped
	r.change(func(s *settings.EventWebhook) { s.Blocks, s.Deliveries = true, true })
	r.clock.Set(at.Add(time.Minute))
	r.form(t)

	got := r.batches(t)
	if len(got) != 2 || !slices.Equal(got[0].Events, eventIDs(manyEvents("d", event.Queued, 10))) ||
		!slices.Equal(got[1].Events, []string{"k-0001"}) {
		for _, b := range got {
			t.Logf("batch %s %v", b.Family, b.Events)
		}
		t.Fatalf("%d batches; want the 10 deliveries and k-0001", len(got))
	}
	r.deliver(t)
	if n := len(r.recv.drain()); n != 2 {
		t.Errorf("%d posts, want 2", n)
	}
}

// With no family posted nothing is formed, and switching one on later does
// not post what was stored before.
func testNothingPosted(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), func(s *settings.EventWebhook) { s.Deliveries, s.Bounces = false, false })
	h.Store(t, manyEvents("d", event.Queued, 100)...)
	r.form(t)
	r.change(func(s *settings.EventWebhook) { s.Deliveries = true })
	after := manyEvents("n", event.Queued, 3)
	h.Store(t, after...)
	r.clock.Set(at.Add(time.Minute))
	r.form(t) // opens the batch of n-*
	r.clock.Set(at.Add(2 * time.Minute))
	r.form(t)
	got := r.batches(t)
	if len(got) != 1 || !slices.Equal(got[0].Events, eventIDs(after)) {
		t.Fatalf("batches %+v, want only the events stored after the switch", got)
	}
	// A new process does not read the skipped events again either.
	r.d = r.newDispatcher(t)
	r.clock.Set(at.Add(time.Hour))
	r.form(t)
	if n := len(h.IDs(t)); n != 1 {
		t.Errorf("%d batches after a restart, want 1", n)
	}
}

// The body is made from the settings of the first attempt, not of the
// moment the batch closed.
func testFrozenAtFirstAttempt(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	evs := manyEvents("d", event.Queued, 100)
	h.Store(t, evs...)
	r.form(t)
	r.change(func(s *settings.EventWebhook) { s.Version, s.JSON, s.Timezone = 1, false, "Asia/Tokyo" })
	r.deliver(t)
	posts := r.recv.drain()
	want, body, _ := dispatcher.Encode(r.settings(), composition, "deliveries", evs)
	if len(posts) != 1 || posts[0].header.Get("Content-Type") != want || !bytes.Equal(posts[0].body, body) {
		t.Errorf("the body is not the events encoded with the settings of the first attempt")
	}
}

// A batch its family's settings can no longer encode fails at once.
func testEncodeFailure(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), func(s *settings.EventWebhook) { s.Blocks = true })
	h.Store(t, manyEvents("k", event.Registered, 100)...)
	r.form(t)
	r.change(func(s *settings.EventWebhook) { s.Version, s.JSON, s.Blocks = 1, false, false })
	r.deliver(t)
	if len(r.recv.drain()) != 0 {
		t.Error("posted a batch that cannot be encoded")
	}
	b := r.batch(t, h.IDs(t)[0])
	if b.State != dispatcher.StateFailed || len(b.Records) != 1 || b.Records[0].Status != 0 || b.Records[0].Reason == "" {
		t.Errorf("after an encoding failure: %+v", b)
	}
}

// Past max_pending the oldest waiting events are failed, logged and
// counted; the batch in flight is left alone.
func testMaxPending(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(503), nil)
	r.opts.MaxPending = 250
	r.d = r.newDispatcher(t)
	h.Store(t, manyEvents("d", event.Queued, 400)...)
	r.form(t)
	if b := r.batches(t); len(b) != 4 {
		t.Fatalf("%d batches, want 4", len(b))
	}
	// The first is attempted and deferred; the three others wait behind it.
	r.deliver(t)
	posts := r.recv.drain()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	attempted := posts[0].header.Get(dispatcher.HeaderWebhookID)
	r.clock.Set(at.Add(6 * time.Second))
	h.Store(t, manyEvents("e", event.Queued, 100)...)
	r.form(t) // 500 pending: 250 too many
	var failed []int
	for i, b := range r.batches(t) {
		if b.State == dispatcher.StateFailed {
			failed = append(failed, i)
			wantRecords := 0
			if b.ID == attempted {
				wantRecords = 1 // the attempt that deferred it
			}
			if !strings.HasPrefix(b.Reason, "spool full") || len(b.Records) != wantRecords {
				t.Errorf("overflowed batch %d: reason %q, %d attempt records", i, b.Reason, len(b.Records))
			}
		}
	}
	// The attempted batch is deferred, not leased: it fails like the others.
	if !slices.Equal(failed, []int{0, 1, 2}) {
		t.Errorf("failed batches %v, want the three oldest", failed)
	}
	if n, _ := h.Outbox.PendingEvents(context.Background()); n != 200 {
		t.Errorf("%d pending after the overflow, want 200", n)
	}
	if st := r.d.Stats(); st.OverflowEvents != 300 {
		t.Errorf("stats %+v, want 300 overflow events", st)
	}
}

// Run, with the real clock: events stored and notified reach the receiver.
func testRun(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	r.opts.Now = time.Now
	r.d = r.newDispatcher(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.d.Run(ctx) }()
	h.Store(t, manyEvents("d", event.Queued, 100)...)
	r.d.Notify()
	select {
	case got := <-r.recv.seen:
		if n := got.header.Get(dispatcher.HeaderAttempt); n != "1" {
			t.Errorf("attempt %s", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no post within 10 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	// Run returns after the attempt is recorded: succeeded, or deferred
	// if the stop came before the answer.
	for _, b := range r.batches(t) {
		if len(b.Records) != 1 || b.Leased || (b.State != dispatcher.StateSucceeded && b.State != dispatcher.StateDeferred) {
			t.Errorf("batch %s after Run: %s, %d records", b.ID, b.State, len(b.Records))
		}
	}
}

// observations is the milter's record of messages, by queue ID.
type observations map[string]event.Observation

func (o observations) Observation(_ context.Context, host, qid string) (event.Observation, bool, error) {
	ob, ok := o[qid]
	return ob, ok, nil
}

// testObservations: header From, Subject and the metadata header, which
// the maillog does not have, come from the milter's observation of the
// message, and only into records that lack them.
func testObservations(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	r.opts.Observations = observations{"4Q1": {QueueID: "4Q1", From: "Shop <shop@example.com>", Subject: "発送のお知らせ", APIData: `{"order":"A-42"}`}}
	r.d = r.newDispatcher(t)
	evs := manyEvents("o", event.Succeeded, 3)
	evs[2].QueueID = "unseen"
	h.Store(t, evs...)
	r.form(t)
	r.clock.Set(at.Add(5 * time.Second))
	r.form(t)
	r.deliver(t)
	posts := r.recv.drain()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	var body struct {
		Event struct {
			Deliveries []map[string]string `json:"deliveries"`
		} `json:"event"`
	}
	if err := json.Unmarshal(posts[0].body, &body); err != nil {
		t.Fatal(err)
	}
	recs := body.Event.Deliveries
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	for i, rec := range recs[:2] {
		if rec["from"] != "Shop <shop@example.com>" || rec["subject"] != "発送のお知らせ" || rec["apiData"] != `{"order":"A-42"}` {
			t.Errorf("record %d: from %q subject %q apiData %q", i, rec["from"], rec["subject"], rec["apiData"])
		}
	}
	if recs[2]["from"] != "" || recs[2]["subject"] != "" {
		t.Errorf("a message the milter never saw got %q %q", recs[2]["from"], recs[2]["subject"])
	}
}

// setStatus makes the receiver answer status from now on.
func (s *script) setStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses = []int{status}
}

// testOrder: batches go out in the order of their events, also when one
// Form call closes many (their ids are hashes, no order at all).
func testOrder(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	h.Store(t, manyEvents("d", event.Queued, 450)...)
	h.Store(t, manyEvents("b", event.Bounced, 100)...)
	h.Store(t, manyEvents("e", event.Succeeded, 550)...)
	r.form(t)
	r.clock.Set(at.Add(5 * time.Second))
	r.form(t)
	want := r.batches(t) // by first event
	if len(want) != 11 {
		t.Fatalf("%d batches, want 11", len(want))
	}
	r.deliver(t)
	posts := r.recv.drain()
	if len(posts) != len(want) {
		t.Fatalf("%d posts, want %d", len(posts), len(want))
	}
	for i, p := range posts {
		if id := p.header.Get(dispatcher.HeaderWebhookID); id != want[i].ID {
			t.Errorf("post %d is batch %s, want %s (first event %d)", i, id, want[i].ID, want[i].First)
		}
	}
}

// testOutageLongerThanPeriod: while the endpoint is dead for longer than
// the retry period, each batch is failed when its period — counted from
// when it was formed — ends, without a further POST; each probe goes to
// the oldest batch waiting; replay queues them again and, the endpoint
// back, they go out at once, in order.
func testOutageLongerThanPeriod(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(503), nil) // the default period: 1d
	// A held deliverer looks for replays every Poll; in steps of 10 min
	// the clock gets through two days quicker.
	r.opts.Poll = 10 * time.Minute
	r.d = r.newDispatcher(t)
	period := time.Duration(r.s.RetryPeriod)
	// A batch an hour for 20 hours.
	formed := map[string]time.Time{}
	for i := range 20 {
		r.clock.Set(at.Add(time.Duration(i) * time.Hour))
		h.Store(t, manyEvents(fmt.Sprintf("h%02d", i), event.Queued, 100)...)
		r.form(t)
		for _, id := range h.IDs(t) {
			if _, ok := formed[id]; !ok {
				formed[id] = r.clock.Now()
			}
		}
		r.deliver(t) // the deliverer runs as it would
	}
	if len(formed) != 20 {
		t.Fatalf("%d batches, want 20", len(formed))
	}
	end := at.Add(20*time.Hour + period)
	for step := 0; !r.clock.Now().After(end); step++ {
		if step > 10000 {
			t.Fatal("the deliverer does not get on")
		}
		now := r.clock.Now()
		next := r.deliver(t)
		after := r.batches(t)
		for _, p := range r.recv.drain() {
			id := p.header.Get(dispatcher.HeaderWebhookID)
			if !now.Before(formed[id].Add(period)) && !now.Equal(formed[id].Add(period)) {
				t.Errorf("batch %s posted at %v, after its period", id, now.Sub(at))
			}
			// The probe is the oldest batch waiting.
			posted := r.batch(t, id)
			for _, b := range after {
				if pending(b.State) && b.First < posted.First {
					t.Errorf("at %v the probe went to batch %d while batch %d waits", now.Sub(at), posted.First, b.First)
				}
			}
		}
		for _, b := range after {
			if !now.Before(formed[b.ID].Add(period)) && pending(b.State) {
				t.Fatalf("at %v batch %d is %s, its period over at %v", now.Sub(at), b.First, b.State, formed[b.ID].Add(period).Sub(at))
			}
		}
		if !next.After(now) {
			t.Fatalf("at %v Deliver wants to run again at %v", now.Sub(at), next.Sub(at))
		}
		r.clock.Set(next)
	}
	var unposted int
	for _, b := range r.batches(t) {
		if b.State != dispatcher.StateFailed {
			t.Errorf("batch %d: %s", b.First, b.State)
		}
		switch {
		case len(b.Records) == 0:
			unposted++
			if b.Reason != "retry period of 1d over without an attempt: the endpoint is failing" {
				t.Errorf("batch %d never tried: reason %q", b.First, b.Reason)
			}
		case b.Reason == "HTTP 503 Service Unavailable":
			// Failed by its last attempt, at the end of its period.
			if last := b.Records[len(b.Records)-1]; !last.At.Equal(formed[b.ID].Add(period)) {
				t.Errorf("batch %d failed by an attempt at %v", b.First, last.At.Sub(at))
			}
		case b.Reason != fmt.Sprintf("retry period of 1d over after %d attempt%s", len(b.Records), map[bool]string{true: "s"}[len(b.Records) > 1]):
			t.Errorf("batch %d after %d attempts: reason %q", b.First, len(b.Records), b.Reason)
		}
	}
	if unposted == 0 {
		t.Error("every batch was posted: the outage did not outlast the period")
	}
	st := r.d.Stats()
	t.Logf("%d batches failed unposted; stats %+v", unposted, st)
	if st.BatchesExpired+st.BatchesFailed != 20 || st.EventsExpired+st.EventsFailed != 2000 || st.BatchesExpired < int64(unposted) {
		t.Errorf("stats %+v", st)
	}
	if st.Attempts > 60 {
		t.Errorf("%d attempts against a dead endpoint in %v", st.Attempts, end.Sub(at))
	}

	// The receiver is back; replay, from another process, lifts the hold.
	r.recv.setStatus(200)
	r.deliver(t)
	if n := len(r.recv.drain()); n != 0 {
		t.Fatalf("%d posts with nothing pending", n)
	}
	if n := h.Replay(t, r.clock.Now()); n != 20 {
		t.Fatalf("replayed %d batches, want 20", n)
	}
	r.deliver(t)
	posts := r.recv.drain()
	want := r.batches(t)
	if len(posts) != len(want) {
		t.Fatalf("%d posts after the replay, want %d at once", len(posts), len(want))
	}
	for i, p := range posts {
		if p.header.Get(dispatcher.HeaderWebhookID) != want[i].ID || want[i].State != dispatcher.StateSucceeded {
			t.Errorf("post %d after the replay: %s, want batch %d succeeded", i, p.header.Get(dispatcher.HeaderWebhookID), want[i].First)
		}
	}
}

// testFixResumes: fixing the settings of a failing endpoint lifts the
// hold at once, however long the backoff had grown.
func testFixResumes(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(503), nil)
	h.Store(t, manyEvents("d", event.Queued, 300)...)
	r.form(t)
	for r.d.Stats().Attempts < 10 {
		r.clock.Set(r.deliver(t))
	}
	r.recv.drain()
	if b := r.batches(t)[0]; b.State != dispatcher.StateDeferred || b.Next.Sub(r.clock.Now()) < time.Hour {
		t.Fatalf("after 10 failures the oldest batch is %s, due in %v; want hours", b.State, b.Next.Sub(r.clock.Now()))
	}
	// Nothing new before the fix.
	if r.deliver(t); len(r.recv.drain()) != 0 {
		t.Fatal("posted during the hold")
	}
	r.recv.setStatus(200)
	r.change(func(s *settings.EventWebhook) { s.Endpoint += "?fixed=1" })
	r.d.SettingsChanged()
	r.deliver(t)
	posts := r.recv.drain()
	// Every batch goes out now, in event order: first the one that kept
	// failing, then the two never tried.
	if len(posts) != 3 {
		t.Fatalf("%d posts after the fix, want all 3", len(posts))
	}
	last := int64(0)
	for _, p := range posts {
		b := r.batch(t, p.header.Get(dispatcher.HeaderWebhookID))
		if b.State != dispatcher.StateSucceeded || b.Records[len(b.Records)-1].Endpoint != r.settings().Endpoint {
			t.Errorf("batch %d after the fix: %s to %s", b.First, b.State, b.Records[len(b.Records)-1].Endpoint)
		}
		if b.First < last {
			t.Errorf("batch %d posted after batch %d", b.First, last)
		}
		last = b.First
	}
}

// testFailOldestSkipsLeased: the batch in flight — the oldest, when the
// probe of a dead endpoint hangs — neither fails nor counts towards the
// events to fail.
func testFailOldestSkipsLeased(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	ctx := context.Background()
	h.Store(t, manyEvents("d", event.Queued, 300)...)
	r.form(t)
	ids, err := h.Outbox.ClaimDue(ctx, at, at.Add(time.Hour), 1)
	if err != nil || len(ids) != 1 {
		t.Fatalf("claim: %v %v", ids, err)
	}
	batches, events, err := h.Outbox.FailOldest(ctx, 100, at, "spool full")
	if err != nil || batches != 1 || events != 100 {
		t.Fatalf("FailOldest = %d batches, %d events, %v; want 1, 100", batches, events, err)
	}
	got := r.batches(t)
	if got[0].ID != ids[0] || pending(got[0].State) != true || got[1].State != dispatcher.StateFailed || !pending(got[2].State) {
		t.Errorf("states %s %s %s; want the leased oldest pending, the next failed", got[0].State, got[1].State, got[2].State)
	}
}

// testReplayDuringProbe: a replay made while the probe that starts the
// hold is in flight lifts that hold, as one made just after it would.
func testReplayDuringProbe(t *testing.T, h Harness) {
	recv := newScript(400, 503, 200) // the first batch fails for good, the second starts the hold
	r := newRig(t, h, recv, nil)
	h.Store(t, manyEvents("d", event.Queued, 300)...)
	r.form(t)
	var requests atomic.Int32
	recv.before = func() {
		if requests.Add(1) == 2 {
			// During the 503: `posthorn replay` queues the failed batch
			// again (from another process, as far as the dispatcher knows).
			if n := h.Replay(t, r.clock.Now()); n != 1 {
				t.Errorf("replayed %d batches, want 1", n)
			}
		}
	}
	r.deliver(t)
	posts := r.recv.drain()
	if len(posts) != 5 {
		t.Fatalf("%d posts, want 5: the failure, the probe, then the three batches at once", len(posts))
	}
	for _, b := range r.batches(t) {
		if b.State != dispatcher.StateSucceeded {
			t.Errorf("batch %d: %s after the replay lifted the hold", b.First, b.State)
		}
	}
}

// testPeriodEndsTogether: batches formed together end their periods at the
// same moment; behind a dead endpoint all of them are failed then, and
// none is posted after it.
func testPeriodEndsTogether(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(503), func(s *settings.EventWebhook) { s.RetryPeriod = settings.Duration(time.Hour) })
	h.Store(t, manyEvents("d", event.Queued, 500)...)
	r.form(t)
	end := at.Add(time.Hour)
	for step := 0; r.clock.Now().Before(end.Add(time.Minute)); step++ {
		if step > 20000 { // it wakes every second (Poll) while held
			t.Fatal("the deliverer does not get on")
		}
		next := r.deliver(t)
		if next.IsZero() || next.After(end.Add(time.Minute)) {
			break
		}
		r.clock.Set(next)
	}
	for _, b := range r.batches(t) {
		if b.State != dispatcher.StateFailed {
			t.Errorf("batch %d is %s a minute after its period ended", b.First, b.State)
		}
		for _, a := range b.Records {
			if a.At.After(end) {
				t.Errorf("batch %d posted %v after its period", b.First, a.At.Sub(end))
			}
		}
	}
}

// testLiftError: when lifting the hold cannot reach the store, Deliver
// reports it and posts nothing; the next run lifts it and delivers.
func testLiftError(t *testing.T, h Harness) {
	for i, method := range []string{"Replays", "RetryNow"} {
		t.Run(method, func(t *testing.T) {
			r := newRig(t, h, newScript(503), nil)
			h.Store(t, manyEvents(fmt.Sprintf("lift%d", i), event.Queued, 200)...)
			r.form(t)
			r.deliver(t) // the probe fails: held
			r.recv.drain()
			r.recv.setStatus(200)
			r.change(func(s *settings.EventWebhook) { s.Endpoint += "?fixed=1" })
			h.FailOn(method)
			if _, err := r.d.Deliver(context.Background()); !errors.Is(err, ErrInjected) {
				t.Fatalf("Deliver = %v, want the injected error", err)
			}
			if n := len(r.recv.drain()); n != 0 {
				t.Fatalf("%d posts after the error", n)
			}
			h.FailOn("")
			r.deliver(t)
			if n := len(r.recv.drain()); n != 2 {
				t.Errorf("%d posts after the error cleared, want both batches", n)
			}
		})
	}
}

// testNextClaim: the batch whose body is made in advance is the one
// ClaimDue then takes, batch after batch, and none when none is due.
func testNextClaim(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	ctx := context.Background()
	h.Store(t, manyEvents("d", event.Queued, 1000)...)
	r.form(t)
	for i := 0; ; i++ {
		next, ok, err := h.Outbox.NextClaim(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := h.Outbox.ClaimDue(ctx, at, at.Add(time.Hour), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if len(ids) != 0 {
				t.Fatalf("NextClaim found nothing, ClaimDue took %v", ids)
			}
			if i != 10 {
				t.Errorf("%d batches claimed, want 10", i)
			}
			return
		}
		if len(ids) != 1 || ids[0] != next {
			t.Fatalf("claim %d: NextClaim %s, ClaimDue %v", i, next, ids)
		}
	}
}

// testPreparedBody: the next batch's body is made while a POST is in
// flight; when the settings change meanwhile it is made again with the new
// ones, and otherwise it is the body posted.
func testPreparedBody(t *testing.T, h Harness) {
	recv := newScript(200)
	r := newRig(t, h, recv, nil)
	h.Store(t, manyEvents("d", event.Queued, 300)...)
	r.form(t)
	var requests atomic.Int32
	recv.before = func() {
		if requests.Add(1) == 2 {
			// The third batch's body is being made from the settings
			// before this change.
			r.change(func(s *settings.EventWebhook) { s.JSON = false })
		}
	}
	r.deliver(t)
	posts := r.recv.drain()
	if len(posts) != 3 {
		t.Fatalf("%d posts, want 3", len(posts))
	}
	for i, want := range []string{dispatcher.ContentTypeJSON, dispatcher.ContentTypeJSON, dispatcher.ContentTypeForm} {
		if got := posts[i].header.Get("Content-Type"); got != want {
			t.Errorf("post %d: Content-Type %q, want %q", i+1, got, want)
		}
		b := r.batch(t, posts[i].header.Get(dispatcher.HeaderWebhookID))
		if !bytes.Equal(b.Body, posts[i].body) {
			t.Errorf("post %d: the body posted is not the one frozen", i+1)
		}
	}
}

// testStreamFormsTogether: in a stream of events, batches that close soon
// after others were stored are stored with the next ones, within half a
// second; after a quiet spell a batch is stored at once.
func testStreamFormsTogether(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	h.Store(t, manyEvents("a", event.Queued, 100)...)
	r.form(t)
	if n := len(h.IDs(t)); n != 1 {
		t.Fatalf("%d batches stored after a quiet start, want 1 at once", n)
	}
	h.Store(t, manyEvents("b", event.Queued, 100)...)
	next := r.form(t)
	if n := len(h.IDs(t)); n != 1 {
		t.Fatalf("%d batches stored in a stream, want the second kept for the next store", n)
	}
	if wait := next.Sub(at); wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("the forming loop comes back after %v, want within half a second", wait)
	}
	r.clock.Set(next)
	r.form(t)
	if n := len(h.IDs(t)); n != 2 {
		t.Fatalf("%d batches stored when the wait ended, want 2", n)
	}
	r.clock.Set(at.Add(time.Minute))
	h.Store(t, manyEvents("c", event.Queued, 100)...)
	r.form(t)
	if n := len(h.IDs(t)); n != 3 {
		t.Fatalf("%d batches stored after a quiet minute, want 3", n)
	}
}

// testTurnedOff: with the Event Webhook turned off (no endpoint), batches
// formed before are not attempted; they go out when an endpoint is saved.
func testTurnedOff(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(200), nil)
	h.Store(t, manyEvents("d", event.Queued, 200)...)
	r.form(t)
	endpoint := r.settings().Endpoint
	r.change(func(s *settings.EventWebhook) {
		s.Endpoint, s.Deliveries, s.Bounces, s.Blocks = "", false, false, false
	})
	r.d.SettingsChanged()
	r.deliver(t)
	if n := len(r.recv.drain()); n != 0 {
		t.Fatalf("%d posts while the webhook is off", n)
	}
	for _, b := range r.batches(t) {
		if b.State != dispatcher.StateQueued || b.Attempts != 0 {
			t.Errorf("batch %d while off: %s after %d attempts", b.First, b.State, b.Attempts)
		}
	}
	r.change(func(s *settings.EventWebhook) { s.Endpoint, s.Deliveries = endpoint, true })
	r.d.SettingsChanged()
	r.deliver(t)
	if n := len(r.recv.drain()); n != 2 {
		t.Errorf("%d posts once an endpoint is saved, want 2", n)
	}
}

// testFailingFormsLessOften: while the endpoint fails, batches are stored
// at most every 5 s, and every 500 ms again once it answers.
func testFailingFormsLessOften(t *testing.T, h Harness) {
	r := newRig(t, h, newScript(503, 200), nil)
	h.Store(t, manyEvents("a", event.Queued, 100)...)
	r.form(t)
	r.deliver(t) // 503: failing
	r.clock.Set(at.Add(time.Second))
	h.Store(t, manyEvents("b", event.Queued, 100)...)
	next := r.form(t)
	for len(h.IDs(t)) == 1 && next.Before(at.Add(time.Minute)) {
		r.clock.Set(next)
		next = r.form(t)
	}
	if stored := r.clock.Now().Sub(at); stored != 5*time.Second {
		t.Fatalf("the second batch stored %v after the first, want 5 s while failing", stored)
	}
	r.recv.drain()
	for i := 0; len(r.recv.drain()) == 0; i++ { // held until the retry, which gets 200
		if i > 100 {
			t.Fatal("no retry")
		}
		if next := r.deliver(t); !next.IsZero() {
			r.clock.Set(next)
		}
	}
	if r.clock.Now().Before(at.Add(5 * time.Second)) {
		t.Fatal("the clock went back")
	}
	h.Store(t, manyEvents("c", event.Queued, 100)...)
	start := r.clock.Now()
	r.form(t)
	h.Store(t, manyEvents("d", event.Queued, 100)...)
	if next := r.form(t); next.Sub(start) > 500*time.Millisecond {
		t.Errorf("after a success the next store waits %v, want at most 500 ms", next.Sub(start))
	}
}
