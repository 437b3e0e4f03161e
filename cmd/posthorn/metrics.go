package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/logtail"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// metrics is what serve exports at /metrics. This is the only package
// that imports client_golang: the components count in plain structs
// (logtail.Tailer.Summary) or tell a callback (the dispatchers' and the
// milter's Options.Observe), and the values are read or recorded here. Counters that components keep
// are read at scrape time by a collector, so a scrape costs a few locks
// and the store's two single-row index reads per webhook.
type metrics struct {
	reg *prometheus.Registry

	events        *prometheus.CounterVec   // by type, as committed
	postAttempts  *prometheus.CounterVec   // by webhook, result and HTTP code
	postSeconds   *prometheus.HistogramVec // by webhook
	milterResults *prometheus.CounterVec   // by decision
	milterSeconds prometheus.Histogram
	pruned        *prometheus.CounterVec // by table

	mu      sync.Mutex
	tailer  *logtail.Tailer
	spool   spoolStatus
	dbPath  string
	webhook func() dispatcher.Stats // the Event Webhook dispatcher's counters
	now     func() time.Time
}

// spoolStatus is the part of the console's spool reader the metrics need.
type spoolStatus interface {
	SpoolStatus(ctx context.Context) ([]ui.WebhookStatus, error)
}

// Buckets of the latency histograms. Posts: from a local receiver's few
// milliseconds up to the post timeout. The milter answers at the end of
// DATA while smtpd waits: milliseconds, the store's commit included.
var (
	postBuckets   = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	milterBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}
)

// newMetrics builds the registry. now is the clock of the oldest pending
// item's age.
func newMetrics(now func() time.Time) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posthorn_events_total",
			Help: "Delivery events derived from the maillog and stored, by type.",
		}, []string{"type"}),
		postAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posthorn_webhook_post_attempts_total",
			Help: "Webhook posts made, by webhook (event, inbound), the state they left the batch or message in (succeeded, deferred, failed) and the HTTP status (none without an answer).",
		}, []string{"webhook", "result", "code"}),
		postSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "posthorn_webhook_post_duration_seconds",
			Help:    "Time a webhook post took, from connecting to the end of the answer, by webhook (event, inbound).",
			Buckets: postBuckets,
		}, []string{"webhook"}),
		milterResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posthorn_milter_decisions_total",
			Help: "Answers of the inbound milter at the end of a message, by decision (captured, refused, tempfail; for bounce mail: bounce, bounce_ignored, bounce_unmatched).",
		}, []string{"decision"}),
		milterSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "posthorn_milter_decision_duration_seconds",
			Help:    "Time the inbound milter took to answer at the end of a message, while Postfix waits.",
			Buckets: milterBuckets,
		}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posthorn_store_pruned_rows_total",
			Help: "Rows deleted from the store because they were older than store.retention (observations: milter.observation_ttl), by table.",
		}, []string{"table"}),
		now: now,
	}
	// Every table is exported from the start, so that a rate over the
	// first prune sees it go up from 0.
	for _, t := range prunedTables {
		m.pruned.WithLabelValues(t)
	}
	m.reg.MustRegister(m.events, m.postAttempts, m.postSeconds, m.milterResults, m.milterSeconds, m.pruned,
		(*pipelineCollector)(m),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry in the exposition format. A failed store
// read drops the metrics it feeds from the answer, not the answer.
func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// follow makes the collector read the log reader's counts, the spool and
// the database file's size from now on.
func (m *metrics) follow(t *logtail.Tailer, spool spoolStatus, dbPath string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tailer, m.spool, m.dbPath = t, spool, dbPath
}

// followWebhook makes the collector read the Event Webhook dispatcher's
// counters (Dispatcher.Stats) from now on.
func (m *metrics) followWebhook(stats func() dispatcher.Stats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.webhook = stats
}

// observePost counts an attempt of either dispatcher. The inbound
// filter's name is not a label: names are the user's, and a label per
// filter would grow the series with every rename.
func (m *metrics) observePost(r dispatcher.PostReport) {
	code := "none"
	if r.Status != 0 {
		code = strconv.Itoa(r.Status)
	}
	m.postAttempts.WithLabelValues(r.Webhook, r.State, code).Inc()
	m.postSeconds.WithLabelValues(r.Webhook).Observe(r.Took.Seconds())
}

// observeMilter is the milter's Options.Observe.
func (m *metrics) observeMilter(decision string, took time.Duration) {
	m.milterResults.WithLabelValues(decision).Inc()
	m.milterSeconds.Observe(took.Seconds())
}

// observePruned counts the rows a prune deleted.
func (m *metrics) observePruned(p sqlite.Pruned) {
	for t, n := range p {
		m.pruned.WithLabelValues(t).Add(float64(n))
	}
}

// countingSink counts the events of each batch the store committed.
type countingSink struct {
	logtail.Sink
	m *metrics
}

func (c countingSink) Commit(ctx context.Context, b event.Batch) error {
	err := c.Sink.Commit(ctx, b)
	if err != nil {
		return err
	}
	n := map[event.Type]int{}
	for i := range b.Events {
		n[b.Events[i].Type]++
	}
	for typ, k := range n {
		c.m.events.WithLabelValues(string(typ)).Add(float64(k))
	}
	return nil
}

// pipelineCollector reads the components' own counters at scrape time.
type pipelineCollector metrics

var (
	descLinesRead = prometheus.NewDesc("posthorn_log_lines_read_total",
		"Maillog lines read.", nil, nil)
	descLinesRecognised = prometheus.NewDesc("posthorn_log_lines_recognised_total",
		"Maillog lines recognised as Postfix's and parsed.", nil, nil)
	descLinesNotUnderstood = prometheus.NewDesc("posthorn_log_lines_not_understood_total",
		"Postfix lines of the maillog the parser could not read (logged at debug level).", nil, nil)
	descPending = prometheus.NewDesc("posthorn_webhook_pending",
		"Items waiting to be posted: events for the event webhook, posts for the inbound one.", []string{"webhook"}, nil)
	descOldest = prometheus.NewDesc("posthorn_webhook_oldest_pending_age_seconds",
		"Age of the oldest item waiting to be posted; 0 when none waits.", []string{"webhook"}, nil)
	descSpoolBytes = prometheus.NewDesc("posthorn_spool_bytes",
		"Size of the database file and its write-ahead log.", nil, nil)
	descEventsFailed = prometheus.NewDesc("posthorn_webhook_events_failed_total",
		"Events the event webhook gave up on, by reason: attempt (a permanent failure, or the last attempt of the retry period failing), retry_period (the period ended with no further attempt), spool_full (more than max_pending events waited; failed unposted).", []string{"webhook", "reason"}, nil)
)

func (p *pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinesRead, descLinesRecognised, descLinesNotUnderstood, descPending, descOldest, descSpoolBytes, descEventsFailed} {
		ch <- d
	}
}

// scrapeTimeout bounds the store reads of one scrape; Prometheus's own
// default scrape timeout is 10 s.
const scrapeTimeout = 5 * time.Second

func (p *pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	tailer, spool, dbPath, webhook := p.tailer, p.spool, p.dbPath, p.webhook
	p.mu.Unlock()
	if webhook != nil {
		st := webhook()
		for reason, n := range map[string]int64{"attempt": st.EventsFailed, "retry_period": st.EventsExpired, "spool_full": st.OverflowEvents} {
			ch <- prometheus.MustNewConstMetric(descEventsFailed, prometheus.CounterValue, float64(n), dispatcher.WebhookEvent, reason)
		}
	}
	if tailer != nil {
		s := tailer.Summary()
		ch <- prometheus.MustNewConstMetric(descLinesRead, prometheus.CounterValue, float64(s.Lines))
		ch <- prometheus.MustNewConstMetric(descLinesRecognised, prometheus.CounterValue, float64(s.Postfix))
		ch <- prometheus.MustNewConstMetric(descLinesNotUnderstood, prometheus.CounterValue, float64(s.NotUnderstood))
	}
	if spool != nil {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		st, err := spool.SpoolStatus(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descPending, fmt.Errorf("read spool status: %w", err))
		}
		now := p.now()
		for _, w := range st {
			ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(w.Pending), w.Webhook)
			age := 0.0
			if !w.Oldest.IsZero() {
				age = max(now.Sub(w.Oldest).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age, w.Webhook)
		}
	}
	if dbPath != "" {
		n, err := fileBytes(dbPath)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descSpoolBytes, err)
		} else {
			ch <- prometheus.MustNewConstMetric(descSpoolBytes, prometheus.GaugeValue, float64(n))
		}
	}
}

// fileBytes is the size of an SQLite database with its write-ahead log
// (which holds recent commits until a checkpoint). A missing log is none.
func fileBytes(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("measure database: %w", err)
	}
	n := fi.Size()
	if wal, err := os.Stat(path + "-wal"); err == nil {
		n += wal.Size()
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("measure database: %w", err)
	}
	return n, nil
}

// startMetrics serves /metrics alone on addr (metrics.listen). It returns
// once the listener is open, with the address it listens on.
func startMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), bound net.Addr, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, ln.Addr(), nil
}
