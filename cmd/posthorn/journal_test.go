//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/posthorn/posthorn/config"
)

// TestLoggerUnderJournal: a text log written to the journal's stream
// leaves the time stamp to the journal; anything else keeps it.
func TestLoggerUnderJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	for _, tc := range []struct {
		name, stream, format string
		wantTime             bool
	}{
		{"not under systemd", "", config.FormatText, true},
		{"journal stream", fmt.Sprintf("%d:%d", uint64(st.Dev), uint64(st.Ino)), config.FormatText, false},
		{"stderr redirected elsewhere", fmt.Sprintf("%d:%d", uint64(st.Dev), uint64(st.Ino)+1), config.FormatText, true},
		{"json keeps its time field", fmt.Sprintf("%d:%d", uint64(st.Dev), uint64(st.Ino)), config.FormatJSON, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tc.stream)
			start, _ := f.Seek(0, 2)
			newLogger(config.Log{Format: tc.format, Level: "info"}, f).Info("hello", "k", "v")
			line := readAll(t, f.Name())[start:]
			if got := strings.Contains(line, `time`); got != tc.wantTime {
				t.Errorf("line %q: time present = %v, want %v", line, got, tc.wantTime)
			}
			if !strings.Contains(line, "hello") {
				t.Errorf("line %q lacks the message", line)
			}
		})
	}
}
