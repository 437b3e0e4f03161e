package dispatcher

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zone names resolve even where the system lacks tzdata

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// at is 14:06:07 in Tokyo.
var at = time.Date(2026, 3, 14, 5, 6, 7, 123456000, time.UTC)

// fixtures holds events of every family with the characters that need
// escaping in JSON, in a form, or in HTML: quotes, <>, &, +, =, %, spaces,
// non-ASCII, a control character and invalid UTF-8.
var fixtures = map[string][]event.Event{
	settings.Deliveries: {
		{
			ID: "ev-1", Type: event.Queued, Time: at, Host: "mx1", QueueID: "4Q1Zk23Xyz",
			MessageID: "<20260314.abc@example.com>", ReturnPath: "bounce+id=42@example.com",
			To: "alice@example.net", SourceIP: "192.0.2.10", SenderIP: "should-not-appear",
			From: `"Shop & Co" <shop@example.com>`, Subject: "Ihre Bestellung über 100 € — ご注文", APIData: `{"order":"A-1"}`,
		},
		{
			ID: "ev-2", Type: event.Succeeded, Time: at.Add(time.Second), Host: "mx1", QueueID: "4Q1Zk23Xyz",
			MessageID: "<20260314.abc@example.com>", ReturnPath: "bounce+id=42@example.com",
			To: "alice@example.net", Relay: "mx.example.net[198.51.100.7]:25", DSN: "2.0.0",
			Reason: "250 2.0.0 Ok: queued as 9F8E7D", Delay: "1.2", SenderIP: "198.51.100.7", SourceIP: "should-not-appear",
			Attempt: 1, From: `"Shop & Co" <shop@example.com>`, Subject: "Ihre Bestellung über 100 € — ご注文", APIData: `{"order":"A-1"}`,
		},
		{
			ID: "ev-3", Type: event.Deferred, Time: at.Add(2 * time.Second), Host: "mx1", QueueID: "4Q1Zk23Abc",
			MessageID: "<x%y@example.com>", ReturnPath: "", To: "bob@example.org", OrigTo: "Bob.Alias@example.org",
			Relay: "mx.example.org[203.0.113.9]:25", DSN: "4.2.0",
			Reason: "host mx.example.org[203.0.113.9] said: 450 4.2.0 <bob@example.org>: Recipient address rejected: Greylisted\tretry",
			Delay:  "300", SenderIP: "203.0.113.9", Attempt: 2,
		},
		{
			ID: "ev-4", Type: event.Failed, Time: at.Add(3 * time.Second), Host: "mx2", QueueID: "4Q1Zk23Def",
			MessageID: "<bad\xffutf8@example.com>", ReturnPath: "a=b&c@example.com", To: "nobody@example.com",
			Relay: "mx.example.com[2001:db8::25]:25", DSN: "5.1.1",
			Reason: `host mx.example.com[2001:db8::25] said: 550 5.1.1 "nobody": user unknown`, Delay: "0.5",
			SenderIP: "2001:db8::25", Attempt: 1,
		},
	},
	settings.Bounces: {
		{
			ID: "ev-5", Type: event.Bounced, Time: at.Add(3 * time.Second), Host: "mx2", QueueID: "4Q1Zk23Def",
			MessageID: "<bad\xffutf8@example.com>", ReturnPath: "a=b&c@example.com", To: "nobody@example.com",
			Relay: "mx.example.com[2001:db8::25]:25", DSN: "5.1.1",
			Reason: `host mx.example.com[2001:db8::25] said: 550 5.1.1 "nobody": user unknown`, Delay: "0.5",
			Class: event.ClassUnknownUser, Attempt: 1, Subject: "Hello\nworld",
		},
		{
			ID: "ev-6", Type: event.Bounced, Time: at.Add(4 * time.Second), Host: "mx1", QueueID: "4Q1Zk23Ghi",
			MessageID: "<m6@example.com>", ReturnPath: "shop@example.com", To: "carol@example.com",
			Reason: "message expired", // no class: sent as 99, other
		},
	},
	settings.Blocks: {
		{ID: "ev-7", Type: event.Registered, Time: at.Add(5 * time.Second), Host: "mx2", To: "nobody@example.com", Class: event.ClassUnknownUser},
		{ID: "ev-8", Type: event.Deleted, Time: at.Add(6 * time.Second), Host: "mx2", To: "nobody@example.com"},
	},
}

type combo struct {
	version int
	json    bool
}

func (c combo) name() string {
	if c.json {
		return fmt.Sprintf("v%d-json", c.version)
	}
	return fmt.Sprintf("v%d-form", c.version)
}

// combos are the version × encoding pairs that exist (WIRE.md §2).
var combos = []combo{{1, false}, {2, false}, {2, true}, {3, true}}

func goldenSettings(c combo) settings.EventWebhook {
	s := settings.Default()
	s.Endpoint = "https://hooks.example.com/"
	s.Version, s.JSON = c.version, c.json
	s.Timezone = "Asia/Tokyo"
	s.APIKey = "key+/=&?"
	return s
}

func goldenPath(c combo, family string) string {
	ext := ".form"
	if c.json {
		ext = ".json"
	}
	return filepath.Join("testdata", "payloads", c.name()+"-"+family+ext)
}

// TestEncodeGolden checks every version × encoding × family against its
// golden file, and that encoding is deterministic (a frozen batch must be
// the same bytes when formed again).
func TestEncodeGolden(t *testing.T) {
	for _, c := range combos {
		for _, fam := range families {
			if fam == settings.Blocks && c.version == 1 {
				continue
			}
			t.Run(c.name()+"-"+fam, func(t *testing.T) {
				s := goldenSettings(c)
				ct, body, err := Encode(s, "mail.example.com", fam, fixtures[fam])
				if err != nil {
					t.Fatal(err)
				}
				wantCT := ContentTypeForm
				if c.json {
					wantCT = ContentTypeJSON
				}
				if ct != wantCT {
					t.Errorf("content type %q, want %q", ct, wantCT)
				}
				for range 3 {
					_, again, _ := Encode(s, "mail.example.com", fam, fixtures[fam])
					if !bytes.Equal(again, body) {
						t.Fatalf("encoding twice gave different bytes:\n%s\n%s", body, again)
					}
				}
				path := goldenPath(c, fam)
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, body, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(body, want) {
					t.Errorf("body differs from %s (go test -update rewrites it):\ngot  %s\nwant %s", path, body, want)
				}
			})
		}
	}
}

// The record keys of each version and family (WIRE.md §2), in wire order.
var (
	v1DeliveryKeys = []string{"created", "envelopeFrom", "envelopeTo", "messageId", "reason", "senderIp", "sourceIp", "status", "subject"}
	v2DeliveryKeys = []string{"created", "returnPath", "from", "to", "messageId", "reason", "senderIp", "sourceIp", "status", "subject", "apiData"}
	v1BounceKeys   = []string{"created", "envelopeFrom", "envelopeTo", "messageId", "subject", "reason", "status"}
	v2BounceKeys   = []string{"created", "returnPath", "from", "to", "messageId", "subject", "apiData", "reason", "status"}
	v2BlockKeys    = []string{"created", "email", "status", "reason", "apiData"}
	v3Extra        = []string{"id", "time", "host", "queueId", "relay", "dsn", "delay", "attempt"}
)

func wantKeys(version int, family string) []string {
	var keys []string
	switch {
	case version == 1 && family == settings.Deliveries:
		return v1DeliveryKeys
	case version == 1:
		return v1BounceKeys
	case family == settings.Deliveries:
		keys = v2DeliveryKeys
	case family == settings.Bounces:
		keys = v2BounceKeys
	default:
		keys = v2BlockKeys
	}
	if version == 3 {
		keys = append(slices.Clone(v3Extra), keys...)
		if family == settings.Bounces {
			keys = append(keys, "class")
		}
	}
	return keys
}

// receiverBody is how a receiver written for the hosted service reads a
// post: a form whose `event` field is a JSON string, or a JSON object whose
// `event` is nested. Records decode into map[string]string, which fails if
// any value is not a string.
type receiverBody struct {
	APIKey            string                         `json:"api_key"`
	ServerComposition string                         `json:"server_composition"`
	EventType         string                         `json:"event_type"`
	Event             map[string][]map[string]string `json:"event"`
}

func decodeLikeReceiver(contentType string, body []byte) (receiverBody, error) {
	var rb receiverBody
	switch contentType {
	case ContentTypeForm:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return rb, err
		}
		for k, v := range form {
			if len(v) != 1 {
				return rb, fmt.Errorf("field %s given %d times", k, len(v))
			}
		}
		rb.APIKey, rb.ServerComposition, rb.EventType = form.Get("api_key"), form.Get("server_composition"), form.Get("event_type")
		if err := json.Unmarshal([]byte(form.Get("event")), &rb.Event); err != nil {
			return rb, fmt.Errorf("event field: %w", err)
		}
		delete(form, "api_key")
		delete(form, "server_composition")
		delete(form, "event_type")
		delete(form, "event")
		if len(form) > 0 {
			return rb, fmt.Errorf("unknown form fields %v", form)
		}
	case ContentTypeJSON:
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields() // strict receivers reject unknown keys
		if err := dec.Decode(&rb); err != nil {
			return rb, err
		}
	default:
		return rb, fmt.Errorf("content type %q", contentType)
	}
	return rb, nil
}

// TestGoldenDecodesLikeReceiver reads the golden files back the way the
// hosted service's documented receivers do and checks the fields.
func TestGoldenDecodesLikeReceiver(t *testing.T) {
	for _, c := range combos {
		for _, fam := range families {
			if fam == settings.Blocks && c.version == 1 {
				continue
			}
			t.Run(c.name()+"-"+fam, func(t *testing.T) {
				body, err := os.ReadFile(goldenPath(c, fam))
				if err != nil {
					t.Fatal(err)
				}
				ct := ContentTypeForm
				if c.json {
					ct = ContentTypeJSON
				}
				rb, err := decodeLikeReceiver(ct, body)
				if err != nil {
					t.Fatalf("a receiver cannot read it: %v", err)
				}
				if rb.APIKey != "key+/=&?" || rb.ServerComposition != "mail.example.com" || rb.EventType != fam {
					t.Errorf("parameters: %+v", rb)
				}
				if len(rb.Event) != 1 {
					t.Fatalf("event has %d keys, want one named %s", len(rb.Event), fam)
				}
				recs := rb.Event[fam]
				if len(recs) != len(fixtures[fam]) {
					t.Fatalf("%d records, want %d", len(recs), len(fixtures[fam]))
				}
				// Key order, as written: decode the first record's keys in order.
				if got, want := firstRecordKeys(t, ct, body, fam), wantKeys(c.version, fam); !slices.Equal(got, want) {
					t.Errorf("record keys\n got %v\nwant %v", got, want)
				}
				for i, r := range recs {
					checkRecord(t, c.version, fixtures[fam][i], r)
				}
			})
		}
	}
}

// firstRecordKeys returns the keys of the first record in body order.
func firstRecordKeys(t *testing.T, ct string, body []byte, fam string) []string {
	t.Helper()
	js := body
	if ct == ContentTypeForm {
		form, _ := url.ParseQuery(string(body))
		js = []byte(form.Get("event"))
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	var keys []string
	depth := 0
	inRecord := false
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("read keys: %v", err)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				depth++
			default:
				depth--
				if inRecord {
					return keys
				}
			}
			if v == '{' && depth == 4 && ct == ContentTypeJSON || v == '{' && depth == 3 && ct == ContentTypeForm {
				inRecord = true
			}
		case string:
			if inRecord {
				keys = append(keys, v)
				if _, err := dec.Token(); err != nil { // the value
					t.Fatal(err)
				}
			}
		}
	}
}

func checkRecord(t *testing.T, version int, e event.Event, r map[string]string) {
	t.Helper()
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	want := map[string]string{"created": e.Time.In(tokyo).Format("2006-01-02 15:04:05")}
	if !strings.HasPrefix(want["created"], "2026-03-14 14:06:") {
		t.Fatalf("fixture time %v is not 14:06 in Tokyo", e.Time)
	}
	switch e.Type.Family() {
	case settings.Deliveries:
		want["messageId"] = strings.ToValidUTF8(e.MessageID, "\uFFFD")
		want["reason"] = e.Reason
		want["status"] = string(e.Type)
		want["subject"] = e.Subject
		want["senderIp"], want["sourceIp"] = "", ""
		if e.Type == event.Queued {
			want["sourceIp"] = e.SourceIP
		} else {
			want["senderIp"] = e.SenderIP
		}
	case settings.Bounces:
		want["messageId"] = strings.ToValidUTF8(e.MessageID, "\uFFFD")
		want["reason"] = e.Reason
		want["subject"] = e.Subject
		want["status"] = "2"
		if e.Class == event.ClassNone {
			want["status"] = "99"
		}
	case settings.Blocks:
		want["email"] = e.To
		want["status"] = string(e.Type)
		want["reason"] = "manual"
		if e.Class != event.ClassNone {
			want["reason"] = e.Class.String()
		}
	}
	if e.Type.Family() != settings.Blocks {
		if version == 1 {
			want["envelopeFrom"], want["envelopeTo"] = e.ReturnPath, e.Recipient()
		} else {
			want["returnPath"], want["to"], want["from"] = e.ReturnPath, e.Recipient(), e.From
		}
	}
	if version >= 2 {
		want["apiData"] = e.APIData
	}
	if version == 3 {
		want["id"], want["host"], want["queueId"] = e.ID, e.Host, e.QueueID
		want["relay"], want["dsn"], want["delay"] = e.Relay, e.DSN, e.Delay
		want["time"] = e.Time.In(tokyo).Format(time.RFC3339Nano)
		want["attempt"] = ""
		if e.Attempt > 0 {
			want["attempt"] = fmt.Sprint(e.Attempt)
		}
		if e.Type == event.Bounced {
			want["class"] = map[string]string{"2": "unknown-user", "99": "other"}[want["status"]]
		}
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s %s = %q, want %q", e.ID, k, r[k], v)
		}
	}
	for k := range r {
		if _, ok := want[k]; !ok {
			t.Errorf("%s has unexpected key %s", e.ID, k)
		}
	}
}

func TestEncodeOptions(t *testing.T) {
	s := goldenSettings(combo{2, true})
	evs := fixtures[settings.Deliveries][:1]

	t.Run("bearer keeps the key out of the body", func(t *testing.T) {
		s := s
		s.APIKeyBearer = true
		for _, js := range []bool{true, false} {
			s.JSON = js
			_, body, err := Encode(s, "h", settings.Deliveries, evs)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(body, []byte("api_key")) {
				t.Errorf("json=%v: api_key in the body with Bearer: %s", js, body)
			}
		}
	})
	t.Run("no key, no api_key", func(t *testing.T) {
		s := s
		s.APIKey = ""
		_, body, _ := Encode(s, "h", settings.Deliveries, evs)
		if bytes.Contains(body, []byte("api_key")) {
			t.Errorf("api_key without a key: %s", body)
		}
	})
	t.Run("created follows the zone", func(t *testing.T) {
		s := s
		for zone, want := range map[string]string{"UTC": "2026-03-14 05:06:07", "America/New_York": "2026-03-14 01:06:07"} {
			s.Timezone = zone
			_, body, _ := Encode(s, "h", settings.Deliveries, evs)
			if !bytes.Contains(body, []byte(`"created":"`+want+`"`)) {
				t.Errorf("%s: want created %s in %s", zone, want, body)
			}
		}
	})
	t.Run("html characters escaped", func(t *testing.T) {
		_, body, _ := Encode(s, "h", settings.Deliveries, evs)
		if bytes.ContainsAny(body, "<>") {
			t.Errorf("raw < or > in %s", body)
		}
	})

	errs := []struct {
		name   string
		change func(*settings.EventWebhook)
		family string
		evs    []event.Event
		want   string
	}{
		{"no events", nil, settings.Deliveries, nil, "encode batch: no events"},
		{"version 1 json", func(s *settings.EventWebhook) { s.Version = 1 }, settings.Deliveries, evs, "encode batch: version 1 has no JSON format"},
		{"version 3 form", func(s *settings.EventWebhook) { s.Version, s.JSON = 3, false }, settings.Deliveries, evs, "encode batch: version 3 is JSON only"},
		{"version 4", func(s *settings.EventWebhook) { s.Version = 4 }, settings.Deliveries, evs, "encode batch: unknown version 4"},
		{"version 1 blocks", func(s *settings.EventWebhook) { s.Version, s.JSON = 1, false }, settings.Blocks, fixtures[settings.Blocks], "encode batch: version 1 has no blocks records"},
		{"unknown family", nil, "opens", evs, `encode batch: unknown event type "opens"`},
		{"wrong family", nil, settings.Bounces, evs, `encode batch: event ev-1 of type "queued" is not a bounces record`},
		{"bad zone", func(s *settings.EventWebhook) { s.Timezone = "Nowhere/City" }, settings.Deliveries, evs, `encode batch: load time zone "Nowhere/City": unknown time zone Nowhere/City`},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			s := s
			if tc.change != nil {
				tc.change(&s)
			}
			_, _, err := Encode(s, "h", tc.family, tc.evs)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Encode error = %v, want %q", err, tc.want)
			}
		})
	}
}

// BenchmarkEncode measures the largest batch (10,000 events).
func BenchmarkEncode(b *testing.B) {
	for _, c := range combos {
		b.Run(c.name(), func(b *testing.B) {
			s := goldenSettings(c)
			evs := make([]event.Event, 10000)
			for i := range evs {
				evs[i] = fixtures[settings.Deliveries][i%4]
				evs[i].ID = fmt.Sprint("ev-", i)
			}
			b.ReportAllocs()
			var n int
			for b.Loop() {
				_, body, err := Encode(s, "mail.example.com", settings.Deliveries, evs)
				if err != nil {
					b.Fatal(err)
				}
				n = len(body)
			}
			b.ReportMetric(float64(n), "bytes/batch")
		})
	}
}
