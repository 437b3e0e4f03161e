package postfixtest

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hostname is the instance's myhostname. postlogd writes only its first label
// ("mx") as the syslog host field of every maillog line.
const Hostname = "mx.posthorn.test"

// ClientHelo is the HELO name Send uses.
const ClientHelo = "client.posthorn.test"

// DefaultQueueLifetime is maximal_queue_lifetime and bounce_queue_lifetime
// when Options.QueueLifetime is zero: long enough for a deferred-then-healed
// delivery, short enough that expiry happens within a test.
const DefaultQueueLifetime = 30 * time.Second

// layout is where one instance keeps its files, and which ports it uses.
type layout struct {
	dir       string // root of the instance; everything else is inside
	smtpdPort int
	sinkPorts map[string]int // domain → port, including DomainDead
}

func (l layout) confDir() string  { return filepath.Join(l.dir, "conf") }
func (l layout) queueDir() string { return filepath.Join(l.dir, "queue") }
func (l layout) dataDir() string  { return filepath.Join(l.dir, "data") }
func (l layout) mailDir() string  { return filepath.Join(l.dir, "mail") }
func (l layout) maillog() string  { return filepath.Join(l.dir, "maillog") }

// setting is one main.cf "name = value" line.
type setting struct{ name, value string }

// parseSetting splits a main.cf line "name = value" (postconf(5): the value
// may be empty; whitespace around "=" is ignored).
func parseSetting(line string) (setting, error) {
	name, value, ok := strings.Cut(line, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t#") {
		return setting{}, fmt.Errorf("parse main.cf line %q: want \"name = value\"", line)
	}
	return setting{name, strings.TrimSpace(value)}, nil
}

func lifetimeString(d time.Duration) string {
	if d <= 0 {
		d = DefaultQueueLifetime
	}
	// Postfix time units are s, m, h, d, w; whole seconds are enough here.
	s := int(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s) + "s"
}

// mainCF renders main.cf. Options.MainCF lines replace a generated setting
// with the same name in place, or are appended, so the file never defines a
// parameter twice.
func mainCF(l layout, o Options) (string, error) {
	yesNo := map[bool]string{false: "no", true: "yes"}
	life := lifetimeString(o.QueueLifetime)
	conf := l.confDir()
	settings := []setting{
		// Silences the backwards-compatibility warnings of Postfix 3.x.
		{"compatibility_level", "3.6"},
		// A private instance: every path points into the temp dir, so the
		// system Postfix (/etc/postfix, /var/spool/postfix) is never read
		// or written.
		{"config_directory", conf},
		{"queue_directory", l.queueDir()},
		{"data_directory", l.dataDir()},
		// Mailboxes of real system users (nobody@local.test) land here
		// instead of /var/mail.
		{"mail_spool_directory", l.mailDir()},
		// postlogd(8), Postfix >= 3.4. maillog_file must start with one of
		// maillog_file_prefixes (default "/var, /dev/stdout"), a guard
		// against writing logs to arbitrary places.
		{"maillog_file", l.maillog()},
		{"maillog_file_prefixes", l.dir},
		{"mail_owner", "postfix"},
		{"setgid_group", "postdrop"},
		{"myhostname", Hostname},
		{"mydomain", "posthorn.test"},
		{"myorigin", "$myhostname"},
		{"mydestination", "$myhostname, localhost, " + LocalDomain},
		{"inet_interfaces", "127.0.0.1"},
		{"inet_protocols", "ipv4"},
		{"mynetworks", "127.0.0.0/8"},
		{"relayhost", ""},
		// Empty: unknown local users are accepted at RCPT and bounce in
		// local(8), so they produce a delivery line (postconf(5)).
		{"local_recipient_maps", ""},
		{"alias_maps", "texthash:" + filepath.Join(conf, "aliases")},
		{"alias_database", ""},
		// Never read a real user's ~/.forward.
		{"forward_path", ""},
		{"biff", "no"},
		// texthash: needs no postmap run (postconf(5), DATABASE_README).
		{"transport_maps", "texthash:" + filepath.Join(conf, "transport")},
		{"smtpd_recipient_restrictions", "check_recipient_access texthash:" + filepath.Join(conf, "recipient_access")},
		// No DNS at all: nexthops are [127.0.0.1]:port, and the client
		// resolves nothing else (smtp_dns_support_level, Postfix >= 2.11,
		// replaces disable_dns_lookups).
		{"smtp_dns_support_level", "disabled"},
		{"smtp_host_lookup", "native"},
		{"smtp_connect_timeout", "2s"},
		{"smtp_helo_timeout", "10s"},
		// Short timers so retries and expiry happen within a test.
		{"queue_run_delay", "1s"},
		{"minimal_backoff_time", "2s"},
		{"maximal_backoff_time", "4s"},
		{"maximal_queue_lifetime", life},
		{"bounce_queue_lifetime", life},
		{"delay_warning_time", "0"},
		{"enable_long_queue_ids", yesNo[o.LongQueueIDs]},
	}
	for _, line := range o.MainCF {
		s, err := parseSetting(line)
		if err != nil {
			return "", err
		}
		i := slices.IndexFunc(settings, func(x setting) bool { return x.name == s.name })
		if i >= 0 {
			settings[i] = s
		} else {
			settings = append(settings, s)
		}
	}
	var b strings.Builder
	b.WriteString("# Private test instance generated by e2e/postfixtest.\n")
	for _, s := range settings {
		if s.value == "" {
			fmt.Fprintf(&b, "%s =\n", s.name)
		} else {
			fmt.Fprintf(&b, "%s = %s\n", s.name, s.value)
		}
	}
	return b.String(), nil
}

// masterCF renders master.cf: the Debian service set without the optional
// pipe transports, and with chroot = n everywhere, because a chroot would need
// copies of /etc files under the temp queue directory (MILTER.md 4.2).
func masterCF(l layout, o Options) string {
	var b strings.Builder
	b.WriteString("# Private test instance generated by e2e/postfixtest.\n")
	b.WriteString("# service type  private unpriv  chroot  wakeup  maxproc command + args\n")
	row := func(service, typ, private, unpriv, wakeup, maxproc, command string) {
		fmt.Fprintf(&b, "%-10s %-10s %-2s %-2s n %-7s %-4s %s\n", service, typ, private, unpriv, wakeup, maxproc, command)
	}
	row(net.JoinHostPort("127.0.0.1", strconv.Itoa(l.smtpdPort)), "inet", "n", "-", "-", "-", "smtpd")
	row("pickup", "unix", "n", "-", "60", "1", "pickup")
	row("cleanup", "unix", "n", "-", "-", "0", "cleanup")
	row("qmgr", "unix", "n", "-", "300", "1", "qmgr")
	row("rewrite", "unix", "-", "-", "-", "-", "trivial-rewrite")
	row("bounce", "unix", "-", "-", "-", "0", "bounce")
	row("defer", "unix", "-", "-", "-", "0", "bounce")
	row("trace", "unix", "-", "-", "-", "0", "bounce")
	row("verify", "unix", "-", "-", "-", "1", "verify")
	row("flush", "unix", "n", "-", "1000?", "0", "flush")
	row("proxymap", "unix", "-", "-", "-", "-", "proxymap")
	row("proxywrite", "unix", "-", "-", "-", "1", "proxymap")
	row("smtp", "unix", "-", "-", "-", "-", "smtp")
	row("relay", "unix", "-", "-", "-", "-", "smtp")
	b.WriteString("        -o syslog_name=postfix/$service_name\n")
	row("showq", "unix", "n", "-", "-", "-", "showq")
	row("error", "unix", "-", "-", "-", "-", "error")
	row("retry", "unix", "-", "-", "-", "-", "error")
	row("discard", "unix", "-", "-", "-", "-", "discard")
	row("local", "unix", "-", "n", "-", "-", "local")
	row("virtual", "unix", "-", "n", "-", "-", "virtual")
	row("lmtp", "unix", "-", "-", "-", "-", "lmtp")
	row("anvil", "unix", "-", "-", "-", "1", "anvil")
	row("scache", "unix", "-", "-", "-", "1", "scache")
	// postlogd owns maillog_file; without this service nothing is logged.
	row("postlog", "unix-dgram", "n", "-", "-", "1", "postlogd")
	for _, line := range o.MasterCF {
		b.WriteString(line)
		b.WriteString("\n")
	}
	return b.String()
}

// transportMap routes every test domain to its loopback peer. The brackets
// suppress MX lookups (transport(5)).
func transportMap(l layout, o Options) string {
	var b strings.Builder
	for _, d := range slices.Sorted(maps.Keys(l.sinkPorts)) {
		fmt.Fprintf(&b, "%s smtp:[127.0.0.1]:%d\n", d, l.sinkPorts[d])
	}
	for _, d := range slices.Sorted(maps.Keys(o.Transports)) {
		fmt.Fprintf(&b, "%s %s\n", d, o.Transports[d])
	}
	return b.String()
}

// aliasMap is a texthash: alias table, so "name value" rather than
// aliases(5)'s "name: value".
func aliasMap(o Options) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(o.Aliases)) {
		fmt.Fprintf(&b, "%s %s\n", name, o.Aliases[name])
	}
	return b.String()
}

// recipientAccess makes DomainReject an SMTP-time reject (access(5)).
func recipientAccess() string {
	return DomainReject + " REJECT " + DomainReject + " is refused by policy\n"
}

// configFiles returns the files of the config directory by name.
func configFiles(l layout, o Options) (map[string]string, error) {
	main, err := mainCF(l, o)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"main.cf":          main,
		"master.cf":        masterCF(l, o),
		"transport":        transportMap(l, o),
		"aliases":          aliasMap(o),
		"recipient_access": recipientAccess(),
	}, nil
}
