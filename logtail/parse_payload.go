package logtail

import (
	"strings"
	"unicode/utf8"
)

// parsePayload reads the text after the syslog tag: "[QUEUEID: ]message".
// Lines without a queue ID (connect, disconnect, TLS, warnings, master,
// anvil, postscreen, dnsblog ...) are KindOther.
func parsePayload(r *Record, p string) error {
	qid, body, ok := cutQueueID(p)
	if !ok {
		if why := brokenQueueID(p); why != "" {
			return &ParseError{Reason: why}
		}
		return nil
	}
	r.QueueID = qid
	if len(body) == 0 {
		return &ParseError{Reason: "queue ID without text"}
	}
	switch body[0] {
	case 't':
		if strings.HasPrefix(body, "to=") {
			return parseDelivery(r, body)
		}
	case 'f':
		if strings.HasPrefix(body, "from=") {
			return parseSender(r, body)
		}
	case 'c':
		if strings.HasPrefix(body, "client=") {
			if qid == "" {
				return nil // "NOQUEUE: client=" opens no message
			}
			parseClient(r, body[len("client="):])
			return nil
		}
	case 'u':
		if strings.HasPrefix(body, "uid=") {
			return parsePickup(r, body)
		}
	case 'm':
		if strings.HasPrefix(body, "message-id=") {
			r.Kind = KindMessageID
			r.MessageID = messageIDValue(body[len("message-id="):])
			return nil
		}
	case 'r':
		// A collector may append a byte count: "removed 42".
		if strings.HasPrefix(body, "removed") && (len(body) == 7 || body[7] == ' ') {
			r.Kind = KindRemoved
			return nil
		}
	case 's', 'p':
		if ok, err := parseNotification(r, body); ok {
			return err
		}
	}
	if err := parseAction(r, body); err != nil || r.Kind != KindOther || knownQueueText(body) {
		return err
	}
	return &ParseError{Reason: "unknown text after a queue ID"}
}

// recordWords start the queue file records the correlator follows; text
// that starts with one after something that is not a queue ID is a broken
// record, not an informational line.
var recordWords = [...]string{"to=", "orig_to=", "from=", "client=", "message-id=", "resent-message-id=", "uid=", "status=", "removed"}

func startsWithRecordWord(s string) bool {
	for _, w := range recordWords {
		if strings.HasPrefix(s, w) {
			return true
		}
	}
	return false
}

// brokenQueueID tells a line that means to start with a queue ID but does
// not have a valid one ("FGHIJ67890: to=...", "abcdef1234: ...", a queue
// ID without its colon, "QID:removed") from the informational lines that
// have none (connect, warning:, statistics:, daemon started ...), which
// never start with a word of digits and letters followed by ':', nor with
// a queue ID and a space. It returns "" for the latter.
func brokenQueueID(p string) string {
	const maxWord = 64
	i, digit := 0, false
	for i < len(p) && i < maxWord && isAlnumByte(p[i]) {
		digit = digit || isDigitByte(p[i])
		i++
	}
	if i == 0 || i >= len(p) {
		return ""
	}
	word, rest := p[:i], p[i+1:]
	switch p[i] {
	case ':':
		if looksLikeQueueID(word) || word == "NOQUEUE" {
			return "no space after the queue ID's colon"
		}
		if (digit && i >= 5) || startsWithRecordWord(skipBlanks(rest)) {
			return "not a Postfix queue ID (upper-case hex, or a long ID with 'z' at position 11)"
		}
	case ' ':
		if digit && looksLikeQueueID(word) {
			return "queue ID without ':'"
		}
	}
	return ""
}

// knownQueueText recognises the informational text Postfix logs after a
// queue ID (POSTFIX-LOGS §2.6, §2.4, postsuper): anything else there is a
// line this parser does not know, and is counted as not understood.
func knownQueueText(body string) bool {
	// "<action>: ..." of header/body checks, smtpd access actions and
	// milters (warning:, info:, hold:, redirect:, prepend:, filter:,
	// proxy-accept:, reject_warning: ...): parseAction's shape.
	i := 0
	for i < len(body) && i < 32 && (('a' <= body[i] && body[i] <= 'z') || body[i] == '-' || body[i] == '_') {
		i++
	}
	if i > 0 && i < len(body) && body[i] == ':' {
		return true
	}
	for _, w := range knownQueueWords {
		if strings.HasPrefix(body, w) {
			return true
		}
	}
	return false
}

var knownQueueWords = [...]string{
	"resent-message-id=",
	// smtp, lmtp: a session's trouble before or besides the status line
	"host ", "lost connection with ", "conversation with ", "connect to ",
	"SASL authentication failed", "Used TLS for ", "enabling PIX workarounds",
	"Cannot start TLS", "TLS is required", "Server certificate not ", "certificate verification failed",
	"breaking line",
	// qmgr, postsuper
	"skipped, still being delivered", "placed on hold", "released from hold", "requeued", "expired",
}

// cutQueueID splits "QUEUEID: rest". NOQUEUE, which smtpd and postscreen log
// before a queue file exists, gives qid "".
func cutQueueID(p string) (qid, body string, ok bool) {
	i := 0
	for i < len(p) && i <= maxQueueIDLen && isAlnumByte(p[i]) {
		i++
	}
	if i == 0 || i >= len(p) || p[i] != ':' {
		return "", "", false
	}
	id := p[:i]
	if id == "NOQUEUE" {
		id = ""
	} else if !looksLikeQueueID(id) {
		return "", "", false
	}
	body = p[i+1:]
	if len(body) > 0 {
		if body[0] != ' ' {
			return "", "", false
		}
		body = skipBlanks(body)
	}
	return id, body, true
}

const maxQueueIDLen = 24

// looksLikeQueueID accepts Postfix's two queue ID forms (src/global/mail_queue.h):
//   - short IDs: upper-case hex, 5 digits of microseconds then the inode
//     number (0F5383D, ADD961003206D);
//   - long IDs (enable_long_queue_ids): 6 base-52 digits of seconds, 4 of
//     microseconds, the separator 'z', then the inode number in a base-51
//     alphabet without 'z' (3mPVKl0Mhjz7sXv). The alphabet is alphanumeric,
//     so the fixed 'z' at index 10 is what sets them apart from words.
func looksLikeQueueID(id string) bool {
	if len(id) < 5 || len(id) > maxQueueIDLen {
		return false
	}
	hex := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case isDigitByte(c) || ('A' <= c && c <= 'F'):
		case ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
			hex = false
		default:
			return false
		}
	}
	return hex || (len(id) >= 12 && id[10] == 'z')
}

func isAlnumByte(c byte) bool {
	return isDigitByte(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// parseDelivery reads a delivery agent's per-recipient status line, whose
// layout is fixed by log_adhoc.c:
//
//	to=<r>[, orig_to=<o>], relay=R[, conn_use=N], delay=D, delays=a/b/c/d[, tls=F], dsn=X, status=S (reason)
//
// The key=value pairs are read generically up to status=, so new keys and
// a changed order (tls= came with Postfix 3.11) do no harm.
func parseDelivery(r *Record, body string) error {
	it := kvIter{s: body, brackets: maxBracketScans}
	for {
		key, val, ok := it.next()
		if !ok {
			// Not key=value: skip the segment, so that a stray comma in a
			// value cannot hide status=.
			j := strings.IndexByte(body[it.i:], ',')
			if j < 0 {
				return &ParseError{Reason: "delivery line without status="}
			}
			it.i += j + 1
			continue
		}
		switch key {
		case "to":
			r.To = val
		case "orig_to":
			r.OrigTo = val
		case "relay":
			r.Relay = val
			r.RelayIP = relayIP(val)
		case "conn_use":
			r.ConnUse = val
		case "delay":
			r.Delay = val
		case "delays":
			r.Delays = val
		case "dsn":
			r.DSN = val
		case "tls":
			r.TLS = val
		case "status":
			if val == "" {
				return &ParseError{Reason: "delivery line with an empty status="}
			}
			r.Kind = KindDelivery
			r.Status = val
			r.Reason = reasonText(body[it.i:])
			r.HandOff, r.Forward = handOff(r.Reason)
			return nil
		}
	}
}

// reasonText is the text inside the parentheses after the status word, up to
// the last ')': the reason holds nested parentheses ("(host x said: 550 ...
// (in reply to RCPT TO command))"), and collectors may append a byte count
// after it. A reason cut short (Postfix truncates records at 2000 bytes) has
// no closing parenthesis and runs to the end. It is at most MaxReason bytes.
func reasonText(s string) string {
	s = skipBlanks(s)
	if len(s) == 0 || s[0] != '(' {
		return ""
	}
	if j := strings.LastIndexByte(s, ')'); j > 0 {
		return capReason(s[1:j])
	}
	return capReason(s[1:])
}

// MaxReason bounds a delivery reason. Postfix cuts every record it logs,
// reason and all, at 2000 bytes (MSG_SYSLOG_RECLEN in msg_syslog.c,
// MSG_LOGGER_RECLEN for postlogd), so a reason Postfix wrote always fits
// whole; a longer one was made by something else (a collector that joined
// lines, a forged line) and would only bloat the store and every webhook
// post that carries it.
const MaxReason = 2000

// capReason cuts s to MaxReason bytes at a UTF-8 character boundary.
func capReason(s string) string {
	if len(s) <= MaxReason {
		return s
	}
	n := MaxReason
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// handOff finds the queue ID a message continues under: "queued as NEWQID" in
// the reply of a content filter or of Postfix itself (anywhere in the
// reason: amavis wraps it, "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250
// 2.0.0 Ok: queued as B0CC6104BA2"), or local(8)'s "forwarded as NEWQID".
// Remote servers say "queued as" too; whether the ID is ours is the
// correlator's call.
func handOff(reason string) (id string, forward bool) {
	if rest, ok := strings.CutPrefix(reason, "forwarded as "); ok {
		if id = leadingQueueID(rest); id != "" {
			return id, true
		}
	}
	if k := strings.LastIndex(reason, "queued as "); k >= 0 {
		return leadingQueueID(reason[k+len("queued as "):]), false
	}
	return "", false
}

func leadingQueueID(s string) string {
	i := 0
	for i < len(s) && i <= maxQueueIDLen && isAlnumByte(s[i]) {
		i++
	}
	if looksLikeQueueID(s[:i]) {
		return s[:i]
	}
	return ""
}

// relayIP is the address in relay=host[ip]:port, or in an unbracketed
// relay=127.0.0.1:2525; "" for local, none, transport names and unix
// sockets (host[private/dovecot-lmtp]).
func relayIP(v string) string {
	if o := strings.IndexByte(v, '['); o >= 0 {
		c := strings.IndexByte(v[o:], ']')
		if c < 0 {
			return ""
		}
		if ip := v[o+1 : o+c]; looksLikeIP(ip) {
			return ip
		}
		return ""
	}
	host := v
	if c := strings.LastIndexByte(v, ':'); c >= 0 {
		host = v[:c]
	}
	if looksLikeIP(host) && strings.IndexByte(host, ':') < 0 {
		return host
	}
	return ""
}

// looksLikeIP accepts the characters of an IPv4 or IPv6 literal. It is a
// cheap filter against names; callers that need an address parse it.
func looksLikeIP(s string) bool {
	if len(s) < 2 || len(s) > 45 {
		return false
	}
	sep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' || c == ':':
			sep = true
		case isDigitByte(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F'):
		default:
			return false
		}
	}
	return sep
}

// splitHostIP splits smtpd's "host[ip]" (or "host[ip]:port" with
// smtpd_client_port_logging, or postscreen's "[ip]:port").
func splitHostIP(v string) (host, ip string) {
	o := strings.IndexByte(v, '[')
	if o < 0 {
		return v, ""
	}
	host = v[:o]
	if c := strings.IndexByte(v[o:], ']'); c > 0 {
		if a := v[o+1 : o+c]; looksLikeIP(a) {
			ip = a
		}
	}
	return host, ip
}

// parseClient reads smtpd's "client=host[ip][, sasl_method=..., sasl_username=...]"
// and the orig_queue_id=/orig_client= suffixes of XCLIENT re-injection.
func parseClient(r *Record, v string) {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	r.Kind = KindClient
	r.ClientHost, r.ClientIP = splitHostIP(strings.TrimRight(v, " "))
}

// parsePickup reads pickup's "uid=N from=<s>[ orig_id=QID]".
func parsePickup(r *Record, body string) error {
	it := kvIter{s: body, brackets: maxBracketScans}
	seen := false
	for {
		key, val, ok := it.next()
		if !ok {
			break
		}
		if key == "from" {
			r.From, seen = val, true
		}
	}
	if !seen {
		return &ParseError{Reason: "pickup line without from="}
	}
	r.Kind = KindPickup
	return nil
}

// parseSender reads qmgr's lines that start with from=:
//
//	from=<s>, size=N, nrcpt=M (queue active)
//	from=<s>, status=expired, returned to sender   (also force-expired, postsuper -e)
func parseSender(r *Record, body string) error {
	it := kvIter{s: body, brackets: maxBracketScans}
	var haveSize, haveNrcpt bool
	for {
		key, val, ok := it.next()
		if !ok {
			break
		}
		switch key {
		case "from":
			r.From = val
		case "size":
			r.Size, haveSize = atoiBytes(val)
		case "nrcpt":
			var n int64
			n, haveNrcpt = atoiBytes(val)
			r.Nrcpt = int(n)
		case "status":
			if val != "expired" && val != "force-expired" {
				return &ParseError{Reason: "qmgr sender line with an unknown status="}
			}
			r.Kind = KindExpired
			r.Status = val
			r.Size, r.Nrcpt = 0, 0
			return nil
		}
	}
	if !haveSize || !haveNrcpt {
		return &ParseError{Reason: "qmgr sender line without size=, nrcpt= or status="}
	}
	r.Kind = KindQueueActive
	return nil
}

// messageIDValue is cleanup's message-id as logged: usually "<...>", but
// also "<>", bare, or an RFC 2047 encoded word with spaces in it. A "<...>"
// value ends at its last '>', which drops any collector suffix.
func messageIDValue(v string) string {
	if len(v) > 0 && v[0] == '<' {
		if j := strings.LastIndexByte(v, '>'); j > 0 {
			return v[:j+1]
		}
	}
	return v
}

// parseNotification reads the bounce daemon's link from a message to the
// notification it generated (bounce_notify_service.c and friends):
//
//	sender non-delivery notification: NEWQID
//	postmaster delivery status notification: NEWQID
//	sender delay notification: NEWQID
//
// ok is false when body has a different shape.
func parseNotification(r *Record, body string) (ok bool, err error) {
	who, rest := cutWord(body)
	if who != "sender" && who != "postmaster" {
		return false, nil
	}
	var action string
	for _, a := range [...]string{"non-delivery", "delivery status", "delay"} {
		if strings.HasPrefix(rest, a) && strings.HasPrefix(rest[len(a):], " notification:") {
			action = rest[:len(a)]
			rest = rest[len(a)+len(" notification:"):]
			break
		}
	}
	if action == "" {
		return false, nil
	}
	id := leadingQueueID(skipBlanks(rest))
	if id == "" {
		return true, &ParseError{Reason: "notification line without a queue ID"}
	}
	r.Kind = KindNotification
	r.Action = action
	r.NewQueue = id
	return true, nil
}
