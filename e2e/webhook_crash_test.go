package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/loggen"
	"github.com/posthorn/posthorn/settings"
)

// TestEventWebhookCrash SIGKILLs serve again and again while it reads a
// maillog and posts its events — sometimes while a POST is in flight (the
// receiver has the body but serve never learns the answer), sometimes
// between posts — and restarts it. Afterwards every stored event has been
// received at least once, and every duplicate carries the same event id in
// the same batch (webhook-id) with the same bytes. The receiver's CA is
// trusted through SSL_CERT_FILE here (the Postfix test uses ca_file).
func TestEventWebhookCrash(t *testing.T) {
	sample, err := os.ReadFile("../cmd/posthorn/sample.log")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := loggen.New(string(sample))
	if err != nil {
		t.Fatal(err)
	}
	dir := testDir(t)
	maillog := filepath.Join(dir, "mail.log")
	var all bytes.Buffer
	if err := tpl.Write(&all, 20000); err != nil {
		t.Fatal(err)
	}
	// The log grows by a chunk before every start, so kills land while
	// serve reads as well as while it posts.
	lines := strings.SplitAfter(all.String(), "\n")
	cfg := writeConfig(t, dir, maillog, "year = 2026\ntimezone = \"UTC\"\nbatch_lines = 500")
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte("server_composition = \"e2e-composition\"\n"), data...), 0o644)
	db := filepath.Join(dir, "posthorn.db")

	recv := startReceiver(t)
	recv.delay = 2 * time.Millisecond
	t.Setenv("SSL_CERT_FILE", recv.caFile)
	importSettings(t, dir, cfg, hookSettings(recv.url, "", "  version: 3\n  json: true\n  max_events: 100\n"))

	// Every request the receiver sees, answered or not: an in-flight kill
	// happens before the answer, and the body then counts as received.
	type seenPost struct {
		id   string
		body []byte
		ids  []string
	}
	var mu sync.Mutex
	var seenAll []seenPost
	var requests atomic.Int64
	var killAt atomic.Int64 // request number at which to kill, 0: none
	var current atomic.Pointer[daemon]
	recv.before = func(p post) int {
		var ids []string
		for _, r := range p.records {
			ids = append(ids, r["id"])
		}
		mu.Lock()
		seenAll = append(seenAll, seenPost{p.id, p.body, ids})
		mu.Unlock()
		if n := requests.Add(1); n == killAt.Load() {
			if d := current.Load(); d != nil {
				d.cmd.Process.Kill() // mid-request: serve never sees the answer
			}
		}
		return 0
	}

	rng := rand.New(rand.NewPCG(3, 4))
	const rounds = 10
	inflight := 0
	for round := range rounds {
		appendFile(t, maillog, []byte(strings.Join(lines[round*len(lines)/rounds:(round+1)*len(lines)/rounds], "")))
		d := startServe(t, cfg)
		current.Store(d)
		target := requests.Load() + 2 + rng.Int64N(8)
		if round%2 == 0 {
			killAt.Store(target)
			inflight++
		} else {
			killAt.Store(0)
		}
		deadline := time.After(60 * time.Second)
		for requests.Load() < target {
			select {
			case err := <-d.done:
				d.done <- err
			case <-deadline:
				t.Fatalf("round %d: no request %d within 60 s; serve's log ends:\n%s", round, target, tail(d.log.Name(), 15))
			case <-recv.notify:
			case <-time.After(20 * time.Millisecond):
			}
			if d.cmd.ProcessState != nil || processDone(d) {
				break
			}
		}
		current.Store(nil)
		d.cmd.Process.Kill()
		<-d.done
		d.done <- nil // for the cleanup's check
	}

	// The last run finishes the log and every batch.
	d := startServe(t, cfg)
	waitFor(t, d, 2*time.Minute, "the whole log consumed", func() bool {
		c, ok := storeCursor(t, db, "file:"+maillog)
		return ok && c.Offset == fileSize(t, maillog)
	})
	evs := storedEvents(t, db)
	want := map[string]bool{}
	for _, e := range evs {
		if e.Type.Family() != settings.Blocks {
			want[e.ID] = true
		}
	}
	received := func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		got := map[string]bool{}
		for _, p := range seenAll {
			for _, id := range p.ids {
				got[id] = true
			}
		}
		return got
	}
	waitFor(t, d, 2*time.Minute, fmt.Sprintf("all %d events received", len(want)), func() bool {
		got := received()
		for id := range want {
			if !got[id] {
				return false
			}
		}
		return true
	})
	if took, err := d.stop(t); err != nil || took > 5*time.Second {
		t.Errorf("stop: %v after %v", err, took)
	}

	mu.Lock()
	defer mu.Unlock()
	batchOf := map[string]string{} // event id → webhook-id
	bodyOf := map[string][]byte{}  // webhook-id → body
	dupBatches, dupEvents := 0, 0
	seenEvent := map[string]int{}
	for _, p := range seenAll {
		if b, ok := bodyOf[p.id]; ok {
			dupBatches++
			if !bytes.Equal(b, p.body) {
				t.Errorf("batch %s posted again with other bytes", p.id)
			}
		}
		bodyOf[p.id] = p.body
		for _, id := range p.ids {
			if !want[id] {
				t.Errorf("event %s posted but not stored", id)
			}
			if seenEvent[id]++; seenEvent[id] == 2 {
				dupEvents++
			}
			if b, ok := batchOf[id]; ok && b != p.id {
				t.Errorf("event %s posted in batch %s and in batch %s", id, b, p.id)
			}
			batchOf[id] = p.id
		}
	}
	t.Logf("%d events, %d posts, %d kills (%d mid-request): %d batches and %d events received more than once",
		len(want), len(seenAll), rounds, inflight, dupBatches, dupEvents)
	if len(want) < 5000 {
		t.Errorf("only %d events: the log is too small for the test to mean much", len(want))
	}
}

// processDone reports whether the daemon has exited, without waiting.
func processDone(d *daemon) bool {
	select {
	case err := <-d.done:
		d.done <- err
		return true
	default:
		return false
	}
}
