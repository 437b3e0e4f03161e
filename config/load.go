package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// maxProblems is how many problems Parse reports at most. Beyond that the
// list is not helpful, and finding them all in a large broken file would be
// slow (each value the decoder rejects costs a decoding of the whole file).
const maxProblems = 20

// maxSize bounds what Load reads. Real files are a few kilobytes; the limit
// makes a wrong path such as /dev/zero fail instead of filling memory, and
// bounds the time to reject a large broken file (the decoder's cost per
// unknown key grows with the size of the file).
const maxSize = 64 << 10

// Error is one problem found in a config file. Load and Parse return all
// problems they find, each an *Error, joined with errors.Join.
type Error struct {
	File string // the path given to Load, or the name given to Parse
	Line int    // 1-based line of the problem; 0 when no line applies
	Key  string // dotted key, such as "maillog.start"; empty for syntax errors
	Msg  string
}

// Error formats e as "file:line: key: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads the config file at path and returns it with defaults applied
// and all values validated.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("read config: %s is a directory, not a file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxSize {
		return nil, fmt.Errorf("read config: %s is larger than %d bytes", path, maxSize)
	}
	return Parse(path, data)
}

// Parse decodes data, the content of a config file called name (used in
// error messages), applies defaults and validates the result. It reports
// every problem it finds (up to 20), each an *Error, joined with errors.Join
// in the order of the file.
func Parse(name string, data []byte) (*Config, error) {
	// Some editors start UTF-8 files with a byte order mark, which TOML
	// does not allow for; it is no key.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	doc := index(data)
	c, errs, complete := doc.decode(name)
	if complete {
		// Keys already reported need no second message about the value
		// the decoder made of them.
		v := validator{file: name, doc: doc, reported: map[string]bool{}}
		for _, e := range errs {
			v.reported[e.Key] = true
		}
		v.check(&c)
		errs = append(errs, v.errs...)
	}
	if len(errs) == 0 {
		return &c, nil
	}
	// Problems are found in passes (decoding, unknown keys, validation);
	// report them in the order of the file. Line 0 goes last.
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Compare(lineOrder(a.Line), lineOrder(b.Line))
	})
	if len(errs) > maxProblems {
		errs = append(errs[:maxProblems], &Error{File: name, Line: errs[maxProblems].Line, Msg: "too many problems; stopped reporting here"})
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return nil, errors.Join(joined...)
}

func lineOrder(line int) int {
	if line == 0 {
		return math.MaxInt
	}
	return line
}

// decode decodes the document strictly into a Config over the defaults.
// The decoder stops at the first value it cannot decode; to report every
// such value, decode blanks the top-level expression holding it (keeping
// line breaks, so positions stay valid) and decodes again. complete is false
// after an error that cannot be blanked out, such as a syntax error: the
// Config is then partial and not worth validating.
func (d *document) decode(name string) (c Config, errs []*Error, complete bool) {
	data, cloned := d.data, false
	for len(errs) < maxProblems {
		c = defaults()
		err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(&c)
		var strict *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case err == nil:
			return c, d.checkTypes(name, errs), true
		case errors.As(err, &strict):
			// Reported after the whole document was decoded, so c is
			// complete.
			for i := range min(len(strict.Errors), maxProblems) {
				errs = append(errs, d.unknownKey(name, &strict.Errors[i]))
			}
			return c, d.checkTypes(name, errs), true
		case errors.As(err, &de):
			e, top := d.decodeError(name, de)
			errs = append(errs, e)
			if top.Length == 0 || isBlank(data[top.Offset:top.Offset+top.Length]) {
				return c, errs, false
			}
			if !cloned {
				data, cloned = slices.Clone(data), true
			}
			blank(data[top.Offset : top.Offset+top.Length])
		default:
			return c, append(errs, &Error{File: name, Msg: err.Error()}), false
		}
	}
	return c, errs, false
}

// checkTypes reports what the decoder accepted although the file does not
// say it: values of another TOML type (it stores an integer in a Duration as
// nanoseconds, where "out_of_order = 10" more likely means seconds), and keys
// in another case (it matches field names case-insensitively, but TOML keys
// are case-sensitive).
func (d *document) checkTypes(name string, errs []*Error) []*Error {
	reported := map[string]bool{}
	for _, e := range errs {
		reported[e.Key] = true
	}
	for i := range d.entries {
		e := &d.entries[i]
		if reportedPrefix(reported, e.key) {
			continue
		}
		f := field(e.key)
		if f == nil {
			// Unknown keys are the strict decoder's to report; it lets
			// through only those in another case.
			if f = foldedField(e.key); f != nil {
				what := "key"
				if f.Type == "table" {
					what = "table"
				}
				errs = append(errs, &Error{File: name, Line: e.line, Key: e.key, Msg: fmt.Sprintf("unknown %s (did you mean %s?)", what, f.Key)})
				reported[e.key] = true
			}
			continue
		}
		if m := mismatch(f.Type, e); m != "" {
			errs = append(errs, &Error{File: name, Line: e.line, Key: e.key, Msg: m})
		}
	}
	return errs
}

// reportedPrefix tells whether key or a table holding it has been reported.
func reportedPrefix(reported map[string]bool, key string) bool {
	for {
		if reported[key] {
			return true
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			return false
		}
		key = key[:i]
	}
}

// decodeError translates an error of the TOML decoder. It returns the range
// of the top-level expression at fault, empty if there is none.
func (d *document) decodeError(name string, de *toml.DecodeError) (*Error, unstable.Range) {
	line, col := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	e := d.at(offsetOf(d.data, line, col))
	if e == nil {
		// The parser failed before the expression was complete.
		return &Error{File: name, Line: line, Msg: "syntax error: " + msg}, unstable.Range{}
	}
	key := e.key
	if first := d.first(e.key); first != e {
		what := "key"
		if e.table {
			what = "table"
		}
		msg = fmt.Sprintf("%s defined twice (first on line %d)", what, first.line)
	} else if f := field(e.key); f != nil {
		if m := mismatch(f.Type, e); m != "" {
			msg = m
		}
	} else if f := scalarPrefix(e.key); f != nil {
		key, msg = f.Key, mismatch(f.Type, &entry{kind: kindTable})
	}
	return &Error{File: name, Line: line, Key: key, Msg: msg}, e.top
}

// unknownKey translates an unknown-key error of the strict decoder.
func (d *document) unknownKey(name string, de *toml.DecodeError) *Error {
	line, col := de.Position()
	key, what := strings.Join(de.Key(), "."), "key"
	// The decoder loses the table prefix of keys in inline tables; the
	// index has the full key.
	if e := d.at(offsetOf(d.data, line, col)); e != nil {
		key = e.key
		if e.kind == kindTable {
			what = "table"
		}
	}
	msg := "unknown " + what
	if s := suggest(key); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return &Error{File: name, Line: line, Key: key, Msg: msg}
}

// types maps the documented type of a key to the TOML values it takes.
var types = map[string]struct {
	kind string // kind* of the value
	want string // for error messages
}{
	"table":           {kindTable, "a table"},
	"string":          {kindString, "a string"},
	"duration":        {kindString, `a duration string such as "90s" or "7d"`},
	"boolean":         {kindBool, "true or false"},
	"integer":         {kindInteger, "an integer"},
	"list of strings": {kindArray, `a list of strings such as ["a", "b"]`},
}

// mismatch describes a value whose TOML type does not fit the key's type, or
// returns "" if it fits.
func mismatch(typ string, e *entry) string {
	t, ok := types[typ]
	if !ok || (e.kind == t.kind && e.elem == "") {
		return ""
	}
	got := e.kind
	if e.elem != "" {
		got = "an array containing " + e.elem
	}
	return fmt.Sprintf("must be %s, got %s", t.want, got)
}

// scalarPrefix returns the row of a key that is not a table but is used as
// one in key, as "start" is in "maillog.start.x", or nil.
func scalarPrefix(key string) *Field {
	for {
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			return nil
		}
		key = key[:i]
		if f := field(key); f != nil && f.Type != "table" {
			return f
		}
	}
}

// suggest returns the known key the misspelt or misplaced key was probably
// meant to be, or "".
func suggest(key string) string {
	if f := foldedField(key); f != nil {
		return f.Key
	}
	parent, leaf := splitKey(key)
	var sameLeaf string
	for _, f := range fields {
		p, l := splitKey(f.Key)
		if p == parent && editDistance(l, leaf) <= 2 {
			return f.Key
		}
		if l == leaf && sameLeaf == "" {
			sameLeaf = f.Key
		}
	}
	return sameLeaf
}

// foldedField returns the row of key in another case, or nil.
func foldedField(key string) *Field {
	for i := range fields {
		if strings.EqualFold(fields[i].Key, key) {
			return &fields[i]
		}
	}
	return nil
}

func splitKey(key string) (parent, leaf string) {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		diag := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			diag, row[j] = row[j], min(row[j]+1, row[j-1]+1, diag+cost)
		}
	}
	return row[len(b)]
}

func isBlank(b []byte) bool {
	return len(bytes.TrimSpace(b)) == 0
}

// blank overwrites b with spaces, keeping line breaks.
func blank(b []byte) {
	for i, c := range b {
		if c != '\n' && c != '\r' {
			b[i] = ' '
		}
	}
}

// offsetOf converts a 1-based line and byte column into an offset.
func offsetOf(data []byte, line, col int) int {
	off := 0
	for ; line > 1; line-- {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return len(data)
		}
		off += i + 1
	}
	return off + col - 1
}
