package milter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// fakeSpool records what the milter hands to the store.
type fakeSpool struct {
	mu         sync.Mutex
	captured   []*event.InboundMessage
	contents   [][][]byte // attachment bytes per captured message
	logged     []event.InboundLogEntry
	observed   []event.Observation
	captureErr error
	entered    chan struct{} // Capture signals here, when set ...
	release    chan struct{} // ... and waits for this
}

func (f *fakeSpool) Capture(ctx context.Context, m *event.InboundMessage) error {
	if f.entered != nil {
		f.entered <- struct{}{}
		<-f.release
	}
	var atts [][]byte
	for _, a := range m.Attachments {
		b, err := io.ReadAll(a.Content)
		if err != nil {
			return err
		}
		atts = append(atts, b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.captureErr != nil {
		return f.captureErr
	}
	f.captured = append(f.captured, m)
	f.contents = append(f.contents, atts)
	return nil
}

func (f *fakeSpool) LogInbound(_ context.Context, rows []event.InboundLogEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logged = append(f.logged, rows...)
	return nil
}

func (f *fakeSpool) Observe(_ context.Context, o event.Observation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observed = append(f.observed, o)
	return nil
}

var testNow = time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)

type harness struct {
	srv      *Server
	spool    *fakeSpool
	in, out  string
	serveErr chan error
}

func startHarness(t *testing.T, s settings.Inbound, unknown UnknownDomain, mod func(*Options)) *harness {
	t.Helper()
	p, err := NewPolicy(s, unknown)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{spool: &fakeSpool{}, serveErr: make(chan error, 2)}
	o := Options{Host: "mx.test", Policy: p, Spool: h.spool, TempDir: t.TempDir(), Now: func() time.Time { return testNow }}
	if mod != nil {
		mod(&o)
	}
	h.srv, err = NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	inLn, err := Listen(Address{Network: "tcp", Addr: "127.0.0.1:0"}, SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	outLn, err := Listen(Address{Network: "tcp", Addr: "127.0.0.1:0"}, SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.in, h.out = inLn.Addr().String(), outLn.Addr().String()
	go func() { h.serveErr <- h.srv.ServeInbound(inLn) }()
	go func() { h.serveErr <- h.srv.ServeOutbound(outLn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range 2 {
			if err := <-h.serveErr; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}
	})
	return h
}

// mta plays Postfix's smtpd for one SMTP session.
type mta struct {
	t      *testing.T
	s      *gomilter.ClientSession
	macros *gomilter.MacroBag
}

func dial(t *testing.T, addr string) *mta {
	t.Helper()
	macros := gomilter.NewMacroBag()
	c := gomilter.NewClient("tcp", addr, gomilter.WithActions(gomilter.AllClientSupportedActionMasks))
	s, err := c.Session(macros)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m := &mta{t: t, s: s, macros: macros}
	m.must(s.Conn("client.example", gomilter.FamilyInet, 40000, "192.0.2.7"))
	m.must(s.Helo("client.example"))
	return m
}

func (m *mta) must(a *gomilter.Action, err error) *gomilter.Action {
	m.t.Helper()
	if err != nil {
		m.t.Fatal(err)
	}
	return a
}

// result is the answer to a transaction: where it stopped and with what.
type result struct {
	stage   string // "mail", "rcpt N", "data", "eoh", "eom"
	action  *gomilter.Action
	rcpts   []string // replies per recipient
	modify  []gomilter.ModifyAction
	elapsed time.Duration // of the end of message
}

// stops reports an answer after which Postfix sends no more events for
// the transaction (the library's StopProcessing covers refusals only).
func stops(a *gomilter.Action) bool {
	return a.Type != gomilter.ActionContinue && a.Type != gomilter.ActionSkip
}

func (r result) String() string {
	return fmt.Sprintf("%s %s rcpts=%q", r.stage, r.action, r.rcpts)
}

// send runs one transaction the way Postfix does: MAIL, every RCPT (a
// refused recipient is left out and the others go on), DATA, the header
// fields, EOH, the body and EOM; then ABORT, as Postfix sends after every
// transaction.
func (m *mta) send(queueID, from string, rcpts []string, raw string) result {
	m.t.Helper()
	defer m.s.Abort(nil)
	var res result
	if a := m.must(m.s.Mail(from, "")); stops(a) {
		return result{stage: "mail", action: a}
	}
	accepted := 0
	for i, r := range rcpts {
		if i > 0 {
			m.macros.Set(gomilter.MacroQueueId, queueID) // the queue file exists from the 2nd RCPT
		}
		a := m.must(m.s.Rcpt(r, ""))
		res.rcpts = append(res.rcpts, a.String())
		if a.Type == gomilter.ActionContinue || a.Type == gomilter.ActionAccept {
			accepted++
		}
	}
	if accepted == 0 {
		res.stage = "rcpt"
		return res
	}
	m.macros.Set(gomilter.MacroQueueId, queueID)
	if a := m.must(m.s.DataStart()); stops(a) {
		res.stage, res.action = "data", a
		return res
	}
	fields, body := splitMessage([]byte(raw))
	for _, f := range fields {
		// The protocol carries values as C strings; a NUL cannot cross.
		value := strings.ReplaceAll(f.Raw, "\x00", " ")
		if a := m.must(m.s.HeaderField(f.Name, value, nil)); stops(a) {
			res.stage, res.action = "header", a
			return res
		}
	}
	if a := m.must(m.s.HeaderEnd()); stops(a) {
		res.stage, res.action = "eoh", a
		return res
	}
	start := time.Now()
	if len(body) == 0 {
		// The client library ends only after a body chunk.
		m.must(m.s.BodyChunk(nil))
	}
	mods, a, err := m.s.BodyReadFrom(bytes.NewReader(body))
	res.elapsed = time.Since(start)
	if err != nil {
		m.t.Fatal(err)
	}
	res.stage, res.action, res.modify = "eom", a, mods
	return res
}

func TestInboundRecipients(t *testing.T) {
	for _, logDenied := range []bool{false, true} {
		t.Run(fmt.Sprint("log_denied=", logDenied), func(t *testing.T) {
			s := testSettings()
			s.LogDenied = logDenied
			h := startHarness(t, s, RejectUnknown, nil)
			m := dial(t, h.in)
			res := m.send("QID1", "sender@customer.example",
				[]string{"root@other.example", "orders@shop.example", "nobody@sub.shop.example"},
				crlf("From: a@customer.example\nTo: orders@shop.example\nSubject: hi\n\nbody\n"))
			want := `eom Discard rcpts=["RejectWithCode 550 \"550 5.7.1 <root@other.example>: recipient domain \\\"other.example\\\" not accepted here\"" "Continue" "RejectWithCode 550 \"550 5.7.1 <nobody@sub.shop.example>: recipient domain \\\"sub.shop.example\\\" not accepted here\""]`
			if got := res.String(); got != want {
				t.Errorf("transaction:\n got %s\nwant %s", got, want)
			}
			if len(h.spool.captured) != 1 {
				t.Fatalf("captured %d messages", len(h.spool.captured))
			}
			c := h.spool.captured[0]
			if fmt.Sprint(c.Recipients) != "[{orders@shop.example [orders]}]" || c.QueueID != "QID1" || c.EnvelopeFrom != "sender@customer.example" ||
				c.ClientAddr != "192.0.2.7" || c.Host != "mx.test" || !c.Received.Equal(testNow) {
				t.Errorf("captured %+v", c)
			}
			wantLogged := 0
			if logDenied {
				wantLogged = 2
			}
			if len(h.spool.logged) != wantLogged {
				t.Fatalf("logged %+v, want %d rows", h.spool.logged, wantLogged)
			}
			if logDenied {
				r := h.spool.logged[1]
				if r.Status != event.InboundDenied || r.To != "nobody@sub.shop.example" || r.Reason != ReasonUnknownDomain ||
					r.QueueID != "QID1" || r.Host != "mx.test" {
					t.Errorf("log row %+v", r)
				}
			}
		})
	}
}

func TestInboundDecisions(t *testing.T) {
	for _, c := range []struct {
		name    string
		unknown UnknownDomain
		mod     func(*Options, *fakeSpool)
		rcpts   []string
		raw     string
		want    string // stage and action
		logged  string // reasons of the denied rows
		capture int
		decide  string // what Options.Observe is told; "": not called
	}{
		{name: "captured and discarded", rcpts: []string{"orders@shop.example"},
			raw: "From: a@customer.example\nSubject: x\n\nbody\n", want: "eom Discard", capture: 1, decide: DecisionCaptured},
		{name: "captured and delivered", mod: func(o *Options, _ *fakeSpool) { o.AfterCapture = Deliver },
			rcpts: []string{"orders@shop.example"}, raw: "From: a@customer.example\n\nbody\n", want: "eom Accept", capture: 1, decide: DecisionCaptured},
		{name: "spam: From in our domain", rcpts: []string{"orders@shop.example", "billing@shop.example"},
			raw:    "From: ceo@shop.example\nMessage-Id: <spam@x>\nSubject: invoice\n\nbody\n",
			want:   `eom RejectWithCode 550 "550 5.7.1 Message refused: header From uses a domain of this server"`,
			logged: "[spam rule: header From is in an allowed domain spam rule: header From is in an allowed domain]", decide: DecisionRefused},
		{name: "spam: From equals To", rcpts: []string{"orders@shop.example"},
			raw:    "From: me@customer.example\nTo: me@customer.example\n\nbody\n",
			want:   `eom RejectWithCode 550 "550 5.7.1 Message refused: header From equals header To"`,
			logged: "[spam rule: header From equals header To]", decide: DecisionRefused},
		{name: "no filter matches", rcpts: []string{"billing@shop.example"},
			raw:    "From: a@customer.example\nSubject: hello\n\nbody\n",
			want:   `eom RejectWithCode 550 "550 5.7.1 Message refused: no recipient of it is accepted here"`,
			logged: "[no filter matched]", decide: DecisionRefused},
		{name: "one recipient without a match is logged", rcpts: []string{"orders@shop.example", "billing@shop.example"},
			raw: "From: a@customer.example\nSubject: hello\n\nbody\n", want: "eom Discard", capture: 1, decide: DecisionCaptured},
		{name: "store failure tempfails", mod: func(_ *Options, f *fakeSpool) { f.captureErr = errors.New("disk full") },
			rcpts: []string{"orders@shop.example"}, raw: "From: a@customer.example\n\nbody\n",
			want: `eom RejectWithCode 451 "451 4.3.0 Temporary failure storing the message, try again later"`, decide: DecisionTempfail},
		{name: "too large", mod: func(o *Options, _ *fakeSpool) { o.MaxMessageSize = 100 },
			rcpts: []string{"orders@shop.example"}, raw: "From: a@customer.example\n\n" + strings.Repeat("x", 200) + "\n",
			want: `eom RejectWithCode 552 "552 5.3.4 Message size exceeds the fixed limit"`, decide: DecisionRefused},
		{name: "too large header", mod: func(o *Options, _ *fakeSpool) { o.MaxMessageSize = 100 },
			rcpts: []string{"orders@shop.example"}, raw: "From: a@customer.example\nSubject: " + strings.Repeat("x", 200) + "\n\nbody\n",
			want: `eom RejectWithCode 552 "552 5.3.4 Message size exceeds the fixed limit"`, decide: DecisionRefused},
		{name: "only pass-through recipients", unknown: PassUnknown, rcpts: []string{"root@other.example"},
			raw: "From: ceo@shop.example\n\nbody\n", want: "data Accept"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var spool *fakeSpool
			// Observe runs before the answer is sent: after send, a
			// decision is in the channel or there is none.
			decided := make(chan string, 2)
			h := startHarness(t, testSettings(), c.unknown, func(o *Options) {
				spool = o.Spool.(*fakeSpool)
				o.Observe = func(d string, took time.Duration) {
					if took < 0 {
						t.Errorf("Observe(%s, %v): negative time", d, took)
					}
					decided <- d
				}
				if c.mod != nil {
					c.mod(o, spool)
				}
			})
			res := dial(t, h.in).send("QID", "s@customer.example", c.rcpts, crlf(c.raw))
			if got := res.stage + " " + res.action.String(); got != c.want {
				t.Errorf("answer:\n got %s\nwant %s", got, c.want)
			}
			select {
			case d := <-decided:
				if d != c.decide {
					t.Errorf("observed decision %q, want %q", d, c.decide)
				}
			default:
				if c.decide != "" {
					t.Errorf("no decision observed, want %q", c.decide)
				}
			}
			if len(spool.captured) != c.capture {
				t.Errorf("captured %d messages, want %d", len(spool.captured), c.capture)
			}
			var reasons []string
			for _, r := range spool.logged {
				reasons = append(reasons, r.Reason)
				if r.Status != event.InboundDenied {
					t.Errorf("logged %+v", r)
				}
			}
			if c.logged != "" && fmt.Sprint(reasons) != c.logged {
				t.Errorf("logged reasons %v, want %s", reasons, c.logged)
			}
			if c.name == "spam: From in our domain" && (spool.logged[0].MessageID != "<spam@x>" || spool.logged[0].From != "ceo@shop.example") {
				t.Errorf("denied row lacks the header facts: %+v", spool.logged[0])
			}
			if c.name == "one recipient without a match is logged" {
				if got := fmt.Sprint(spool.captured[0].Recipients); got != "[{orders@shop.example [orders]} {billing@shop.example []}]" {
					t.Errorf("recipients %s", got)
				}
			}
		})
	}
}

// TestInboundPassThroughMixed: with unknown_domain = pass, a message for a
// captured and a passed-through recipient is not discarded; the captured
// recipient is taken off and Postfix delivers the rest.
func TestInboundPassThroughMixed(t *testing.T) {
	h := startHarness(t, testSettings(), PassUnknown, nil)
	res := dial(t, h.in).send("Q2", "s@customer.example", []string{"orders@shop.example", "root@other.example"},
		crlf("From: a@customer.example\n\nbody\n"))
	if res.stage != "eom" || res.action.Type != gomilter.ActionAccept || len(res.modify) != 1 ||
		res.modify[0].Type != gomilter.ActionDelRcpt || res.modify[0].Rcpt != "<orders@shop.example>" {
		t.Errorf("answer %s, modifications %v", res, res.modify)
	}
	if len(h.spool.captured) != 1 || len(h.spool.captured[0].Recipients) != 1 {
		t.Errorf("captured %+v", h.spool.captured)
	}
}

// TestInboundCapturesParsedMessage: what reaches the spool is the parsed
// message, Japanese text and attachments intact, and several messages on
// one connection stay apart.
func TestInboundCapturesParsedMessage(t *testing.T) {
	h := startHarness(t, testSettings(), "", nil)
	m := dial(t, h.in)
	for i, c := range wellFormed()[1:3] {
		res := m.send(fmt.Sprint("Q", i), "s@customer.example", []string{"orders@shop.example"}, c.raw(t))
		if res.action.Type != gomilter.ActionDiscard {
			t.Fatalf("%s: %s", c.name, res)
		}
	}
	if len(h.spool.captured) != 2 {
		t.Fatalf("captured %d", len(h.spool.captured))
	}
	a, b := h.spool.captured[0], h.spool.captured[1]
	if a.Subject != jaSubject || a.Text != jaBody || len(a.Attachments) != 2 || a.Attachments[1].Filename != jaFile2 ||
		!bytes.Equal(h.spool.contents[0][0], pdfBytes) || !bytes.Equal(h.spool.contents[0][1], xlsxBytes) || a.QueueID != "Q0" {
		t.Errorf("first message: %+v", a)
	}
	if b.Subject != jaSubject || b.HTML != jaHTML || len(b.Attachments) != 0 || b.QueueID != "Q1" || len(b.Headers) != 5 {
		t.Errorf("second message: %+v", b)
	}
	if a.Size < int64(len(pdfBytes)) {
		t.Errorf("size %d", a.Size)
	}
}

// TestInboundMalformedCorpus: every broken message of the corpus, and a
// 40 MB attachment, is answered — captured — well within Postfix's
// milter_content_timeout (300 s; the check allows 60 s for a slow CI).
func TestInboundMalformedCorpus(t *testing.T) {
	h := startHarness(t, testSettings(), "", nil)
	m := dial(t, h.in)
	cases := malformed()
	cases = append(cases, parseCase{"40MB-attachment", func(testing.TB) string {
		var b strings.Builder
		b.WriteString(crlf("From: a@example.org\nSubject: big\nContent-Type: multipart/mixed; boundary=big\n\n--big\n" +
			"Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=big.bin\nContent-Transfer-Encoding: base64\n\n"))
		io.Copy(&b, newBase64Source(40<<20))
		b.WriteString("--big--\r\n")
		return b.String()
	}})
	for _, c := range cases {
		res := m.send("QM", "s@customer.example", []string{"orders@shop.example"}, c.raw(t))
		if res.stage != "eom" || res.action.Type != gomilter.ActionDiscard {
			t.Errorf("%s: answer %s", c.name, res)
		}
		if res.elapsed > 60*time.Second {
			t.Errorf("%s: answered after %s", c.name, res.elapsed)
		}
	}
	if n := len(h.spool.captured); n != len(cases) {
		t.Fatalf("captured %d of %d", n, len(cases))
	}
	last := h.spool.captured[len(cases)-1]
	if len(last.Attachments) != 1 || last.Attachments[0].Size != 40<<20 {
		t.Errorf("40 MB attachment: %+v", last.Attachments)
	}
}

func TestOutboundObservation(t *testing.T) {
	h := startHarness(t, testSettings(), "", func(o *Options) { o.MetadataHeader = "X-App-Data" })
	m := dial(t, h.out)
	raw := "From: " + bword(t, "ISO-2022-JP", iso2022jp, "山田") + " <shop@shop.example>\r\nTo: a@b.example\r\n" +
		"Subject: " + bword(t, "UTF-8", nil, "ご注文") + "\r\nMessage-Id: <m1@shop.example>\r\nx-app-data: {\"order\": 42}\r\n\r\nbody\r\n"
	res := m.send("OUTQ", "bounce@shop.example", []string{"a@b.example", "c@d.example"}, raw)
	if res.stage != "eom" || res.action.Type != gomilter.ActionAccept {
		t.Fatalf("answer %s", res)
	}
	if len(h.spool.observed) != 1 {
		t.Fatalf("observed %d", len(h.spool.observed))
	}
	o := h.spool.observed[0]
	want := event.Observation{Host: "mx.test", QueueID: "OUTQ", Time: testNow, EnvelopeFrom: "bounce@shop.example",
		Recipients: []string{"a@b.example", "c@d.example"}, From: "山田 <shop@shop.example>", Subject: "ご注文",
		MessageID: "<m1@shop.example>", APIData: `{"order": 42}`}
	if fmt.Sprintf("%+v", o) != fmt.Sprintf("%+v", want) {
		t.Errorf("observed\n %+v\nwant\n %+v", o, want)
	}
}

// TestShutdownWaitsForCapture: Shutdown lets a message being stored finish
// and be answered; meanwhile a new transaction is told to come back later.
func TestShutdownWaitsForCapture(t *testing.T) {
	spool := &fakeSpool{entered: make(chan struct{}), release: make(chan struct{})}
	p, _ := NewPolicy(testSettings(), "")
	srv, err := NewServer(Options{Host: "mx.test", Policy: p, Spool: spool, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeInbound(ln) }()

	busy, other := dial(t, ln.Addr().String()), dial(t, ln.Addr().String())
	answered := make(chan result, 1)
	go func() {
		answered <- busy.send("Q", "s@customer.example", []string{"orders@shop.example"}, crlf("From: a@customer.example\n\nbody\n"))
	}()
	<-spool.entered // the message is being stored

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}()
	// Shutdown has begun once new transactions are refused.
	for {
		other.must(other.s.Mail("x@customer.example", ""))
		a := other.must(other.s.Rcpt("orders@shop.example", ""))
		other.s.Abort(nil)
		if a.SMTPCode == 421 {
			if a.SMTPReply != "421 4.3.2 Service shutting down, try again later" {
				t.Errorf("refusal %q", a.SMTPReply)
			}
			break
		}
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while a message was being stored", err)
	default:
	}
	close(spool.release)
	if res := <-answered; res.action.Type != gomilter.ActionDiscard {
		t.Errorf("the message being stored was answered %s", res)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeInbound: %v", err)
	}
	if len(spool.captured) != 1 {
		t.Errorf("captured %d", len(spool.captured))
	}
}

// TestInboundManyHeaders: a message of very many header fields keeps the
// first maxHeaderFields and is still captured.
func TestInboundManyHeaders(t *testing.T) {
	h := startHarness(t, testSettings(), "", nil)
	var b strings.Builder
	b.WriteString("From: a@customer.example\r\n")
	for i := range maxHeaderFields + 500 {
		fmt.Fprintf(&b, "X-N: %d\r\n", i)
	}
	b.WriteString("\r\nbody\r\n")
	res := dial(t, h.in).send("QH", "s@customer.example", []string{"orders@shop.example"}, b.String())
	if res.action.Type != gomilter.ActionDiscard || len(h.spool.captured) != 1 || len(h.spool.captured[0].Headers) != maxHeaderFields {
		t.Errorf("answer %s, captured %d messages", res, len(h.spool.captured))
	}
}

// TestInboundLogFields: a failed capture is logged once, with the queue ID
// and the Message-ID that find the message in Postfix's log and the
// client's.
func TestInboundLogFields(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	h := startHarness(t, testSettings(), RejectUnknown, func(o *Options) {
		o.Spool.(*fakeSpool).captureErr = errors.New("disk full")
		o.Log = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	})
	dial(t, h.in).send("QID7", "s@customer.example", []string{"orders@shop.example"},
		crlf("From: a@customer.example\nMessage-Id: <m7@customer.example>\n\nbody\n"))
	mu.Lock()
	defer mu.Unlock()
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "capture failed") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "queue_id=QID7") || !strings.Contains(lines[0], "message_id=<m7@customer.example>") {
		t.Errorf("capture failure lines %q, want one with the queue ID and Message-ID", lines)
	}
}

// lockedWriter lets the milter's goroutines log into one buffer.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestConnection: sessions work through the connection's read buffer and
// deadlines (conn.go). A connection that never negotiates is closed by
// go-milter's one-second negotiation deadline; one that goes silent after
// negotiating, by ReadTimeout.
func TestConnection(t *testing.T) {
	const idle = 200 * time.Millisecond
	h := startHarness(t, settings.Inbound{Domains: []string{"shop.example"}}, RejectUnknown,
		func(o *Options) { o.ReadTimeout = idle })
	m := dial(t, h.in)
	if r := m.send("Q1", "a@customer.example", []string{"x@elsewhere.example"}, "Subject: x\r\n\r\nx\r\n"); !strings.Contains(r.String(), "550") {
		t.Fatalf("a session through the read buffer: %v", r)
	}
	closed := func(name string, c net.Conn, atLeast time.Duration) {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(30 * time.Second)) // bounds a hang only
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Errorf("%s: %v; want the server to close the connection", name, err)
		}
		if took := time.Since(start); took < atLeast {
			t.Errorf("%s: closed after %v, before %v", name, took, atLeast)
		}
	}
	silent, err := net.Dial("tcp", h.in)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	closed("silent connection", silent, 0)

	quiet, err := net.Dial("tcp", h.in)
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	// SMFIC_OPTNEG as Postfix 3.7 sends it: version 6, all actions, all
	// protocol steps.
	optneg := []byte{0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 0x01, 0xff, 0, 0x1f, 0xff, 0xff}
	if _, err := quiet.Write(optneg); err != nil {
		t.Fatal(err)
	}
	closed("connection silent after negotiating", quiet, idle/2)
}
