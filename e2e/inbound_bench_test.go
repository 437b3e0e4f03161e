package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/postfixtest"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/internal/nettest"
	"github.com/posthorn/posthorn/sqlite"
)

// The Inbound Webhook's performance targets (issue 4, "Performance"),
// measured end to end with the built binary and a real Postfix. Run with
// make bench (-benchtime 1x: each benchmark does its own fixed amount of
// work and reports its figures as metrics).

// inbBench is a running `posthorn serve` with the milter for a benchmark.
type inbBench struct {
	cmd  *exec.Cmd
	done chan error
	dir  string
	db   string
}

func startInboundServe(b *testing.B, dir, maillog, milterTOML, settingsYAML string) *inbBench {
	b.Helper()
	cfg := filepath.Join(dir, "posthorn.toml")
	db := filepath.Join(dir, "posthorn.db")
	text := fmt.Sprintf("hostname = \"bench\"\n[store]\npath = %q\n[maillog]\npath = %q\nstart = \"end\"\n%s\n[log]\nlevel = \"warn\"\n", db, maillog, milterTOML)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	sf := filepath.Join(dir, "inbound.yaml")
	if err := os.WriteFile(sf, []byte(settingsYAML), 0o600); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(posthorn, "settings", "import", sf, "--config", cfg).CombinedOutput(); err != nil {
		b.Fatalf("settings import: %v\n%s", err, out)
	}
	return runServeB(b, dir, cfg, db)
}

// runServeB runs `posthorn serve --config cfg` for a benchmark, its output
// in dir/serve.log, and stops it (SIGINT, then SIGKILL after 30 s) when the
// benchmark ends.
func runServeB(b *testing.B, dir, cfg, db string) *inbBench {
	b.Helper()
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(posthorn, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &inbBench{cmd: cmd, done: make(chan error, 1), dir: dir, db: db}
	go func() { s.done <- cmd.Wait() }()
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-s.done
		}
		logf.Close()
	})
	return s
}

// waitListen waits until addr accepts connections or serve exits.
func (s *inbBench) waitListen(b *testing.B, addr string) {
	b.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-s.done:
			b.Fatalf("serve exited (%v); see %s", err, filepath.Join(s.dir, "serve.log"))
		case <-deadline:
			b.Fatalf("nothing listens on %s", addr)
		case <-tick.C:
		}
	}
}

// statusKB reads a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func statusKB(b *testing.B, pid int, field string) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// fastReceiver answers every POST with 200 and counts them.
type fastReceiver struct {
	url, caFile string
	n           atomic.Int64
	first, last atomic.Int64
}

func startFastReceiver(b *testing.B) *fastReceiver {
	b.Helper()
	r := &fastReceiver{}
	url, caFile := nettest.HTTPSReceiver(b, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		now := time.Now().UnixNano()
		r.first.CompareAndSwap(0, now)
		r.last.Store(now)
		r.n.Add(1)
	}))
	r.url, r.caFile = url, caFile
	return r
}

func benchSettings(r *fastReceiver, json bool) string {
	return fmt.Sprintf(`inbound:
  domains: [shop.test]
  filters:
    - name: bench
      endpoint: %s/in
      ca_file: %s
      json: %t
      conditions:
        - {header: To, pattern: '^orders@shop\.test$'}
`, r.url, r.caFile, json)
}

// sendSMTP sends one message on a new connection, as MILTER.md §1.5's
// measurement did, and returns how long the session took.
// smtpStages names the parts of an SMTP session sendSMTP times: where the
// milter's overhead lies tells Postfix's own milter plumbing (connecting to
// the milter, handing it to cleanup at DATA, closing it) from Posthorn's
// answers (RCPT, the end of the message).
var smtpStages = []string{"connect", "helo", "mail", "rcpt", "data", "eom", "quit"}

// sendSMTP sends msg in one SMTP session and returns its duration and
// that of each stage of smtpStages.
func sendSMTP(addr, rcpt string, msg []byte) (time.Duration, []time.Duration, error) {
	start := time.Now()
	last := start
	var stages []time.Duration
	mark := func() {
		now := time.Now()
		stages = append(stages, now.Sub(last))
		last = now
	}
	c, err := smtp.Dial(addr)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	mark()
	if err := c.Hello(postfixtest.ClientHelo); err != nil {
		return 0, nil, err
	}
	mark()
	if err := c.Mail("sender@customer.test"); err != nil {
		return 0, nil, err
	}
	mark()
	if err := c.Rcpt(rcpt); err != nil {
		return 0, nil, err
	}
	mark()
	w, err := c.Data()
	if err != nil {
		return 0, nil, err
	}
	mark()
	if _, err := w.Write(msg); err != nil {
		return 0, nil, err
	}
	if err := w.Close(); err != nil {
		return 0, nil, err
	}
	mark()
	if err := c.Quit(); err != nil {
		return 0, nil, err
	}
	mark()
	return time.Since(start), stages, nil
}

func benchMessage(size int) []byte {
	var b strings.Builder
	b.WriteString("From: Customer <a@customer.test>\r\nTo: orders@shop.test\r\nSubject: benchmark order\r\n" +
		"Message-Id: <" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@customer.test>\r\n\r\n")
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}

// cpuTime is the user and system CPU time process pid has used, from
// /proc/PID/stat (in clock ticks of 1/100 s, USER_HZ on Linux).
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, st)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("/proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// BenchmarkMilterOverhead sends the same 2 KB message, alternately, to an
// smtpd without the milter and to one with it (captured and posted), one
// SMTP session per message, and reports the difference of the medians
// (target: at most 1 ms).
func BenchmarkMilterOverhead(b *testing.B) {
	const rounds, perRound = 3, 300
	recv := startFastReceiver(b)
	inPort, plainPort := freePortB(b), freePortB(b)
	inst := postfixtest.Start(b, postfixtest.Options{
		MainCF: []string{
			"milter_default_action = tempfail",
			fmt.Sprintf("smtpd_milters = { inet:127.0.0.1:%d, default_action=tempfail }", inPort),
		},
		// The same smtpd without the milter; its copy is dropped by
		// Postfix's discard transport, as the milter drops the other.
		MasterCF:   []string{fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n  -o smtpd_milters=", plainPort)},
		Transports: map[string]string{"shop.test": "discard:"},
	})
	s := startInboundServe(b, b.TempDir(), inst.MaillogPath(), fmt.Sprintf("[milter]\ninbound = \"inet:127.0.0.1:%d\"", inPort), benchSettings(recv, false))
	s.waitListen(b, fmt.Sprintf("127.0.0.1:%d", inPort))
	msg := benchMessage(2048)
	with, without := inst.SMTPAddr(), fmt.Sprintf("127.0.0.1:%d", plainPort)
	// Warm up both paths (connections, caches, the first SQLite pages).
	for range 20 {
		for _, addr := range []string{with, without} {
			if _, _, err := sendSMTP(addr, "orders@shop.test", msg); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	var overheads []time.Duration
	var all [2][]time.Duration
	var stages [2][][]time.Duration // by side, stage
	for k := range stages {
		stages[k] = make([][]time.Duration, len(smtpStages))
	}
	for r := range rounds {
		var lat [2][]time.Duration
		for i := range perRound {
			// Alternate which goes first, so neither always follows the other.
			order := []int{0, 1}
			if i%2 == 1 {
				order = []int{1, 0}
			}
			for _, k := range order {
				addr := map[int]string{0: without, 1: with}[k]
				d, st, err := sendSMTP(addr, "orders@shop.test", msg)
				if err != nil {
					b.Fatal(err)
				}
				lat[k] = append(lat[k], d)
				for i, sd := range st {
					stages[k][i] = append(stages[k][i], sd)
				}
			}
		}
		p0, p1 := percentile(lat[0], 0.5), percentile(lat[1], 0.5)
		overheads = append(overheads, p1-p0)
		all[0], all[1] = append(all[0], lat[0]...), append(all[1], lat[1]...)
		b.Logf("round %d: p50 without %v, with %v (p90 %v / %v): overhead %v", r+1, p0, p1,
			percentile(lat[0], 0.9), percentile(lat[1], 0.9), p1-p0)
	}
	b.StopTimer()
	over := percentile(overheads, 0.5)
	b.ReportMetric(float64(percentile(all[0], 0.5).Microseconds())/1000, "ms-p50-without")
	b.ReportMetric(float64(percentile(all[1], 0.5).Microseconds())/1000, "ms-p50-with")
	b.ReportMetric(float64(over.Microseconds())/1000, "ms-overhead-p50")
	// Where the overhead lies: the difference of each stage's median.
	for i, name := range smtpStages {
		d := percentile(stages[1][i], 0.5) - percentile(stages[0][i], 0.5)
		b.ReportMetric(float64(d.Microseconds())/1000, "ms-"+name)
	}
	if over > time.Millisecond {
		b.Logf("milter overhead %v is above the 1 ms target", over)
	}
	// Everything was posted.
	want := int64(rounds*perRound + 20)
	deadline := time.After(time.Minute)
	for recv.n.Load() < want {
		select {
		case <-deadline:
			b.Fatalf("posted %d of %d", recv.n.Load(), want)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The work behind each captured message: the milter, the store, the
	// POST and its record, and the log reader (which also reads the other
	// smtpd's lines).
	b.ReportMetric(float64(cpuTime(b, s.cmd.Process.Pid).Microseconds())/1000/float64(want), "ms-cpu-per-msg")
}

// BenchmarkCapture25MB captures one 25 MB message through Postfix and
// reports how much the peak RSS of posthorn grew (target: at most twice the
// message size). The filter posts JSON, which carries no attachment, so
// the figure is the capture's.
func BenchmarkCapture25MB(b *testing.B) {
	const size = 25 << 20
	recv := startFastReceiver(b)
	inPort := freePortB(b)
	inst := postfixtest.Start(b, postfixtest.Options{
		MainCF: []string{
			"milter_default_action = tempfail",
			"message_size_limit = 40000000",
			fmt.Sprintf("smtpd_milters = { inet:127.0.0.1:%d, default_action=tempfail }", inPort),
		},
	})
	s := startInboundServe(b, b.TempDir(), inst.MaillogPath(), fmt.Sprintf("[milter]\ninbound = \"inet:127.0.0.1:%d\"", inPort), benchSettings(recv, true))
	s.waitListen(b, inst.SMTPAddr())
	s.waitListen(b, fmt.Sprintf("127.0.0.1:%d", inPort))
	// A small message first, so that the baseline includes everything a
	// capture sets up once.
	if _, _, err := sendSMTP(inst.SMTPAddr(), "orders@shop.test", benchMessage(2048)); err != nil {
		b.Fatal(err)
	}
	pid := s.cmd.Process.Pid
	before := statusKB(b, pid, "VmRSS")
	peakBefore := statusKB(b, pid, "VmHWM")
	msg := bigMessage(b, size)
	b.ResetTimer()
	d, _, err := sendSMTP(inst.SMTPAddr(), "orders@shop.test", msg)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	peak := statusKB(b, pid, "VmHWM")
	grew := max(peak, peakBefore) - before
	b.ReportMetric(float64(grew)/1024, "MB-rss-growth")
	b.ReportMetric(float64(grew*1024)/float64(len(msg)), "x-message-size")
	b.ReportMetric(d.Seconds(), "s-smtp-session")
	b.Logf("%d MB message: RSS %d MB before, peak %d MB: growth %.2f × the message (session %v)",
		len(msg)>>20, before>>10, peak>>10, float64(grew*1024)/float64(len(msg)), d)
	st, err := sqlite.Open(s.db, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rows, _ := st.InboundLog(context.Background(), event.InboundQuery{})
	if len(rows) != 2 {
		b.Errorf("%d log rows, want 2", len(rows))
	}
}

// bigMessage is a message of about size bytes: text and one base64
// attachment of random bytes.
func bigMessage(b *testing.B, size int) []byte {
	raw := make([]byte, size*3/4-4096)
	rand.Read(raw)
	var sb strings.Builder
	sb.WriteString("From: a@customer.test\r\nTo: orders@shop.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=big\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nsee the attachment\r\n" +
		"--big\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n")
	sb.WriteString(b64Lines(raw))
	sb.WriteString("--big--\r\n")
	return []byte(sb.String())
}

// BenchmarkInboundPostRate stores 3000 captured messages (each with a 10 KB
// attachment) and starts serve: the rate at which they reach a local HTTPS
// endpoint as multipart posts (target: at least 500 per second).
func BenchmarkInboundPostRate(b *testing.B) {
	const n = 3000
	recv := startFastReceiver(b)
	dir := b.TempDir()
	maillog := filepath.Join(dir, "mail.log")
	os.WriteFile(maillog, nil, 0o644)
	db := filepath.Join(dir, "posthorn.db")
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	att := make([]byte, 10<<10)
	rand.Read(att)
	now := time.Now()
	for i := range n {
		m := &event.InboundMessage{
			Host: "bench", QueueID: fmt.Sprint("Q", i), Received: now, EnvelopeFrom: "a@customer.test",
			Recipients: []event.InboundRecipient{{Address: "orders@shop.test", Filters: []string{"bench"}}},
			Headers:    []event.Header{{Name: "From", Value: "a@customer.test"}, {Name: "Subject", Value: "order " + strconv.Itoa(i)}},
			From:       "a@customer.test", Subject: "order " + strconv.Itoa(i), MessageID: fmt.Sprintf("<%d@customer.test>", i),
			Text:        strings.Repeat("line of text\n", 100),
			Attachments: []event.Attachment{{Filename: "a.bin", ContentType: "application/octet-stream", Size: int64(len(att)), Content: strings.NewReader(string(att))}},
		}
		if err := st.Capture(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	st.Close()
	b.ResetTimer()
	s := startInboundServe(b, dir, maillog, "", benchSettings(recv, false))
	deadline := time.After(5 * time.Minute)
	for recv.n.Load() < n {
		select {
		case err := <-s.done:
			b.Fatalf("serve exited: %v", err)
		case <-deadline:
			b.Fatalf("posted %d of %d in 5 minutes", recv.n.Load(), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
	b.StopTimer()
	took := time.Duration(recv.last.Load() - recv.first.Load())
	rate := float64(n) / took.Seconds()
	b.ReportMetric(rate, "posts/s")
	b.Logf("%d posts in %v: %.0f posts/s", n, took, rate)
}

// freePortB is freePort for benchmarks.
func freePortB(b *testing.B) int {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
