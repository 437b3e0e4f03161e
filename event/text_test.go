package event

import (
	"encoding/json"
	"testing"
)

// TestValidUTF8: one U+FFFD per invalid byte, as encoding/json (and so
// AppendJSON) does, valid text unchanged.
func TestValidUTF8(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain ascii", "plain ascii"},
		{"日本語 ok", "日本語 ok"},
		{"a\xffb", "a\uFFFDb"},
		{"a\xff\xfeb", "a\uFFFD\uFFFDb"},       // a run: one per byte
		{"\xe6\x97", "\uFFFD\uFFFD"},           // truncated sequence
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate half
		{"x\xc0\xafy", "x\uFFFD\uFFFDy"},       // overlong
	} {
		got := ValidUTF8(tc.in)
		if got != tc.want {
			t.Errorf("ValidUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
		js, _ := json.Marshal(tc.in)
		var back string
		if err := json.Unmarshal(js, &back); err != nil || back != got {
			t.Errorf("%q: encoding/json gives %q, ValidUTF8 %q", tc.in, back, got)
		}
	}
}
