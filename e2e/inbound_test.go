package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"

	"github.com/posthorn/posthorn/e2e/postfixtest"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
)

// inboundReceiver is the HTTPS endpoint of the inbound filters: it records
// every POST, and answers with the status set for its path (200 unset).
type inboundReceiver struct {
	srv    *httptest.Server
	caFile string
	mu     sync.Mutex
	status map[string]int
	posts  []inboundPost
}

type inboundPost struct {
	path   string
	header http.Header
	body   []byte
}

func startInboundReceiver(t testing.TB) *inboundReceiver {
	r := &inboundReceiver{status: map[string]int{}}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(500)
			return
		}
		r.mu.Lock()
		code := r.status[req.URL.Path]
		if code == 0 || code == 200 {
			// Only the POSTs answered 2xx count as delivered.
			r.posts = append(r.posts, inboundPost{req.URL.Path, req.Header.Clone(), body})
		}
		r.mu.Unlock()
		if code == 0 {
			code = 200
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	dir := t.TempDir()
	r.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(r.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *inboundReceiver) set(path string, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[path] = code
}

func (r *inboundReceiver) received(path string) []inboundPost {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []inboundPost
	for _, p := range r.posts {
		if p.path == path {
			out = append(out, p)
		}
	}
	return out
}

const (
	jaSubject = "ご注文ありがとうございます"
	jaBody    = "こんにちは、世界。\n請求書を添付します。\n"
	jaFile1   = "請求書.pdf"
	jaFile2   = "見積書 (2026).xlsx"
)

var (
	attach1 = append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff, '\r', '\n'}, 3000)...)
	attach2 = append([]byte("PK\x03\x04"), bytes.Repeat([]byte("セル"), 5000)...)
)

func encodeJa(t *testing.T, enc encoding.Encoding, s string) string {
	t.Helper()
	out, err := enc.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64Lines(data []byte) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s + "\r\n"
}

// japaneseMessage is a multipart/mixed message in a Japanese legacy
// charset: the Subject and the attachment names as RFC 2047 words (the
// first name also as RFC 2231), the text part in the charset itself.
func japaneseMessage(t *testing.T, charset string, enc encoding.Encoding, to string) string {
	word := func(s string) string {
		return "=?" + charset + "?B?" + base64.StdEncoding.EncodeToString([]byte(encodeJa(t, enc, s))) + "?="
	}
	cte, body := "7bit", encodeJa(t, enc, jaBody)
	if charset != "ISO-2022-JP" {
		cte, body = "base64", b64Lines([]byte(body))
	}
	msg := "From: " + word("山田太郎") + " <taro@customer.test>\n" +
		"To: " + to + "\n" +
		"Subject: " + word(jaSubject) + "\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=\"=_b1\"\n\n" +
		"--=_b1\n" +
		"Content-Type: text/plain; charset=" + charset + "\n" +
		"Content-Transfer-Encoding: " + cte + "\n\n" +
		body + "\n" +
		"--=_b1\n" +
		"Content-Type: application/pdf\n" +
		"Content-Disposition: attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf\n" +
		"Content-Transfer-Encoding: base64\n\n" +
		b64Lines(attach1) +
		"--=_b1\n" +
		"Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; name=\"" + word(jaFile2) + "\"\n" +
		"Content-Disposition: attachment; filename=\"" + word(jaFile2) + "\"\n" +
		"Content-Transfer-Encoding: base64\n\n" +
		b64Lines(attach2) +
		"--=_b1--\n"
	return strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")
}

func inboundSettingsYAML(recv *inboundReceiver) string {
	return fmt.Sprintf(`inbound:
  domains: [shop.test]
  log_denied: true
  filters:
    - name: orders
      endpoint: %[1]s/orders
      ca_file: %[2]s
      basic_user: hook
      basic_password: hook-pass
      api_key: key-orders
      conditions:
        - {header: To, pattern: '^orders@shop\.test$'}
    - name: json
      endpoint: %[1]s/json
      ca_file: %[2]s
      json: true
      api_key: token-json
      api_key_bearer: true
      conditions:
        - {header: To, pattern: '^json@shop\.test$'}
    - name: invoices
      endpoint: %[1]s/invoices
      ca_file: %[2]s
      conditions:
        - {header: To, pattern: '^billing@shop\.test$'}
        - {header: Subject, pattern: '(?i)invoice'}
    - name: flaky
      endpoint: %[1]s/flaky
      ca_file: %[2]s
      retry_interval: 10
      conditions:
        - {header: to, pattern: '^flaky@shop\.test$'}
`, recv.srv.URL, recv.caFile)
}

// inboundLog reads the inbound log of the store at db.
func inboundLog(t *testing.T, db string) []event.InboundLogEntry {
	t.Helper()
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	rows, err := st.InboundLog(context.Background(), event.InboundQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func logRowsFor(rows []event.InboundLogEntry, rcpt string) []event.InboundLogEntry {
	var out []event.InboundLogEntry
	for _, r := range rows {
		if r.To == rcpt {
			out = append(out, r)
		}
	}
	return out
}

func writeEML(t *testing.T, dir, name, msg string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	return "@" + p
}

// waitDial waits until something accepts TCP connections at addr.
func waitDial(t *testing.T, d *daemon, addr string) {
	t.Helper()
	waitFor(t, d, 30*time.Second, "the milter to listen on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// TestInboundWebhookFromRealPostfix runs a private Postfix whose smtpd
// consults `posthorn serve`'s milter, and a second smtpd (a submission
// service) that consults its outbound role, against an HTTPS receiver.
func TestInboundWebhookFromRealPostfix(t *testing.T) {
	recv := startInboundReceiver(t)
	inPort, outPort, subPort := freePort(t), freePort(t), freePort(t)
	inst := postfixtest.Start(t, postfixtest.Options{
		MainCF: []string{
			"milter_protocol = 6",
			"milter_default_action = tempfail",
			fmt.Sprintf("smtpd_milters = { inet:127.0.0.1:%d, default_action=tempfail }", inPort),
		},
		MasterCF: []string{
			fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n  -o smtpd_milters=inet:127.0.0.1:%d", subPort, outPort),
		},
	})
	dir := testDir(t)
	db := filepath.Join(dir, "posthorn.db")
	cfg := writeConfig(t, dir, inst.MaillogPath(), fmt.Sprintf("[milter]\ninbound = \"inet:127.0.0.1:%d\"\noutbound = \"inet:127.0.0.1:%d\"\nmetadata_header = \"X-Api-Data\"\n", inPort, outPort))
	settingsFile := filepath.Join(dir, "inbound.yaml")
	if err := os.WriteFile(settingsFile, []byte(inboundSettingsYAML(recv)), 0o600); err != nil {
		t.Fatal(err)
	}
	posthornCmd(t, 0, "settings", "import", settingsFile, "--config", cfg)
	d := startServe(t, cfg)
	waitDial(t, d, fmt.Sprintf("127.0.0.1:%d", inPort))
	waitDial(t, d, fmt.Sprintf("127.0.0.1:%d", outPort))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("multipart with Japanese text and two attachments", func(t *testing.T) {
		for i, src := range []struct {
			charset string
			enc     encoding.Encoding
		}{{"ISO-2022-JP", japanese.ISO2022JP}, {"Shift_JIS", japanese.ShiftJIS}} {
			sent := inst.Send(t, "sender@customer.test", []string{"orders@shop.test"},
				postfixtest.SwaksArgs("--data", writeEML(t, dir, src.charset+".eml", japaneseMessage(t, src.charset, src.enc, "orders@shop.test"))))
			// Discarded after capture: Postfix logs it and delivers nothing.
			inst.WaitLog(t, ctx, postfixtest.Contains(sent.QueueID+": milter-discard: END-OF-MESSAGE"))
			waitFor(t, d, time.Minute, "the post of the "+src.charset+" message", func() bool { return len(recv.received("/orders")) == i+1 })
			p := recv.received("/orders")[i]
			fields, files := parseForm(t, p)
			for k, want := range map[string]string{
				"filter": "orders", "subject": jaSubject, "text": jaBody, "attachments": "2", "api_key": "key-orders",
				"envelope-from": "sender@customer.test", "envelope-to": "orders@shop.test", "server_composition": "e2e",
			} {
				if fields[k] != want {
					t.Errorf("%s: field %s = %q, want %q", src.charset, k, fields[k], want)
				}
			}
			var hdrs []event.Header
			if err := json.Unmarshal([]byte(fields["headers"]), &hdrs); err != nil {
				t.Fatalf("headers field: %v", err)
			}
			got := map[string]string{}
			for _, h := range hdrs {
				got[h.Name] = h.Value
			}
			if got["Subject"] != jaSubject || got["From"] != "山田太郎 <taro@customer.test>" || got["Message-Id"] != "<"+sent.MessageID+">" {
				t.Errorf("%s: headers %v", src.charset, got)
			}
			for name, want := range map[string]struct {
				filename, ctype string
				data            []byte
			}{
				"attachment1": {jaFile1, "application/pdf", attach1},
				"attachment2": {jaFile2, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", attach2},
			} {
				f := files[name]
				if f.filename != want.filename || f.ctype != want.ctype || !bytes.Equal(f.data, want.data) {
					t.Errorf("%s: %s = %q %q %d bytes, want %q %q %d bytes", src.charset, name, f.filename, f.ctype, len(f.data),
						want.filename, want.ctype, len(want.data))
				}
			}
			if user, pass, ok := (&http.Request{Header: p.header}).BasicAuth(); !ok || user != "hook" || pass != "hook-pass" {
				t.Errorf("Basic auth %q %q %v", user, pass, ok)
			}
		}
		waitFor(t, d, time.Minute, "the log rows to say succeeded", func() bool {
			rows := logRowsFor(inboundLog(t, db), "orders@shop.test")
			return len(rows) == 2 && rows[0].Status == event.InboundSucceeded && rows[1].Status == event.InboundSucceeded
		})
		r := logRowsFor(inboundLog(t, db), "orders@shop.test")[0]
		if r.From != "山田太郎 <taro@customer.test>" || r.Filter != "orders" || r.Host != "e2e" || !strings.HasPrefix(r.MessageID, "<") {
			t.Errorf("log row %+v", r)
		}
	})

	t.Run("json without attachments", func(t *testing.T) {
		inst.Send(t, "sender@customer.test", []string{"json@shop.test"},
			postfixtest.SwaksArgs("--data", writeEML(t, dir, "json.eml", japaneseMessage(t, "ISO-2022-JP", japanese.ISO2022JP, "json@shop.test"))))
		waitFor(t, d, time.Minute, "the JSON post", func() bool { return len(recv.received("/json")) == 1 })
		p := recv.received("/json")[0]
		var obj map[string]any
		if err := json.Unmarshal(p.body, &obj); err != nil || p.header.Get("Content-Type") != "application/json" {
			t.Fatalf("JSON body %s: %v", p.body, err)
		}
		if obj["subject"] != jaSubject || obj["text"] != jaBody || obj["attachments"] != 2.0 || obj["envelope-to"] != "json@shop.test" ||
			obj["api_key"] != nil || p.header.Get("Authorization") != "Bearer token-json" {
			t.Errorf("JSON post %v, Authorization %q", obj, p.header.Get("Authorization"))
		}
		if bytes.Contains(p.body, []byte(base64.StdEncoding.EncodeToString(attach1[:30]))) || bytes.Contains(p.body, []byte("%PDF")) {
			t.Error("the JSON post carries attachment data")
		}
	})

	t.Run("unknown domain refused at RCPT for that recipient only", func(t *testing.T) {
		before := len(recv.received("/orders"))
		sent := inst.Send(t, "sender@customer.test", []string{"orders@shop.test", "root@other.test"}, postfixtest.Header("Subject", "two recipients"))
		if sent.QueueID == "" || !strings.Contains(sent.Output, `<** 550 5.7.1 <root@other.test>: recipient domain "other.test" not accepted here`) {
			t.Errorf("swaks:\n%s", sent.Output)
		}
		waitFor(t, d, time.Minute, "the post for the accepted recipient", func() bool { return len(recv.received("/orders")) == before+1 })
		fields, _ := parseForm(t, recv.received("/orders")[before])
		if fields["envelope-to"] != "orders@shop.test" || fields["subject"] != "two recipients" {
			t.Errorf("post fields %v", fields)
		}
		// log_denied is on: the refusal is in the log.
		rows := logRowsFor(inboundLog(t, db), "root@other.test")
		if len(rows) != 1 || rows[0].Status != event.InboundDenied || rows[0].Reason != "recipient domain not allowed" {
			t.Errorf("log rows %+v", rows)
		}
	})

	refused := func(t *testing.T, to []string, want string, opts ...postfixtest.SendOption) {
		t.Helper()
		sent := inst.Send(t, "sender@customer.test", to, append(opts, postfixtest.AllowFailure())...)
		if sent.Err == nil || sent.QueueID != "" || !strings.Contains(sent.Output, want) {
			t.Errorf("want a refusal %q, swaks said (%v):\n%s", want, sent.Err, sent.Output)
		}
	}
	t.Run("spam rule: header From in an allowed domain", func(t *testing.T) {
		refused(t, []string{"orders@shop.test"}, "550 5.7.1 Message refused: header From uses a domain of this server",
			postfixtest.Header("From", "Boss <boss@shop.test>"))
	})
	t.Run("spam rule: header From equals header To", func(t *testing.T) {
		refused(t, []string{"orders@shop.test"}, "550 5.7.1 Message refused: header From equals header To",
			postfixtest.Header("From", "me@customer.test"), postfixtest.Header("To", "Me <me@customer.test>"))
		rows := logRowsFor(inboundLog(t, db), "orders@shop.test")
		if last := rows[len(rows)-1]; last.Status != event.InboundDenied || last.Reason != "spam rule: header From equals header To" || last.From != "me@customer.test" {
			t.Errorf("log row %+v", last)
		}
	})
	t.Run("no matching filter", func(t *testing.T) {
		// No filter takes the address: refused at RCPT.
		refused(t, []string{"nobody@shop.test"}, "<** 550 5.7.1 <nobody@shop.test>: recipient address not accepted here")
		// A filter takes the address but not the subject: refused at the
		// end of the message.
		refused(t, []string{"billing@shop.test"}, "550 5.7.1 Message refused: no recipient of it is accepted here",
			postfixtest.Header("Subject", "hello"))
		inst.Send(t, "sender@customer.test", []string{"billing@shop.test"}, postfixtest.Header("Subject", "Your Invoice 42"))
		waitFor(t, d, time.Minute, "the invoice post", func() bool { return len(recv.received("/invoices")) == 1 })
	})

	t.Run("endpoint down then up", func(t *testing.T) {
		recv.set("/flaky", 503)
		inst.Send(t, "sender@customer.test", []string{"flaky@shop.test"}, postfixtest.Header("Subject", "retry me"))
		waitFor(t, d, time.Minute, "the post to be deferred", func() bool {
			rows := logRowsFor(inboundLog(t, db), "flaky@shop.test")
			return len(rows) == 1 && rows[0].Status == event.InboundDeferred
		})
		if r := logRowsFor(inboundLog(t, db), "flaky@shop.test")[0]; r.Reason != "HTTP 503 Service Unavailable" {
			t.Errorf("deferred reason %q", r.Reason)
		}
		recv.set("/flaky", 200)
		// retry_interval is 10 s: the next attempt succeeds.
		waitFor(t, d, time.Minute, "the post to succeed", func() bool {
			rows := logRowsFor(inboundLog(t, db), "flaky@shop.test")
			return len(rows) == 1 && rows[0].Status == event.InboundSucceeded
		})
		if n := len(recv.received("/flaky")); n != 1 {
			t.Errorf("%d successful posts", n)
		}
	})

	t.Run("outbound observation", func(t *testing.T) {
		msgID := fmt.Sprintf("obs.%d@customer.test", time.Now().UnixNano())
		out, err := exec.Command("swaks", "--server", "127.0.0.1", "--port", fmt.Sprint(subPort), "--helo", postfixtest.ClientHelo,
			"--from", "app@shop.test", "--to", "alice@"+postfixtest.DomainOK+",bob@"+postfixtest.DomainOK,
			"--header", "From: =?UTF-8?B?"+base64.StdEncoding.EncodeToString([]byte("ショップ"))+"?= <app@shop.test>",
			"--header", "Subject: =?ISO-2022-JP?B?"+base64.StdEncoding.EncodeToString([]byte(encodeJa(t, japanese.ISO2022JP, "発送のお知らせ")))+"?=",
			"--header", `X-Api-Data: {"order": "A-42"}`, "--header", "Message-Id: <"+msgID+">").CombinedOutput()
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
		m := regexpQueued.FindSubmatch(out)
		if m == nil {
			t.Fatalf("no queue ID in:\n%s", out)
		}
		qid := string(m[1])
		inst.WaitLog(t, ctx, postfixtest.Delivery(qid, "alice@"+postfixtest.DomainOK, "sent"))
		st, err := sqlite.Open(db, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		o, ok, err := st.Observation(context.Background(), "e2e", qid)
		if err != nil || !ok {
			t.Fatalf("no observation for %s: %v", qid, err)
		}
		if o.From != "ショップ <app@shop.test>" || o.Subject != "発送のお知らせ" || o.APIData != `{"order": "A-42"}` ||
			o.MessageID != "<"+msgID+">" || o.EnvelopeFrom != "app@shop.test" ||
			strings.Join(o.Recipients, ",") != "alice@"+postfixtest.DomainOK+",bob@"+postfixtest.DomainOK {
			t.Errorf("observation %+v", o)
		}
	})

	t.Run("posthorn stopped: Postfix answers 4xx", func(t *testing.T) {
		if _, err := d.stop(t); err != nil {
			t.Fatal(err)
		}
		sent := inst.Send(t, "sender@customer.test", []string{"orders@shop.test"}, postfixtest.AllowFailure())
		if sent.Err == nil || sent.QueueID != "" || !strings.Contains(sent.Output, "451 4.7.1") {
			t.Errorf("want 451 4.7.1 and nothing accepted; swaks said (%v):\n%s", sent.Err, sent.Output)
		}
		inst.WaitLog(t, ctx, postfixtest.Contains("NOQUEUE: milter-reject:", "451 4.7.1"))
	})
}

var regexpQueued = regexp.MustCompile(`(?m)^<-\s+250 .*queued as ([0-9A-Za-z]+)\s*$`)

// parseForm reads a multipart/form-data post as a receiver would.
func parseForm(t *testing.T, p inboundPost) (map[string]string, map[string]formFile) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(p.header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("Content-Type %q: %v", p.header.Get("Content-Type"), err)
	}
	r := multipart.NewReader(bytes.NewReader(p.body), params["boundary"])
	fields, files := map[string]string{}, map[string]formFile{}
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(part)
		if part.FileName() != "" {
			files[part.FormName()] = formFile{part.FileName(), part.Header.Get("Content-Type"), data}
		} else {
			fields[part.FormName()] = string(data)
		}
	}
	return fields, files
}

type formFile struct {
	filename, ctype string
	data            []byte
}

// TestPostfixConfigApply: `posthorn postfix-config --apply` configures a
// running Postfix (main.cf, a master.cf override, reload), and mail then
// passes through both milter roles.
func TestPostfixConfigApply(t *testing.T) {
	recv := startInboundReceiver(t)
	inPort, outPort, subPort := freePort(t), freePort(t), freePort(t)
	sub := fmt.Sprintf("127.0.0.1:%d", subPort)
	inst := postfixtest.Start(t, postfixtest.Options{MasterCF: []string{sub + " inet n - n - - smtpd"}})
	dir := testDir(t)
	db := filepath.Join(dir, "posthorn.db")
	cfg := writeConfig(t, dir, inst.MaillogPath(), fmt.Sprintf("[milter]\ninbound = \"inet:127.0.0.1:%d\"\noutbound = \"inet:127.0.0.1:%d\"\n", inPort, outPort))
	out := posthornCmd(t, 0, "postfix-config", "--apply", "--postfix-dir", inst.ConfigDir(), "--service", sub+"/inet", "--config", cfg)
	if !strings.Contains(out, "reload") {
		t.Errorf("no reload in:\n%s", out)
	}
	if got := inst.Postconf(t, "smtpd_milters"); got != fmt.Sprintf("{ inet:127.0.0.1:%d, default_action=tempfail, command_timeout=30s, content_timeout=300s }", inPort) {
		t.Errorf("smtpd_milters = %q", got)
	}
	if got := inst.Postconf(t, "milter_default_action"); got != "tempfail" {
		t.Errorf("milter_default_action = %q", got)
	}
	master, err := exec.Command("postconf", "-c", inst.ConfigDir(), "-P", sub+"/inet/smtpd_milters").CombinedOutput()
	if err != nil || strings.TrimSpace(string(master)) != sub+"/inet/smtpd_milters = $posthorn_outbound_milters" {
		t.Errorf("master.cf override: %v %q", err, master)
	}

	settingsFile := filepath.Join(dir, "inbound.yaml")
	if err := os.WriteFile(settingsFile, []byte(inboundSettingsYAML(recv)), 0o600); err != nil {
		t.Fatal(err)
	}
	posthornCmd(t, 0, "settings", "import", settingsFile, "--config", cfg)
	d := startServe(t, cfg)
	waitDial(t, d, fmt.Sprintf("127.0.0.1:%d", inPort))
	waitDial(t, d, fmt.Sprintf("127.0.0.1:%d", outPort))
	// Port 25's smtpd now runs the inbound role ...
	inst.Send(t, "sender@customer.test", []string{"orders@shop.test"}, postfixtest.Header("Subject", "after apply"))
	waitFor(t, d, time.Minute, "the post", func() bool { return len(recv.received("/orders")) == 1 })
	// ... and the submission service the outbound one.
	o, err := exec.Command("swaks", "--server", "127.0.0.1", "--port", fmt.Sprint(subPort), "--helo", postfixtest.ClientHelo,
		"--from", "app@shop.test", "--to", "x@"+postfixtest.DomainOK, "--header", "Subject: relayed").CombinedOutput()
	m := regexpQueued.FindSubmatch(o)
	if err != nil || m == nil {
		t.Fatalf("swaks: %v\n%s", err, o)
	}
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if obs, ok, err := st.Observation(context.Background(), "e2e", string(m[1])); err != nil || !ok || obs.Subject != "relayed" {
		t.Errorf("observation %+v %v %v", obs, ok, err)
	}
}

// TestInboundUnixSocket: the inbound role on a unix socket inside Postfix's
// queue directory, group postfix, mode 0660, as Debian's chrooted smtpd
// needs it; postfix-config names it relative to the queue directory.
func TestInboundUnixSocket(t *testing.T) {
	recv := startInboundReceiver(t)
	inst := postfixtest.Start(t, postfixtest.Options{})
	sockDir := filepath.Join(inst.QueueDir(), "posthorn")
	if err := os.Mkdir(sockDir, 0o750); err != nil {
		t.Fatal(err)
	}
	grp, err := exec.Command("getent", "group", "postfix").Output()
	if err != nil {
		t.Fatalf("group postfix: %v", err)
	}
	gid := 0
	fmt.Sscanf(strings.Split(string(grp), ":")[2], "%d", &gid)
	if err := os.Chown(sockDir, 0, gid); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(sockDir, "inbound.sock")
	dir := testDir(t)
	cfg := writeConfig(t, dir, inst.MaillogPath(), fmt.Sprintf("[milter]\ninbound = \"unix:%s\"\nsocket_group = \"postfix\"\nsocket_mode = \"0660\"\n", sock))
	posthornCmd(t, 0, "postfix-config", "--apply", "--postfix-dir", inst.ConfigDir(), "--config", cfg)
	if got := inst.Postconf(t, "smtpd_milters"); !strings.HasPrefix(got, "{ unix:posthorn/inbound.sock,") {
		t.Errorf("smtpd_milters = %q", got)
	}
	settingsFile := filepath.Join(dir, "inbound.yaml")
	if err := os.WriteFile(settingsFile, []byte(inboundSettingsYAML(recv)), 0o600); err != nil {
		t.Fatal(err)
	}
	posthornCmd(t, 0, "settings", "import", settingsFile, "--config", cfg)
	d := startServe(t, cfg)
	waitFor(t, d, 30*time.Second, "the milter socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: %v %v", fi, err)
	}
	inst.Send(t, "sender@customer.test", []string{"orders@shop.test"}, postfixtest.Header("Subject", "over a unix socket"))
	waitFor(t, d, time.Minute, "the post", func() bool { return len(recv.received("/orders")) == 1 })
	if _, err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket is left behind after shutdown: %v", err)
	}
}
