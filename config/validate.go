package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// validator collects the problems of a decoded Config.
type validator struct {
	file     string
	doc      *document
	reported map[string]bool // keys with a problem found before validation
	errs     []*Error
}

func (v *validator) errorf(key, format string, args ...any) {
	line := 0
	if e := v.doc.first(key); e != nil {
		if reportedPrefix(v.reported, e.key) {
			return
		}
		line = e.line
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// check applies the defaults that depend on other values and validates c.
func (v *validator) check(c *Config) {
	if err := c.fillHostnames(); err != nil {
		v.errorf("hostname", "not set, and the system host name is unknown: %v", err)
	} else {
		v.name("hostname", c.Hostname)
		if c.ServerComposition != c.Hostname {
			v.name("server_composition", c.ServerComposition)
		}
	}
	v.absolute("store.path", c.Store.Path)
	if r := c.Store.Retention; r != 0 && (r < Duration(day) || r > Duration(3650*day)) {
		v.errorf("store.retention", `must be "0" (keep everything) or from 1d to 3650d, got %v`, r)
	}

	m := &c.Maillog
	if m.Journald {
		if first := v.doc.first("maillog.path"); first != nil {
			v.errorf("maillog.journald", "cannot be true while maillog.path is set (line %d); remove one of them", first.line)
		}
		// Consumers need not know that path has a default.
		m.Path = ""
	} else {
		v.absolute("maillog.path", m.Path)
	}
	v.journalFilters("maillog.journald_units", m.Journald, m.JournaldUnits)
	v.journalFilters("maillog.journald_identifiers", m.Journald, m.JournaldIdentifiers)
	v.oneOf("maillog.start", m.Start, StartBegin, StartEnd)
	if m.Timezone != "" {
		loc, err := time.LoadLocation(m.Timezone)
		if err != nil {
			v.errorf("maillog.timezone", `unknown time zone %q: want an IANA name such as "Europe/Berlin" or "UTC"`, m.Timezone)
		}
		m.location = loc
	}
	if m.Year != 0 && (m.Year < 1970 || m.Year > 9999) {
		v.errorf("maillog.year", "must be 0 (infer) or from 1970 to 9999, got %d", m.Year)
	}
	inRange(v, "maillog.message_ttl", m.MessageTTL, Duration(time.Hour), Duration(30*day))
	inRange(v, "maillog.out_of_order", m.OutOfOrder, 0, Duration(5*time.Minute))
	inRange(v, "maillog.batch_lines", m.BatchLines, 1, 100000)

	v.oneOf("log.format", c.Log.Format, FormatText, FormatJSON)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")

	v.ui(&c.UI)
	inRange(v, "webhook.max_pending", c.Webhook.MaxPending, 1000, 100000000)
	v.milter(&c.Milter)
	if c.Metrics.Listen != "" {
		v.hostPort("metrics.listen", c.Metrics.Listen)
	}
	if c.Metrics.Public && c.UI.Listen == "" {
		v.errorf("metrics.public", "needs ui.listen: /metrics is served on the console's listener")
	}
	v.alerts(c)
	v.blocks(&c.Blocks)
	if len(c.Blocks.BounceAddresses) > 0 && c.Milter.Inbound == "" {
		v.errorf("blocks.bounce_addresses", "needs milter.inbound: bounce mail is read by the inbound milter role")
	}
}

// blocks checks the [blocks] table.
func (v *validator) blocks(b *Blocks) {
	if h, m, ok := strings.Cut(b.ExecTime, ":"); !ok || len(h) != 2 || len(m) != 2 || !digits(h) || !digits(m) || h > "23" || m > "59" {
		v.errorf("blocks.exec_time", `must be a time of day "HH:MM" from "00:00" to "23:59", got %q`, b.ExecTime)
	}
	if b.Timezone != "" {
		if _, err := time.LoadLocation(b.Timezone); err != nil {
			v.errorf("blocks.timezone", `unknown time zone %q: want an IANA name such as "Asia/Tokyo" or "UTC"`, b.Timezone)
		}
	}
	inRange(v, "blocks.watch_days", b.WatchDays, 0, 3650)
	r := reflect.ValueOf(b.AutoRegister)
	for i := range r.NumField() {
		key := "blocks.auto_register." + r.Type().Field(i).Tag.Get("toml")
		inRange(v, key, int(r.Field(i).Int()), 0, 1000)
	}
	for _, a := range b.BounceAddresses {
		v.bounceAddress("blocks.bounce_addresses", a)
	}
	if b.VERP && len(b.BounceAddresses) == 0 {
		v.errorf("blocks.verp", "needs blocks.bounce_addresses: VERP addresses are forms of them")
	}
	// A delimiter is a character of a local part (RFC 5322 §3.2.3 atext)
	// other than a letter or digit; Postfix's verp_delimiter_filter
	// allows "-=+" by default.
	d := b.VERPDelimiters
	if len(d) != 2 || d[0] == d[1] || strings.IndexFunc(d, func(r rune) bool {
		return !strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
	}) >= 0 {
		v.errorf("blocks.verp_delimiters", `must be two different characters such as "+=" or "-=" (not letters, digits, "@" or space), got %q`, d)
	}
}

// bounceAddress checks one entry of blocks.bounce_addresses: a bare
// address, or "@" and a domain for all of the domain's addresses.
func (v *validator) bounceAddress(key, a string) {
	local, domain, ok := strings.Cut(a, "@")
	if !ok || domain == "" || strings.Contains(domain, "@") || strings.HasPrefix(domain, ".") ||
		strings.Contains(domain, "..") || strings.ContainsFunc(local+domain, func(r rune) bool {
		return r <= ' ' || r > '~' || strings.ContainsRune("<>(),;:\\\"[]", r)
	}) {
		v.errorf(key, `entries must be an address such as "bounces@bounce.example.com" or a whole domain such as "@bounce.example.com", got %q`, a)
	}
}

func digits(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0
}

// alerts checks the [alerts] table and fills in the default sender.
func (v *validator) alerts(c *Config) {
	a := &c.Alerts
	inRange(v, "alerts.after", a.After, Duration(time.Minute), Duration(7*day))
	v.absolute("alerts.sendmail", a.Sendmail)
	if a.MailTo != "" {
		v.mailbox("alerts.mail_to", a.MailTo)
	}
	if v.doc.first("alerts.from") != nil {
		v.mailbox("alerts.from", a.From)
	}
	for _, arg := range a.SendmailArgs {
		if arg == "" || strings.ContainsFunc(arg, func(r rune) bool { return !unicode.IsPrint(r) }) {
			v.errorf("alerts.sendmail_args", "entries must be non-empty and printable, got %q", arg)
		}
	}
}

// mailbox checks a bare address (RFC 5321 §4.1.2 Mailbox: local-part "@"
// domain). It becomes a sendmail argument after "--" and a header value,
// so spaces, angle brackets and control characters are refused rather
// than quoted.
func (v *validator) mailbox(key, addr string) {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") ||
		strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r > '~' || strings.ContainsRune("<>(),;:\\\"[]", r) }) {
		v.errorf(key, `want a bare address such as "postmaster@example.com", got %q`, addr)
	}
}

// hostPort checks a listener address: an IP address or localhost (or
// nothing, for every address) and a numeric port.
func (v *validator) hostPort(key, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(key, `want host:port such as "127.0.0.1:9469" or "[::1]:9469", got %q`, addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.errorf(key, "port must be a number from 1 to 65535, got %q", port)
		return
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" && host != "localhost" {
		v.errorf(key, "host must be an IP address or localhost, got %q", host)
	}
}

// ui checks the [ui] table.
func (v *validator) ui(u *UI) {
	if u.Listen != "" {
		v.listen(u)
	}
	switch {
	case u.TLSCert != "" && u.TLSKey == "":
		v.errorf("ui.tls_cert", "needs ui.tls_key as well")
	case u.TLSKey != "" && u.TLSCert == "":
		v.errorf("ui.tls_key", "needs ui.tls_cert as well")
	}
	if u.TLSCert != "" {
		v.absolute("ui.tls_cert", u.TLSCert)
	}
	if u.TLSKey != "" {
		v.absolute("ui.tls_key", u.TLSKey)
	}
	if u.Timezone != "" {
		if _, err := time.LoadLocation(u.Timezone); err != nil {
			v.errorf("ui.timezone", `unknown time zone %q: want an IANA name such as "Asia/Tokyo" or "UTC"`, u.Timezone)
		}
	}
	inRange(v, "ui.idle_timeout", u.IdleTimeout, Duration(time.Minute), Duration(day))
	inRange(v, "ui.session_lifetime", u.SessionLifetime, Duration(5*time.Minute), Duration(30*day))
	for _, p := range u.TrustedProxies {
		if _, err := parseProxy(p); err != nil {
			v.errorf("ui.trusted_proxies", `entries must be IP addresses or CIDR prefixes such as "127.0.0.1" or "10.0.0.0/8", got %q`, p)
		}
	}
}

// listen checks the console's address: host:port with a numeric port, and
// HTTPS unless the host is loopback.
func (v *validator) listen(u *UI) {
	host, port, err := net.SplitHostPort(u.Listen)
	if err != nil {
		v.errorf("ui.listen", `want host:port such as "127.0.0.1:8025" or "[::1]:8025", got %q`, u.Listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.errorf("ui.listen", "port must be a number from 1 to 65535, got %q", port)
		return
	}
	loopback := host == "localhost"
	if ip, err := netip.ParseAddr(host); err == nil {
		loopback = ip.IsLoopback()
	} else if host != "" && host != "localhost" {
		v.errorf("ui.listen", "host must be an IP address or localhost, got %q", host)
		return
	}
	if !loopback && !u.TLS() {
		v.errorf("ui.listen", "%q is reachable from other machines: set ui.tls_cert and ui.tls_key, or listen on 127.0.0.1 behind an HTTPS proxy", u.Listen)
	}
}

// name checks a host or configuration name, which ends up in logs, CSV
// exports and webhook payloads.
func (v *validator) name(key, s string) {
	switch {
	case len(s) > 255:
		v.errorf(key, "must be at most 255 bytes long, got %d", len(s))
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		v.errorf(key, "must not contain spaces or control characters, got %q", s)
	}
}

// absolute requires an absolute path: the daemon's working directory is
// not something an administrator should have to think about.
func (v *validator) absolute(key, path string) {
	if !filepath.IsAbs(path) {
		v.errorf(key, "must be an absolute path, got %q", path)
	}
}

// journalFilters checks journalctl -u and -t arguments.
func (v *validator) journalFilters(key string, journald bool, list []string) {
	if len(list) > 0 && !journald {
		v.errorf(key, "is only used with maillog.journald = true")
		return
	}
	for _, s := range list {
		// They become journalctl arguments: one starting with "-" would
		// be read as an option.
		if s == "" || s[0] == '-' || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
			v.errorf(key, `entries must be non-empty, without spaces, and not start with "-", got %q`, s)
		}
	}
}

func (v *validator) oneOf(key, got string, allowed ...string) {
	if slices.Contains(allowed, got) {
		return
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	list := strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	v.errorf(key, "must be %s, got %q", list, got)
}

func inRange[T Duration | int](v *validator, key string, got, lo, hi T) {
	if got < lo || got > hi {
		v.errorf(key, "must be from %v to %v, got %v", lo, hi, got)
	}
}

// milter checks the [milter] table.
func (v *validator) milter(m *Milter) {
	v.milterAddress("milter.inbound", m.Inbound)
	v.milterAddress("milter.outbound", m.Outbound)
	if m.Inbound != "" && m.Inbound == m.Outbound {
		v.errorf("milter.outbound", "must differ from milter.inbound: each role needs its own listener")
	}
	if n, err := strconv.ParseUint(m.SocketMode, 8, 32); err != nil || n > 0o777 {
		v.errorf("milter.socket_mode", `must be octal permissions such as "0660", got %q`, m.SocketMode)
	}
	if strings.ContainsFunc(m.SocketGroup, func(r rune) bool { return unicode.IsSpace(r) || r == ':' }) {
		v.errorf("milter.socket_group", "must be a group name or number, got %q", m.SocketGroup)
	}
	v.oneOf("milter.unknown_domain", m.UnknownDomain, "reject", "pass")
	v.oneOf("milter.after_capture", m.AfterCapture, "discard", "deliver")
	v.oneOf("milter.suppressed", m.Suppressed, "reject", "discard")
	inRange(v, "milter.max_message_size", m.MaxMessageSize, 64<<10, 1<<30)
	// RFC 5322 §2.2: a field name is printable ASCII without the colon.
	if m.MetadataHeader == "" || strings.ContainsFunc(m.MetadataHeader, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) {
		v.errorf("milter.metadata_header", "must be a header name (printable ASCII without spaces or colons), got %q", m.MetadataHeader)
	}
	inRange(v, "milter.capture_timeout", m.CaptureTimeout, Duration(5*time.Second), Duration(4*time.Minute))
	inRange(v, "milter.shutdown_timeout", m.ShutdownTimeout, Duration(time.Second), Duration(10*time.Minute))
	if m.TempDir != "" {
		v.absolute("milter.temp_dir", m.TempDir)
	}
	inRange(v, "milter.observation_ttl", m.ObservationTTL, Duration(time.Hour), Duration(30*day))
	inRange(v, "milter.post_concurrency", m.PostConcurrency, 1, 64)
}

// milterAddress checks a listener in Postfix's notation (MILTER_README):
// "inet:HOST:PORT" or "unix:/absolute/path".
func (v *validator) milterAddress(key, addr string) {
	if addr == "" {
		return
	}
	kind, rest, _ := strings.Cut(addr, ":")
	switch kind {
	case "inet":
		host, port, err := net.SplitHostPort(rest)
		n, perr := strconv.Atoi(port)
		switch {
		case strings.Contains(rest, "@"):
			v.errorf(key, `Postfix writes inet:HOST:PORT, not Sendmail's inet:PORT@HOST; got %q`, addr)
		case err != nil || host == "":
			v.errorf(key, `want "inet:HOST:PORT" such as "inet:127.0.0.1:10030", got %q`, addr)
		case perr != nil || n < 1 || n > 65535:
			v.errorf(key, "port must be a number from 1 to 65535, got %q", port)
		}
	case "unix":
		if !filepath.IsAbs(rest) {
			v.errorf(key, `want "unix:" and an absolute socket path, got %q`, addr)
		}
	default:
		v.errorf(key, `want "inet:HOST:PORT" or "unix:/PATH", got %q`, addr)
	}
}
