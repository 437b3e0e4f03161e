package milter

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/posthorn/posthorn/settings"
)

// UnknownDomain says what the inbound role does with a recipient whose
// domain is not allowed.
type UnknownDomain string

const (
	// RejectUnknown refuses the recipient at RCPT (the hosted service's
	// behaviour, the default).
	RejectUnknown UnknownDomain = "reject"
	// PassUnknown lets Postfix handle the recipient as if Posthorn were not
	// there, for a server that also receives other mail.
	PassUnknown UnknownDomain = "pass"
)

// Reply is an SMTP reply the milter asks Postfix to send.
type Reply struct {
	Code int    // 4xx or 5xx
	Text string // starts with the enhanced status code (RFC 3463)
}

func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Code, r.Text) }

// Replies. The enhanced codes are RFC 3463's: 5.7.1 "delivery not
// authorized, message refused", 5.3.4 "message too big for system", 4.3.0
// "other or undefined mail system status".
var (
	replyTooBig    = Reply{552, "5.3.4 Message size exceeds the fixed limit"}
	replyTempStore = Reply{451, "4.3.0 Temporary failure storing the message, try again later"}
)

func replyUnknownDomain(rcpt, domain string) Reply {
	return Reply{550, fmt.Sprintf("5.7.1 <%s>: recipient domain %q not accepted here", rcpt, domain)}
}

func replyNoFilterRcpt(rcpt string) Reply {
	return Reply{550, fmt.Sprintf("5.7.1 <%s>: recipient address not accepted here", rcpt)}
}

var (
	replySpamOwnDomain = Reply{550, "5.7.1 Message refused: header From uses a domain of this server"}
	replySpamFromIsTo  = Reply{550, "5.7.1 Message refused: header From equals header To"}
	replyNoFilter      = Reply{550, "5.7.1 Message refused: no recipient of it is accepted here"}
)

// Reasons written to the inbound log for denied mail.
const (
	ReasonUnknownDomain = "recipient domain not allowed"
	ReasonNoFilter      = "no filter matched"
	ReasonSpamOwnDomain = "spam rule: header From is in an allowed domain"
	ReasonSpamFromIsTo  = "spam rule: header From equals header To"
)

// Policy is the inbound rules compiled from the settings: allowed domains,
// the two spam rules and the filters. It is immutable, so sessions share
// one and a settings change swaps in a new one.
type Policy struct {
	domains   map[string]bool
	logDenied bool
	unknown   UnknownDomain
	filters   []compiledFilter
}

type compiledFilter struct {
	name  string
	to    []*regexp.Regexp // conditions on the envelope recipient
	heads []headerCond     // conditions on header fields
}

type headerCond struct {
	name string // as configured; compared without regard to case
	re   *regexp.Regexp
}

// NewPolicy validates and compiles the settings. Disabled filters are left
// out: they never match.
func NewPolicy(s settings.Inbound, unknown UnknownDomain) (*Policy, error) {
	s = s.Normalized()
	if err := s.Validate(true); err != nil {
		return nil, err
	}
	switch unknown {
	case RejectUnknown, PassUnknown:
	case "":
		unknown = RejectUnknown
	default:
		return nil, fmt.Errorf("compile inbound policy: unknown_domain must be %q or %q, got %q", RejectUnknown, PassUnknown, unknown)
	}
	p := &Policy{domains: map[string]bool{}, logDenied: s.LogDenied, unknown: unknown}
	for _, d := range s.Domains {
		p.domains[d] = true
	}
	for _, f := range s.Filters {
		if f.Disabled {
			continue
		}
		cf := compiledFilter{name: f.Name}
		for _, c := range f.Conditions {
			re, err := c.Compile()
			if err != nil { // Validate compiled it already
				return nil, fmt.Errorf("compile inbound policy: filter %q: %w", f.Name, err)
			}
			if c.IsTo() {
				cf.to = append(cf.to, re)
			} else {
				cf.heads = append(cf.heads, headerCond{name: c.Header, re: re})
			}
		}
		p.filters = append(p.filters, cf)
	}
	return p, nil
}

// LogDenied reports whether refusals for a domain that is not allowed go
// to the inbound log.
func (p *Policy) LogDenied() bool { return p.logDenied }

// RcptVerdict is what the policy decides for one recipient at RCPT.
type RcptVerdict int

const (
	// RcptCapture: an allowed domain, and at least one filter can still
	// match it; the message is captured for this recipient.
	RcptCapture RcptVerdict = iota + 1
	// RcptPass: a domain that is not allowed, with unknown_domain = pass:
	// Postfix handles the recipient as if the milter were not there.
	RcptPass
	// RcptUnknownDomain: a domain that is not allowed; refuse it.
	RcptUnknownDomain
	// RcptNoFilter: an allowed domain, but every enabled filter has a To
	// condition this address fails; refuse it.
	RcptNoFilter
)

// RcptDecision is the verdict for one recipient and, when it is refused,
// the reply and the log reason.
type RcptDecision struct {
	Verdict RcptVerdict
	Reply   Reply
	Reason  string
}

// Recipient decides one envelope recipient (policy step 1, and the part of
// step 3 that depends on the recipient alone, so that a recipient no filter
// can take is refused on its own rather than failing the whole message).
func (p *Policy) Recipient(rcpt string) RcptDecision {
	domain := domainOf(rcpt)
	if !p.domains[domain] {
		if p.unknown == PassUnknown {
			return RcptDecision{Verdict: RcptPass}
		}
		return RcptDecision{Verdict: RcptUnknownDomain, Reply: replyUnknownDomain(rcpt, domain), Reason: ReasonUnknownDomain}
	}
	for _, f := range p.filters {
		if f.matchesTo(rcpt) {
			return RcptDecision{Verdict: RcptCapture}
		}
	}
	return RcptDecision{Verdict: RcptNoFilter, Reply: replyNoFilterRcpt(rcpt), Reason: ReasonNoFilter}
}

func (f *compiledFilter) matchesTo(rcpt string) bool {
	for _, re := range f.to {
		if !re.MatchString(rcpt) {
			return false
		}
	}
	return true
}

// Field is one header field as the policy sees it: Raw is the value as
// received (for addresses), Value the value unfolded and decoded to UTF-8
// (for the filter patterns).
type Field struct {
	Name  string
	Raw   string
	Value string
}

// MessageDecision is the verdict on a message at the end of its headers.
type MessageDecision struct {
	// Reject is set when the whole message is refused; Reply and Reason say
	// why.
	Reject bool
	Reply  Reply
	Reason string
	// Matches lists, per capture recipient in the order given, the names
	// of the filters that matched; a recipient no filter matched has none.
	Matches [][]string
}

// Message applies the spam rules (policy step 2) and the filters (step 3)
// to a message with the given header fields and capture recipients (those
// Recipient gave RcptCapture). The message is refused when a spam rule
// holds or when no recipient matched a filter; a recipient without a match
// next to one with a match is logged denied, but the message is kept.
func (p *Policy) Message(fields []Field, rcpts []string) MessageDecision {
	from := firstAddress(values(fields, "From"))
	if from != "" && p.domains[domainOf(from)] {
		return MessageDecision{Reject: true, Reply: replySpamOwnDomain, Reason: ReasonSpamOwnDomain}
	}
	if from != "" {
		for _, to := range addresses(values(fields, "To")) {
			if strings.EqualFold(to, from) {
				return MessageDecision{Reject: true, Reply: replySpamFromIsTo, Reason: ReasonSpamFromIsTo}
			}
		}
	}
	d := MessageDecision{Matches: make([][]string, len(rcpts))}
	any := false
	for i, rcpt := range rcpts {
		for _, f := range p.filters {
			if f.matchesTo(rcpt) && f.matchesHeaders(fields) {
				d.Matches[i] = append(d.Matches[i], f.name)
				any = true
			}
		}
	}
	if !any {
		return MessageDecision{Reject: true, Reply: replyNoFilter, Reason: ReasonNoFilter, Matches: d.Matches}
	}
	return d
}

func (f *compiledFilter) matchesHeaders(fields []Field) bool {
	for _, c := range f.heads {
		found, ok := false, false
		for _, h := range fields {
			if strings.EqualFold(h.Name, c.name) {
				found = true
				if c.re.MatchString(h.Value) {
					ok = true
					break
				}
			}
		}
		// An absent header is tested as one empty value.
		if !found {
			ok = c.re.MatchString("")
		}
		if !ok {
			return false
		}
	}
	return true
}

// values returns the raw values of the fields named name.
func values(fields []Field, name string) []string {
	var out []string
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Raw)
		}
	}
	return out
}

// domainOf returns the lower-case domain of an address ("" without one),
// an internationalized one in its ASCII (xn--) form, as the allowed
// domains are kept: an SMTPUTF8 client may write either form.
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	d := strings.TrimSuffix(strings.ToLower(addr[at+1:]), ".")
	if a, err := settings.ASCIIDomain(d); err == nil {
		return a
	}
	return d
}
