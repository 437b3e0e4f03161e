package blocks

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"

	"github.com/posthorn/posthorn/event"
)

// ErrNotBounce is returned by ParseDSN for a message in which no failed
// recipient can be found: not a bounce, or one in a form it does not know.
var ErrNotBounce = errors.New("not a bounce message")

// Limits that keep a hostile message from costing more than a real bounce.
const (
	maxDSNSize  = 16 << 20 // a bounce returning a large message is cut here
	maxDepth    = 8        // nesting of multiparts
	maxParts    = 200      // parts of all multiparts together
	maxRcpts    = 1000     // recipients of one report
	maxDiagText = 2000     // bytes of one diagnostic
)

// Report is what a bounce message says about the mail it returns.
type Report struct {
	// MessageID is the Message-ID of the original message, with its <>,
	// from the returned message or headers; "" when the bounce did not
	// return it.
	MessageID string `json:"messageId"`
	// Standard is true when the bounce is an RFC 3464 report (a
	// message/delivery-status part), false when its recipients were read
	// from a provider's plain text.
	Standard bool `json:"standard"`
	// Recipients are the per-recipient results, in the report's order.
	Recipients []Recipient `json:"recipients"`
}

// Recipient is one per-recipient section of a report (RFC 3464 §2.3).
type Recipient struct {
	// Address is the recipient as the sender addressed it: the
	// Original-Recipient when the report gives an RFC 822 one, else the
	// Final-Recipient; normalised as Normalize does.
	Address string `json:"address"`
	// Action is "failed", "delayed", "delivered", "relayed" or "expanded"
	// (RFC 3464 §2.3.3), lower case. Text bounces are "failed".
	Action string `json:"action"`
	// Status is the enhanced status code (RFC 3463), e.g. "5.1.1"; for a
	// text bounce the code in its diagnostic, or one its wording implies.
	// "" when unknown.
	Status string `json:"status"`
	// Diagnostic is the remote server's reply or the reporting MTA's
	// reason, without the diagnostic type ("smtp; "), unfolded.
	Diagnostic string `json:"diagnostic"`
}

// Failed reports whether the report says delivery to this recipient
// failed for good, which is what a bounces record is for.
func (r Recipient) Failed() bool { return r.Action == "failed" }

// Classifier maps an enhanced status code and a diagnostic text to a
// bounce class (WIRE.md §2); serve passes the log correlator's rules, so
// that a DSN and a maillog line with the same text get the same class.
type Classifier func(dsn, reason string) event.Class

// Class is the bounce class of a failed recipient. A failure with a
// persistent transient status (4.x.x) is the sending MTA giving up after
// the queue lifetime: a retransmission timeout (class 3), whatever the
// last reply was (RFC 3464 §2.3.3: "failed" with a 4.x.x status).
func (r Recipient) Class(classify Classifier) event.Class {
	if strings.HasPrefix(r.Status, "4.") && r.Failed() {
		return event.ClassTimeout
	}
	if classify == nil {
		return event.ClassOther
	}
	status := r.Status
	lower := strings.ToLower(r.Diagnostic)
	for _, o := range statusOverrides {
		if strings.Contains(lower, o.phrase) {
			status = o.status
			break
		}
	}
	return classify(status, r.Diagnostic)
}

// statusOverrides are diagnostics whose server sends an enhanced code that
// means something else in RFC 3463's registry. Exchange and Microsoft 365
// answer a mailbox that does not exist with "550 5.1.10
// RESOLVER.ADR.RecipientNotFound", but 5.1.10 is registered for a null MX
// (RFC 7505 §4.2): the wording decides.
var statusOverrides = []struct{ phrase, status string }{
	{"resolver.adr.recipientnotfound", "5.1.1"},
	{"resolver.adr.exrecipnotfound", "5.1.1"},
}

// ParseDSN reads a bounce message: an RFC 3464 multipart/report (also its
// RFC 6533 message/global-delivery-status form), or, when it has no
// delivery-status part, the plain text of the common non-standard bounces
// (qmail and Yahoo "<addr>:" paragraphs, Exchange/Outlook "Remote Server
// returned", Gmail "wasn't delivered to"). It never panics on bad input;
// a message that names no recipient is ErrNotBounce.
func ParseDSN(r io.Reader) (*Report, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDSNSize))
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	w := walker{}
	w.walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), body, 0)

	rep := &Report{MessageID: w.messageID}
	for _, st := range w.status {
		rep.Recipients = append(rep.Recipients, parseStatus(st)...)
	}
	if len(rep.Recipients) > 0 {
		rep.Standard = true
	} else {
		text := strings.Join(w.text, "\n")
		rep.Recipients = parseText(text)
		if rep.MessageID == "" {
			rep.MessageID = messageIDInText(text)
		}
	}
	if len(rep.Recipients) > maxRcpts {
		rep.Recipients = rep.Recipients[:maxRcpts]
	}
	if len(rep.Recipients) == 0 {
		return nil, fmt.Errorf("parse dsn: %w", ErrNotBounce)
	}
	return rep, nil
}

// walker collects the parts of a bounce that matter.
type walker struct {
	status    [][]byte // message/delivery-status bodies
	text      []string // text parts, the human-readable notification
	messageID string   // of the first returned message or headers
	parts     int
}

func (w *walker) walk(contentType, cte string, body []byte, depth int) {
	w.parts++
	if depth > maxDepth || w.parts > maxParts {
		return
	}
	body = decodeCTE(cte, body)
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || contentType == "" {
		mt = "text/plain" // RFC 2045 §5.2 default, also for a broken header
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		boundary := params["boundary"]
		if boundary == "" {
			w.text = append(w.text, string(body))
			return
		}
		mr := multipart.NewReader(bytes.NewReader(body), boundary)
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return // io.EOF, or a broken multipart: keep what was read
			}
			b, err := io.ReadAll(io.LimitReader(p, maxDSNSize))
			if err != nil && len(b) == 0 {
				return
			}
			w.walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), b, depth+1)
		}
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		w.status = append(w.status, body)
	case mt == "message/rfc822" || mt == "message/global" || mt == "text/rfc822-headers" || mt == "message/global-headers" || mt == "message/rfc822-headers":
		if w.messageID == "" {
			w.messageID = headerMessageID(body)
		}
	case strings.HasPrefix(mt, "text/"):
		w.text = append(w.text, string(body))
	}
}

// decodeCTE undoes a Content-Transfer-Encoding (RFC 2045 §6); an unknown
// or broken encoding leaves the bytes as they are, which is what a reader
// of the text would see.
func decodeCTE(cte string, b []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, b)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil && n == 0 {
			return b
		}
		return out[:n]
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
		if err != nil && len(out) == 0 {
			return b
		}
		return out
	}
	return b
}

// fieldGroups splits header-style text into groups of fields separated by
// blank lines, unfolding continuation lines (RFC 5322 §2.2.3) and
// lower-casing the names. Lines that are not fields are skipped: a
// delivery-status part written by a careless MTA still yields what it
// got right.
func fieldGroups(b []byte) []map[string]string {
	var groups []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, cur)
		}
		cur, last = map[string]string{}, ""
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += " " + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			name = strings.ToLower(strings.TrimSpace(name))
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				last = ""
				continue
			}
			if _, dup := cur[name]; !dup { // the first of a repeated field counts
				cur[name] = strings.TrimSpace(value)
			}
			last = name
		}
	}
	flush()
	return groups
}

// parseStatus reads the per-recipient groups of a delivery-status body
// (RFC 3464 §2.3); the per-message group has no recipient and is skipped.
func parseStatus(b []byte) []Recipient {
	var out []Recipient
	for _, g := range fieldGroups(b) {
		addr := typedAddress(g["original-recipient"])
		if addr == "" {
			addr = typedAddress(g["final-recipient"])
		}
		if addr == "" {
			continue
		}
		out = append(out, Recipient{
			Address:    addr,
			Action:     strings.ToLower(firstWord(g["action"])),
			Status:     statusCode(g["status"]),
			Diagnostic: clip(typedValue(g["diagnostic-code"])),
		})
	}
	return out
}

// typedAddress reads "rfc822; user@example.com" (RFC 3464 §2.3.1-2; the
// "utf-8" type of RFC 6533 too). Other address types are not mail
// addresses and give "".
func typedAddress(v string) string {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok {
		return ""
	}
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "rfc822", "utf-8":
	default:
		return ""
	}
	a, err := Normalize(decodeXtext(strings.TrimSpace(addr)))
	if err != nil {
		return ""
	}
	return a
}

// decodeXtext undoes the "+XX" escapes of RFC 3461 §4 that an
// Original-Recipient taken from ORCPT may carry.
func decodeXtext(s string) string {
	if !strings.Contains(s, "+") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}

// typedValue drops the type of "smtp; 550 ..." (RFC 3464 §2.3.6).
func typedValue(v string) string {
	if _, rest, ok := strings.Cut(v, ";"); ok {
		return strings.TrimSpace(rest)
	}
	return strings.TrimSpace(v)
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

var enhancedRE = regexp.MustCompile(`(?:^|[^0-9.])([245]\.[0-9]{1,3}\.[0-9]{1,3})(?:$|[^0-9.])`)

// statusCode returns the enhanced code at the start of a Status field
// ("5.1.1", also "5.1.1 (user unknown)"), or "".
func statusCode(v string) string {
	w := firstWord(v)
	if m := enhancedRE.FindStringSubmatch(w); m != nil && m[1] == w {
		return w
	}
	return ""
}

// clip bounds a diagnostic and collapses its white space.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDiagText {
		s = strings.ToValidUTF8(s[:maxDiagText], "")
	}
	return s
}

// headerMessageID finds the Message-ID field of a returned message or
// header block.
func headerMessageID(b []byte) string {
	// Only the header section: a body line "Message-ID:" is not one.
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	if i := strings.Index(s, "\n\n"); i >= 0 {
		s = s[:i]
	}
	for _, g := range fieldGroups([]byte(s)) {
		if id := msgID(g["message-id"]); id != "" {
			return id
		}
	}
	return ""
}

var msgIDRE = regexp.MustCompile(`<[^<>\s]+>`)

// msgID returns the "<...>" of a Message-ID field value (RFC 5322 §3.6.4).
func msgID(v string) string {
	return msgIDRE.FindString(v)
}
