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
		if err != nil {
			return
		}
		// What the correlator relies on for each kind.
		switch {
		case r.Program == "":
			t.Fatalf("a Postfix record without a program: %+v", r)
		case r.QueueID != "" && !looksLikeQueueID(r.QueueID):
			t.Fatalf("queue ID %q", r.QueueID)
		case r.Kind == KindDelivery && r.Status == "":
			t.Fatalf("delivery without a status: %+v", r)
		case r.Kind == KindNotification && !looksLikeQueueID(r.NewQueue):
			t.Fatalf("notification to queue ID %q", r.NewQueue)
		case r.HandOff != "" && !looksLikeQueueID(r.HandOff):
			t.Fatalf("hand-off to queue ID %q", r.HandOff)
		case r.Kind == KindReject && r.Action == "":
			t.Fatalf("reject without an action: %+v", r)
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
