package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/postfixtest"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
)

// TestDSNFromRealPostfix: bounce mail (RFC 3464) written by a real
// Postfix, arriving over SMTP at the bounce address, becomes a bounces
// record of the message it returns, and registers the address on the
// suppression list.
//
// Our Postfix, whose maillog serve reads, delivers two messages to a
// remote server that accepts them (the ok.test sink): one through its
// submission smtpd, which the outbound role observes, and one submitted
// with "sendmail -V", which its smtp client sends with a VERP return path
// (Postfix's VERP_README). A second Postfix plays the remote MTA that
// only finds out later that the mailbox is gone: it receives the same
// messages (same Message-ID, same envelope), rewrites the recipients to
// mailboxes that do not exist (virtual_alias_maps, so that its reports
// keep them as Original-Recipient), and its bounce(8) sends the
// notifications to the return paths, routed to our inbound smtpd, where
// the inbound role reads them. The remote holds its outgoing mail
// (defer_transports) until the test has seen serve store the deliveries,
// as the real world's minutes between delivery and bounce would. One
// notification matches by the Message-ID it returns, the other by its VERP
// recipient as well.
func TestDSNFromRealPostfix(t *testing.T) {
	const bounceDomain = "bounce.test"
	bounceAddr := "bounces@" + bounceDomain
	byID, byVERP := "gone@"+postfixtest.DomainOK, "vanished@"+postfixtest.DomainOK
	verpReturn := "bounces+vanished=" + postfixtest.DomainOK + "@" + bounceDomain
	recv := startReceiver(t)
	inSMTP, inMilter, outMilter := freePort(t), freePort(t), freePort(t)
	remote := postfixtest.Start(t, postfixtest.Options{
		MainCF: []string{
			"myhostname = remote-mx.posthorn.test",
			fmt.Sprintf("virtual_alias_maps = inline:{ %s=nosuchuser@%s, %s=nosuchuser2@%s }",
				byID, postfixtest.LocalDomain, byVERP, postfixtest.LocalDomain),
			"defer_transports = smtp",
		},
		Transports: map[string]string{bounceDomain: fmt.Sprintf("smtp:[127.0.0.1]:%d", inSMTP)},
	})
	ours := postfixtest.Start(t, postfixtest.Options{
		MainCF: []string{
			"milter_protocol = 6",
			"milter_default_action = tempfail",
			fmt.Sprintf("smtpd_milters = inet:127.0.0.1:%d", outMilter),
		},
		MasterCF: []string{
			fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n  -o smtpd_milters=inet:127.0.0.1:%d", inSMTP, inMilter),
		},
	})

	dir := testDir(t)
	db := filepath.Join(dir, "posthorn.db")
	cfg := writeConfig(t, dir, ours.MaillogPath(), fmt.Sprintf(`[milter]
inbound = "inet:127.0.0.1:%d"
outbound = "inet:127.0.0.1:%d"
[blocks]
exec_time = "12:00"
timezone = "UTC"
bounce_addresses = [%q]
verp = true
[blocks.auto_register]
unknown_user = 1
`, inMilter, outMilter, bounceAddr))
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte("server_composition = \"e2e-composition\"\n"), data...), 0o644)
	importSettings(t, dir, cfg, hookSettings(recv.url, recv.caFile, "  blocks: true\n"))
	clockFile := filepath.Join(dir, "clock")
	setClock := func(s string) {
		t.Helper()
		if err := os.WriteFile(clockFile+".tmp", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(clockFile+".tmp", clockFile); err != nil {
			t.Fatal(err)
		}
	}
	setClock("2026-11-27T10:00:00Z")
	t.Setenv("POSTHORN_TEST_CLOCK", clockFile)

	d := startServe(t, cfg)
	waitDial(t, d, fmt.Sprintf("127.0.0.1:%d", inMilter))
	waitDial(t, d, fmt.Sprintf("127.0.0.1:%d", outMilter))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// 1. Through the submission smtpd, which the outbound role observes.
	sent := ours.Send(t, bounceAddr, []string{byID}, postfixtest.Header("Subject", "Your order"),
		postfixtest.Header("X-Api-Data", `{"order":"A-7"}`))
	// 2. Through sendmail -V.
	verpID := fmt.Sprintf("verp.%d@client.posthorn.test", time.Now().UnixNano())
	sendmail, err := exec.LookPath("sendmail")
	if err != nil {
		sendmail = "/usr/sbin/sendmail"
	}
	submit := exec.Command(sendmail, "-C", ours.ConfigDir(), "-i", "-XV", "-f", bounceAddr, "--", byVERP)
	submit.Stdin = strings.NewReader("Message-Id: <" + verpID + ">\nSubject: Your invoice\n\nhello\n")
	if out, err := submit.CombinedOutput(); err != nil {
		t.Fatalf("sendmail -XV: %v\n%s", err, out)
	}
	var delivered map[string]event.Event
	waitFor(t, d, time.Minute, "both deliveries in the store", func() bool {
		delivered = map[string]event.Event{}
		for _, e := range storedEvents(t, db) {
			if e.Type == event.Succeeded && (e.To == byID || e.To == byVERP) {
				delivered[e.To] = e
			}
		}
		return len(delivered) == 2
	})
	if e := delivered[byID]; e.QueueID != sent.QueueID || e.MessageID != "<"+sent.MessageID+">" || e.ReturnPath != bounceAddr {
		t.Fatalf("delivery %+v", e)
	}
	if e := delivered[byVERP]; e.ReturnPath != bounceAddr || e.MessageID != "<"+verpID+">" {
		t.Fatalf("VERP delivery %+v", e)
	}
	// Our smtp client used the VERP return path.
	ours.WaitLog(t, ctx, postfixtest.Contains("to=<"+byVERP+">", "status=sent"))

	// The same messages at the remote, which bounces them and holds the
	// notifications until the flush.
	for _, m := range []struct{ from, to, id, subject string }{
		{bounceAddr, byID, sent.MessageID, "Your order"},
		{verpReturn, byVERP, verpID, "Your invoice"},
	} {
		out, err := exec.Command("swaks", "--server", "127.0.0.1", "--port", strings.TrimPrefix(remote.SMTPAddr(), "127.0.0.1:"),
			"--helo", "mx.posthorn.test", "--from", m.from, "--to", m.to,
			"--header", "Message-Id: <"+m.id+">", "--header", "Subject: "+m.subject).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks to the remote: %v\n%s", err, out)
		}
		remote.WaitLog(t, ctx, postfixtest.Contains("orig_to=<"+m.to+">", "status=bounced"))
		remote.WaitLog(t, ctx, postfixtest.Contains("to=<"+m.from+">", "status=deferred"))
	}
	remote.Flush(t)
	// Read and discarded (milter.after_capture), never queued here.
	for _, to := range []string{bounceAddr, verpReturn} {
		ours.WaitLog(t, ctx, postfixtest.Contains("milter-discard: END-OF-MESSAGE", "to=<"+to+">"))
	}
	remote.WaitLog(t, ctx, postfixtest.Contains("to=<"+bounceAddr+">", "status=sent"))
	remote.WaitLog(t, ctx, postfixtest.Contains("to=<"+verpReturn+">", "status=sent"))

	// The bounces records: the stored events, with what the outbound role
	// saw of the first message, encoded as the receiver must get them.
	var bounced map[string]event.Event
	waitFor(t, d, time.Minute, "the bounces in the store", func() bool {
		bounced = map[string]event.Event{}
		for _, e := range storedEvents(t, db) {
			if e.Type == event.Bounced && strings.HasPrefix(e.ID, "dsn-") {
				bounced[e.To] = e
			}
		}
		return len(bounced) == 2
	})
	for to, e := range bounced {
		orig := delivered[to]
		if e.Class != event.ClassUnknownUser || e.DSN != "5.1.1" || !strings.Contains(e.Reason, "unknown user") ||
			e.QueueID != orig.QueueID || e.MessageID != orig.MessageID || e.ReturnPath != bounceAddr || e.Host != orig.Host {
			t.Errorf("bounce of %s: %+v (delivery %+v)", to, e, orig)
		}
	}
	s := settings.Default()
	s.Timezone, s.APIKey, s.Deliveries, s.Bounces, s.Blocks = "UTC", hookKey, true, true, true
	first := bounced[byID]
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, ok, err := st.Observation(ctx, first.Host, first.QueueID)
	st.Close()
	if err != nil || !ok || o.Subject != "Your order" || o.APIData != `{"order":"A-7"}` {
		t.Fatalf("observation of %s: %+v %v %v", first.QueueID, o, ok, err)
	}
	first.From, first.Subject, first.APIData = o.From, o.Subject, o.APIData
	waitRecords(t, d, recv, ctx, map[string]bool{
		recordKey("bounces", wantRecord(t, s, first)):           false,
		recordKey("bounces", wantRecord(t, s, bounced[byVERP])): false,
	}, dir)

	// Unknown user after one bounce: both scheduled for the execution
	// time, registered when it comes.
	list := posthornCmd(t, 0, "blocks", "list", "--zone", "UTC", "--config", cfg)
	for _, a := range []string{byID, byVERP} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(a) + `\s+2\s+scheduled\s+2026-11-27 12:00:00`).MatchString(list) {
			t.Errorf("%s is not scheduled:\n%s", a, list)
		}
	}
	setClock("2026-11-27T12:00:00Z")
	waitRecords(t, d, recv, ctx, map[string]bool{
		recordKey("blocks", map[string]string{"created": "2026-11-27 12:00:00", "email": byID, "status": "registered", "reason": "2", "apiData": ""}):   false,
		recordKey("blocks", map[string]string{"created": "2026-11-27 12:00:00", "email": byVERP, "status": "registered", "reason": "2", "apiData": ""}): false,
	}, dir)

	// Bounce mail that matches nothing is logged, not dropped silently:
	// a real notification about a message this server never sent, and a
	// message that is no bounce at all.
	corpus, err := filepath.Abs(filepath.Join("..", "blocks", "testdata", "dsn", "postfix-rcpt-5xx.eml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--data", "@" + corpus},
		{"--header", "Subject: out of office", "--header", "Message-Id: <ooo-1@customer.test>", "--body", "I am away."},
	} {
		out, err := exec.Command("swaks", append([]string{"--server", "127.0.0.1", "--port", fmt.Sprint(inSMTP),
			"--helo", postfixtest.ClientHelo, "--from", "<>", "--to", bounceAddr}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
	}
	waitFor(t, d, time.Minute, "the unmatched bounce mail in the log", func() bool {
		log := readFile(t, filepath.Join(dir, "serve.log"))
		return strings.Contains(log, `msg="bounce mail unmatched" component="bounce mail" message_id=<20261127110753.7AEF79BE798@mx.posthorn.test>`) &&
			strings.Contains(log, `original_message_id=<1795777673368678374.2@client.posthorn.test> recipient=User.Name@rcpt5xx.test why="no delivery of`) &&
			strings.Contains(log, `msg="bounce mail unmatched" component="bounce mail" message_id=<ooo-1@customer.test>`)
	})
}

// waitRecords waits until the receiver has every record of want.
func waitRecords(t *testing.T, d *daemon, recv *receiver, ctx context.Context, want map[string]bool, dir string) {
	t.Helper()
	for {
		posts, _, errs := recv.snapshot()
		if len(errs) > 0 {
			t.Fatalf("receiver: %v", errs)
		}
		var got []string
		for _, p := range posts {
			for _, r := range p.records {
				k := recordKey(p.family, r)
				got = append(got, k)
				if _, ok := want[k]; ok {
					want[k] = true
				}
			}
		}
		missing := 0
		for _, ok := range want {
			if !ok {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-recv.notify:
		case <-ctx.Done():
			t.Fatalf("receiver lacks %d of %v\ngot %v\nserve log:\n%s", missing, want, got, tail(filepath.Join(dir, "serve.log"), 40))
		case err := <-d.done:
			t.Fatalf("serve exited: %v", err)
		}
	}
}
