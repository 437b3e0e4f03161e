package milter

import (
	"net/mail"
	"strings"
)

// addressParser reads RFC 5322 address lists; its word decoder knows every
// charset go-message does, so encoded display names do not fail a list.
var addressParser = mail.AddressParser{WordDecoder: wordDecoder}

// addresses returns the addr-specs of header values holding address lists
// (From, To, Cc), in order. A value net/mail cannot parse — spam often has
// such headers — is searched for anything shaped like an address instead,
// so a spam rule is not dodged by breaking the syntax.
func addresses(raws []string) []string {
	var out []string
	for _, raw := range raws {
		list, err := addressParser.ParseList(raw)
		if err == nil {
			for _, a := range list {
				out = append(out, a.Address)
			}
			continue
		}
		out = append(out, scanAddresses(raw)...)
	}
	return out
}

// firstAddress returns the first address of the values, or "".
func firstAddress(raws []string) string {
	if a := addresses(raws); len(a) > 0 {
		return a[0]
	}
	return ""
}

// scanAddresses finds address-like words: the text inside <...>, or words
// with an @ when there are no brackets.
func scanAddresses(s string) []string {
	var out []string
	rest := s
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if a := strings.Trim(rest[i+1:i+j], " \t<>"); strings.Contains(a, "@") {
			out = append(out, a)
		}
		rest = rest[i+j+1:]
	}
	if len(out) > 0 {
		return out
	}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ',' || r == ';' || r == '"' || r == '(' || r == ')' || r == '\r' || r == '\n'
	}) {
		if w = strings.Trim(w, "<>"); strings.Contains(w, "@") {
			out = append(out, w)
		}
	}
	return out
}
