package milter

import (
	"fmt"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/settings"
)

func testSettings() settings.Inbound {
	orders := settings.NewInboundFilter("orders", "https://hooks.example.com/orders",
		settings.Condition{Header: "To", Pattern: `^orders@shop\.example$`})
	invoices := settings.NewInboundFilter("invoices", "https://hooks.example.com/invoices",
		settings.Condition{Header: "to", Pattern: `^(orders|billing)@shop\.example$`},
		settings.Condition{Header: "subject", Pattern: `(?i)invoice|請求書`},
		settings.Condition{Header: "X-Mailer", Pattern: `^$`})
	catchall := settings.NewInboundFilter("catch-all", "https://hooks.example.com/all",
		settings.Condition{Header: "From", Pattern: `@partner\.example>?$`})
	off := settings.NewInboundFilter("disabled", "https://hooks.example.com/off",
		settings.Condition{Header: "To", Pattern: `^off@shop\.example$`})
	off.Disabled = true
	return settings.Inbound{
		Domains: []string{"Shop.Example", "mail.shop.example"},
		Filters: []settings.InboundFilter{orders, invoices, catchall, off},
	}
}

func TestRecipient(t *testing.T) {
	for _, c := range []struct {
		unknown UnknownDomain
		rcpt    string
		want    RcptVerdict
		reply   string
	}{
		{RejectUnknown, "orders@shop.example", RcptCapture, ""},
		{RejectUnknown, "ORDERS@SHOP.EXAMPLE", RcptCapture, ""}, // domain compared without case ...
		{RejectUnknown, "billing@shop.example", RcptCapture, ""},
		// ... a filter without a To condition can still take anyone
		{RejectUnknown, "someone@mail.shop.example", RcptCapture, ""},
		{RejectUnknown, "root@other.example", RcptUnknownDomain, `550 5.7.1 <root@other.example>: recipient domain "other.example" not accepted here`},
		{RejectUnknown, "root@sub.shop.example", RcptUnknownDomain, `550 5.7.1 <root@sub.shop.example>: recipient domain "sub.shop.example" not accepted here`},
		{RejectUnknown, "postmaster", RcptUnknownDomain, `550 5.7.1 <postmaster>: recipient domain "" not accepted here`},
		{PassUnknown, "root@other.example", RcptPass, ""},
		{PassUnknown, "orders@shop.example", RcptCapture, ""},
	} {
		p, err := NewPolicy(testSettings(), c.unknown)
		if err != nil {
			t.Fatal(err)
		}
		d := p.Recipient(c.rcpt)
		if d.Verdict != c.want || (c.reply != "" && d.Reply.String() != c.reply) {
			t.Errorf("%s Recipient(%q) = %v %q, want %v %q", c.unknown, c.rcpt, d.Verdict, d.Reply, c.want, c.reply)
		}
		if d.Verdict == RcptUnknownDomain && d.Reason != ReasonUnknownDomain {
			t.Errorf("reason %q", d.Reason)
		}
	}
}

// TestRecipientIDN: an internationalized domain is allowed in the form the
// settings give, and recipients match it in either form an SMTPUTF8
// client may write (RFC 6531).
func TestRecipientIDN(t *testing.T) {
	s := testSettings()
	s.Domains = []string{"Bücher.Example"}
	p, err := NewPolicy(s, RejectUnknown)
	if err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"info@bücher.example", "info@BÜCHER.example", "info@xn--bcher-kva.example"} {
		if d := p.Recipient(rcpt); d.Verdict != RcptCapture {
			t.Errorf("Recipient(%q) = %v %q, want captured", rcpt, d.Verdict, d.Reply)
		}
	}
	if d := p.Recipient("info@bucher.example"); d.Verdict != RcptUnknownDomain {
		t.Errorf("a look-alike ASCII domain = %v, want refused", d.Verdict)
	}
}

// TestRecipientNoFilter: when every enabled filter tests the recipient and
// none accepts it, the recipient is refused at RCPT on its own.
func TestRecipientNoFilter(t *testing.T) {
	s := testSettings()
	s.Filters = s.Filters[:2] // only filters with To conditions
	s.Filters = append(s.Filters, testSettings().Filters[3])
	p, err := NewPolicy(s, "")
	if err != nil {
		t.Fatal(err)
	}
	for rcpt, want := range map[string]RcptVerdict{
		"orders@shop.example":  RcptCapture,
		"billing@shop.example": RcptCapture,
		"nobody@shop.example":  RcptNoFilter,
		"off@shop.example":     RcptNoFilter, // its only filter is disabled
	} {
		d := p.Recipient(rcpt)
		if d.Verdict != want {
			t.Errorf("Recipient(%q) = %v, want %v", rcpt, d.Verdict, want)
		}
		if want == RcptNoFilter && (d.Reply.String() != "550 5.7.1 <"+rcpt+">: recipient address not accepted here" || d.Reason != ReasonNoFilter) {
			t.Errorf("Recipient(%q) reply %q reason %q", rcpt, d.Reply, d.Reason)
		}
	}
	empty, _ := NewPolicy(settings.Inbound{Domains: []string{"shop.example"}}, "")
	if d := empty.Recipient("a@shop.example"); d.Verdict != RcptNoFilter {
		t.Errorf("no filters at all: %v", d.Verdict)
	}
}

func hdrs(kv ...string) []Field {
	var out []Field
	for i := 0; i < len(kv); i += 2 {
		out = append(out, Field{Name: kv[i], Raw: kv[i+1], Value: decodeValue(kv[i+1], "")})
	}
	return out
}

func TestMessage(t *testing.T) {
	p, err := NewPolicy(testSettings(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		fields []Field
		rcpts  []string
		want   string // "reject: <reply>" or the matches
	}{
		{"one filter", hdrs("From", "a@customer.example", "To", "orders@shop.example", "Subject", "hi"),
			[]string{"orders@shop.example"}, "[[orders]]"},
		{"two filters for one recipient", hdrs("From", "a@customer.example", "Subject", "Your INVOICE"),
			[]string{"orders@shop.example"}, "[[orders invoices]]"},
		{"decoded subject matches", hdrs("From", "a@customer.example", "Subject", "=?UTF-8?B?6KuL5rGC5pu4?="),
			[]string{"billing@shop.example"}, "[[invoices]]"},
		{"present header fails ^$", hdrs("From", "a@customer.example", "Subject", "invoice", "x-mailer", "Spammer 1.0"),
			[]string{"billing@shop.example"}, "reject: 550 5.7.1 Message refused: no recipient of it is accepted here"},
		{"empty header passes ^$", hdrs("From", "a@customer.example", "Subject", "invoice", "X-Mailer", ""),
			[]string{"billing@shop.example"}, "[[invoices]]"},
		{"any of repeated headers", hdrs("From", "a@customer.example", "Subject", "hello", "Subject", "invoice"),
			[]string{"billing@shop.example"}, "[[invoices]]"},
		{"per recipient, one without match", hdrs("From", "Partner <x@partner.example>"),
			[]string{"orders@shop.example", "any@mail.shop.example"}, "[[orders catch-all] [catch-all]]"},
		{"some recipient unmatched", hdrs("From", "a@customer.example"),
			[]string{"orders@shop.example", "billing@shop.example"}, "[[orders] []]"},
		{"nothing matches", hdrs("From", "a@customer.example", "Subject", "hello"),
			[]string{"billing@shop.example"}, "reject: 550 5.7.1 Message refused: no recipient of it is accepted here"},

		{"spam: From in an allowed domain", hdrs("From", "Boss <ceo@SHOP.example>", "To", "orders@shop.example"),
			[]string{"orders@shop.example"}, "reject: 550 5.7.1 Message refused: header From uses a domain of this server"},
		{"spam: From in the other allowed domain", hdrs("From", "x@mail.shop.example"),
			[]string{"orders@shop.example"}, "reject: 550 5.7.1 Message refused: header From uses a domain of this server"},
		{"spam: From equals To", hdrs("From", "Me <me@customer.example>", "To", "Also me <ME@customer.example>"),
			[]string{"orders@shop.example"}, "reject: 550 5.7.1 Message refused: header From equals header To"},
		{"spam: From equals one of several To", hdrs("From", "me@customer.example", "To", "a@b.example, me@customer.example"),
			[]string{"orders@shop.example"}, "reject: 550 5.7.1 Message refused: header From equals header To"},
		{"spam rule not dodged by broken syntax", hdrs("From", `"unclosed <ceo@shop.example>`),
			[]string{"orders@shop.example"}, "reject: 550 5.7.1 Message refused: header From uses a domain of this server"},
		{"encoded display name", hdrs("From", "=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <me@customer.example>", "To", "me@customer.example"),
			[]string{"orders@shop.example"}, "reject: 550 5.7.1 Message refused: header From equals header To"},
		{"subdomain of an allowed domain is not spam", hdrs("From", "a@sub.shop.example"),
			[]string{"orders@shop.example"}, "[[orders]]"},
		{"no From at all", hdrs("Subject", "x"),
			[]string{"orders@shop.example"}, "[[orders]]"},
	} {
		d := p.Message(c.fields, c.rcpts)
		got := fmt.Sprint(d.Matches)
		if d.Reject {
			got = "reject: " + d.Reply.String()
		}
		if got != c.want {
			t.Errorf("%s: Message = %s, want %s", c.name, got, c.want)
		}
		if d.Reject && d.Reason == "" {
			t.Errorf("%s: reject without a reason", c.name)
		}
	}
}

func TestNewPolicyRefusesInvalid(t *testing.T) {
	s := testSettings()
	s.Filters[0].Conditions[0].Pattern = "(("
	if _, err := NewPolicy(s, ""); err == nil || !strings.Contains(err.Error(), "filters[0].conditions[0].pattern") {
		t.Errorf("NewPolicy = %v", err)
	}
	if _, err := NewPolicy(testSettings(), "maybe"); err == nil {
		t.Error("NewPolicy accepted unknown_domain = maybe")
	}
}

func TestAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"a@b.example":                         "[a@b.example]",
		"A <a@b.example>, c@d.example":        "[a@b.example c@d.example]",
		`"Doe, J" <j@d.example>`:              "[j@d.example]",
		"undisclosed-recipients:;":            "[]",
		"broken <x@y.example":                 "[x@y.example]",
		"<<x@y.example>> junk <z@w.example> ": "[x@y.example z@w.example]",
		"=?UTF-8?B?5bGx55Sw?= <y@j.example>":  "[y@j.example]",
	} {
		if got := fmt.Sprint(addresses([]string{in})); got != want {
			t.Errorf("addresses(%q) = %s, want %s", in, got, want)
		}
	}
}
