package blocks

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/logtail"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// classify is the rule set serve injects. Only this test imports logtail:
// the blocks package itself does not (ARCHITECTURE.md import rules).
var classify Classifier = logtail.Classify

type wantRcpt struct {
	addr  string
	class event.Class
}

func TestParseDSNCorpus(t *testing.T) {
	cases := []struct {
		file      string
		standard  bool
		messageID string
		want      []wantRcpt
	}{
		// Written by a real Postfix (TestCaptureDSN).
		{"postfix-local-unknown-user.eml", true, "<1795777673067931944.1@client.posthorn.test>", []wantRcpt{{"nosuchuser@local.test", event.ClassUnknownUser}}},
		{"postfix-rcpt-5xx.eml", true, "<1795777673368678374.2@client.posthorn.test>", []wantRcpt{{"User.Name@rcpt5xx.test", event.ClassUnknownUser}}},
		{"postfix-data-5xx.eml", true, "<1795777673513477801.3@client.posthorn.test>", []wantRcpt{{"user@data5xx.test", event.ClassPolicy}}},
		{"postfix-expired.eml", true, "<1795777673840338370.4@client.posthorn.test>", []wantRcpt{{"user@defer.test", event.ClassTimeout}}},
		{"postfix-two-recipients.eml", true, "<1795777682165068999.5@client.posthorn.test>", []wantRcpt{{"a@rcpt5xx.test", event.ClassUnknownUser}, {"b@rcpt5xx.test", event.ClassUnknownUser}}},
		// Hand-written after the providers' formats.
		{"gmail-text.eml", false, "<news-20261127-0001@posthorn.test>", []wantRcpt{{"Taro.Yamada@gmail.com", event.ClassUnknownUser}}},
		{"gmail-report-quota.eml", true, "<news-20261127-0002@posthorn.test>", []wantRcpt{{"Hanako@example.jp", event.ClassOverCapacity}}},
		{"exchange-text.eml", false, "<report-202611@posthorn.test>", []wantRcpt{{"JDoe@contoso.example", event.ClassUnknownUser}}},
		{"outlook-policy.eml", false, "", []wantRcpt{{"someone@outlook.example", event.ClassPolicy}}},
		{"yahoo-text.eml", false, "<news-20261127-0003@posthorn.test>", []wantRcpt{{"Ichiro.Suzuki@yahoo.co.jp", event.ClassUnknownUser}}},
		{"qmail-full.eml", false, "<news-20261127-0004@posthorn.test>", []wantRcpt{{"full@example.net", event.ClassOverCapacity}, {"gone@example.net", event.ClassUnknownUser}}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", "dsn", c.file)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rep, err := ParseDSN(f)
			if err != nil {
				t.Fatalf("ParseDSN: %v", err)
			}
			if rep.Standard != c.standard {
				t.Errorf("Standard = %v, want %v", rep.Standard, c.standard)
			}
			if rep.MessageID != c.messageID {
				t.Errorf("MessageID = %q, want %q", rep.MessageID, c.messageID)
			}
			var got []wantRcpt
			for _, r := range rep.Recipients {
				if !r.Failed() {
					t.Errorf("recipient %s: action %q, want failed", r.Address, r.Action)
				}
				got = append(got, wantRcpt{r.Address, r.Class(classify)})
			}
			if len(got) != len(c.want) {
				t.Fatalf("recipients = %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("recipient %d = %v, want %v (status %q, diagnostic %q)", i, got[i], c.want[i], rep.Recipients[i].Status, rep.Recipients[i].Diagnostic)
				}
			}
			golden(t, strings.TrimSuffix(path, ".eml")+".golden.json", rep)
		})
	}
}

// golden compares v's indented JSON with a file, or rewrites it with -update.
func golden(t *testing.T, path string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestParseDSNRefuses(t *testing.T) {
	f, err := os.ReadFile(filepath.Join("testdata", "dsn", "not-bounce.eml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"plain message":   string(f),
		"empty":           "",
		"no header end":   "Subject: x",
		"report, no rcpt": "Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n--b--\n",
		"bad boundary":    "Content-Type: multipart/report; boundary=\"\"\n\nhello\n",
	} {
		t.Run(name, func(t *testing.T) {
			rep, err := ParseDSN(strings.NewReader(in))
			if err == nil {
				t.Fatalf("ParseDSN = %+v, want an error", rep)
			}
			if name == "plain message" && !errors.Is(err, ErrNotBounce) {
				t.Errorf("err = %v, want ErrNotBounce", err)
			}
		})
	}
}

func TestParseDSNStatusFields(t *testing.T) {
	// Field-level rules of RFC 3464 §2.3 on a minimal report.
	const head = "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
	cases := []struct {
		name, fields string
		want         Recipient
	}{
		{"original wins", "Final-Recipient: rfc822; final@Example.ORG\nOriginal-Recipient: rfc822; orig@Example.ORG\nAction: Failed\nStatus: 5.1.1\n",
			Recipient{Address: "orig@example.org", Action: "failed", Status: "5.1.1"}},
		{"xtext original", "Final-Recipient: rfc822; x@example.org\nOriginal-Recipient: rfc822; a+2Bb@example.org\nAction: failed\nStatus: 5.1.1\n",
			Recipient{Address: "a+b@example.org", Action: "failed", Status: "5.1.1"}},
		{"non-rfc822 original", "Final-Recipient: rfc822; x@example.org\nOriginal-Recipient: x400; /c=jp/\nAction: failed\nStatus: 5.0.0 (other)\n",
			Recipient{Address: "x@example.org", Action: "failed", Status: "5.0.0"}},
		{"folded diagnostic", "Final-Recipient: rfc822;x@example.org\nAction: delayed\nStatus: 4.4.1\nDiagnostic-Code: smtp; 421 try\n   again later\n",
			Recipient{Address: "x@example.org", Action: "delayed", Status: "4.4.1", Diagnostic: "421 try again later"}},
		{"bad status", "Final-Recipient: rfc822;x@example.org\nAction: failed\nStatus: 5.1\n",
			Recipient{Address: "x@example.org", Action: "failed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := ParseDSN(strings.NewReader(head + c.fields + "\n--b--\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Recipients) != 1 || rep.Recipients[0] != c.want {
				t.Errorf("recipients = %+v, want %+v", rep.Recipients, c.want)
			}
		})
	}
}

func TestRecipientClass(t *testing.T) {
	cases := []struct {
		r    Recipient
		want event.Class
	}{
		{Recipient{Action: "failed", Status: "4.4.7", Diagnostic: "delivery time expired"}, event.ClassTimeout},
		{Recipient{Action: "failed", Status: "5.1.10", Diagnostic: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found"}, event.ClassUnknownUser},
		{Recipient{Action: "failed", Status: "5.1.10", Diagnostic: "556 5.1.10 recipient domain has null MX"}, event.ClassUnknownHost},
		{Recipient{Action: "failed", Status: "5.2.2", Diagnostic: ""}, event.ClassOverCapacity},
	}
	for _, c := range cases {
		if got := c.r.Class(classify); got != c.want {
			t.Errorf("%+v: class %d, want %d", c.r, got, c.want)
		}
	}
	if got := (Recipient{Action: "failed", Status: "5.1.1"}).Class(nil); got != event.ClassOther {
		t.Errorf("no classifier: %d, want 99", got)
	}
}

// FuzzParseDSN: any input gives a report or an error, never a panic, and a
// report always names normalised recipients.
//
//	go test ./blocks -run '^$' -fuzz FuzzParseDSN -fuzztime 60s
func FuzzParseDSN(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "dsn", "*.eml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n!!\n--x--"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ParseDSN(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(rep.Recipients) == 0 || len(rep.Recipients) > maxRcpts {
			t.Fatalf("%d recipients without an error", len(rep.Recipients))
		}
		for _, r := range rep.Recipients {
			if n, err := Normalize(r.Address); err != nil || n != r.Address {
				t.Fatalf("recipient %q is not normalised (%q, %v)", r.Address, n, err)
			}
			_ = r.Class(classify)
		}
	})
}
