package logtail

import "time"

// parseStamp reads the timestamp that starts a syslog line: RFC 3339 (rsyslog's
// high-precision format, container runtimes) or the year-less BSD form of
// RFC 3164 §4.1.2 that syslogd, postlogd and journalctl's short output print.
// It returns the text after the stamp and its spaces; on failure st is left
// untouched.
func parseStamp(st *Stamp, s string) (string, bool) {
	if len(s) == 0 {
		return s, false
	}
	if isDigitByte(s[0]) {
		return parseRFC3339(st, s)
	}
	return parseBSDStamp(st, s)
}

// parseBSDStamp reads "Mmm dd hh:mm:ss". The day may be space-padded
// ("Nov  7", syslogd), zero-padded ("Nov 07", postlogd's strftime %d) or
// neither ("Jul 2"). The month may be localised, as journalctl prints it
// under a German or French locale.
func parseBSDStamp(st *Stamp, s string) (string, bool) {
	i := 0
	for i < len(s) && i < 7 && s[i] != ' ' {
		i++
	}
	if i >= len(s) || s[i] != ' ' {
		return s, false
	}
	month := monthByName(s[:i])
	if month == 0 {
		return s, false
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	day, i, ok := fixedDigits(s, i, 1, 2)
	if !ok || day < 1 || day > 31 || i >= len(s) || s[i] != ' ' {
		return s, false
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	var t Stamp
	if i, ok = parseClock(&t, s, i); !ok {
		return s, false
	}
	if i < len(s) && s[i] != ' ' {
		return s, false
	}
	t.Month, t.Day = month, day
	*st = t
	return skipBlanks(s[i:]), true
}

// parseRFC3339 reads "YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]" (RFC 3339 §5.6).
// The offset may be missing (rsyslog without a zone); it may also be written
// ±hhmm, and the 'T' a space, as some collectors do.
func parseRFC3339(st *Stamp, s string) (string, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') {
		return s, false
	}
	year, _, ok1 := fixedDigits(s, 0, 4, 4)
	month, _, ok2 := fixedDigits(s, 5, 2, 2)
	day, _, ok3 := fixedDigits(s, 8, 2, 2)
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > 31 {
		return s, false
	}
	var t Stamp
	i, ok := parseClock(&t, s, 11)
	if !ok {
		return s, false
	}
	if i < len(s) {
		switch c := s[i]; c {
		case 'Z', 'z':
			t.HasOffset = true
			i++
		case '+', '-':
			hh, j, okH := fixedDigits(s, i+1, 2, 2)
			if j < len(s) && s[j] == ':' {
				j++
			}
			mm, j, okM := fixedDigits(s, j, 2, 2)
			if !okH || !okM || hh > 23 || mm > 59 {
				return s, false
			}
			t.Offset = hh*3600 + mm*60
			if c == '-' {
				t.Offset = -t.Offset
			}
			t.HasOffset = true
			i = j
		}
	}
	if i < len(s) && s[i] != ' ' {
		return s, false
	}
	t.Year, t.Month, t.Day = year, time.Month(month), day
	*st = t
	return skipBlanks(s[i:]), true
}

// parseClock reads "hh:mm:ss[.fraction]" at s[i:]. Digits of the fraction
// beyond nanoseconds are read and dropped.
func parseClock(t *Stamp, s string, i int) (int, bool) {
	h, i, ok1 := fixedDigits(s, i, 2, 2)
	if !ok1 || i >= len(s) || s[i] != ':' {
		return i, false
	}
	m, i, ok2 := fixedDigits(s, i+1, 2, 2)
	if !ok2 || i >= len(s) || s[i] != ':' {
		return i, false
	}
	sec, i, ok3 := fixedDigits(s, i+1, 2, 2)
	if !ok3 || h > 23 || m > 59 || sec > 60 {
		return i, false
	}
	t.Hour, t.Min, t.Sec = h, m, sec
	if i < len(s) && (s[i] == '.' || s[i] == ',') && i+1 < len(s) && isDigitByte(s[i+1]) {
		i++
		nsec, scale := 0, 100000000
		for ; i < len(s) && isDigitByte(s[i]); i++ {
			nsec += int(s[i]-'0') * scale
			scale /= 10
		}
		t.Nsec = nsec
	}
	return i, true
}

// fixedDigits reads between min and max decimal digits at s[i:].
func fixedDigits(s string, i, min, max int) (n, end int, ok bool) {
	j := i
	for j < len(s) && j-i < max && isDigitByte(s[j]) {
		n = n*10 + int(s[j]-'0')
		j++
	}
	return n, j, j-i >= min
}

// monthByName knows the English abbreviations and those that journalctl
// prints under German (glibc de_DE: Mär, Mai, Okt, Dez) and French (fr_FR:
// janv., févr., mars, avr., mai, juin, juil., août, sept., oct., nov., déc.)
// locales. Other spellings of the same month are harmless to accept.
func monthByName(m string) time.Month {
	switch m {
	case "Jan", "jan", "JAN", "Jän", "janv.", "janv":
		return time.January
	case "Feb", "feb", "FEB", "févr.", "févr", "fév":
		return time.February
	case "Mar", "mar", "MAR", "Mär", "mär", "Mrz", "mars":
		return time.March
	case "Apr", "apr", "APR", "avr.", "avr", "avril":
		return time.April
	case "May", "may", "MAY", "Mai", "mai":
		return time.May
	case "Jun", "jun", "JUN", "juin":
		return time.June
	case "Jul", "jul", "JUL", "juil.", "juil":
		return time.July
	case "Aug", "aug", "AUG", "août":
		return time.August
	case "Sep", "sep", "SEP", "sept.", "sept":
		return time.September
	case "Oct", "oct", "OCT", "Okt", "okt", "oct.":
		return time.October
	case "Nov", "nov", "NOV", "nov.":
		return time.November
	case "Dec", "dec", "DEC", "Dez", "dez", "déc.", "déc":
		return time.December
	}
	return 0
}
