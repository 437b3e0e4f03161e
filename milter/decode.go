package milter

import (
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// wordDecoder decodes RFC 2047 encoded words in any charset go-message's
// charset package knows (it covers ISO-2022-JP, Shift_JIS, EUC-JP and the
// ISO-8859 and Windows code pages through golang.org/x/text).
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// unfold removes the line breaks of a folded header value (RFC 5322
// §2.2.3: unfolding removes each CRLF that is followed by white space) and
// trims the white space around the value.
func unfold(raw string) string {
	if strings.ContainsAny(raw, "\r\n") {
		raw = strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(raw)
	}
	return strings.Trim(raw, " \t")
}

// iso2022Escape starts a JIS X 0208 run in ISO-2022-JP (RFC 1468). Old
// Japanese mailers put such text in headers without encoded words.
const iso2022Escape = "\x1b$B"

// decodeValue unfolds a header value, decodes its RFC 2047 encoded words and
// returns valid UTF-8 (toUTF8 says how raw 8-bit bytes are read).
func decodeValue(raw, hint string) string {
	v := toUTF8(unfold(raw), hint)
	if strings.Contains(v, "=?") {
		if dec, err := wordDecoder.DecodeHeader(v); err == nil {
			v = strings.ToValidUTF8(dec, "\uFFFD")
		}
	}
	return v
}

// toUTF8 reads text whose charset nobody declared: raw 8-bit header bytes
// (RFC 6532 allows UTF-8; older mailers send their local charset) and text
// parts without a charset parameter. It is read as ISO-2022-JP when it
// carries that charset's escape sequence (RFC 1468), as UTF-8 when it is
// valid UTF-8, as hint (the message's declared charset) when one is given,
// as Shift_JIS or EUC-JP when that decodes cleanly into Japanese, and as
// Windows-1252 (which decodes every byte) otherwise.
func toUTF8(s, hint string) string {
	if strings.Contains(s, iso2022Escape) {
		if d, ok := convert("iso-2022-jp", s); ok && !strings.ContainsRune(d, utf8.RuneError) {
			return d
		}
	}
	if utf8.ValidString(s) {
		return s
	}
	if hint != "" && !strings.EqualFold(hint, "utf-8") && !strings.EqualFold(hint, "us-ascii") {
		if d, ok := convert(hint, s); ok {
			return strings.ToValidUTF8(d, "\uFFFD")
		}
	}
	for _, cs := range []string{"shift_jis", "euc-jp"} {
		if d, ok := convert(cs, s); ok && !strings.ContainsRune(d, utf8.RuneError) && hasJapanese(d) {
			return d
		}
	}
	if d, ok := convert("windows-1252", s); ok {
		return strings.ToValidUTF8(d, "\uFFFD")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// hasJapanese reports kana or CJK ideographs: the sign that a guessed
// Japanese charset was the right guess.
func hasJapanese(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r >= 0x3040 && r <= 0x30ff || r >= 0x4e00 && r <= 0x9fff || r >= 0xff66 && r <= 0xff9f
	})
}

// convert decodes s from a named charset; ok is false for an unknown
// charset.
func convert(name, s string) (string, bool) {
	r, err := charset.Reader(name, strings.NewReader(s))
	if err != nil {
		return "", false
	}
	var b strings.Builder
	if _, err := io.Copy(&b, r); err != nil {
		return "", false
	}
	return b.String(), true
}
