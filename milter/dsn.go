package milter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Bounce mail. Mail sent with a bounce address as its return path comes
// back there when a later hop cannot deliver it: a delivery status
// notification (DSN, RFC 3464) or a provider's plain-text equivalent. The
// inbound role accepts a recipient that is a bounce address whatever the
// inbound settings say (it is not an inbound domain's mailbox: no filter,
// no spam rule and no Inbound Webhook apply to it), keeps the message
// within the same size limit as captured mail, and at the end of the
// message hands it to the BounceSink, which reads the report and stores
// its bounces. Like a capture, the answer waits until that is durable: a
// store error tempfails the message, so that the sending MTA delivers it
// again, and the sink ignores a bounce message it has read before.

// BounceOptions configure the intake of bounce mail; without Addresses
// there is none.
type BounceOptions struct {
	// Addresses are the bounce addresses: full addresses
	// ("bounces@bounce.example.com") and whole domains ("@bounce.example.com").
	Addresses []string
	// VERP: a recipient whose local part is a bounce address's, the first
	// delimiter, and an original recipient with its "@" replaced by the
	// second delimiter ("bounces+user=example.org@bounce.example.com")
	// is that bounce address, and names the recipient (Postfix's
	// VERP_README). For a whole-domain entry the local part ends at the
	// first first delimiter.
	VERP bool
	// Delimiters are VERP's two delimiters (default "+=", Postfix's
	// default_verp_delimiters).
	Delimiters string
	// Sink reads and stores each bounce message.
	Sink BounceSink
}

// BounceSink is what the inbound role hands bounce mail to.
type BounceSink interface {
	// Bounce reads one bounce message and stores what it reports; it
	// returns nil only once that is durable, and the outcome for the
	// metrics (DecisionBounce*). A message it cannot use is not an error:
	// it logs it and returns DecisionBounceUnmatched.
	Bounce(ctx context.Context, m *BounceMail) (decision string, err error)
}

// Decisions of the bounce intake, passed to Options.Observe.
const (
	DecisionBounce          = "bounce"           // bounces recorded
	DecisionBounceIgnored   = "bounce_ignored"   // nothing new: a delay notice, a bounce already recorded
	DecisionBounceUnmatched = "bounce_unmatched" // not a bounce, or its message is not known
)

// BounceMail is one message to bounce addresses.
type BounceMail struct {
	Host         string // this mail server
	QueueID      string
	Received     time.Time
	ClientAddr   string
	EnvelopeFrom string // normally the null sender
	// Recipients are the envelope recipients that are bounce addresses.
	Recipients []BounceRecipient
	// MessageID is the bounce message's own Message-ID with its <>, ""
	// without one.
	MessageID string
	// ID identifies the bounce message however often it is delivered:
	// MessageID, or when there is none a digest of the body.
	ID   string
	Size int64
	// Message reads the whole message, header and body, as received.
	Message io.Reader
}

// BounceRecipient is one envelope recipient that is a bounce address.
type BounceRecipient struct {
	Address string // as given in RCPT TO
	// VERP is the original recipient the address names, "" when it is not
	// a VERP address (or VERP is off).
	VERP string
}

// BounceAddresses recognises bounce addresses. Domains compare without
// regard to case (RFC 5321 §2.4); so do local parts: these addresses are
// Posthorn's own, and a remote MTA that changes their case still means
// them.
type BounceAddresses struct {
	full    map[string]bool // "local@domain", lower case
	locals  map[string][]string
	domains map[string]bool // whole domains, lower case
	verp    bool
	d1, d2  byte
}

// NewBounceAddresses compiles o's addresses and VERP settings; nil (and
// no error) when there are no addresses.
func NewBounceAddresses(o BounceOptions) (*BounceAddresses, error) {
	b := &BounceAddresses{full: map[string]bool{}, locals: map[string][]string{}, domains: map[string]bool{}, verp: o.VERP}
	delims := o.Delimiters
	if delims == "" {
		delims = "+="
	}
	if len(delims) != 2 || delims[0] == delims[1] || strings.ContainsAny(delims, "@<>\" \t") {
		return nil, fmt.Errorf("bounce addresses: VERP delimiters must be two different characters, not @, <, >, quote or space, got %q", delims)
	}
	b.d1, b.d2 = delims[0], delims[1]
	for _, a := range o.Addresses {
		a = strings.ToLower(strings.TrimSpace(a))
		local, domain, ok := strings.Cut(a, "@")
		if !ok || domain == "" || strings.Contains(domain, "@") {
			return nil, fmt.Errorf("bounce addresses: %q is neither an address nor @domain", a)
		}
		if local == "" {
			b.domains[domain] = true
			continue
		}
		b.full[a] = true
		b.locals[domain] = append(b.locals[domain], local)
	}
	if len(b.full) == 0 && len(b.domains) == 0 {
		return nil, nil
	}
	return b, nil
}

// Match reports whether addr is a bounce address and, with VERP, the
// recipient it names. A VERP-shaped address whose recipient part is
// broken is still a bounce address, naming none. A nil BounceAddresses
// matches nothing.
func (b *BounceAddresses) Match(rcpt string) (BounceRecipient, bool) {
	if b == nil {
		return BounceRecipient{}, false
	}
	a := strings.TrimSpace(rcpt)
	if strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">") {
		a = a[1 : len(a)-1]
	}
	at := strings.LastIndexByte(a, '@')
	if at <= 0 {
		return BounceRecipient{}, false
	}
	local, domain := a[:at], strings.TrimSuffix(strings.ToLower(a[at+1:]), ".")
	r := BounceRecipient{Address: rcpt}
	if b.full[strings.ToLower(local)+"@"+domain] {
		return r, true
	}
	if b.verp {
		for _, l := range b.locals[domain] {
			if len(local) > len(l) && local[len(l)] == b.d1 && strings.EqualFold(local[:len(l)], l) {
				r.VERP = b.decodeVERP(local[len(l)+1:])
				return r, true
			}
		}
	}
	if !b.domains[domain] {
		return BounceRecipient{}, false
	}
	if b.verp {
		if i := strings.IndexByte(local, b.d1); i > 0 {
			r.VERP = b.decodeVERP(local[i+1:])
		}
	}
	return r, true
}

// decodeVERP turns "user=example.org" back into "user@example.org": the
// last second delimiter is the "@", since a domain holds no "=" while a
// local part may.
func (b *BounceAddresses) decodeVERP(s string) string {
	i := strings.LastIndexByte(s, b.d2)
	if i <= 0 || i == len(s)-1 || strings.ContainsAny(s, "@ \t<>") {
		return ""
	}
	return s[:i] + "@" + s[i+1:]
}

// errNoBody is a bounce message whose body could not be kept.
var errNoBody = errors.New("the body could not be spooled")

// bounce hands the transaction's message to the sink. The message is
// rebuilt from the header fields as received and the spooled body.
func (t *inbound) bounce() (string, error) {
	if t.body == nil {
		return "", errNoBody
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.srv.o.CaptureTimeout)
	defer cancel()
	var head strings.Builder
	for _, f := range t.fields {
		head.WriteString(f.Name)
		head.WriteString(": ")
		head.WriteString(f.Raw)
		head.WriteString("\r\n")
	}
	head.WriteString("\r\n")
	_, mid := t.headerFromAndID()
	mid = strings.TrimSpace(mid)
	id := mid
	if id == "" {
		h := sha256.New()
		if _, err := io.Copy(h, t.body.Reader()); err != nil {
			return "", fmt.Errorf("read the spooled body: %w", err)
		}
		id = "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	m := &BounceMail{
		Host:         t.srv.o.Host,
		QueueID:      t.queueID,
		Received:     t.srv.o.Now(),
		ClientAddr:   t.client,
		EnvelopeFrom: t.from,
		Recipients:   t.bounces,
		MessageID:    mid,
		ID:           id,
		Size:         t.size,
		Message:      io.MultiReader(strings.NewReader(head.String()), t.body.Reader()),
	}
	return t.srv.o.Bounce.Sink.Bounce(ctx, m)
}
