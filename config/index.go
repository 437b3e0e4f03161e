package config

import (
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The TOML type of a value, worded for error messages.
const (
	kindTable   = "a table"
	kindString  = "a string"
	kindBool    = "a boolean"
	kindInteger = "an integer"
	kindFloat   = "a float"
	kindArray   = "an array"
	kindTime    = "a date or time"
)

// document is a config file with an index of its keys, so that errors found
// after decoding can name the line of the key at fault.
type document struct {
	data    []byte
	entries []entry // in the order of the file
}

// entry is one key of the document: a key-value, also one nested in an
// inline table, or a table header.
type entry struct {
	key   string // dotted, with the table prefix
	line  int
	table bool           // a [table] header
	span  unstable.Range // the key-value, or the key of a header
	top   unstable.Range // the top-level key-value holding it; empty for headers
	kind  string         // kind* of the value
	elem  string         // for arrays, the kind of the first non-string element
}

// index lists the keys of data. It stops at the first syntax error, which
// the decoder reports.
func index(data []byte) *document {
	d := &document{data: data}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(n)
			r := keySpan(n)
			d.entries = append(d.entries, entry{
				key:   strings.Join(table, "."),
				line:  p.Shape(r).Start.Line,
				table: true,
				span:  r,
				kind:  kindTable,
			})
		case unstable.KeyValue:
			d.addKeyValue(&p, table, n, n.Raw)
		}
	}
	return d
}

func (d *document) addKeyValue(p *unstable.Parser, prefix []string, n *unstable.Node, top unstable.Range) {
	key := append(slices.Clip(prefix), keyParts(n)...)
	v := n.Value()
	e := entry{
		key:  strings.Join(key, "."),
		line: p.Shape(keySpan(n)).Start.Line,
		span: n.Raw,
		top:  top,
		kind: kindOf(v),
	}
	if v.Kind == unstable.Array {
		for it := v.Children(); it.Next(); {
			if k := kindOf(it.Node()); k != kindString {
				e.elem = k
				break
			}
		}
	}
	d.entries = append(d.entries, e)
	if v.Kind == unstable.InlineTable {
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				d.addKeyValue(p, key, c, top)
			}
		}
	}
}

func kindOf(n *unstable.Node) string {
	switch n.Kind {
	case unstable.InlineTable:
		return kindTable
	case unstable.String:
		return kindString
	case unstable.Bool:
		return kindBool
	case unstable.Integer:
		return kindInteger
	case unstable.Float:
		return kindFloat
	case unstable.Array:
		return kindArray
	default:
		return kindTime
	}
}

func keyParts(n *unstable.Node) []string {
	var parts []string
	for it := n.Key(); it.Next(); {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// keySpan is the range of all parts of a (dotted) key.
func keySpan(n *unstable.Node) unstable.Range {
	it := n.Key()
	it.Next() // a key has at least one part
	first, last := it.Node().Raw, it.Node().Raw
	for it.Next() {
		last = it.Node().Raw
	}
	return unstable.Range{Offset: first.Offset, Length: last.Offset + last.Length - first.Offset}
}

// at returns the innermost entry covering the byte at offset, or nil.
func (d *document) at(offset int) *entry {
	var best *entry
	for i := range d.entries {
		e := &d.entries[i]
		start, end := int(e.span.Offset), int(e.span.Offset+e.span.Length)
		if start <= offset && offset < end && (best == nil || e.span.Length <= best.span.Length) {
			best = e
		}
	}
	return best
}

// first returns the first entry of key, or nil if the file does not set it.
// Keys in another case count, as the decoder accepts them (and reports them
// as errors).
func (d *document) first(key string) *entry {
	var folded *entry
	for i := range d.entries {
		switch e := &d.entries[i]; {
		case e.key == key:
			return e
		case folded == nil && strings.EqualFold(e.key, key):
			folded = e
		}
	}
	return folded
}
