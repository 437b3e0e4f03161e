package milter

import (
	"bytes"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

// splitMessage cuts a raw RFC 5322 message into the header fields and the
// body the way Postfix hands them to a milter: one field per header, the
// name without its colon, the value with one leading space removed and its
// folding line breaks kept (MILTER.md §1.3).
func splitMessage(raw []byte) ([]Field, []byte) {
	var fields []Field
	rest := raw
	for len(rest) > 0 {
		end := bytes.IndexByte(rest, '\n')
		line := rest
		if end >= 0 {
			line = rest[:end+1]
		}
		trimmed := strings.TrimRight(string(line), "\r\n")
		if trimmed == "" {
			rest = rest[len(line):]
			break
		}
		if (trimmed[0] == ' ' || trimmed[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].Raw += "\n" + trimmed
		} else if name, value, ok := strings.Cut(trimmed, ":"); ok {
			fields = append(fields, Field{Name: name, Raw: strings.TrimPrefix(value, " ")})
		}
		rest = rest[len(line):]
	}
	return fields, rest
}

// encode converts UTF-8 text to a Japanese legacy charset.
func encode(t testing.TB, enc encoding.Encoding, s string) string {
	t.Helper()
	out, err := enc.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bword is an RFC 2047 B-encoded word of s in a charset.
func bword(t testing.TB, charset string, enc encoding.Encoding, s string) string {
	t.Helper()
	raw := s
	if enc != nil {
		raw = encode(t, enc, s)
	}
	return "=?" + charset + "?B?" + base64.StdEncoding.EncodeToString([]byte(raw)) + "?="
}

// b64 wraps base64 at 76 columns (RFC 2045 §6.8).
func b64(data []byte) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76])
		b.WriteString("\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	b.WriteString("\r\n")
	return b.String()
}

var (
	iso2022jp = japanese.ISO2022JP
	shiftJIS  = japanese.ShiftJIS
	eucJP     = japanese.EUCJP
)

// crlf turns a message written with \n into one with SMTP's CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
