package event

import (
	"strings"
	"unicode/utf8"
)

// ValidUTF8 returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD: one replacement per invalid byte, the rule
// encoding/json and the JSON output (appendString) follow, so a CSV cell
// and the same field in JSON read alike. Log lines and receivers' answers
// are bytes; a CSV or a page must be UTF-8 text.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
