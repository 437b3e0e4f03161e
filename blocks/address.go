package blocks

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of RFC 5321 §4.5.3.1: a local part of at most 64 octets, a domain
// of at most 255, a path of at most 256 including the angle brackets.
const (
	maxLocal   = 64
	maxDomain  = 255
	maxAddress = 254
)

// Normalize returns the form an address is stored and compared in: the
// domain in lower case, because domain names are case-insensitive (RFC 5321
// §2.4, RFC 1035 §2.3.3), and the local part exactly as given, because
// only the receiving host may interpret its case (RFC 5321 §2.4). Angle
// brackets and surrounding white space are removed; a trailing dot of the
// domain (the DNS root) is dropped. Addresses without exactly one usable
// "@", with white space or control characters, or longer than RFC 5321
// allows, are refused.
func Normalize(addr string) (string, error) {
	a := strings.TrimSpace(addr)
	if strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">") {
		a = strings.TrimSpace(a[1 : len(a)-1])
	}
	if a == "" {
		return "", errors.New("normalize address: empty")
	}
	if !utf8.ValidString(a) {
		return "", fmt.Errorf("normalize address %q: not UTF-8", addr)
	}
	for _, r := range a {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == ',' {
			return "", fmt.Errorf("normalize address %q: %q is not allowed", addr, r)
		}
	}
	// The last "@" separates the domain: a quoted local part may hold
	// one of its own ("a@b"@example.com, RFC 5321 §4.1.2).
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return "", fmt.Errorf("normalize address %q: no @", addr)
	}
	local, domain := a[:at], strings.TrimSuffix(a[at+1:], ".")
	switch {
	case local == "":
		return "", fmt.Errorf("normalize address %q: empty local part", addr)
	case domain == "":
		return "", fmt.Errorf("normalize address %q: empty domain", addr)
	case strings.Contains(local, "@") && !(strings.HasPrefix(local, `"`) && strings.HasSuffix(local, `"`)):
		return "", fmt.Errorf("normalize address %q: more than one @", addr)
	case len(local) > maxLocal:
		return "", fmt.Errorf("normalize address %q: local part longer than %d octets", addr, maxLocal)
	case len(domain) > maxDomain:
		return "", fmt.Errorf("normalize address %q: domain longer than %d octets", addr, maxDomain)
	case strings.HasPrefix(domain, ".") || strings.Contains(domain, ".."):
		return "", fmt.Errorf("normalize address %q: empty label in domain", addr)
	}
	out := local + "@" + strings.ToLower(domain)
	if len(out) > maxAddress {
		return "", fmt.Errorf("normalize address %q: longer than %d octets", addr, maxAddress)
	}
	return out, nil
}
