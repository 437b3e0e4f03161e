package logtail

import "strings"

// maxBracketScans bounds how many <...> values one line may scan for their
// closing '>'. A scan that finds none reads to the end of the line, so
// without a bound a hostile line of repeated "to=<" would cost quadratic
// time. Real lines have at most four (to, orig_to / from, to, helo).
const maxBracketScans = 6

// kvIter walks Postfix's key=value lists: comma-separated for delivery
// agents, qmgr and postscreen ("to=<r>, relay=x, ..."), space-separated for
// pickup and smtpd ("from=<s> to=<r> proto=ESMTP helo=<h>").
type kvIter struct {
	s        string
	i        int
	brackets int // bracket scans left; see maxBracketScans
}

// next returns the next pair. It returns ok == false, with it.i at the
// offending text, at the end of s or at text that is not key=value. The value
// of status= is only its word ([A-Za-z-]+); the caller reads what follows.
func (it *kvIter) next() (key, val string, ok bool) {
	s, i := it.s, it.i
	for i < len(s) && (s[i] == ' ' || s[i] == ',') {
		i++
	}
	k := i
	for i < len(s) && isKeyByte(s[i]) {
		i++
	}
	if i == k || i >= len(s) || s[i] != '=' {
		it.i = k
		return "", "", false
	}
	key = s[k:i]
	i++
	switch {
	case key == "status":
		v := i
		for i < len(s) && (('a' <= s[i] && s[i] <= 'z') || ('A' <= s[i] && s[i] <= 'Z') || s[i] == '-') {
			i++
		}
		val = s[v:i]
	default:
		if i < len(s) && s[i] == '<' {
			if it.brackets > 0 {
				it.brackets--
				if v, end, closed := bracketed(s, i); closed {
					val, i = v, end
					break
				}
			}
			// No closing '>' (a malformed "from=<a@b, to=<c@d>") or no
			// scans left: the value runs to the next separator.
			i++
		}
		v := i
		for i < len(s) && s[i] != ' ' && s[i] != ',' {
			i++
		}
		val = strings.TrimSuffix(s[v:i], ">")
	}
	it.i = i
	return key, val, true
}

// bracketed reads an address written "<...>" at s[i] and returns it without
// the brackets. Addresses may hold '<' and '>' themselves (a redacted
// "from=<ed@<my private domain>>"), so the value ends at the first '>' that
// closes every '<' and is followed by the end, a separator, or the ':' that
// starts cleanup's optional text.
func bracketed(s string, i int) (val string, end int, ok bool) {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '<':
			depth++
		case '>':
			depth--
			if depth <= 0 && (j+1 == len(s) || s[j+1] == ' ' || s[j+1] == ',' || s[j+1] == ';' || s[j+1] == ':') {
				return s[i+1 : j], j + 1, true
			}
		}
	}
	return "", i, false
}

func isKeyByte(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || isDigitByte(c) || c == '_' || c == '-'
}
