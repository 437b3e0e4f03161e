package dispatcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// inboundJSONType is the JSON encoding's content type (WIRE.md §3).
const inboundJSONType = "application/json"

// inboundJSON is the JSON encoding's object, in WIRE.md §3's field order.
// Our choice where WIRE.md is silent: text and html are left out when the
// message has no such body (as in the form encoding), and attachments is
// a number.
type inboundJSON struct {
	APIKey            string         `json:"api_key,omitempty"`
	ServerComposition string         `json:"server_composition"`
	Filter            string         `json:"filter"`
	Headers           []event.Header `json:"headers"`
	Subject           string         `json:"subject"`
	Text              string         `json:"text,omitempty"`
	HTML              string         `json:"html,omitempty"`
	EnvelopeFrom      string         `json:"envelope-from"`
	EnvelopeTo        string         `json:"envelope-to"`
	Attachments       int            `json:"attachments"`
}

// EncodeInbound builds the body of one POST of a message to one filter
// (WIRE.md §3): multipart/form-data with the attachments as file parts,
// or, with the filter's JSON option, one JSON object without them.
// rcpts are the envelope recipients that matched the filter; id is the
// post's webhook id, from which the multipart boundary is made so that
// the same post always has the same body. Attachment contents are read.
func EncodeInbound(m *event.InboundMessage, f settings.InboundFilter, rcpts []string, serverComposition, id string) (contentType string, body []byte, err error) {
	apiKey := ""
	if !f.APIKeyBearer {
		apiKey = string(f.APIKey)
	}
	headers := m.Headers
	if headers == nil {
		headers = []event.Header{}
	}
	if f.JSON {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		err := enc.Encode(inboundJSON{
			APIKey: apiKey, ServerComposition: serverComposition, Filter: f.Name, Headers: headers,
			Subject: m.Subject, Text: m.Text, HTML: m.HTML, EnvelopeFrom: m.EnvelopeFrom,
			EnvelopeTo: strings.Join(rcpts, ","), Attachments: len(m.Attachments),
		})
		if err != nil {
			return "", nil, fmt.Errorf("encode inbound post: %w", err)
		}
		return inboundJSONType, bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
	}

	var hb bytes.Buffer
	henc := json.NewEncoder(&hb)
	henc.SetEscapeHTML(false) // as in the JSON encoding
	if err := henc.Encode(headers); err != nil {
		return "", nil, fmt.Errorf("encode inbound post: %w", err)
	}
	hdrJSON := bytes.TrimSuffix(hb.Bytes(), []byte("\n"))
	var size int64
	for _, a := range m.Attachments {
		size += a.Size
	}
	var b bytes.Buffer
	b.Grow(int(size) + len(hdrJSON) + len(m.Text) + len(m.HTML) + 4096)
	w := multipart.NewWriter(&b)
	if err := w.SetBoundary(boundary(id)); err != nil {
		return "", nil, fmt.Errorf("encode inbound post: %w", err)
	}
	fields := []struct{ name, value string }{
		{"api_key", apiKey},
		{"server_composition", serverComposition},
		{"filter", f.Name},
		{"headers", string(hdrJSON)},
		{"subject", m.Subject},
		{"text", m.Text},
		{"html", m.HTML},
		{"envelope-from", m.EnvelopeFrom},
		{"envelope-to", strings.Join(rcpts, ",")},
		{"attachments", strconv.Itoa(len(m.Attachments))},
	}
	for _, fl := range fields {
		optional := fl.name == "api_key" || fl.name == "text" || fl.name == "html"
		if optional && fl.value == "" {
			continue
		}
		if err := w.WriteField(fl.name, fl.value); err != nil {
			return "", nil, fmt.Errorf("encode inbound post: %w", err)
		}
	}
	for i, a := range m.Attachments {
		name := "attachment" + strconv.Itoa(i+1)
		filename := a.Filename
		if filename == "" {
			filename = name
		}
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		h := textproto.MIMEHeader{}
		// RFC 7578 §4.2: the filename parameter; like browsers (HTML's
		// form submission algorithm) it is sent as UTF-8, with quotes,
		// backslashes and line breaks escaped or dropped.
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, name, quoteParam(filename)))
		h.Set("Content-Type", ct)
		pw, err := w.CreatePart(h)
		if err != nil {
			return "", nil, fmt.Errorf("encode inbound post: %w", err)
		}
		if a.Content != nil {
			if _, err := io.Copy(pw, a.Content); err != nil {
				return "", nil, fmt.Errorf("encode inbound post: attachment %d: %w", i+1, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		return "", nil, fmt.Errorf("encode inbound post: %w", err)
	}
	return w.FormDataContentType(), b.Bytes(), nil
}

// boundary makes the multipart boundary from the post's webhook id (RFC
// 2046 §5.1.1: 1 to 70 characters of a restricted set).
func boundary(id string) string {
	var b strings.Builder
	b.WriteString("posthorn-")
	for _, r := range id {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			b.WriteRune(r)
		}
	}
	s := b.String()
	if len(s) > 70 {
		s = s[:70]
	}
	return s
}

var paramEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", " ", "\n", " ", "\x00", "")

func quoteParam(s string) string { return paramEscaper.Replace(s) }
