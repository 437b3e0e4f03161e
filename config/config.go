// Package config reads the daemon's configuration file, posthorn.toml.
//
// The file holds what an administrator sets once per host: names, paths and
// where the mail log comes from. Webhook settings live in the database, not
// here. Every field's doc comment is user documentation: Doc returns it as a
// table (generated from this file by TestDocTable), which `posthorn help
// config` and posthorn.toml.example are built from.
//
// Only cmd/posthorn imports this package; it translates a Config into the
// Options of the packages it wires together.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	// The maillog timezone is validated here and used by the log parser; with
	// the embedded database a zone name works even on hosts (or containers)
	// without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// DefaultPath is where the daemon looks for its config file unless told
// otherwise. Packagers may change it at link time:
//
//	go build -ldflags "-X github.com/posthorn/posthorn/config.DefaultPath=/usr/local/etc/posthorn/posthorn.toml"
var DefaultPath = "/etc/posthorn/posthorn.toml"

// Values of Maillog.Start.
const (
	StartBegin = "begin"
	StartEnd   = "end"
)

// Values of Log.Format.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Config is the content of posthorn.toml after defaults are applied and the
// values are validated.
type Config struct {
	// Name of this mail server, reported as the host of every logged event
	// and webhook attempt. Empty means the system host name, in full (as
	// the hostname command prints it).
	Hostname string `toml:"hostname"`

	// The server configuration name sent as server_composition in every
	// webhook payload, so that a receiver can tell senders apart. Empty
	// means the value of hostname.
	ServerComposition string `toml:"server_composition"`

	// For development only: allow webhook endpoints with http:// URLs.
	// Payloads, API keys and passwords then cross the network unencrypted.
	AllowInsecureHTTP bool `toml:"allow_insecure_http"`

	// Where posthorn keeps its data.
	Store Store `toml:"store"`

	// Where the Postfix mail log is read from, and how it is interpreted.
	Maillog Maillog `toml:"maillog"`

	// Posthorn's own diagnostic log, written to standard error (the
	// systemd journal when run as a service).
	Log Log `toml:"log"`

	// The web console: the event log, its CSV download and the webhook
	// settings, for users created with "posthorn user add NAME".
	UI UI `toml:"ui"`

	// Delivery of the Event Webhook. Its settings (endpoint, event
	// types, format) are kept in the database: "posthorn settings import".
	Webhook Webhook `toml:"webhook"`

	// The mail filter (milter) Postfix consults: the inbound role captures
	// mail for the Inbound Webhook, the outbound role records header From,
	// Subject and the metadata header for the Event Webhook. Its settings
	// (allowed domains, filters) are kept in the database: "posthorn
	// settings import". "posthorn postfix-config" prints the Postfix side.
	Milter Milter `toml:"milter"`

	// Prometheus metrics at /metrics: log lines read, events, webhook
	// backlog and posts, milter decisions, database size.
	Metrics Metrics `toml:"metrics"`

	// Alerts when a webhook (the Event Webhook, an inbound filter's
	// endpoint) keeps failing: an error in the log and, if mail_to is
	// set, a mail through the local Postfix.
	Alerts Alerts `toml:"alerts"`

	// The suppression list ("posthorn blocks", the console's Blocks
	// screen and /api/v1/blocks): when registrations take effect, how long
	// they last, and which bounces register an address automatically.
	Blocks Blocks `toml:"blocks"`
}

// Blocks is the [blocks] table.
type Blocks struct {
	// Daily time, "HH:MM" in the blocks time zone, at which scheduled
	// registrations take effect. A registration asked for "now" (blocks
	// add --now, the console, the API) does not wait for it.
	ExecTime string `toml:"exec_time"`

	// IANA time zone of exec_time and of the times the blocks commands
	// read and show. Empty means the Event Webhook's time zone, else
	// maillog.timezone, else the system's.
	Timezone string `toml:"timezone"`

	// Watch period: an entry is lifted automatically, with a "deleted"
	// record, this many days after it takes effect. 0 keeps entries until
	// they are deleted. From 0 to 3650.
	WatchDays int `toml:"watch_days"`

	// Bounce addresses: full addresses ("bounces@bounce.example.com") and
	// whole domains ("@bounce.example.com") whose mail the inbound milter
	// role reads as bounce messages, standard DSNs and the large
	// providers' plain-text ones. Send with one of them as the return
	// path. A bounce about a message Posthorn saw delivered is posted as
	// a bounces record and counted for auto_register. The role accepts
	// these recipients whatever the inbound settings say, and Postfix then
	// discards the bounce, or also delivers it, as milter.after_capture
	// says. Needs milter.inbound.
	BounceAddresses []string `toml:"bounce_addresses"`

	// Read VERP return paths: with the default delimiters,
	// "bounces+user=example.org@bounce.example.com" is the bounce address
	// bounces@bounce.example.com on mail to user@example.org, and a
	// bounce sent to it is about that recipient, even when it does not
	// return the original message (Postfix: "sendmail -XV", or XVERP from
	// a client in smtpd_authorized_verp_clients).
	VERP bool `toml:"verp"`

	// The two VERP delimiters: the one after the bounce address's local
	// part and the one that stands for the recipient's "@", as Postfix's
	// default_verp_delimiters.
	VERPDelimiters string `toml:"verp_delimiters"`

	// Automatic registration: how many bounces of each class an address
	// may get before it is put on the list (reason: the class), counted
	// from the maillog's bounces and from bounce mail. 0 turns a class
	// off; all are off by default.
	AutoRegister AutoRegister `toml:"auto_register"`
}

// AutoRegister is the [blocks.auto_register] table: one count per bounce
// class of the Event Webhook's bounces records (classes 10 and 11 are the
// list's own refusals and never register). Each is from 0 (off) to 1000.
type AutoRegister struct {
	// Class 1: the recipient's domain does not exist (a typical value: 1).
	UnknownHost int `toml:"unknown_host"`
	// Class 2: no such mailbox, such as 550 5.1.1 (a typical value: 1).
	UnknownUser int `toml:"unknown_user"`
	// Class 3: delivery timed out; Postfix gave up after its queue
	// lifetime.
	Timeout int `toml:"retransmission_timeout"`
	// Class 4: refused by the receiver's policy or as spam.
	Policy int `toml:"policy"`
	// Class 5: the mailbox is full (a typical value: 3).
	OverCapacity int `toml:"over_capacity"`
	// Class 6: forwarding at the receiver failed.
	Forwarding int `toml:"forwarding_error"`
	// Class 7: the receiving server failed.
	ReceiverError int `toml:"receiver_error"`
	// Class 8: the message is too large for the receiver.
	TooLarge int `toml:"message_too_large"`
	// Class 9: the address is malformed (a typical value: 1).
	AddressFormat int `toml:"address_format"`
	// Class 99: any other permanent error.
	Other int `toml:"other"`
}

// Location returns the zone named by Timezone, or nil when it is empty
// (the caller then falls back as the field's doc says). Load has validated
// the name.
func (b *Blocks) Location() *time.Location {
	if b.Timezone == "" {
		return nil
	}
	loc, err := time.LoadLocation(b.Timezone)
	if err != nil {
		return nil
	}
	return loc
}

// Alerts is the [alerts] table.
type Alerts struct {
	// How long a webhook must have failed without a single
	// success before an alert is raised. While it keeps failing the alert
	// is repeated at most hourly. From 1m to 7d.
	After Duration `toml:"after"`

	// Address that alert and recovery mails are sent to. Empty means
	// alerts are only logged.
	MailTo string `toml:"mail_to"`

	// Envelope and header sender of alert mails. Empty means
	// posthorn@ and the value of hostname.
	From string `toml:"from"`

	// The sendmail program that submits alert mails to Postfix, as an
	// absolute path. It is run as "sendmail -i -f FROM -- TO" with the
	// message on standard input.
	Sendmail string `toml:"sendmail"`

	// Extra arguments put before the others, e.g. ["-C",
	// "/etc/postfix-out"] for a second Postfix instance.
	SendmailArgs []string `toml:"sendmail_args"`
}

// Metrics is the [metrics] table.
type Metrics struct {
	// Address and port of a listener that serves only /metrics, over
	// plain HTTP, such as "127.0.0.1:9469". Empty turns it off. The
	// metrics name no addresses, only counts, but an address other than
	// loopback exposes them to the network: restrict it with a firewall.
	Listen string `toml:"listen"`

	// Serve /metrics on the web console's listener too, without a login.
	// Every other console page needs one.
	Public bool `toml:"public"`
}

// Store is the [store] table.
type Store struct {
	// The SQLite database holding the spool, the logs and the webhook
	// settings. An absolute path; the directory must be writable by
	// posthorn, which also creates the -wal and -shm files next to it.
	Path string `toml:"path"`

	// How long the logs are kept: the Event Webhook log with its
	// attempts, the delivery events, the inbound log, bounce messages
	// read, bounce counts and the suppression list's removed entries.
	// serve deletes older rows a minute after it starts and then hourly,
	// but never what is still to be done: events not yet posted, posts
	// queued or deferred, entries scheduled or in effect; a batch still
	// pending (a long-deferred one) holds back the pruning of every later
	// event until its retry period ends. Bounce mail about a delivery
	// older than this no longer finds it. From 1d to 3650d; "0" keeps
	// everything.
	Retention Duration `toml:"retention"`
}

// Maillog is the [maillog] table.
type Maillog struct {
	// The mail log file to follow, as an absolute path. Rotation by renaming
	// or truncating the file is followed. Leave it unset when journald is
	// true.
	Path string `toml:"path"`

	// Read the log from the systemd journal (by running journalctl) instead
	// of a file. Cannot be combined with an explicit path.
	Journald bool `toml:"journald"`

	// With journald: read only entries of these systemd units, e.g.
	// ["postfix@-.service"]. Empty means all entries of the mail syslog
	// facility.
	JournaldUnits []string `toml:"journald_units"`

	// With journald: read only entries with these syslog identifiers, e.g.
	// ["postfix/smtp", "postfix/qmgr"]. Empty means no such filter.
	JournaldIdentifiers []string `toml:"journald_identifiers"`

	// Where to start reading on the very first run, when no position has
	// been stored yet: "begin" processes the whole existing log, "end" only
	// what is written from now on. Later runs always resume where the last
	// one stopped.
	Start string `toml:"start"`

	// IANA time zone name (e.g. "Europe/Berlin") of log time stamps that
	// carry no UTC offset, as in traditional syslog files. Empty means the
	// system's local time zone.
	Timezone string `toml:"timezone"`

	// The year of time stamps that carry none (traditional syslog), from
	// 1970 to 9999. 0 infers it from the current date, which is right
	// unless old logs are replayed.
	Year int `toml:"year"`

	// How long the state of a queue ID is kept when Postfix never logs its
	// "removed" line, measured in log time. From 1h to 30d.
	MessageTTL Duration `toml:"message_ttl"`

	// How far a log line may be older than an earlier one and still be
	// ordered correctly, for logs merged from several processes. From 0 to
	// 5m.
	OutOfOrder Duration `toml:"out_of_order"`

	// The most log lines processed in one database transaction. Larger
	// batches catch up faster after a backlog; smaller ones keep each
	// write short. From 1 to 100000.
	BatchLines int `toml:"batch_lines"`

	location *time.Location
}

// Location returns the zone of log time stamps without an offset: the zone
// named by Timezone, or time.Local.
func (m *Maillog) Location() *time.Location {
	if m.location == nil {
		return time.Local
	}
	return m.location
}

// Log is the [log] table.
type Log struct {
	// Line format: "text" (key=value pairs) or "json" (one object per
	// line).
	Format string `toml:"format"`

	// The least severe messages written: "debug", "info", "warn" or
	// "error".
	Level string `toml:"level"`
}

// UI is the [ui] table.
type UI struct {
	// Address and port the web console listens on, such as
	// "127.0.0.1:8025" or "[::1]:8025". Empty turns the console off. It
	// starts only once a user ("posthorn user add NAME") or, for the API
	// alone, an API token ("posthorn token add NAME") exists. An address
	// other than loopback needs tls_cert and tls_key: passwords, tokens and
	// mail addresses must not cross the network in clear text.
	Listen string `toml:"listen"`

	// Certificate chain for HTTPS, a PEM file given as an absolute path.
	// With tls_key set too, the console is served over HTTPS only. The
	// file is read again when it changes, so a renewed certificate needs
	// no restart.
	TLSCert string `toml:"tls_cert"`

	// Private key of tls_cert, a PEM file given as an absolute path.
	TLSKey string `toml:"tls_key"`

	// IANA time zone name (e.g. "Asia/Tokyo") the console shows times in
	// and reads search periods in. Empty means the system's local time
	// zone.
	Timezone string `toml:"timezone"`

	// A console session ends after this long without a request. From 1m
	// to 24h.
	IdleTimeout Duration `toml:"idle_timeout"`

	// A console session ends this long after login, however active it is.
	// From 5m to 30d.
	SessionLifetime Duration `toml:"session_lifetime"`

	// Reverse proxies in front of the console, as IP addresses or CIDR
	// prefixes, such as ["127.0.0.1"] for a local nginx. A request from
	// one of them is taken to come from the last address in its
	// X-Forwarded-For header that is not itself such a proxy, so that
	// login limits and logs see the real client rather than the proxy.
	// Empty: the header is ignored, as any client can send it.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// Location returns the zone the console shows times in: the zone named by
// Timezone, or time.Local. Load has validated the name.
func (u *UI) Location() *time.Location {
	if u.Timezone == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(u.Timezone)
	if err != nil {
		return time.Local
	}
	return loc
}

// Webhook is the [webhook] table.
type Webhook struct {
	// The most events that may wait to be posted to the Event Webhook
	// endpoint. Past it the oldest waiting events are failed unposted,
	// with a log line ("posthorn replay" re-queues them), so that a dead
	// endpoint cannot fill the disk: what is failed is deleted with the
	// logs after store.retention. From 1000 to 100000000.
	MaxPending int `toml:"max_pending"`
}

// Milter is the [milter] table.
type Milter struct {
	// Where the inbound role listens, for the smtpd that receives mail
	// (port 25): "inet:HOST:PORT" such as "inet:127.0.0.1:10030", or
	// "unix:PATH" with an absolute path. Empty turns the role off.
	Inbound string `toml:"inbound"`

	// Where the outbound role listens, for the smtpd that relays
	// submitted mail (submission): "inet:HOST:PORT" or "unix:PATH". Empty
	// turns the role off.
	Outbound string `toml:"outbound"`

	// Permissions of unix sockets, in octal. Postfix's smtpd connects as
	// user postfix: the socket must be writable for it.
	SocketMode string `toml:"socket_mode"`

	// Group of unix sockets, e.g. "postfix". Empty keeps posthorn's own
	// group.
	SocketGroup string `toml:"socket_group"`

	// What the inbound role does with a recipient whose domain is not an
	// allowed inbound domain: "reject" refuses it at RCPT with 550 5.7.1;
	// "pass" lets Postfix handle it as if posthorn were not there, for a
	// server that also receives other mail.
	UnknownDomain string `toml:"unknown_domain"`

	// What Postfix does with a captured message: "discard" drops it (the
	// webhook is its destination), "deliver" delivers it as usual as well.
	AfterCapture string `toml:"after_capture"`

	// What the outbound role does with a recipient on the suppression
	// list: "reject" refuses it at RCPT with 550 5.7.1; "discard" accepts
	// it and takes it off the message, so the client cannot tell. Either
	// way the Event Webhook gets a failed and a bounced (class 10) record.
	Suppressed string `toml:"suppressed"`

	// The largest message captured, in bytes, header and body; a larger one
	// is refused with 552 5.3.4. Keep it at least as large as Postfix's
	// message_size_limit. From 65536 to 1073741824.
	MaxMessageSize int `toml:"max_message_size"`

	// The header whose value the outbound role records as apiData.
	MetadataHeader string `toml:"metadata_header"`

	// How long parsing and storing one captured message may take before
	// Postfix is told to try again later (451 4.3.0). From 5s to 4m, below
	// Postfix's milter_content_timeout.
	CaptureTimeout Duration `toml:"capture_timeout"`

	// On shutdown, how long open SMTP transactions may take to finish
	// before their milter connections are closed (Postfix then answers
	// with a temporary failure). From 1s to 10m; keep it below the
	// service's TimeoutStopSec (30s).
	ShutdownTimeout Duration `toml:"shutdown_timeout"`

	// Directory for large messages and attachments while they are
	// captured, as an absolute path. Empty means the system's temporary
	// directory.
	TempDir string `toml:"temp_dir"`

	// How long the outbound role's records are kept. From 1h to 30d.
	ObservationTTL Duration `toml:"observation_ttl"`

	// How many messages of one inbound filter are posted at once while its
	// endpoint answers. From 1 to 64.
	PostConcurrency int `toml:"post_concurrency"`
}

// Proxies returns TrustedProxies as prefixes (an address is a prefix of
// its full length). Load has validated them.
func (u *UI) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range u.TrustedProxies {
		if pf, err := parseProxy(p); err == nil {
			out = append(out, pf)
		}
	}
	return out
}

func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// TLS reports whether the console is served over HTTPS.
func (u *UI) TLS() bool { return u.TLSCert != "" && u.TLSKey != "" }

// defaults is the configuration before a file is applied. Hostname and
// ServerComposition stay empty: they are filled in after decoding, because
// server_composition defaults to the hostname that the file may set.
func defaults() Config {
	return Config{
		Store: Store{Path: "/var/lib/posthorn/posthorn.db", Retention: Duration(30 * day)},
		Maillog: Maillog{
			Path:                "/var/log/mail.log",
			JournaldUnits:       []string{},
			JournaldIdentifiers: []string{},
			Start:               StartEnd,
			MessageTTL:          Duration(7 * 24 * time.Hour),
			OutOfOrder:          Duration(10 * time.Second),
			BatchLines:          5000,
		},
		Log: Log{Format: FormatText, Level: "info"},
		UI: UI{
			Listen:          "127.0.0.1:8025",
			IdleTimeout:     Duration(time.Hour),
			SessionLifetime: Duration(12 * time.Hour),
			TrustedProxies:  []string{},
		},
		Webhook: Webhook{MaxPending: 1000000},
		Blocks:  Blocks{ExecTime: "00:00", BounceAddresses: []string{}, VERPDelimiters: "+="},
		Alerts: Alerts{
			After:        Duration(time.Hour),
			Sendmail:     "/usr/sbin/sendmail",
			SendmailArgs: []string{},
		},
		Milter: Milter{
			SocketMode:      "0660",
			UnknownDomain:   "reject",
			AfterCapture:    "discard",
			Suppressed:      "reject",
			MaxMessageSize:  64 << 20,
			MetadataHeader:  "X-Api-Data",
			CaptureTimeout:  Duration(time.Minute),
			ShutdownTimeout: Duration(20 * time.Second),
			ObservationTTL:  Duration(7 * 24 * time.Hour),
			PostConcurrency: 4,
		},
	}
}

// Default returns the configuration used when the file sets nothing. If the
// system host name cannot be read, Hostname and ServerComposition are empty;
// Load reports that as an error.
func Default() *Config {
	c := defaults()
	_ = c.fillHostnames()
	return &c
}

// fillHostnames applies the defaults of hostname, server_composition and
// alerts.from.
func (c *Config) fillHostnames() error {
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("read system host name: %w", err)
		}
		c.Hostname = h
	}
	if c.ServerComposition == "" {
		c.ServerComposition = c.Hostname
	}
	if c.Alerts.From == "" {
		c.Alerts.From = "posthorn@" + c.Hostname
	}
	return nil
}
