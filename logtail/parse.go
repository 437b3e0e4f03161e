package logtail

import (
	"strings"
)

// Parse parses one maillog line (without its newline). It is pure: no I/O and
// no shared state, so it is safe for concurrent use.
//
// Every string in the Record is a slice of line, so the common path does not
// allocate; callers that keep a field beyond the line's life must copy it.
// The one exception is a journald JSON record (a line starting with '{'),
// whose fields are decoded.
//
// Parse returns ErrNotPostfix for lines from other programs, blank lines and
// garbage, a *ParseError for a Postfix line with a queue ID whose shape the
// correlator needs but which could not be understood (a delivery line without
// status=, say), and otherwise a Record; Postfix lines that are understood
// but carry nothing for the correlator (connect, TLS, warnings, postscreen
// ...) have Kind == KindOther. With ErrNotPostfix the Record still holds what
// the prefix gave (Stamp, Host, Program, PID), so callers may follow the
// clock on other programs' lines.
func Parse(line string) (Record, error) {
	if len(line) > 0 && line[0] == '{' {
		return parseJournalJSON(line)
	}
	var r Record
	err := parseSyslogLine(&r, line)
	return r, err
}

// parseSyslogLine reads "[compose prefix][<PRI>]STAMP [HOST] TAG: PAYLOAD" and
// the RFC 5424 form.
func parseSyslogLine(r *Record, s string) error {
	s = trimBlanksRight(skipBlanks(s))
	s = stripComposePrefix(s)
	if len(s) > 0 && s[0] == '<' {
		var v5424 bool
		s, v5424 = stripPRI(s)
		if v5424 {
			return parse5424(r, s)
		}
	}
	rest, stamped := parseStamp(&r.Stamp, s)
	if stamped {
		s = rest
	}
	prog, pid, payload, ok := cutTag(s)
	if !ok {
		// Not a tag, so the host field comes first. Without a timestamp
		// there is nothing to tell a host from the first word of a sentence.
		if !stamped {
			return ErrNotPostfix
		}
		sp := strings.IndexByte(s, ' ')
		if sp <= 0 {
			return ErrNotPostfix
		}
		if host := s[:sp]; !isLevelWord(host) {
			r.Host = host
		}
		prog, pid, payload, ok = cutTag(skipBlanks(s[sp:]))
		if !ok {
			return ErrNotPostfix
		}
	}
	r.Program, r.PID = prog, pid
	if !isPostfixProgram(prog) {
		return ErrNotPostfix
	}
	r.Daemon = lastPathElem(prog)
	return parsePayload(r, payload)
}

// stripComposePrefix removes the "service_1    | " that docker-compose puts
// before each line of a container's output. A syslog line's first word is
// never followed by a lone '|'.
func stripComposePrefix(s string) string {
	head := s
	if len(head) > 128 {
		head = head[:128]
	}
	sp := strings.IndexByte(head, ' ')
	if sp <= 0 {
		return s
	}
	j := sp
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if j < len(s) && s[j] == '|' && (j+1 == len(s) || s[j+1] == ' ') {
		return skipBlanks(s[j+1:])
	}
	return s
}

// stripPRI removes a network syslog "<PRI>" (RFC 3164 §4.1.1, RFC 5424 §6.2.1)
// and reports whether an RFC 5424 version "1 " follows it.
func stripPRI(s string) (string, bool) {
	i := 1
	for i < len(s) && i <= 4 && isDigitByte(s[i]) {
		i++
	}
	if i == 1 || i >= len(s) || s[i] != '>' {
		return s, false
	}
	s = s[i+1:]
	if len(s) >= 2 && s[0] == '1' && s[1] == ' ' {
		return s[2:], true
	}
	return s, false
}

// parse5424 reads the rest of an RFC 5424 record after "<PRI>1 ":
// TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG], where "-"
// stands for an absent field (RFC 5424 §6).
func parse5424(r *Record, s string) error {
	if strings.HasPrefix(s, "- ") {
		s = s[2:]
	} else if rest, ok := parseRFC3339(&r.Stamp, s); ok {
		s = rest
	} else {
		return ErrNotPostfix
	}
	host, s := cutWord(s)
	if host != "-" {
		r.Host = host
	}
	prog, s := cutWord(s)
	procid, s := cutWord(s)
	_, s = cutWord(s) // MSGID
	if prog == "" || prog == "-" {
		return ErrNotPostfix
	}
	r.Program = prog
	if n, ok := atoiBytes(procid); ok {
		r.PID = int(n)
	}
	// STRUCTURED-DATA: "-" or one or more [id param="value" ...] elements,
	// in which '"', '\' and ']' are escaped with '\' (RFC 5424 §6.3.3).
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	} else {
		for len(s) > 0 && s[0] == '[' {
			i, esc := 1, false
			for ; i < len(s); i++ {
				if esc {
					esc = false
				} else if s[i] == '\\' {
					esc = true
				} else if s[i] == ']' {
					break
				}
			}
			if i >= len(s) {
				s = ""
				break
			}
			s = s[i+1:]
		}
	}
	s = skipBlanks(s)
	s = strings.TrimPrefix(s, "\xef\xbb\xbf") // MSG may start with a BOM (§6.4)
	if !isPostfixProgram(prog) {
		return ErrNotPostfix
	}
	r.Daemon = lastPathElem(prog)
	return parsePayload(r, s)
}

// cutTag reads a syslog tag "prog[pid]: ", "prog: " or, as some Postfix
// cleanup lines have it, "prog[pid] " without the colon. ok is false when s
// does not start with a tag (a host name, say).
func cutTag(s string) (prog string, pid int, payload string, ok bool) {
	const maxTag = 256
	for i := 0; i < len(s) && i < maxTag; i++ {
		switch s[i] {
		case '[':
			if i == 0 {
				return "", 0, "", false
			}
			j := i + 1
			for j < len(s) && j-i <= 10 && isDigitByte(s[j]) {
				j++
			}
			n, okN := atoiBytes(s[i+1 : j])
			if !okN || j >= len(s) || s[j] != ']' {
				return "", 0, "", false
			}
			j++
			switch {
			case j < len(s) && s[j] == ':':
				j++
			case j < len(s) && s[j] != ' ':
				return "", 0, "", false
			}
			return s[:i], int(n), skipBlanks(s[j:]), true
		case ':':
			// "2001:db8::1" is an IPv6 host field, not a tag.
			if i == 0 || (i+1 < len(s) && s[i+1] != ' ') {
				return "", 0, "", false
			}
			return s[:i], 0, skipBlanks(s[i+1:]), true
		case ' ', '\t':
			return "", 0, "", false
		}
	}
	return "", 0, "", false
}

// isPostfixProgram: the first path element of the syslog_name is "postfix",
// or "postfix-<instance>" for multi-instance setups (MULTI_INSTANCE_README).
func isPostfixProgram(p string) bool {
	if !strings.HasPrefix(p, "postfix") {
		return false
	}
	return len(p) == 7 || p[7] == '/' || p[7] == '-'
}

func lastPathElem(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// isLevelWord tells a log level that container runtimes print where syslog
// has the host ("2024-02-14T14:47:24.705153-08:00 INFO    postfix/smtpd[39551]: ...").
func isLevelWord(w string) bool {
	switch w {
	case "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERR", "ERROR", "CRIT", "FATAL", "ALERT", "EMERG", "PANIC":
		return true
	}
	return false
}

// cutWord splits s at its first space and skips the spaces after it.
func cutWord(s string) (word, rest string) {
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return s, ""
	}
	return s[:i], skipBlanks(s[i:])
}

func isDigitByte(c byte) bool { return '0' <= c && c <= '9' }

func skipBlanks(s string) string {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return s[i:]
}

func trimBlanksRight(s string) string {
	i := len(s)
	for i > 0 && (s[i-1] == ' ' || s[i-1] == '\t' || s[i-1] == '\r' || s[i-1] == '\n') {
		i--
	}
	return s[:i]
}

// atoiBytes parses a non-empty run of at most 18 decimal digits, so it cannot
// overflow.
func atoiBytes(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigitByte(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
