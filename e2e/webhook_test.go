package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/e2e/postfixtest"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/internal/nettest"
	"github.com/posthorn/posthorn/settings"
)

const (
	hookUser   = "mailer"
	hookPass   = "pa ss:word"
	hookKey    = "key-e2e"
	hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// post is one request the receiver accepted.
type post struct {
	id      string // webhook-id
	attempt string
	ct      string
	body    []byte
	family  string
	records []map[string]string
	at      time.Time
}

// receiver is a real HTTPS Event Webhook endpoint: it checks every request
// as a strict receiver would (method, auth, signature, format) and keeps
// what it accepted.
type receiver struct {
	t      testing.TB
	url    string
	caFile string

	mu      sync.Mutex
	posts   []post
	records int
	errs    []string
	// before, when set, runs before each answer; it returns the status to
	// answer with (0: 200).
	before func(p post) int
	// delay before answering, to keep requests in flight.
	delay time.Duration
	// notify gets a value after every accepted post, without blocking.
	notify chan struct{}
}

func startReceiver(t testing.TB) *receiver {
	t.Helper()
	r := &receiver{t: t, notify: make(chan struct{}, 1)}
	url, caFile := nettest.HTTPSReceiver(t, r)
	r.url, r.caFile = url+"/events", caFile
	return r
}

func (r *receiver) fail(w http.ResponseWriter, format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	http.Error(w, "bad request", http.StatusBadRequest)
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.fail(w, "read body: %v", err)
		return
	}
	if req.Method != http.MethodPost || req.URL.Path != "/events" || req.Proto != "HTTP/1.1" {
		r.fail(w, "%s %s %s", req.Method, req.URL.Path, req.Proto)
		return
	}
	if u, p, ok := req.BasicAuth(); !ok || u != hookUser || p != hookPass {
		r.fail(w, "basic auth %q %q %v", u, p, ok)
		return
	}
	key, _ := settings.Secret(hookSecret).SigningKey()
	id := req.Header.Get("webhook-id")
	ts, _ := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	if want := dispatcher.Sign(key, id, time.Unix(ts, 0), body); !hmac.Equal([]byte(want), []byte(req.Header.Get("webhook-signature"))) {
		r.fail(w, "signature of %s does not verify", id)
		return
	}
	p := post{id: id, attempt: req.Header.Get("Posthorn-Attempt"), ct: req.Header.Get("Content-Type"), body: body, at: time.Now()}
	if err := p.decode(); err != nil {
		r.fail(w, "post %s: %v", id, err)
		return
	}
	if r.delay > 0 {
		time.Sleep(r.delay) // the endpoint's own latency, not test synchronisation
	}
	status := 200
	if r.before != nil {
		if s := r.before(p); s != 0 {
			status = s
		}
	}
	if status == 200 {
		r.mu.Lock()
		r.posts = append(r.posts, p)
		r.records += len(p.records)
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "received %d records", len(p.records))
}

// decode reads a form (versions 1, 2) or JSON (2, 3) body, checking the
// parameters of WIRE.md §2.
func (p *post) decode() error {
	var params struct {
		APIKey            string                                  `json:"api_key"`
		ServerComposition string                                  `json:"server_composition"`
		EventType         string                                  `json:"event_type"`
		Event             map[string][]map[string]json.RawMessage `json:"event"`
	}
	switch p.ct {
	case dispatcher.ContentTypeForm:
		v, err := url.ParseQuery(string(p.body))
		if err != nil {
			return err
		}
		params.APIKey, params.ServerComposition, params.EventType = v.Get("api_key"), v.Get("server_composition"), v.Get("event_type")
		if err := json.Unmarshal([]byte(v.Get("event")), &params.Event); err != nil {
			return fmt.Errorf("event parameter: %w", err)
		}
	case dispatcher.ContentTypeJSON:
		dec := json.NewDecoder(bytes.NewReader(p.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&params); err != nil {
			return err
		}
	default:
		return fmt.Errorf("content type %q", p.ct)
	}
	if params.APIKey != hookKey || params.ServerComposition != "e2e-composition" {
		return fmt.Errorf("api_key %q server_composition %q", params.APIKey, params.ServerComposition)
	}
	recs, ok := params.Event[params.EventType]
	if !ok || len(params.Event) != 1 || len(recs) == 0 {
		return fmt.Errorf("event_type %s, event keys %d", params.EventType, len(params.Event))
	}
	p.family = params.EventType
	for _, rec := range recs {
		m := map[string]string{}
		for k, raw := range rec {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("field %s is not a string: %s", k, raw)
			}
			m[k] = s
		}
		p.records = append(p.records, m)
	}
	return nil
}

func (r *receiver) snapshot() (posts []post, records int, errs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.posts), r.records, slices.Clone(r.errs)
}

// hookSettings is the YAML the tests import.
func hookSettings(endpoint, caFile string, extra string) string {
	ca := ""
	if caFile != "" {
		ca = fmt.Sprintf("  ca_file: %q\n", caFile)
	}
	return fmt.Sprintf(`event_webhook:
  endpoint: %q
  deliveries: true
  bounces: true
  timezone: UTC
  basic_user: %q
  basic_password: %q
  api_key: %q
  signing_secret: %q
  interval: 1
%s%s`, endpoint, hookUser, hookPass, hookKey, hookSecret, ca, extra)
}

// posthornCmd runs the binary and returns its output; it fails the test
// unless the exit status is want.
func posthornCmd(t *testing.T, want int, args ...string) string {
	t.Helper()
	cmd := exec.Command(posthorn, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("posthorn %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	if code != want {
		t.Fatalf("posthorn %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

// importSettings writes the settings YAML and imports it with the CLI.
func importSettings(t *testing.T, dir, cfg, yaml string) {
	t.Helper()
	f := filepath.Join(dir, "webhook.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	posthornCmd(t, 0, "settings", "import", f, "--config", cfg)
}

// wantRecord is the record a stored event must arrive as: the event
// encoded on its own with the same settings.
func wantRecord(t *testing.T, s settings.EventWebhook, e event.Event) map[string]string {
	t.Helper()
	ct, body, err := dispatcher.Encode(s, "e2e-composition", e.Type.Family(), []event.Event{e})
	if err != nil {
		t.Fatal(err)
	}
	p := post{ct: ct, body: body}
	if err := p.decode(); err != nil {
		t.Fatal(err)
	}
	return p.records[0]
}

func recordKey(family string, m map[string]string) string {
	b, _ := json.Marshal(m) // map keys sorted: a canonical form
	return family + " " + string(b)
}

// TestEventWebhookFromRealPostfix sends mail through a private Postfix
// whose recipients meet different outcomes; `posthorn serve` follows its
// maillog and posts to a real HTTPS receiver (its CA trusted through the
// ca_file setting). For every recipient the receiver must get the
// deliveries and bounces records the outcome implies, in version 2 form
// encoding with Basic auth, api_key and a valid signature — exactly the
// stored events, each at least once.
func TestEventWebhookFromRealPostfix(t *testing.T) {
	const ok, rcpt5xx, data5xx, flaky, local = postfixtest.DomainOK, postfixtest.DomainRcpt5xx, postfixtest.DomainData5xx, postfixtest.DomainFlaky, postfixtest.LocalDomain
	inst := postfixtest.Start(t, postfixtest.Options{})
	recv := startReceiver(t)
	dir := testDir(t)
	db := filepath.Join(dir, "posthorn.db")
	cfg := writeConfig(t, dir, inst.MaillogPath(), "")
	// server_composition is a top-level key: put it in front.
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte("server_composition = \"e2e-composition\"\n"), data...), 0o644)
	importSettings(t, dir, cfg, hookSettings(recv.url, recv.caFile, ""))

	// test-webhook posts a sample through the same path and prints the answer.
	out := posthornCmd(t, 0, "test-webhook", "--config", cfg)
	if !strings.Contains(out, "HTTP 200 OK") || !strings.Contains(out, "received 2 records") {
		t.Errorf("test-webhook printed:\n%s", out)
	}
	if _, n, _ := recv.snapshot(); n != 2 {
		t.Fatalf("test-webhook: receiver got %d records", n)
	}

	d := startServe(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rcpts := []string{"bob@" + ok, "u@" + rcpt5xx, "u@" + data5xx, "u@" + flaky, "nosuchuser@" + local, "nobody@" + local}
	a := inst.Send(t, "alice@"+ok, rcpts, postfixtest.Header("Subject", "webhook e2e"))
	inst.WaitLog(t, ctx, postfixtest.Delivery(a.QueueID, "u@"+flaky, "deferred"))
	inst.Heal(t, flaky)
	inst.Flush(t)
	inst.WaitQueueEmpty(t, ctx)
	maillog := inst.MaillogPath()
	waitFor(t, d, time.Minute, "serve to consume the maillog", func() bool {
		c, ok := storeCursor(t, db, "file:"+maillog)
		return ok && c.Offset == fileSize(t, maillog)
	})
	evs := storedEvents(t, db)
	want := 2 // the test-webhook sample
	for _, e := range evs {
		if e.Type.Family() != settings.Blocks {
			want++
		}
	}
	waitFor(t, d, time.Minute, fmt.Sprintf("%d records at the receiver", want), func() bool {
		_, n, _ := recv.snapshot()
		return n >= want
	})
	posts, _, errs := recv.snapshot()
	for _, e := range errs {
		t.Errorf("receiver refused a request: %s", e)
	}

	t.Logf("%d stored events, %d posts", len(evs), len(posts))
	// Exactly the stored events, as records of their settings.
	s := settings.Default()
	s.Timezone, s.APIKey, s.Deliveries, s.Bounces = "UTC", hookKey, true, true
	wantSet := map[string]int{}
	for _, e := range evs {
		wantSet[recordKey(e.Type.Family(), wantRecord(t, s, e))]++
	}
	gotSet := map[string]int{}
	type rec struct {
		family string
		r      map[string]string
	}
	byRcpt := map[string][]rec{}
	v2Deliveries := []string{"apiData", "created", "from", "messageId", "reason", "returnPath", "senderIp", "sourceIp", "status", "subject", "to"}
	for _, p := range posts {
		if p.ct != dispatcher.ContentTypeForm || !strings.HasPrefix(p.id, "batch_") {
			t.Errorf("post %s: content type %s", p.id, p.ct)
		}
		for _, r := range p.records {
			if r["to"] == "recipient@example.com" {
				continue // test-webhook's sample
			}
			gotSet[recordKey(p.family, r)]++
			byRcpt[r["to"]] = append(byRcpt[r["to"]], rec{p.family, r})
			if p.family == settings.Deliveries {
				keys := slices.Sorted(func(yield func(string) bool) {
					for k := range r {
						if !yield(k) {
							return
						}
					}
				})
				if !slices.Equal(keys, v2Deliveries) {
					t.Errorf("deliveries record fields %v", keys)
				}
			}
		}
	}
	for k, n := range wantSet {
		if gotSet[k] < n {
			t.Errorf("stored event never posted: %s", k)
		}
	}
	for k := range gotSet {
		if wantSet[k] == 0 {
			t.Errorf("posted record matches no stored event: %s", k)
		}
	}

	// Per recipient, the outcome Postfix had.
	for _, c := range []struct {
		rcpt, seq string // regular expression over the deliveries statuses in order
		bounce    string // the bounces record's status (class), "" for none
	}{
		{"bob@" + ok, "queued succeeded", ""},
		{"u@" + rcpt5xx, "queued failed", "2"},
		{"u@" + data5xx, "queued failed", "4"},
		{"u@" + flaky, "queued (deferred )+succeeded", ""},
		{"nosuchuser@" + local, "queued failed", "2"},
		{"nobody@" + local, "queued succeeded", ""},
	} {
		var statuses []string
		var bounces []string
		recs := byRcpt[c.rcpt]
		slices.SortStableFunc(recs, func(x, y rec) int { return strings.Compare(x.r["created"], y.r["created"]) })
		for _, x := range recs {
			r := x.r
			if r["messageId"] != "<"+a.MessageID+">" || r["returnPath"] != "alice@"+ok {
				t.Errorf("%s: record %v", c.rcpt, r)
			}
			if _, err := time.Parse("2006-01-02 15:04:05", r["created"]); err != nil {
				t.Errorf("%s: created %q", c.rcpt, r["created"])
			}
			if x.family == settings.Bounces {
				bounces = append(bounces, r["status"])
			} else {
				statuses = append(statuses, r["status"])
			}
		}
		seq := sequence(toEvents(statuses))
		if !regexp.MustCompile("^" + c.seq + "$").MatchString(seq) {
			t.Errorf("%s: deliveries %q, want %q", c.rcpt, seq, c.seq)
		}
		var wantBounces []string
		if c.bounce != "" {
			wantBounces = []string{c.bounce}
		}
		if !slices.Equal(bounces, wantBounces) {
			t.Errorf("%s: bounces %v, want %q", c.rcpt, bounces, c.bounce)
		}
	}

	// The log has every batch succeeded, and its CSV has WIRE.md's columns.
	csv := posthornCmd(t, 0, "log", "events", "--csv", "--config", cfg)
	lines := strings.Split(strings.TrimSuffix(csv, "\n"), "\n")
	if lines[0] != "received,status,hostName,endpointUrl,reason" || len(lines) < 3 {
		t.Errorf("log CSV:\n%s", csv)
	}
	for _, l := range lines[1:] {
		// WIRE.md §5: no reason for a succeeded row.
		if !strings.HasSuffix(l, ",succeeded,e2e,"+recv.url+",") {
			t.Errorf("log row %q", l)
		}
	}
	if took, err := d.stop(t); err != nil || took > 5*time.Second {
		t.Errorf("stop: %v after %v", err, took)
	}
}

// toEvents wraps statuses as events for sequence(), which orders same-second
// records by their place in a recipient's life.
func toEvents(statuses []string) []event.Event {
	var out []event.Event
	for _, s := range statuses {
		out = append(out, event.Event{Type: event.Type(s)})
	}
	return out
}
