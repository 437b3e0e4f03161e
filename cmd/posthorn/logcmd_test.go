package main

import (
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/sqlite"
)

// TestWriteLogCSVInvalidUTF8: posthorn log --csv writes valid UTF-8 by the
// rule of the JSON output and the console's CSVs: one U+FFFD per invalid
// byte; the endpoint without its query.
func TestWriteLogCSVInvalidUTF8(t *testing.T) {
	var b strings.Builder
	rows := []sqlite.WebhookBatch{{Received: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC), State: sqlite.StateFailed,
		Host: "mx\xff1", Endpoint: "https://hooks.example.com/in?token=SECRET", Reason: "HTTP 400: \xff\xfe"}}
	if err := writeLogCSV(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], ",failed,mx\uFFFD1,https://hooks.example.com/in,HTTP 400: \uFFFD\uFFFD") {
		t.Errorf("CSV:\n%s", b.String())
	}
}
