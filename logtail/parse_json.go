package logtail

import (
	"encoding/json"
	"strconv"
	"time"
)

// journalEntry holds the fields of a `journalctl -o json` record that Parse
// uses. journalctl writes a field as a JSON string, as an array of byte
// values when it is not valid UTF-8 (or is binary), as an array of those when
// the entry has the field more than once, and as null when it is too large
// (systemd.journal-fields(7), journalctl(1) "json").
type journalEntry struct {
	Message    json.RawMessage `json:"MESSAGE"`
	Identifier json.RawMessage `json:"SYSLOG_IDENTIFIER"`
	PID        json.RawMessage `json:"_PID"`
	SyslogPID  json.RawMessage `json:"SYSLOG_PID"`
	Hostname   json.RawMessage `json:"_HOSTNAME"`
	Realtime   json.RawMessage `json:"__REALTIME_TIMESTAMP"`
}

// parseJournalJSON reads one journald JSON record. SYSLOG_IDENTIFIER is the
// program, MESSAGE the payload (journald has already split off the syslog
// tag), and __REALTIME_TIMESTAMP, µs since the epoch in UTC, the time.
func parseJournalJSON(line string) (Record, error) {
	var r Record
	var e journalEntry
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		return r, ErrNotPostfix
	}
	if us, ok := journalField(e.Realtime); ok {
		if n, err := strconv.ParseInt(us, 10, 64); err == nil {
			r.Stamp.Abs = time.UnixMicro(n).UTC()
		}
	}
	r.Host, _ = journalField(e.Hostname)
	pid, ok := journalField(e.SyslogPID)
	if !ok {
		pid, _ = journalField(e.PID)
	}
	if n, ok := atoiBytes(pid); ok && n <= 1<<31 {
		r.PID = int(n)
	}
	msg, _ := journalField(e.Message)
	r.Program, _ = journalField(e.Identifier)
	// Postfix writing its own log to stdout (maillog_file = /dev/stdout)
	// under a service manager reaches the journal as whole postlogd lines,
	// under whatever identifier the unit gives it. No Postfix message text
	// starts with a timestamp, so one marks such a line.
	var st Stamp
	if _, stamped := parseStamp(&st, msg); stamped {
		var inner Record
		err := parseSyslogLine(&inner, msg)
		if err != ErrNotPostfix {
			if !r.Stamp.Abs.IsZero() {
				inner.Stamp = Stamp{Abs: r.Stamp.Abs}
			}
			if inner.Host == "" {
				inner.Host = r.Host
			}
			return inner, err
		}
	}
	if !isPostfixProgram(r.Program) {
		return r, ErrNotPostfix
	}
	r.Daemon = lastPathElem(r.Program)
	err := parsePayload(&r, trimBlanksRight(msg))
	return r, err
}

// journalField decodes one field value: a string, an array of byte values,
// or (for a repeated field) an array whose first element is one of those.
func journalField(raw json.RawMessage) (string, bool) {
	return journalValue(raw, true)
}

func journalValue(raw json.RawMessage, top bool) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil || len(items) == 0 {
			return "", false
		}
		if c := items[0][0]; c == '"' || c == '[' {
			if !top {
				return "", false
			}
			return journalValue(items[0], false)
		}
		var b []byte
		if json.Unmarshal(raw, &b) != nil {
			return "", false
		}
		return string(b), true
	}
	return "", false
}
