package logtail

import (
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// FuzzParse feeds Parse arbitrary lines, seeded with every line of the
// golden inputs. Parse must not panic, and outside journald JSON every
// string it returns must be a slice of the input: that is the no-copy
// promise, and it also proves no field was assembled from anywhere else.
func FuzzParse(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "parse", "*.log"))
	if err != nil || len(inputs) == 0 {
		f.Fatalf("no seed inputs: %v", err)
	}
	for _, in := range inputs {
		for _, line := range parseInputLines(f, in) {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := Parse(line)
		if err != nil {
			if _, ok := err.(*ParseError); !ok && err != ErrNotPostfix {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
		}
		if strings.HasPrefix(line, "{") {
			return
		}
		if f := parseFieldOutside(&r, line); f != "" {
			t.Fatalf("field %s of %+v is not a slice of the input", f, r)
		}
		if r.Kind != KindOther && err == nil && r.Program == "" {
			t.Fatalf("kind %v without a program", r.Kind)
		}
	})
}

// parseSliceOf reports whether s's bytes lie inside line's memory.
func parseSliceOf(s, line string) bool {
	if len(s) == 0 {
		return true
	}
	base := uintptr(unsafe.Pointer(unsafe.StringData(line)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return p >= base && p+uintptr(len(s)) <= base+uintptr(len(line))
}
