package dispatcher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
)

// The store is the inbound dispatcher's outbox.
var _ dispatcher.InboundOutbox = (*sqlite.Store)(nil)

// updateGolden reports -update, which another test file of the package
// declares.
func updateGolden() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	return ok && g.Get() == true
}

func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "inbound", name)
	if updateGolden() {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

var pdf = append([]byte("%PDF-1.4\n\x00\x01\xff\r\n"), bytes.Repeat([]byte{0xfe}, 10)...)

func sampleMessage() *event.InboundMessage {
	return &event.InboundMessage{
		Host: "mx.test", QueueID: "4bX1", Received: time.Date(2026, 3, 14, 5, 6, 7, 0, time.UTC),
		EnvelopeFrom: "s@customer.example",
		Headers: []event.Header{
			{Name: "From", Value: `山田 "Taro" <a@customer.example>`},
			{Name: "Received", Value: "from a by b"}, {Name: "Received", Value: "from c by d"},
			{Name: "Subject", Value: "請求書 <送付> & more"},
		},
		From: `山田 "Taro" <a@customer.example>`, Subject: "請求書 <送付> & more", MessageID: "<m1@customer.example>",
		Text: "本文です。\n二行目\n", HTML: "<p>本文です。</p>\n",
		Attachments: []event.Attachment{
			{Filename: `請求書 "2026".pdf`, ContentType: "application/pdf", Size: int64(len(pdf)), Content: bytes.NewReader(pdf)},
			{Filename: "", ContentType: "", Size: 3, Content: strings.NewReader("abc")},
		},
	}
}

func sampleFilter() settings.InboundFilter {
	f := settings.NewInboundFilter("orders", "https://hooks.example/in", settings.Condition{Header: "To", Pattern: "^orders@"})
	f.APIKey = "key-123"
	return f
}

func TestEncodeInboundGolden(t *testing.T) {
	rcpts := []string{"orders@shop.example", "billing@shop.example"}
	for _, c := range []struct {
		name string
		mod  func(*settings.InboundFilter)
	}{
		{"multipart.golden", func(*settings.InboundFilter) {}},
		{"json.golden", func(f *settings.InboundFilter) { f.JSON = true }},
		{"json-bearer.golden", func(f *settings.InboundFilter) { f.JSON, f.APIKeyBearer = true, true }},
	} {
		f := sampleFilter()
		c.mod(&f)
		ct, body, err := dispatcher.EncodeInbound(sampleMessage(), f, rcpts, "mx-composition", "msg_0123abcd")
		if err != nil {
			t.Fatal(err)
		}
		goldenFile(t, c.name, append([]byte("Content-Type: "+ct+"\n\n"), body...))
	}
}

// TestEncodeInboundReadBack reads the multipart body with the standard
// library, as a receiver would, and the JSON body with encoding/json.
func TestEncodeInboundReadBack(t *testing.T) {
	m := sampleMessage()
	ct, body, err := dispatcher.EncodeInbound(m, sampleFilter(), []string{"orders@shop.example"}, "comp", "msg_1")
	if err != nil {
		t.Fatal(err)
	}
	fields, files := readMultipart(t, ct, body)
	want := map[string]string{
		"api_key": "key-123", "server_composition": "comp", "filter": "orders", "subject": m.Subject,
		"text": m.Text, "html": m.HTML, "envelope-from": m.EnvelopeFrom, "envelope-to": "orders@shop.example", "attachments": "2",
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, fields[k], v)
		}
	}
	var hdrs []event.Header
	if err := json.Unmarshal([]byte(fields["headers"]), &hdrs); err != nil || fmt.Sprint(hdrs) != fmt.Sprint(m.Headers) {
		t.Errorf("headers field %q (%v)", fields["headers"], err)
	}
	if f := files["attachment1"]; f.filename != `請求書 "2026".pdf` || f.ctype != "application/pdf" || !bytes.Equal(f.data, pdf) {
		t.Errorf("attachment1 = %q %q %q", f.filename, f.ctype, f.data)
	}
	if f := files["attachment2"]; f.filename != "attachment2" || f.ctype != "application/octet-stream" || string(f.data) != "abc" {
		t.Errorf("attachment2 = %+v", f)
	}

	// JSON: no attachments, but their number.
	m = sampleMessage()
	f := sampleFilter()
	f.JSON = true
	ct, body, err = dispatcher.EncodeInbound(m, f, []string{"a@x", "b@x"}, "comp", "msg_1")
	if err != nil || ct != "application/json" {
		t.Fatal(ct, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	if obj["attachments"] != 2.0 || obj["envelope-to"] != "a@x,b@x" || obj["api_key"] != "key-123" || len(obj["headers"].([]any)) != 4 {
		t.Errorf("JSON body %s", body)
	}
}

type file struct {
	filename, ctype string
	data            []byte
}

func readMultipart(t *testing.T, ct string, body []byte) (map[string]string, map[string]file) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("content type %q: %v", ct, err)
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	fields, files := map[string]string{}, map[string]file{}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(p)
		if p.FileName() != "" {
			files[p.FormName()] = file{p.FileName(), p.Header.Get("Content-Type"), data}
		} else {
			fields[p.FormName()] = string(data)
		}
	}
	return fields, files
}

// receiver is an HTTPS endpoint whose answers a test sets per path.
type receiver struct {
	srv    *httptest.Server
	caFile string
	mu     sync.Mutex
	status map[string]int    // by path; 200 when unset
	header map[string]string // extra answer header, e.g. Retry-After
	got    []*received
}

type received struct {
	path string
	hdr  http.Header
	body []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: map[string]int{}, header: map[string]string{}}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, &received{req.URL.Path, req.Header.Clone(), body})
		code := r.status[req.URL.Path]
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		r.mu.Unlock()
		if code == 0 {
			code = 200
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "answer %d", code)
	}))
	t.Cleanup(r.srv.Close)
	r.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
	if err := os.WriteFile(r.caFile, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *receiver) set(path string, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[path] = code
}

func (r *receiver) requests(path string) []*received {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*received
	for _, g := range r.got {
		if g.path == path {
			out = append(out, g)
		}
	}
	return out
}

// clock is the test's time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type scenario struct {
	t     *testing.T
	store *sqlite.Store
	clock *clock
	recv  *receiver
	set   settings.Inbound
	d     *dispatcher.Inbound
	n     int

	mu      sync.Mutex
	reports []dispatcher.PostReport // what Observe was told
	logs    bytes.Buffer
}

// observed returns the reports so far and the log, under the lock the
// posting goroutines take.
func (sc *scenario) observed() ([]dispatcher.PostReport, string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return slices.Clone(sc.reports), sc.logs.String()
}

func (sc *scenario) Write(p []byte) (int, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.logs.Write(p)
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	c := &clock{now: time.Date(2026, 3, 14, 5, 0, 0, 0, time.UTC)}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "p.db"), sqlite.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sc := &scenario{t: t, store: store, clock: c, recv: newReceiver(t)}
	mk := func(name string) settings.InboundFilter {
		f := settings.NewInboundFilter(name, sc.recv.srv.URL+"/"+name, settings.Condition{Header: "To", Pattern: "^" + name + "@"})
		f.CAFile = sc.recv.caFile
		return f
	}
	a, b, c2 := mk("a"), mk("b"), mk("c")
	b.JSON, b.APIKey, b.APIKeyBearer = true, "tok", true
	c2.SigningSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	sc.set = settings.Inbound{Domains: []string{"shop.example"}, Filters: []settings.InboundFilter{a, b, c2}}
	sc.d, err = dispatcher.NewInbound(dispatcher.InboundOptions{
		Outbox: store, Settings: func() settings.Inbound { return sc.set }, ServerComposition: "comp",
		Now: c.Now, Concurrency: 4,
		Logger: slog.New(slog.NewTextHandler(sc, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observe: func(r dispatcher.PostReport) {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			sc.reports = append(sc.reports, r)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// capture stores a message for the recipient name@shop.example, matched by
// filter name.
func (sc *scenario) capture(filter string) {
	sc.t.Helper()
	sc.n++
	m := sampleMessage()
	m.Received, m.QueueID = sc.clock.Now(), fmt.Sprint("Q", sc.n)
	m.Subject = fmt.Sprint("message ", sc.n)
	m.Recipients = []event.InboundRecipient{{Address: filter + "@shop.example", Filters: []string{filter}}}
	if err := sc.store.Capture(context.Background(), m); err != nil {
		sc.t.Fatal(err)
	}
}

func (sc *scenario) round() time.Time {
	sc.t.Helper()
	next, err := sc.d.Round(context.Background())
	if err != nil {
		sc.t.Fatal(err)
	}
	return next
}

// statuses returns the log statuses of a filter's rows, oldest first.
func (sc *scenario) statuses(filter string) string {
	sc.t.Helper()
	rows, err := sc.store.InboundLog(context.Background(), event.InboundQuery{})
	if err != nil {
		sc.t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		if r.Filter == filter {
			out = append(out, string(r.Status))
		}
	}
	return strings.Join(out, " ")
}

func TestInboundDelivers(t *testing.T) {
	sc := newScenario(t)
	sc.capture("a")
	sc.capture("b")
	sc.capture("c")
	if next := sc.round(); !next.IsZero() {
		t.Errorf("next round %v with nothing pending", next)
	}
	if got := sc.statuses("a") + "|" + sc.statuses("b") + "|" + sc.statuses("c"); got != "succeeded|succeeded|succeeded" {
		t.Errorf("statuses %s", got)
	}
	a, b, c := sc.recv.requests("/a"), sc.recv.requests("/b"), sc.recv.requests("/c")
	if len(a) != 1 || len(b) != 1 || len(c) != 1 {
		t.Fatalf("requests a=%d b=%d c=%d", len(a), len(b), len(c))
	}
	fields, files := readMultipart(t, a[0].hdr.Get("Content-Type"), a[0].body)
	if fields["subject"] != "message 1" || fields["filter"] != "a" || fields["envelope-to"] != "a@shop.example" || len(files) != 2 ||
		!bytes.Equal(files["attachment1"].data, pdf) {
		t.Errorf("multipart post: %v %v", fields, files)
	}
	if a[0].hdr.Get("Posthorn-Attempt") != "1" || !strings.HasPrefix(a[0].hdr.Get("User-Agent"), "posthorn/") || a[0].hdr.Get("webhook-signature") != "" {
		t.Errorf("headers of a: %v", a[0].hdr)
	}
	var obj map[string]any
	if err := json.Unmarshal(b[0].body, &obj); err != nil || b[0].hdr.Get("Authorization") != "Bearer tok" || obj["api_key"] != nil || obj["subject"] != "message 2" {
		t.Errorf("JSON post: %s %v (%v)", b[0].body, b[0].hdr, err)
	}
	if sig := c[0].hdr.Get("webhook-signature"); !strings.HasPrefix(sig, "v1,") || !strings.HasPrefix(c[0].hdr.Get("webhook-id"), "msg_") {
		t.Errorf("signed post headers: %v", c[0].hdr)
	}
	// The content is gone once posted.
	if n, _ := sc.store.PendingInbound(context.Background()); n != 0 {
		t.Errorf("pending %d", n)
	}
}

// TestInboundProbesFailingEndpoint: while an endpoint fails, one message is
// tried per retry interval; when it answers again, the queue drains.
func TestInboundProbesFailingEndpoint(t *testing.T) {
	sc := newScenario(t)
	sc.recv.set("/a", 503)
	for range 6 {
		sc.capture("a")
	}
	next := sc.round()
	first := len(sc.recv.requests("/a"))
	if first != 4 { // one batch of Concurrency requests found it failing
		t.Errorf("first round made %d requests, want 4", first)
	}
	if want := sc.clock.Now().Add(time.Minute); !next.Equal(want) {
		t.Errorf("next round at %v, want %v (the retry interval)", next, want)
	}
	if got := sc.statuses("a"); got != "deferred deferred deferred deferred queued queued" {
		t.Errorf("statuses %s", got)
	}
	// Before the interval nothing is tried, even after a new capture.
	sc.clock.advance(30 * time.Second)
	sc.capture("a")
	sc.d.Notify()
	sc.round()
	if n := len(sc.recv.requests("/a")); n != first {
		t.Errorf("%d requests during the back-off", n-first)
	}
	// At the interval: one probe, still failing.
	sc.clock.advance(30 * time.Second)
	sc.round()
	if n := len(sc.recv.requests("/a")); n != first+1 {
		t.Errorf("%d requests at the first probe, want 1", n-first)
	}
	// The endpoint is back: the probe succeeds and the rest follow.
	sc.recv.set("/a", 200)
	sc.clock.advance(time.Minute)
	if next := sc.round(); !next.IsZero() {
		t.Errorf("next round %v after draining", next)
	}
	if got := sc.statuses("a"); got != "succeeded succeeded succeeded succeeded succeeded succeeded succeeded" {
		t.Errorf("statuses after recovery %s", got)
	}
	if n := len(sc.recv.requests("/a")); n != first+1+7 {
		t.Errorf("%d requests in all, want %d", n, first+1+7)
	}
	// Every request was reported once, for metrics and alerts, and
	// logged with the message's queue ID and the endpoint.
	reports, logs := sc.observed()
	states := map[string]int{}
	for _, r := range reports {
		if r.Webhook != dispatcher.WebhookInbound || r.Filter != "a" || r.Endpoint != sc.recv.srv.URL+"/a" {
			t.Errorf("report %+v", r)
		}
		states[r.State]++
	}
	if len(reports) != first+1+7 || states["deferred"] != first+1 || states["succeeded"] != 7 {
		t.Errorf("%d reports by state %v, want one per request", len(reports), states)
	}
	if n := strings.Count(logs, `msg="inbound post deferred" filter=a`); n != first+1 ||
		!strings.Contains(logs, "endpoint="+sc.recv.srv.URL+"/a queue_id=Q1 message_id=") {
		t.Errorf("%d deferral lines, want %d with endpoint and queue ID:\n%s", n, first+1, logs)
	}
	// Attempt numbers count on for the messages tried before.
	attempts := map[string]int{}
	for _, r := range sc.recv.requests("/a") {
		attempts[r.hdr.Get("Posthorn-Attempt")]++
	}
	if attempts["1"] != 7 || attempts["2"] != 5 {
		t.Errorf("attempt headers %v", attempts)
	}
}

// TestInboundRetryPeriodOver: with the endpoint down for longer than the
// retry period, every message ends failed — the ones probed and the ones
// never tried — with the endpoint's last error as the reason.
func TestInboundRetryPeriodOver(t *testing.T) {
	sc := newScenario(t)
	sc.recv.set("/a", 502)
	for range 6 {
		sc.capture("a")
	}
	for i := 0; i < 30 && sc.statuses("a") != strings.TrimSpace(strings.Repeat("failed ", 6)); i++ {
		sc.round()
		sc.clock.advance(time.Hour)
	}
	if got := sc.statuses("a"); got != strings.TrimSpace(strings.Repeat("failed ", 6)) {
		t.Fatalf("statuses %s", got)
	}
	rows, _ := sc.store.InboundLog(context.Background(), event.InboundQuery{})
	for _, r := range rows {
		if r.Reason != "retry period over: HTTP 502 Bad Gateway" {
			t.Errorf("reason %q", r.Reason)
		}
	}
	// 4 at the start, then one probe per hour for about a day (the clock
	// moves an hour per round), never the whole queue.
	if n := len(sc.recv.requests("/a")); n < 20 || n > 30 {
		t.Errorf("%d requests in the retry period", n)
	}
	if n, _ := sc.store.PendingInbound(context.Background()); n != 0 {
		t.Errorf("pending %d", n)
	}
}

func TestInboundPermanentAndRetryAfter(t *testing.T) {
	sc := newScenario(t)
	sc.recv.set("/a", 400)
	sc.capture("a")
	sc.capture("a")
	sc.round()
	if got := sc.statuses("a"); got != "failed failed" {
		t.Errorf("a 400 fails the message at once, not the endpoint: %s", got)
	}
	rows, _ := sc.store.InboundLog(context.Background(), event.InboundQuery{Statuses: []event.InboundStatus{event.InboundFailed}})
	if len(rows) != 2 || rows[0].Reason != "HTTP 400 Bad Request" {
		t.Errorf("failed rows %+v", rows)
	}

	sc.recv.set("/b", 429)
	sc.recv.header["Retry-After"] = "300"
	sc.capture("b")
	next := sc.round()
	if want := sc.clock.Now().Add(5 * time.Minute); !next.Equal(want) {
		t.Errorf("next round %v, want %v (Retry-After beats the interval)", next, want)
	}
}

func TestInboundFilterDeleted(t *testing.T) {
	sc := newScenario(t)
	sc.capture("c")
	sc.set.Filters = sc.set.Filters[:2]
	sc.round()
	rows, _ := sc.store.InboundLog(context.Background(), event.InboundQuery{})
	if len(rows) != 1 || rows[0].Status != event.InboundFailed || rows[0].Reason != `filter "c" no longer exists` {
		t.Errorf("rows %+v", rows)
	}
	if len(sc.recv.got) != 0 {
		t.Error("posted for a deleted filter")
	}
}

// TestInboundRun: Run posts what is captured when notified, and stops
// with its context.
func TestInboundRun(t *testing.T) {
	sc := newScenario(t)
	d, err := dispatcher.NewInbound(dispatcher.InboundOptions{Outbox: sc.store, Settings: func() settings.Inbound { return sc.set }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	sc.store.Capture(context.Background(), func() *event.InboundMessage {
		m := sampleMessage()
		m.Received = time.Now()
		m.Recipients = []event.InboundRecipient{{Address: "a@shop.example", Filters: []string{"a"}}}
		return m
	}())
	d.Notify()
	// Polls the state of the system under test; the deadline only ends
	// a hung test.
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for sc.statuses("a") != "succeeded" {
		select {
		case <-deadline:
			break wait
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := sc.statuses("a"); got != "succeeded" {
		t.Errorf("status %s", got)
	}
}

// TestInboundBackoffDoesNotBlockOthers: a failing filter's backlog, larger
// than a page, neither hides a healthy filter's later message nor delays
// its next round.
func TestInboundBackoffDoesNotBlockOthers(t *testing.T) {
	sc := newScenario(t)
	d, err := dispatcher.NewInbound(dispatcher.InboundOptions{Outbox: sc.store, Settings: func() settings.Inbound { return sc.set },
		Now: sc.clock.Now, Concurrency: 2, Page: 4})
	if err != nil {
		t.Fatal(err)
	}
	sc.d = d
	sc.recv.set("/a", 503)
	for range 10 {
		sc.capture("a")
	}
	sc.round() // a fails: it backs off for a minute
	sc.clock.advance(time.Second)
	sc.capture("b")
	next := sc.round()
	if got := sc.statuses("b"); got != "succeeded" {
		t.Errorf("b's message behind a's backlog: %s", got)
	}
	if want := sc.clock.Now().Add(59 * time.Second); !next.Equal(want) {
		t.Errorf("next round %v, want the end of a's back-off %v", next, want)
	}
	sc.clock.advance(5 * time.Second)
	sc.capture("c")
	if next := sc.round(); sc.statuses("c") != "succeeded" || next.IsZero() {
		t.Errorf("c: %s, next %v", sc.statuses("c"), next)
	}
	if n := len(sc.recv.requests("/a")); n != 2 {
		t.Errorf("%d requests to the failing endpoint, want 2 (one page's worth of concurrency)", n)
	}
}

// countingOutbox counts the transactions that record attempts.
type countingOutbox struct {
	dispatcher.InboundOutbox
	mu    sync.Mutex
	sizes []int
}

func (c *countingOutbox) RecordInbound(ctx context.Context, a ...dispatcher.InboundAttempt) error {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(a))
	c.mu.Unlock()
	return c.InboundOutbox.RecordInbound(ctx, a...)
}

// TestInboundRecordsTogether: the POSTs a round makes at once are
// recorded in one transaction; a failing endpoint's probe alone.
func TestInboundRecordsTogether(t *testing.T) {
	sc := newScenario(t)
	out := &countingOutbox{InboundOutbox: sc.store}
	d, err := dispatcher.NewInbound(dispatcher.InboundOptions{Outbox: out, Settings: func() settings.Inbound { return sc.set },
		Now: sc.clock.Now, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	sc.d = d
	for range 4 {
		sc.capture("a")
	}
	sc.round()
	if got := fmt.Sprint(out.sizes); got != "[3 1]" {
		t.Errorf("records of 4 POSTs, 3 at a time: %s, want [3 1]", got)
	}
	if got := sc.statuses("a"); got != "succeeded succeeded succeeded succeeded" {
		t.Errorf("statuses %s", got)
	}
	out.sizes = nil
	sc.recv.set("/a", 503)
	sc.capture("a")
	sc.capture("a")
	sc.round() // both fail together: the filter backs off
	sc.clock.advance(time.Hour)
	sc.round() // one probe
	if got := fmt.Sprint(out.sizes); got != "[2 1]" {
		t.Errorf("records: %s, want [2 1] (a round of two, then the probe)", got)
	}
}
