package event

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAppendJSONRoundTrip(t *testing.T) {
	tz := time.FixedZone("", 9*3600)
	for _, ev := range []Event{
		{ID: "a", Type: Queued, Time: time.Date(2026, 11, 7, 9, 3, 4, 0, tz), Host: "mx1", QueueID: "ABC", To: "u@example.com", SourceIP: "192.0.2.1"},
		{ID: "b", Type: Bounced, Time: time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC), Class: ClassUnknownUser,
			Reason: "host x said: 550 5.1.1 <u@x> \"quoted\" \\ (in reply to RCPT TO command)\n\t\x01", DSN: "5.1.1", Attempt: 2},
		{ID: "c", Type: Deferred, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Reason: "日本語 \u2028 ok", To: "Gmailアドレス"},
	} {
		b := ev.AppendJSON(nil)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
		var got Event
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ev, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) && a.Format(time.RFC3339) == b.Format(time.RFC3339) })); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		std, _ := json.Marshal(ev)
		if string(std) != string(b) {
			t.Errorf("MarshalJSON differs from AppendJSON:\n%s\n%s", std, b)
		}
	}
}

func TestAppendStringInvalidUTF8(t *testing.T) {
	b := appendString(nil, "a\xffb<&>")
	if string(b) != `"a\ufffdb\u003c\u0026\u003e"` {
		t.Errorf("got %s", b)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil || s != "a\uFFFDb<&>" {
		t.Errorf("decode: %q %v", s, err)
	}
}
