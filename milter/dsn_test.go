package milter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
)

func TestBounceAddressesMatch(t *testing.T) {
	addrs := []string{"bounces@bounce.shop.example", "Return@Shop.Example", "@dsn.shop.example"}
	cases := []struct {
		verp   bool
		delims string
		rcpt   string
		ok     bool
		named  string // the recipient VERP names
	}{
		{false, "", "bounces@bounce.shop.example", true, ""},
		{false, "", "<Bounces@BOUNCE.shop.example.>", true, ""},
		{false, "", "return@shop.example", true, ""},
		{false, "", "orders@shop.example", false, ""},
		{false, "", "bounces@other.example", false, ""},
		{false, "", "anything@dsn.shop.example", true, ""},
		{false, "", "x@sub.dsn.shop.example", false, ""},
		{false, "", "bounces", false, ""},
		{false, "", "", false, ""},
		// VERP off: the VERP form is not the address.
		{false, "", "bounces+user=example.org@bounce.shop.example", false, ""},
		// VERP on, Postfix's default delimiters.
		{true, "", "bounces+user=example.org@bounce.shop.example", true, "user@example.org"},
		{true, "", "BOUNCES+User.Name=Example.ORG@bounce.shop.example", true, "User.Name@Example.ORG"},
		{true, "", "bounces+a+tag=example.org@bounce.shop.example", true, "a+tag@example.org"},
		{true, "", "bounces+a=b=example.org@bounce.shop.example", true, "a=b@example.org"},
		{true, "", "bounces@bounce.shop.example", true, ""},
		{true, "", "bounces+broken@bounce.shop.example", true, ""},
		{true, "", "bounces+=example.org@bounce.shop.example", true, ""},
		{true, "", "bounces+user=@bounce.shop.example", true, ""},
		{true, "", "bouncesx+user=example.org@bounce.shop.example", false, ""},
		{true, "", "list+user=example.org@dsn.shop.example", true, "user@example.org"},
		{true, "", "list@dsn.shop.example", true, ""},
		// Other delimiters (default_verp_delimiters = -=).
		{true, "-=", "bounces-user=example.org@bounce.shop.example", true, "user@example.org"},
		{true, "-=", "bounces+user=example.org@bounce.shop.example", false, ""},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("verp=%v %s %s", c.verp, c.delims, c.rcpt), func(t *testing.T) {
			b, err := NewBounceAddresses(BounceOptions{Addresses: addrs, VERP: c.verp, Delimiters: c.delims})
			if err != nil {
				t.Fatal(err)
			}
			r, ok := b.Match(c.rcpt)
			if ok != c.ok || r.VERP != c.named {
				t.Errorf("Match = %+v, %v; want %v, VERP %q", r, ok, c.ok, c.named)
			}
			if ok && r.Address != c.rcpt {
				t.Errorf("Address = %q, want the recipient as given", r.Address)
			}
		})
	}
	var none *BounceAddresses
	if _, ok := none.Match("bounces@bounce.shop.example"); ok {
		t.Error("nil BounceAddresses matched")
	}
}

func TestNewBounceAddresses(t *testing.T) {
	for _, c := range []struct {
		o    BounceOptions
		want string // error; "" none
		nil_ bool
	}{
		{o: BounceOptions{}, nil_: true},
		{o: BounceOptions{Addresses: []string{"b@x.example"}}},
		{o: BounceOptions{Addresses: []string{"b@x.example"}, Delimiters: "+"}, want: "two different characters"},
		{o: BounceOptions{Addresses: []string{"b@x.example"}, Delimiters: "=="}, want: "two different characters"},
		{o: BounceOptions{Addresses: []string{"b@x.example"}, Delimiters: "+@"}, want: "two different characters"},
		{o: BounceOptions{Addresses: []string{"bounces"}}, want: `"bounces" is neither an address nor @domain`},
		{o: BounceOptions{Addresses: []string{"a@"}}, want: "neither"},
		{o: BounceOptions{Addresses: []string{"a@b@c"}}, want: "neither"},
	} {
		b, err := NewBounceAddresses(c.o)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.o, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want %q", c.o, err, c.want)
		case c.want == "" && (b == nil) != c.nil_:
			t.Errorf("%+v: %v", c.o, b)
		}
	}
	if _, err := NewServer(Options{Spool: &fakeSpool{}, Policy: &Policy{}, Bounce: BounceOptions{Addresses: []string{"b@x.example"}}}); err == nil ||
		!strings.Contains(err.Error(), "without a bounce sink") {
		t.Errorf("NewServer without a sink: %v", err)
	}
}

// fakeBounces records the bounce mail handed to it.
type fakeBounces struct {
	mu       sync.Mutex
	mails    []BounceMail
	texts    []string
	decision string
	err      error
}

func (f *fakeBounces) Bounce(_ context.Context, m *BounceMail) (string, error) {
	b, err := io.ReadAll(m.Message)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	mc := *m
	mc.Message = nil
	f.mails = append(f.mails, mc)
	f.texts = append(f.texts, string(b))
	if f.decision == "" {
		return DecisionBounce, nil
	}
	return f.decision, nil
}

const testDSN = `From: MAILER-DAEMON@shop.example
To: bounces+alice=example.org@bounce.shop.example
Subject: Undelivered Mail Returned to Sender
Message-Id: <dsn-1@remote.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="b1"

--b1
Content-Type: text/plain

I'm sorry.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; remote.example

Final-Recipient: rfc822; alice@example.org
Action: failed
Status: 5.1.1

--b1--
`

// TestInboundBounce: mail to a bounce address passes the inbound policy
// (its domain is not an inbound domain, its From is in one: a spam rule
// would refuse it), reaches the bounce sink whole, and is handled as
// after_capture says; it is never captured for the Inbound Webhook.
func TestInboundBounce(t *testing.T) {
	bounceTo := "bounces+alice=example.org@bounce.shop.example"
	noID := strings.Replace(testDSN, "Message-Id: <dsn-1@remote.example>\n", "", 1)
	for _, c := range []struct {
		name    string
		unknown UnknownDomain
		mod     func(*Options, *fakeBounces)
		rcpts   []string
		raw     string
		want    string // stage and action
		modify  string // the modifications asked for
		decide  string
		bounces int
		capture int
	}{
		{name: "discarded after reading", rcpts: []string{bounceTo}, raw: testDSN,
			want: "eom Discard", decide: DecisionBounce, bounces: 1},
		{name: "delivered after reading", mod: func(o *Options, _ *fakeBounces) { o.AfterCapture = Deliver },
			rcpts: []string{bounceTo}, raw: testDSN, want: "eom Accept", decide: DecisionBounce, bounces: 1},
		{name: "the sink's outcome is observed", mod: func(_ *Options, f *fakeBounces) { f.decision = DecisionBounceUnmatched },
			rcpts: []string{bounceTo}, raw: testDSN, want: "eom Discard", decide: DecisionBounceUnmatched, bounces: 1},
		{name: "store failure tempfails", mod: func(_ *Options, f *fakeBounces) { f.err = errors.New("disk full") },
			rcpts: []string{bounceTo}, raw: testDSN,
			want: `eom RejectWithCode 451 "451 4.3.0 Temporary failure storing the message, try again later"`, decide: DecisionTempfail},
		{name: "too large", mod: func(o *Options, _ *fakeBounces) { o.MaxMessageSize = 100 },
			rcpts: []string{bounceTo}, raw: testDSN,
			want: `eom RejectWithCode 552 "552 5.3.4 Message size exceeds the fixed limit"`, decide: DecisionRefused},
		{name: "with a pass-through recipient", unknown: PassUnknown, rcpts: []string{bounceTo, "root@other.example"}, raw: testDSN,
			want: "eom Accept", modify: "[DelRcpt <" + bounceTo + ">]", decide: DecisionBounce, bounces: 1},
		{name: "with a captured recipient", rcpts: []string{"orders@shop.example", bounceTo},
			raw:  strings.Replace(testDSN, "From: MAILER-DAEMON@shop.example", "From: daemon@remote.example", 1),
			want: "eom Discard", decide: DecisionCaptured, bounces: 1, capture: 1},
		{name: "without a Message-ID", rcpts: []string{bounceTo}, raw: noID,
			want: "eom Discard", decide: DecisionBounce, bounces: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &fakeBounces{}
			decided := make(chan string, 2)
			h := startHarness(t, testSettings(), c.unknown, func(o *Options) {
				o.Bounce = BounceOptions{Addresses: []string{"bounces@bounce.shop.example"}, VERP: true, Sink: sink}
				o.Observe = func(d string, _ time.Duration) { decided <- d }
				if c.mod != nil {
					c.mod(o, sink)
				}
			})
			res := dial(t, h.in).send("QB", "", c.rcpts, crlf(c.raw))
			if got := res.stage + " " + res.action.String(); got != c.want {
				t.Errorf("answer:\n got %s\nwant %s", got, c.want)
			}
			var mods []string
			for _, m := range res.modify {
				mods = append(mods, fmt.Sprintf("DelRcpt %s", m.Rcpt))
				if m.Type != gomilter.ActionDelRcpt {
					t.Errorf("modification %+v", m)
				}
			}
			if c.modify != "" && fmt.Sprint(mods) != c.modify {
				t.Errorf("modifications %v, want %s", mods, c.modify)
			}
			select {
			case d := <-decided:
				if d != c.decide {
					t.Errorf("observed %q, want %q", d, c.decide)
				}
			default:
				t.Errorf("no decision observed, want %q", c.decide)
			}
			if len(sink.mails) != c.bounces || len(h.spool.captured) != c.capture {
				t.Fatalf("bounce mails %d (want %d), captured %d (want %d)", len(sink.mails), c.bounces, len(h.spool.captured), c.capture)
			}
			if len(h.spool.logged) != 0 {
				t.Errorf("inbound log rows %+v", h.spool.logged)
			}
			if c.bounces == 0 {
				return
			}
			m, text := sink.mails[0], sink.texts[0]
			if m.Host != "mx.test" || m.QueueID != "QB" || !m.Received.Equal(testNow) || m.ClientAddr != "192.0.2.7" ||
				fmt.Sprint(m.Recipients) != "[{"+bounceTo+" alice@example.org}]" || m.Size < int64(len(c.raw)) {
				t.Errorf("bounce mail %+v", m)
			}
			if strings.Contains(c.raw, "Message-Id") {
				if m.MessageID != "<dsn-1@remote.example>" || m.ID != m.MessageID {
					t.Errorf("ids %q %q", m.MessageID, m.ID)
				}
			} else if m.MessageID != "" || !strings.HasPrefix(m.ID, "sha256:") || len(m.ID) != len("sha256:")+64 {
				t.Errorf("ids %q %q", m.MessageID, m.ID)
			}
			// The message as received: the header fields as Postfix gave
			// them, folding kept, then the body.
			if !strings.Contains(text, "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"b1\"\r\n") ||
				!strings.Contains(text, "\r\n\r\n--b1\r\n") || !strings.HasSuffix(text, "--b1--\r\n") {
				t.Errorf("message handed over:\n%q", text)
			}
		})
	}
}

// TestInboundBounceIDStable: the same bounce without a Message-ID,
// delivered twice, has the same ID; another body another.
func TestInboundBounceIDStable(t *testing.T) {
	sink := &fakeBounces{}
	h := startHarness(t, testSettings(), "", func(o *Options) {
		o.Bounce = BounceOptions{Addresses: []string{"@bounce.shop.example"}, Sink: sink}
	})
	noID := strings.Replace(testDSN, "Message-Id: <dsn-1@remote.example>\n", "", 1)
	m := dial(t, h.in)
	for i, raw := range []string{noID, noID, strings.Replace(noID, "I'm sorry.", "Sorry.", 1)} {
		if res := m.send(fmt.Sprint("Q", i), "", []string{"x@bounce.shop.example"}, crlf(raw)); res.action.Type != gomilter.ActionDiscard {
			t.Fatalf("%d: %s", i, res)
		}
	}
	if len(sink.mails) != 3 || sink.mails[0].ID != sink.mails[1].ID || sink.mails[0].ID == sink.mails[2].ID {
		t.Errorf("ids %q %q %q", sink.mails[0].ID, sink.mails[1].ID, sink.mails[2].ID)
	}
	if sink.mails[0].Recipients[0].VERP != "" {
		t.Errorf("VERP off, but named %q", sink.mails[0].Recipients[0].VERP)
	}
}
