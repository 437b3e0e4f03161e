package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/internal/console"
	"github.com/posthorn/posthorn/logtail"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
)

// discardSink takes batches and keeps nothing.
type discardSink struct{}

func (discardSink) Commit(context.Context, event.Batch) error { return nil }

// TestMetricsScrape runs the log reader over the bundled sample into a
// store, as serve does, and scrapes the metrics: the line counts, the
// events by type (which must equal what `posthorn parse --sample` counts),
// the spool, and what the dispatcher's and milter's observers recorded.
// The posthorn_ families, but for the file size, are compared with
// testdata/metrics.txt; the exposition passes client_golang's linter.
func TestMetricsScrape(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	spool := console.Spool{Store: store}

	now := sampleWritten.Add(time.Hour)
	m := newMetrics(func() time.Time { return now })
	src, mtime, err := openInput(sampleName)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tl := &logtail.Tailer{
		Source:     src,
		Sink:       countingSink{store, m},
		Resolver:   logtail.NewResolver(time.UTC, mtime, 0),
		Correlator: logtail.NewCorrelator(logtail.CorrelatorOptions{Persist: true}),
	}
	m.follow(tl, spool, store.Path())
	if err := tl.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// The Event Webhook dispatcher forms the sample's events into
	// batches; with max_pending 10 the oldest are failed unposted, and
	// counted as spool_full.
	clock := now
	ws := settings.Default()
	ws.Deliveries, ws.Bounces = true, true
	d, err := dispatcher.New(dispatcher.Options{Outbox: store, Settings: func() settings.EventWebhook { return ws },
		MaxPending: 10, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	m.followWebhook(d.Stats)
	for range 2 { // the second round closes the batches opened by the first
		if _, err := d.Form(ctx); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Hour)
	}
	if d.Stats().OverflowEvents == 0 {
		t.Fatal("no events failed for max_pending")
	}
	m.observePost(dispatcher.PostReport{Webhook: dispatcher.WebhookEvent, State: dispatcher.StateSucceeded, Status: 200, Took: 40 * time.Millisecond})
	m.observePost(dispatcher.PostReport{Webhook: dispatcher.WebhookEvent, State: dispatcher.StateDeferred, Status: 503, Took: 2 * time.Second})
	m.observePost(dispatcher.PostReport{Webhook: dispatcher.WebhookEvent, State: dispatcher.StateDeferred, Took: 30 * time.Second})
	m.observePost(dispatcher.PostReport{Webhook: dispatcher.WebhookInbound, Filter: "support", State: dispatcher.StateSucceeded, Status: 204, Took: 8 * time.Millisecond})
	m.observeMilter("captured", 3*time.Millisecond)
	m.observeMilter("refused", 200*time.Microsecond)

	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	// What `posthorn parse --sample` counts: the same reader, its own
	// correlator.
	src2, _, err := openInput(sampleName)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	corr := logtail.NewCorrelator(logtail.CorrelatorOptions{})
	parse := &logtail.Tailer{Source: src2, Sink: discardSink{}, Resolver: logtail.NewResolver(time.UTC, mtime, 0), Correlator: corr}
	if err := parse.Run(ctx); err != nil {
		t.Fatal(err)
	}
	want := corr.Stats().Events
	if n := testutil.CollectAndCount(m.events); n != len(want) {
		t.Errorf("posthorn_events_total has %d types, parse counts %d: %v", n, len(want), want)
	}
	for typ, n := range want {
		if got := testutil.ToFloat64(m.events.WithLabelValues(string(typ))); got != float64(n) {
			t.Errorf("posthorn_events_total{type=%q} = %v, parse counts %d", typ, got, n)
		}
	}

	body := scrape(t, m.handler(slog.New(slog.DiscardHandler)))
	values := map[string]string{}
	var keep strings.Builder
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		name, rest, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE "), " ")
		if !strings.HasPrefix(name, "posthorn_") {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			values[name] = rest
		}
		if strings.HasPrefix(name, "posthorn_spool_bytes") {
			continue // depends on SQLite's page layout
		}
		keep.WriteString(line + "\n")
	}
	if values["posthorn_log_lines_read_total"] != strconv.FormatInt(parse.Summary().Lines, 10) || parse.Summary().Lines != 177 {
		t.Errorf("posthorn_log_lines_read_total %s, parse read %d, the sample has 177 lines", values["posthorn_log_lines_read_total"], parse.Summary().Lines)
	}
	size, err := fileBytes(store.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got := values["posthorn_spool_bytes"]; got != strconv.FormatInt(size, 10) || size == 0 {
		t.Errorf("posthorn_spool_bytes %s, the files hold %d", got, size)
	}
	st, err := spool.SpoolStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range st {
		if got := values[`posthorn_webhook_pending{webhook="`+w.Webhook+`"}`]; got != strconv.FormatInt(w.Pending, 10) {
			t.Errorf("posthorn_webhook_pending{webhook=%q} %s, the store has %d", w.Webhook, got, w.Pending)
		}
	}
	if got, want := values[`posthorn_webhook_events_failed_total{reason="spool_full",webhook="event"}`], strconv.FormatInt(d.Stats().OverflowEvents, 10); got != want {
		t.Errorf("posthorn_webhook_events_failed_total{reason=\"spool_full\"} %s, the dispatcher counted %s", got, want)
	}
	checkGolden(t, "metrics.txt", []byte(keep.String()))
}

// TestMetricsListener: metrics.listen serves /metrics and nothing else.
func TestMetricsListener(t *testing.T) {
	m := newMetrics(time.Now)
	m.observeMilter("tempfail", time.Millisecond)
	stop, addr, err := startMetrics("127.0.0.1:0", m.handler(slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for path, code := range map[string]int{"/metrics": http.StatusOK, "/": http.StatusNotFound, "/login": http.StatusNotFound} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, code)
		}
		if code == http.StatusOK && !strings.Contains(string(body), `posthorn_milter_decisions_total{decision="tempfail"} 1`) {
			t.Errorf("GET %s: no milter decision in\n%s", path, body)
		}
	}
	if _, _, err := startMetrics("127.0.0.1:-1", http.NotFoundHandler(), slog.New(slog.DiscardHandler)); err == nil || !strings.HasPrefix(err.Error(), "listen for metrics: ") {
		t.Errorf("bad address: err %v, want listen for metrics: …", err)
	}
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}
