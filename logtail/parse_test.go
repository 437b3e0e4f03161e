package logtail

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// parseInputLines reads a testdata input: one log line per line, kept byte
// for byte (trailing spaces and tabs included).
func parseInputLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// parseGoldenRecord is what a golden file holds for one line: the Record fields
// that are not zero, under their Go names, and "err" ("" when nil).
func parseGoldenRecord(r Record, err error) map[string]any {
	m := map[string]any{"err": ""}
	if err != nil {
		m["err"] = err.Error()
	}
	if err == nil {
		m["Kind"] = r.Kind.String()
	}
	v := reflect.ValueOf(r)
	for i := 0; i < v.NumField(); i++ {
		f, name := v.Field(i), v.Type().Field(i).Name
		if f.IsZero() {
			continue
		}
		switch name {
		case "Kind":
			continue
		case "Stamp":
			st := map[string]any{}
			sv := f
			for j := 0; j < sv.NumField(); j++ {
				sf := sv.Field(j)
				if sf.IsZero() {
					continue
				}
				if abs, ok := sf.Interface().(time.Time); ok {
					st[sv.Type().Field(j).Name] = abs.Format(time.RFC3339Nano)
					continue
				}
				st[sv.Type().Field(j).Name] = sf.Interface()
			}
			m[name] = st
		default:
			m[name] = f.Interface()
		}
	}
	return m
}

func parseGoldenMarshal(t *testing.T, m map[string]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestParseGolden runs every testdata/parse/*.log through Parse and compares
// the result with the .golden file beside it, line by line. Run with
// -update to rewrite the goldens, then read the diff.
func TestParseGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "parse", "*.log"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in testdata/parse: %v", err)
	}
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".log"), func(t *testing.T) {
			lines := parseInputLines(t, in)
			var got bytes.Buffer
			for _, line := range lines {
				r, err := Parse(line)
				got.Write(parseGoldenMarshal(t, parseGoldenRecord(r, err)))
			}
			golden := strings.TrimSuffix(in, ".log") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantData, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestParseGolden -update to create it)", err)
			}
			want := strings.Split(strings.TrimSuffix(string(wantData), "\n"), "\n")
			have := strings.Split(strings.TrimSuffix(got.String(), "\n"), "\n")
			if len(want) != len(have) {
				t.Fatalf("%s has %d lines, %s gives %d", golden, len(want), in, len(have))
			}
			for i := range want {
				var w, h any
				if err := json.Unmarshal([]byte(want[i]), &w); err != nil {
					t.Fatalf("%s:%d: %v", golden, i+1, err)
				}
				if err := json.Unmarshal([]byte(have[i]), &h); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(w, h); d != "" {
					t.Errorf("%s:%d: %q\n(-want +got):\n%s", in, i+1, lines[i], d)
				}
			}
		})
	}
}

// TestParseFieldsAreSlices checks the no-copy promise on the golden inputs:
// every string of a non-JSON Record points into the line.
func TestParseFieldsAreSlices(t *testing.T) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "parse", "*.log"))
	for _, in := range inputs {
		for _, line := range parseInputLines(t, in) {
			r, _ := Parse(line)
			if strings.HasPrefix(line, "{") {
				continue
			}
			if f := parseFieldOutside(&r, line); f != "" {
				t.Errorf("%s: field %s is not a slice of %q", in, f, line)
			}
		}
	}
}

// parseFieldOutside names the first non-empty string field of r whose bytes do
// not lie inside line, or returns "".
func parseFieldOutside(r *Record, line string) string {
	v := reflect.ValueOf(r).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.String || f.Len() == 0 {
			continue
		}
		if !parseSliceOf(f.String(), line) {
			return v.Type().Field(i).Name
		}
	}
	return ""
}

func TestParseNotAllocating(t *testing.T) {
	lines := parseBenchLines(t)
	allocs := testing.AllocsPerRun(20, func() {
		for _, l := range lines {
			_, _ = Parse(l)
		}
	})
	if allocs != 0 {
		for _, l := range lines {
			if a := testing.AllocsPerRun(5, func() { _, _ = Parse(l) }); a != 0 {
				t.Errorf("%.0f allocations for %q", a, l)
			}
		}
	}
}

// TestParseEdgeCases: inputs that must come back quickly, without a panic,
// with the stated outcome.
func TestParseEdgeCases(t *testing.T) {
	const mb10 = 10 << 20
	prefix := "Nov  7 09:01:02 mx1 postfix/smtp[42]: 3A1F2B4C5D: "
	tests := []struct {
		name  string
		line  string
		kind  Kind
		err   error // ErrNotPostfix, errAnyParseError (any *ParseError), or nil
		check func(t *testing.T, r Record)
	}{
		{name: "empty", line: "", err: ErrNotPostfix},
		{name: "spaces", line: "   \t ", err: ErrNotPostfix},
		{name: "only a stamp", line: "Nov  7 09:01:02", err: ErrNotPostfix},
		{name: "only a stamp and host", line: "Nov  7 09:01:02 mx1", err: ErrNotPostfix},
		{name: "only a stamp, host and space", line: "Nov  7 09:01:02 mx1 ", err: ErrNotPostfix},
		{name: "only a PRI", line: "<22>", err: ErrNotPostfix},
		{name: "only an RFC 5424 header", line: "<22>1 ", err: ErrNotPostfix},
		{name: "bare tag", line: "postfix/smtp[1]:", kind: KindOther, check: func(t *testing.T, r Record) {
			if r.Program != "postfix/smtp" || r.Daemon != "smtp" || r.PID != 1 {
				t.Errorf("got %+v", r)
			}
		}},
		{name: "bare tag and queue ID", line: "postfix/smtp[1]: 3A1F2B4C5D: removed", kind: KindRemoved},
		{name: "binary", line: "\x00\x01\x02\xff\xfe postfix/smtp[1]\x00: \x00", err: ErrNotPostfix},
		{name: "NUL bytes in payload", line: prefix + "to=<a\x00b@example.org>, relay=none, dsn=5.0.0, status=bounced (\x00)", kind: KindDelivery, check: func(t *testing.T, r Record) {
			if r.To != "a\x00b@example.org" || r.Reason != "\x00" {
				t.Errorf("got To %q Reason %q", r.To, r.Reason)
			}
		}},
		{name: "invalid UTF-8", line: prefix + "to=<\xff\xfe@example.org>, relay=none, dsn=5.0.0, status=bounced (bad \xc3\x28 byte)", kind: KindDelivery, check: func(t *testing.T, r Record) {
			if r.To != "\xff\xfe@example.org" || r.Reason != "bad \xc3\x28 byte" {
				t.Errorf("got To %q Reason %q", r.To, r.Reason)
			}
		}},
		{name: "10 MB of letters", line: strings.Repeat("a", mb10), err: ErrNotPostfix},
		{name: "10 MB of spaces after a prefix", line: "Nov  7 09:01:02 mx1" + strings.Repeat(" ", mb10), err: ErrNotPostfix},
		{name: "10 MB reason", line: prefix + "to=<a@example.org>, relay=none, dsn=4.0.0, status=deferred (" + strings.Repeat("(x) ", mb10/4) + ")", kind: KindDelivery, check: func(t *testing.T, r Record) {
			if len(r.Reason) != MaxReason || !strings.HasPrefix(r.Reason, "(x) (x) ") {
				t.Errorf("reason is %d bytes, want the first %d", len(r.Reason), MaxReason)
			}
		}},
		{name: "10 MB of open brackets", line: prefix + "to=" + strings.Repeat("<", mb10), err: errAnyParseError},
		{name: "10 MB of to=<", line: prefix + strings.Repeat("to=<", mb10/4), err: errAnyParseError},
		{name: "10 MB of to=<x, ", line: prefix + strings.Repeat("to=<x, ", mb10/7), err: errAnyParseError},
		{name: "10 MB of keys", line: prefix + "to=<a@b>, " + strings.Repeat("k=v, ", mb10/5) + "status=sent (ok)", kind: KindDelivery},
		{name: "10 MB of commas", line: prefix + "to=<a@b>" + strings.Repeat(",", mb10), err: errAnyParseError},
		{name: "10 MB reject", line: "Nov  7 09:01:02 mx1 postfix/smtpd[42]: NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 " + strings.Repeat("; from=<", mb10/8), kind: KindReject},
		{name: "10 MB queue ID", line: "Nov  7 09:01:02 mx1 postfix/smtpd[42]: " + strings.Repeat("A", mb10) + ": removed", kind: KindOther},
		{name: "10 MB tag", line: "Nov  7 09:01:02 mx1 postfix/" + strings.Repeat("s", mb10) + "[1]: x", err: ErrNotPostfix},
		{name: "10 MB message-id", line: prefix + "message-id=<" + strings.Repeat(">", mb10), kind: KindMessageID},
		{name: "10 MB compose name", line: strings.Repeat("n", mb10) + " | Nov  7 09:01:02 mx1 postfix/qmgr[1]: 3A1F2B4C5D: removed", err: ErrNotPostfix},
		{name: "10 MB JSON", line: `{"SYSLOG_IDENTIFIER":"postfix/smtp","MESSAGE":"3A1F2B4C5D: to=<a@b>, status=deferred (` + strings.Repeat("x", mb10) + `)"}`, kind: KindDelivery},
		{name: "deep JSON", line: `{"MESSAGE":` + strings.Repeat("[", 100000), err: ErrNotPostfix},
		{name: "JSON with a deep MESSAGE", line: `{"SYSLOG_IDENTIFIER":"postfix/smtp","MESSAGE":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, kind: KindOther},
		{name: "cut at 2000 bytes by Postfix", line: prefix + "to=<a@example.org>, relay=mx.example.org[192.0.2.1]:25, delay=1, delays=1/0/0/0, dsn=5.7.1, status=bounced (host mx.example.org[192.0.2.1] said: 550 5.7.1 " + strings.Repeat("blah ", 360), kind: KindDelivery, check: func(t *testing.T, r Record) {
			if !strings.HasSuffix(r.Reason, "blah") || r.RelayIP != "192.0.2.1" {
				t.Errorf("reason %q..., relay IP %q", r.Reason[:40], r.RelayIP)
			}
		}},
		{name: "reason over MaxReason, cut on a character", line: prefix + "to=<a@example.org>, relay=none, dsn=5.0.0, status=bounced (" + strings.Repeat("é", MaxReason) + ")", kind: KindDelivery, check: func(t *testing.T, r Record) {
			if len(r.Reason) != MaxReason || !utf8.ValidString(r.Reason) {
				t.Errorf("reason is %d bytes, valid UTF-8 %v", len(r.Reason), utf8.ValidString(r.Reason))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.line)
			switch {
			case tt.err == errAnyParseError:
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a *ParseError", err)
				}
			case err != tt.err:
				t.Fatalf("err = %v, want %v", err, tt.err)
			case err == nil && r.Kind != tt.kind:
				t.Fatalf("kind = %v, want %v", r.Kind, tt.kind)
			}
			if !strings.HasPrefix(tt.line, "{") {
				if f := parseFieldOutside(&r, tt.line); f != "" {
					t.Errorf("field %s is not a slice of the line", f)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// errAnyParseError stands for "any *ParseError" in test tables.
var errAnyParseError = errors.New("a *ParseError")

// TestParseStamps pins the numeric stamp fields, which the goldens show only
// as non-zero values.
func TestParseStamps(t *testing.T) {
	tail := " mail postfix/qmgr[1]: 3A1F2B4C5D: removed"
	tests := []struct {
		prefix string
		want   Stamp
	}{
		{"Nov  7 09:01:02", Stamp{Month: time.November, Day: 7, Hour: 9, Min: 1, Sec: 2}},
		{"Nov 07 09:01:02", Stamp{Month: time.November, Day: 7, Hour: 9, Min: 1, Sec: 2}},
		{"Jul 2 00:00:00", Stamp{Month: time.July, Day: 2}},
		{"Okt 15 23:48:15", Stamp{Month: time.October, Day: 15, Hour: 23, Min: 48, Sec: 15}},
		{"Mär  1 01:02:03", Stamp{Month: time.March, Day: 1, Hour: 1, Min: 2, Sec: 3}},
		{"2020-01-30T06:26:05.404714+09:00", Stamp{Year: 2020, Month: time.January, Day: 30, Hour: 6, Min: 26, Sec: 5, Nsec: 404714000, Offset: 9 * 3600, HasOffset: true}},
		{"2020-01-30T06:26:05-05:00", Stamp{Year: 2020, Month: time.January, Day: 30, Hour: 6, Min: 26, Sec: 5, Offset: -5 * 3600, HasOffset: true}},
		{"2020-01-30T06:26:05+00:00", Stamp{Year: 2020, Month: time.January, Day: 30, Hour: 6, Min: 26, Sec: 5, HasOffset: true}},
		{"2020-01-30T06:26:05.1Z", Stamp{Year: 2020, Month: time.January, Day: 30, Hour: 6, Min: 26, Sec: 5, Nsec: 100000000, HasOffset: true}},
		{"2020-01-30T06:26:05.123456789", Stamp{Year: 2020, Month: time.January, Day: 30, Hour: 6, Min: 26, Sec: 5, Nsec: 123456789}},
		{"2020-01-30T06:26:05+0530", Stamp{Year: 2020, Month: time.January, Day: 30, Hour: 6, Min: 26, Sec: 5, Offset: 5*3600 + 30*60, HasOffset: true}},
		{"<22>Mar 14 11:18:49", Stamp{Month: time.March, Day: 14, Hour: 11, Min: 18, Sec: 49}},
	}
	for _, tt := range tests {
		r, err := Parse(tt.prefix + tail)
		if err != nil {
			t.Errorf("%q: %v", tt.prefix, err)
			continue
		}
		if r.Stamp != tt.want {
			t.Errorf("%q: stamp %+v, want %+v", tt.prefix, r.Stamp, tt.want)
		}
		if r.Host != "mail" || r.Kind != KindRemoved {
			t.Errorf("%q: host %q kind %v", tt.prefix, r.Host, r.Kind)
		}
	}
	r, err := Parse(`{"SYSLOG_IDENTIFIER":"postfix/qmgr","__REALTIME_TIMESTAMP":"1789228152650438","MESSAGE":"3A1F2B4C5D: removed"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 9, 12, 15, 49, 12, 650438000, time.UTC); !r.Stamp.Abs.Equal(want) || r.Stamp.Abs.Location() != time.UTC {
		t.Errorf("journald stamp %v, want %v", r.Stamp.Abs, want)
	}
}
