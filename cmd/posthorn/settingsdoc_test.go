package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/settings"
)

// settingsDocCases are refused settings documents; their messages are in
// testdata/settings-import-errors.golden (go test -run
// TestSettingsDocErrors -update rewrites it). Each message must give the
// file and line, the field's full name and what is allowed.
var settingsDocCases = []struct{ name, doc string }{
	{"interval not a number", `# settings
event_webhook:
  endpoint: https://hook.example.com/events
  deliveries: true
  interval: "abc"
`},
	{"every event webhook field of the wrong kind", `event_webhook:
  endpoint: [https://hook.example.com/]
  bounces: yes please
  deliveries: 1
  blocks: ~
  version: two
  timezone: {zone: UTC}
  json: "true"
  basic_user: [a]
  basic_password: [SECRET-PASSWORD]
  api_key: {k: SECRET-KEY}
  api_key_bearer: 0
  interval: 1.5
  max_events: 1e3
  timeout: 99999999999
  retry_period: abc
  signing_secret: [SECRET-SIGNING]
  ca_file: [a, b]
`},
	{"out of range", `event_webhook:
  endpoint: https://hook.example.com/
  deliveries: true
  version: 4
  interval: 601
  max_events: 99
  timeout: 0
  retry_period: 59m
`},
	{"rules between fields", `event_webhook:
  endpoint: http://hook.example.com/
  blocks: true
  version: 1
  json: true
  basic_user: mailer
  api_key_bearer: true
`},
	{"endpoint required when posting", `event_webhook:
  bounces: true
`},
	{"unknown and repeated keys", `event_webhook:
  endpoint: https://hook.example.com/
  intervall: 5
  frobnicate: 1
  endpoint: https://other.example.com/
inbound:
  domain: [shop.example]
eventwebhook: {}
`},
	{"event_webhook not a map", "event_webhook: 5\n"},
	{"inbound not a map", "inbound: [a, b]\n"},
	{"not a map", "- event_webhook\n"},
	{"empty", ""},
	{"comments only", "# nothing\n"},
	{"no known map", "endpoint: https://x.example/\n"},
	{"not yaml", "event_webhook:\n  endpoint: https://x.example/\n  deliveries: [\n"},
	{"two documents", "event_webhook: {}\n---\ninbound: {}\n"},
	{"inbound fields", `inbound:
  domains: [shop.example, "bad domain", shop.example, [x]]
  log_denied: sometimes
  filters:
    - name: orders
      endpoint: https://hooks.example.com/orders
      conditions:
        - {header: To, pattern: "(x"}
        - {header: "Bad Header", pattern: ""}
        - {header: Subject, patern: x}
        - just text
      retry_interval: "often"
      retry_period: 11d
      timeout: 1000
      json: maybe
    - name: Orders
      conditions: []
      basic_password: SECRET-PASSWORD
    - 5
    - name: http
      endpoint: http://hooks.example.com/
      conditions: [{header: To, pattern: x}]
`},
}

func TestSettingsDocErrors(t *testing.T) {
	var b strings.Builder
	for _, c := range settingsDocCases {
		doc, probs := parseSettingsDoc([]byte(c.doc), false)
		if probs == nil {
			t.Errorf("%s: accepted: %+v", c.name, doc)
			continue
		}
		out := probs.Format("t/ml.yaml")
		if strings.Contains(out, "SECRET") {
			t.Errorf("%s: a secret is quoted back:\n%s", c.name, out)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if !strings.HasPrefix(line, "t/ml.yaml:") {
				t.Errorf("%s: %q does not name the file", c.name, line)
			}
		}
		b.WriteString("== " + c.name + "\n" + out)
	}
	golden := filepath.Join("testdata", "settings-import-errors.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("messages differ from %s (go test -run TestSettingsDocErrors -update):\n%s", golden, b.String())
	}
}

func TestSettingsDocValid(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		check     func(t *testing.T, d settingsDocument)
	}{
		{"empty event_webhook map is off", "event_webhook: {}\n", func(t *testing.T, d settingsDocument) {
			if d.EventWebhook == nil || *d.EventWebhook != settings.Default() || d.Inbound != nil {
				t.Errorf("got %v %v", d.EventWebhook, d.Inbound)
			}
		}},
		{"keys alone are their defaults", "event_webhook:\ninbound:\n", func(t *testing.T, d settingsDocument) {
			if d.EventWebhook == nil || *d.EventWebhook != settings.Default() || d.Inbound == nil || len(d.Inbound.Filters) != 0 {
				t.Errorf("got %v %v", d.EventWebhook, d.Inbound)
			}
		}},
		{"values as YAML writes them", `event_webhook:
  endpoint: https://hook.example.com/?token=t
  deliveries: True
  max_events: 1_000
  retry_period: 3600
  basic_user: 1234
  basic_password: 5678
  timezone: Asia/Tokyo
anchors: &x 1
`, nil},
		{"inbound defaults and normalizing", `inbound:
  domains: [Shop.Example, bücher.example]
  filters:
    - name: f
      endpoint: https://h.example/
      conditions: [{header: to, pattern: ^a@}]
`, func(t *testing.T, d settingsDocument) {
			f := d.Inbound.Filters[0]
			if d.EventWebhook != nil || d.Inbound.Domains[0] != "shop.example" || d.Inbound.Domains[1] != "xn--bcher-kva.example" ||
				f.RetryInterval != settings.DefaultRetryInterval || f.Timeout != settings.DefaultInboundTimeout {
				t.Errorf("got %+v", d.Inbound)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, probs := parseSettingsDoc([]byte(c.doc), false)
			if c.name == "values as YAML writes them" {
				// anchors: is not a settings key.
				if len(probs) != 1 || probs[0].Path != "anchors" || probs[0].Line != 9 {
					t.Fatalf("problems %v", probs)
				}
				ew := d.EventWebhook
				if !ew.Deliveries || ew.MaxEvents != 1000 || ew.RetryPeriod.String() != "1h" || ew.BasicUser != "1234" || ew.BasicPassword != "5678" {
					t.Errorf("got %v", ew)
				}
				return
			}
			if probs != nil {
				t.Fatalf("refused:\n%s", probs.Format("x"))
			}
			c.check(t, d)
		})
	}
}

// A new installation's export imports back, and exports the same again
// (export → import → export is the identity, byte for byte).
func TestSettingsRoundTripFresh(t *testing.T) {
	cfg, _ := webhookConfig(t)
	code, first, errs := runCmd(t, "settings", "export", "-", "--config", cfg)
	if code != exitOK || !strings.Contains(first, `endpoint: ""`) || !strings.Contains(first, "the Event Webhook is off") {
		t.Fatalf("fresh export: %d %s\n%s", code, errs, first)
	}
	code, out, errs := runCmd(t, "settings", "import", writeFile(t, "fresh.yaml", []byte(first)), "--config", cfg)
	if code != exitOK || !strings.Contains(out, "imported event webhook off") {
		t.Fatalf("import of the fresh export: %d %q %q", code, out, errs)
	}
	if _, second, _ := runCmd(t, "settings", "export", "-", "--config", cfg); second != first {
		t.Errorf("export after import differs:\n%s\n---\n%s", second, first)
	}
	// test-webhook has nothing to post to.
	if code, _, errs := runCmd(t, "test-webhook", "--config", cfg); code != exitConfig || !strings.Contains(errs, "no endpoint") {
		t.Errorf("test-webhook with the webhook off: %d %q", code, errs)
	}
}

// An import whose second part is refused saves nothing, the first part
// included.
func TestSettingsImportAllOrNothing(t *testing.T) {
	cfg, _ := inboundConfig(t, "")
	if code, _, errs := runCmd(t, "settings", "import", writeFile(t, "in.yaml", []byte(goodSettings+inboundSettingsDoc)), "--config", cfg); code != exitOK {
		t.Fatalf("import: %s", errs)
	}
	_, before, _ := runCmd(t, "settings", "export", "-", "--config", cfg)
	changed := strings.Replace(goodSettings, "interval: 10", "interval: 20", 1) +
		strings.Replace(inboundSettingsDoc, "retry_interval: 120", "retry_interval: 5", 1)
	code, out, errs := runCmd(t, "settings", "import", writeFile(t, "bad.yaml", []byte(changed)), "--config", cfg)
	if code != exitConfig || out != "" || !strings.Contains(errs, "inbound.filters[0].retry_interval: must be between 10 and 600 seconds, got 5") ||
		!strings.Contains(errs, "nothing imported (1 problem)") {
		t.Errorf("import: %d %q %q", code, out, errs)
	}
	if _, after, _ := runCmd(t, "settings", "export", "-", "--config", cfg); after != before {
		t.Errorf("a refused import changed the settings:\n%s", after)
	}
}

// With allow_insecure_http an http:// endpoint is saved, with a warning
// naming the field and its line.
func TestSettingsImportPlainHTTPWarning(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "posthorn.toml")
	conf := "hostname = \"mx1\"\nallow_insecure_http = true\n[store]\npath = \"" + filepath.Join(dir, "db") + "\"\n[maillog]\npath = \"" + filepath.Join(dir, "mail.log") + "\"\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(goodSettings, "https://hook.example.com/events?token=t", "http://127.0.0.1:8080/events?token=t", 1) +
		strings.Replace(inboundSettingsDoc, "https://hooks.example.com/support", "http://127.0.0.1:8080/support", 1)
	f := writeFile(t, "dev.yaml", []byte(doc))
	code, out, errs := runCmd(t, "settings", "import", f, "--config", cfg)
	if code != exitOK || strings.Contains(out+errs, "token=t") {
		t.Fatalf("import: %d %q %q", code, out, errs)
	}
	for _, want := range []string{
		"warning: " + f + ":2: event_webhook.endpoint is a plain http:// URL",
		"warning: " + f + ":31: inbound.filters[1].endpoint is a plain http:// URL",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	for _, only := range []string{"--config-only", "--config-only=false"} {
		if code, _, errs := runCmd(t, "check-config", only, "--config", cfg); code != exitOK || !strings.Contains(errs, "warning: allow_insecure_http = true: ") {
			t.Errorf("check-config %s: %d %q", only, code, errs)
		}
	}
}

// FuzzSettingsDoc: any document gets problems or settings, never a panic,
// and a document accepted is valid.
func FuzzSettingsDoc(f *testing.F) {
	for _, c := range settingsDocCases {
		f.Add(c.doc)
	}
	f.Add(goodSettings + inboundSettingsDoc)
	f.Add("a: &a [*a]\nevent_webhook: *a\n")
	f.Fuzz(func(t *testing.T, doc string) {
		d, probs := parseSettingsDoc([]byte(doc), false)
		if probs != nil {
			return
		}
		if d.EventWebhook == nil && d.Inbound == nil {
			t.Fatal("accepted a document with no settings")
		}
		if d.EventWebhook != nil {
			if err := d.EventWebhook.Validate(false); err != nil {
				t.Fatalf("accepted invalid settings: %v", err)
			}
		}
		if d.Inbound != nil {
			if err := d.Inbound.Validate(false); err != nil {
				t.Fatalf("accepted invalid inbound settings: %v", err)
			}
		}
	})
}
