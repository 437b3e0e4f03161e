package milter

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary messages to Parse (make fuzz, or go test
// -fuzz FuzzParse ./milter). Whatever the input: no panic, no error (the
// temporary directory works), valid UTF-8 everywhere, attachment sizes
// that match their contents, and a bounded problem list.
func FuzzParse(f *testing.F) {
	for _, c := range append(wellFormed(), malformed()...) {
		if c.name == "nested-1000" || c.name == "many-parts" {
			continue // large seeds slow every fuzz iteration
		}
		f.Add([]byte(c.raw(f)))
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\n--a--"))
	f.Add([]byte("Subject: =?utf-8?q?=ff?=\r\n\r\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		fields, body := splitMessage(raw)
		p, err := Parse(fields, bytes.NewReader(body), ParseOptions{TempDir: dir, MemLimit: 64, MaxDepth: 5, MaxParts: 50})
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		defer p.Close()
		strs := []string{p.From, p.Subject, p.MessageID, p.Text, p.HTML}
		for _, h := range p.Headers {
			strs = append(strs, h.Value)
		}
		for _, a := range p.Attachments {
			strs = append(strs, a.Filename, a.ContentType)
			n, err := io.Copy(io.Discard, a.Content)
			if err != nil || n != a.Size {
				t.Errorf("attachment %q: read %d bytes (%v), Size %d", a.Filename, n, err, a.Size)
			}
		}
		for _, s := range strs {
			if !utf8.ValidString(s) {
				t.Errorf("invalid UTF-8 in output: %q", s)
			}
			if strings.Contains(s, "\r\n") {
				t.Errorf("CRLF left in output: %q", s)
			}
		}
		if len(p.Problems) > maxProblems {
			t.Errorf("%d problems kept", len(p.Problems))
		}
	})
}
