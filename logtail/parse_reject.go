package logtail

import "strings"

// parseAction reads the "<action>: ..." lines of smtpd, postscreen and cleanup
// (smtpd_check.c log_whatsup, cleanup_milter.c, cleanup_act.c). Refusals of
// mail become KindReject; the rest (reject_warning, which only warns;
// filter, redirect, prepend, warning, milter-header-redirect ...) are
// KindOther, as is any other text after a queue ID ("host x said: ...",
// "Used TLS for ...", "placed on hold").
func parseAction(r *Record, body string) error {
	i := 0
	for i < len(body) && i < 32 && (('a' <= body[i] && body[i] <= 'z') || body[i] == '-' || body[i] == '_') {
		i++
	}
	if i == 0 || i >= len(body) || body[i] != ':' {
		return nil
	}
	switch action := body[:i]; action {
	case "reject", "milter-reject", "milter-hold", "milter-discard", "discard", "proxy-reject":
		parseReject(r, action, skipBlanks(body[i+1:]))
	}
	return nil
}

// parseReject reads what follows the action word. The SMTP-time shapes are
//
//	RCPT from host[ip]: 554 5.7.1 <x>: Relay access denied; from=<s> to=<r> proto=ESMTP helo=<h>
//	RCPT from [ip]:port: 550 5.7.1 Service unavailable; ...; from=<s>, to=<r>, proto=ESMTP, helo=<h>   (postscreen)
//	CONNECT from [ip]:port: too many connections
//	END-OF-MESSAGE from host[ip]: 4.7.1 Greylisting in action; from=<s> to=<r> proto=ESMTP helo=<h>   (milter, cleanup)
//	END-OF-MESSAGE: 554 5.7.0 Reject ...; from=<s> to=<r> proto=SMTP helo=<h>   (proxy-reject)
//
// and cleanup's content checks put the client after the header or body text
// and the optional reply after the key-values:
//
//	header Subject: buy now from host[ip]; from=<s> to=<r> proto=ESMTP helo=<h>: 5.7.1 no thanks
//
// The key-values start at the last "; from=" (or to=, proto=, helo= when the
// stage has no sender), because reply texts contain ';' themselves.
func parseReject(r *Record, action, s string) {
	r.Kind = KindReject
	r.Action = action
	i := 0
	for i < len(s) && s[i] != ' ' && s[i] != ':' {
		i++
	}
	r.Stage = s[:i]
	rest := s[i:]
	head, kv := rest, ""
	if k := keyValuesStart(rest); k >= 0 {
		head, kv = rest[:k], rest[k+2:]
	}
	tail := rejectKeyValues(r, kv)
	if r.Stage == "header" || r.Stage == "body" {
		if k := strings.LastIndex(head, " from "); k >= 0 {
			r.ClientHost, r.ClientIP = splitHostIP(head[k+len(" from "):])
		}
		if len(tail) > 0 && tail[0] == ':' {
			r.Reply = skipBlanks(tail[1:])
		}
		return
	}
	if c, ok := strings.CutPrefix(head, " from "); ok {
		var client string
		client, head = cutClient(c)
		r.ClientHost, r.ClientIP = splitHostIP(client)
	}
	if len(head) > 0 && head[0] == ':' {
		head = head[1:]
	}
	r.Reply = trimBlanksRight(skipBlanks(head))
}

// keyValuesStart finds the "; " that starts the trailing key-values.
func keyValuesStart(s string) int {
	for _, key := range [...]string{"; from=", "; to=", "; proto=", "; helo="} {
		if k := strings.LastIndex(s, key); k >= 0 {
			return k
		}
	}
	return -1
}

// rejectKeyValues takes from= and to= out of the key-values and returns the
// text after them.
func rejectKeyValues(r *Record, kv string) string {
	it := kvIter{s: kv, brackets: maxBracketScans}
	for {
		key, val, ok := it.next()
		if !ok {
			return kv[it.i:]
		}
		switch key {
		case "from":
			r.From = val
		case "to":
			r.To = val
		}
	}
}

// cutClient splits "host[ip]: reply" or postscreen's "[ip]:port: reply" at
// the first ": ", which neither a host name nor a bracketed address holds.
func cutClient(s string) (client, rest string) {
	if k := strings.Index(s, ": "); k >= 0 {
		return s[:k], s[k:]
	}
	return s, ""
}
