package event

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as one JSON object with the version-3 names of
// WIRE.md, in a fixed key order. It is what `posthorn parse` prints, one
// object per line; hand-written because encoding/json would cost as much as
// parsing the log line did.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"event":`...)
	b = appendString(b, string(e.Type))
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	for _, f := range [...]struct {
		k, v string
	}{
		{"host", e.Host}, {"queueId", e.QueueID}, {"messageId", e.MessageID},
		{"returnPath", e.ReturnPath}, {"to", e.To}, {"origTo", e.OrigTo},
		{"relay", e.Relay}, {"dsn", e.DSN}, {"reason", e.Reason}, {"delay", e.Delay},
	} {
		b = append(b, ',', '"')
		b = append(b, f.k...)
		b = append(b, '"', ':')
		b = appendString(b, f.v)
	}
	if e.Class != ClassNone {
		b = append(b, `,"class":`...)
		b = strconv.AppendInt(b, int64(e.Class), 10)
	}
	for _, f := range [...]struct {
		k, v string
	}{
		{"sourceIp", e.SourceIP}, {"senderIp", e.SenderIP},
		{"from", e.From}, {"subject", e.Subject}, {"apiData", e.APIData},
	} {
		if f.v == "" {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, f.k...)
		b = append(b, '"', ':')
		b = appendString(b, f.v)
	}
	if e.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(e.Attempt), 10)
	}
	if e.Size != 0 {
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, e.Size, 10)
	}
	return append(b, '}')
}

// MarshalJSON writes the AppendJSON form, so that encoding/json users get
// the same bytes.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// UnmarshalJSON reads the AppendJSON form.
func (e *Event) UnmarshalJSON(data []byte) error {
	type plain Event // no methods: avoids recursion
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	*e = Event(p)
	return nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string (RFC 8259 §7). Invalid UTF-8
// becomes U+FFFD, as encoding/json does, so the output is always valid.
// '<', '>' and '&' are escaped like encoding/json and the hosted service
// do, so the text is safe to embed in HTML.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
