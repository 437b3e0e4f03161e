package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/internal/nettest"
	"github.com/posthorn/posthorn/sqlite"
)

// countingReceiver is a fast HTTPS endpoint for benchmarks: it reads each
// body, counts its records and answers 200.
type countingReceiver struct {
	url, caFile string
	records     atomic.Int64
	first, last atomic.Int64 // Unix nanoseconds of the first and last post
	marker      []byte
}

func startCountingReceiver(b *testing.B) *countingReceiver {
	b.Helper()
	r := &countingReceiver{marker: []byte(`{"created":`)}
	url, caFile := nettest.HTTPSReceiver(b, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		now := time.Now().UnixNano()
		r.first.CompareAndSwap(0, now)
		r.records.Add(int64(bytes.Count(body, r.marker)))
		r.last.Store(now)
		w.WriteHeader(http.StatusOK)
	}))
	r.url, r.caFile = url+"/events", caFile
	return r
}

// benchConfig writes a config for a benchmark run in dir.
func benchConfig(b *testing.B, dir, maillog string) string {
	b.Helper()
	cfg := filepath.Join(dir, "posthorn.toml")
	text := fmt.Sprintf("hostname = \"bench\"\nserver_composition = \"e2e-composition\"\n[store]\npath = %q\nretention = \"0\"\n[maillog]\npath = %q\nstart = \"begin\"\nyear = 2026\ntimezone = \"UTC\"\n[log]\nlevel = \"warn\"\n",
		filepath.Join(dir, "posthorn.db"), maillog)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	return cfg
}

func benchImport(b *testing.B, dir, cfg, yaml string) {
	b.Helper()
	f := filepath.Join(dir, "webhook.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(posthorn, "settings", "import", f, "--config", cfg).CombinedOutput(); err != nil {
		b.Fatalf("settings import: %v\n%s", err, out)
	}
}

// countEvents returns how many events of the posted families the store
// holds, read-only.
func countPosted(b *testing.B, db string) int64 {
	b.Helper()
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	n, err := st.CountEvents(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var sum int64
	for t, k := range n {
		if t.Family() != "blocks" {
			sum += k
		}
	}
	return sum
}

// BenchmarkWebhookDelivery measures how fast `posthorn serve` posts a
// stored backlog to one local HTTPS endpoint (version 2 JSON, Basic auth,
// signed), on the same two cores as the receiver. A first run reads the
// maillog with the endpoint dead, leaving every event in queued batches;
// the measured run starts serve again with the endpoint alive, and
// events/s is the rate the endpoint received them at, from its first post
// to its last. Targets: ≥ 50,000 events/s at max_events = 1000, ≥ 5,000
// events/s at max_events = 100. "end-to-end" instead starts from the
// unread log, so serve reads, stores and posts at the same time, and
// reports the rate from serve's start to the last post.
func BenchmarkWebhookDelivery(b *testing.B) {
	for _, c := range []struct {
		name      string
		maxEvents int
		lines     int
		backlog   bool
	}{
		{"backlog/max_events=1000", 1000, benchLines, true},
		{"backlog/max_events=100", 100, 200_000, true},
		{"end-to-end/max_events=1000", 1000, benchLines, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			maillog := benchLog(b)
			if c.lines < benchLines {
				maillog = headLines(b, maillog, c.lines)
			}
			fi, err := os.Stat(maillog)
			if err != nil {
				b.Fatal(err)
			}
			format := fmt.Sprintf("  version: 2\n  json: true\n  max_events: %d\n", c.maxEvents)
			for b.Loop() {
				dir := b.TempDir()
				recv := startCountingReceiver(b)
				cfg := benchConfig(b, dir, maillog)
				db := filepath.Join(dir, "posthorn.db")
				var want int64 = -1
				if c.backlog {
					benchImport(b, dir, cfg, hookSettings(deadEndpoint(b), "", format))
					catchUp(b, cfg, db, maillog)
					want = countPosted(b, db)
					// The batch the dead endpoint was probed with waits
					// for its retry: make it due now like the rest.
					if out, err := exec.Command(posthorn, "replay", "--since", "2000-01-01", "--status", "deferred", "--config", cfg).CombinedOutput(); err != nil {
						b.Fatalf("replay: %v\n%s", err, out)
					}
				}
				benchImport(b, dir, cfg, hookSettings(recv.url, recv.caFile, format))
				cmd := exec.Command(posthorn, "serve", "--config", cfg)
				start := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				deadline := time.Now().Add(5 * time.Minute)
				for {
					if want < 0 {
						if off, ok := cursorOf(db, "file:"+maillog); ok && off == fi.Size() {
							want = countPosted(b, db)
						}
					}
					if want >= 0 && recv.records.Load() >= want {
						break
					}
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						cmd.Wait()
						b.Fatalf("%d of %d events delivered after 5 minutes", recv.records.Load(), want)
					}
					time.Sleep(20 * time.Millisecond) // polling a benchmark's progress, not synchronising a test
				}
				last := recv.last.Load()
				cmd.Process.Signal(os.Interrupt)
				cmd.Wait()
				if c.backlog {
					b.ReportMetric(float64(want)/time.Duration(last-recv.first.Load()).Seconds(), "events/s")
				} else {
					b.ReportMetric(float64(want)/time.Duration(last-start.UnixNano()).Seconds(), "end-to-end-events/s")
				}
				b.ReportMetric(float64(want), "events")
			}
		})
	}
}

// deadEndpoint returns an https URL on a loopback port nothing listens
// on: connections are refused at once.
func deadEndpoint(b *testing.B) string {
	return "https://" + nettest.RefusedAddr(b) + "/events"
}

// silentEndpoint returns an https URL on a loopback port that takes
// connections and never answers, the worse kind of dead endpoint: the
// kernel completes the TCP handshake (the listener never calls Accept), so
// every attempt waits for the whole timeout.
func silentEndpoint(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return "https://" + ln.Addr().String() + "/events"
}

// headLines writes the first n lines of a file to a new file.
func headLines(b *testing.B, path string, n int) string {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	end := 0
	for i := 0; i < n && end < len(data); i++ {
		j := bytes.IndexByte(data[end:], '\n')
		if j < 0 {
			end = len(data)
			break
		}
		end += j + 1
	}
	out := filepath.Join(b.TempDir(), fmt.Sprintf("mail-%d.log", n))
	if err := os.WriteFile(out, data[:end], 0o644); err != nil {
		b.Fatal(err)
	}
	return out
}

const deadPending = 1_000_000

// fillEvents stores n synthetic delivery events.
func fillEvents(st *sqlite.Store, n int) error {
	ctx := context.Background()
	t0 := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	types := []event.Type{event.Queued, event.Succeeded, event.Queued, event.Deferred}
	const chunk = 5000
	for i := 0; i < n; i += chunk {
		evs := make([]event.Event, min(chunk, n-i))
		for k := range evs {
			j := i + k
			sum := sha256.Sum256([]byte(fmt.Sprint("pending ", j)))
			evs[k] = event.Event{ID: hex.EncodeToString(sum[:16]), Type: types[j%len(types)], Time: t0.Add(time.Duration(j) * time.Millisecond),
				Host: "mx1", QueueID: fmt.Sprintf("4Q%010d", j/2), MessageID: fmt.Sprintf("<%d@app.example.com>", j/2),
				ReturnPath: "bounces@app.example.com", To: fmt.Sprintf("user%d@example.org", j),
				Reason: "250 2.0.0 OK queued", Relay: "mx.example.org[192.0.2.25]:25", DSN: "2.0.0"}
		}
		if err := st.Commit(ctx, event.Batch{Events: evs}); err != nil {
			return err
		}
	}
	return nil
}

// fillPending builds a store holding n events in queued batches of 100
// (the default max_events), as a dead endpoint leaves them.
func fillPending(path string, n int) error {
	st, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := fillEvents(st, n); err != nil {
		return err
	}
	ctx := context.Background()
	t0 := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	bt := dispatcher.NewBatcher(100, time.Hour)
	var after int64
	for {
		pend, err := st.Unformed(ctx, after, 50000)
		if err != nil {
			return err
		}
		if len(pend) == 0 {
			break
		}
		var formed []dispatcher.Formed
		prog := map[string]int64{}
		for _, p := range pend {
			if got, full, _ := bt.Add(t0, p); full {
				formed = append(formed, dispatcher.FromBatch(got, "bench", "https://127.0.0.1:1/events"))
				prog[got.Family] = got.Last
			}
		}
		after = pend[len(pend)-1].Seq
		// As the dispatcher does: no family has anything unformed up to
		// here but the open batch's events.
		for _, f := range []string{"deliveries", "bounces", "blocks"} {
			if !bt.Open(f) {
				prog[f] = after
			}
		}
		// Formed now: their retry period runs, as behind an endpoint
		// that just died (formed in the events' past, it would be over,
		// and serve would fail them all at start).
		if err := st.Form(ctx, formed, prog, time.Now()); err != nil {
			return err
		}
	}
	pendingNow, err := st.PendingEvents(ctx)
	if err != nil {
		return err
	}
	if pendingNow < int64(n)-100 {
		return fmt.Errorf("fill pending: %d events pending, want %d", pendingNow, n)
	}
	return nil
}

// lineCount counts the lines of a file.
func lineCount(b *testing.B, path string) int {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Count(data, []byte{'\n'})
}

func copyFile(b *testing.B, from, to string) {
	b.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		b.Fatal(err)
	}
	// Written through to the disk before the run it prepares: otherwise
	// serve's first checkpoint fsync of the database would write out the
	// whole copy inside the time measured.
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// catchUp runs serve until its cursor reaches the end of the log and
// returns the lines per second.
func catchUp(b *testing.B, cfg, db, maillog string) float64 {
	b.Helper()
	fi, err := os.Stat(maillog)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(posthorn, "serve", "--config", cfg)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if off, ok := cursorOf(db, "file:"+maillog); ok && off == fi.Size() {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			b.Fatal("serve did not catch up within 5 minutes")
		}
		time.Sleep(10 * time.Millisecond) // polling a benchmark's progress
	}
	took := time.Since(start)
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	return float64(lineCount(b, maillog)) / took.Seconds()
}

// BenchmarkWebhookDeadEndpoint measures how much a dead endpoint with a
// million events pending slows the log reader: serve catches up on the
// 1M-line log into an empty store without webhook settings (the baseline),
// and into a store holding 1,000,000 pending events in queued batches with
// the Event Webhook on and its endpoint dead (default max_pending, so the
// oldest pending are failed as new ones come) — refusing connections, and
// silent: taking connections and never answering, so attempts run into
// the timeout. Three runs of each, in turn; the metrics are the medians.
// Target: slowdown < 10 %.
func BenchmarkWebhookDeadEndpoint(b *testing.B) {
	maillog := benchLog(b)
	full := filepath.Join(b.TempDir(), "pending.db")
	if err := fillPending(full, deadPending); err != nil {
		b.Fatal(err)
	}
	refused, silent := deadEndpoint(b), silentEndpoint(b)
	withDead := func(endpoint string) float64 {
		dir := b.TempDir()
		db := filepath.Join(dir, "posthorn.db")
		copyFile(b, full, db)
		cfg := benchConfig(b, dir, maillog)
		benchImport(b, dir, cfg, hookSettings(endpoint, "", ""))
		return catchUp(b, cfg, db, maillog)
	}
	for b.Loop() {
		// Alternating runs and medians: the machine's other work shifts
		// single runs by more than the effect measured.
		var plain, withRefused, withSilent []float64
		for range 3 {
			base := b.TempDir()
			plain = append(plain, catchUp(b, benchConfig(b, base, maillog), filepath.Join(base, "posthorn.db"), maillog))
			withRefused = append(withRefused, withDead(refused))
			withSilent = append(withSilent, withDead(silent))
		}
		p, r, s := medianOf(plain), medianOf(withRefused), medianOf(withSilent)
		b.ReportMetric(p, "plain-lines/s")
		b.ReportMetric(r, "dead-endpoint-lines/s")
		b.ReportMetric(100*(1-r/p), "slowdown-%")
		b.ReportMetric(s, "silent-endpoint-lines/s")
		b.ReportMetric(100*(1-s/p), "silent-slowdown-%")
	}
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
