package postfixtest

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var capture = flag.Bool("capture", false, "run TestCapture: write real Postfix maillogs to logtail/testdata/real/")

// captureDir is where the fixtures go, relative to this package.
var captureDir = filepath.Join("..", "..", "logtail", "testdata", "real")

// TestCapture records the maillog of representative scenarios as parser and
// correlator fixtures. It only runs with -capture:
//
//	go test ./e2e/postfixtest -run Capture -capture -v
func TestCapture(t *testing.T) {
	if !*capture {
		t.Skip("fixture capture runs only with -capture")
	}
	for _, c := range []struct {
		file string
		long bool
	}{
		{"postfix37-short.log", false},
		{"postfix37-long.log", true},
	} {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			lines := captureScenarios(t, c.long)
			path := filepath.Join(captureDir, c.file)
			if err := os.MkdirAll(captureDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %d lines to %s", len(lines), path)
		})
	}
}

// captureScenarios runs every scenario on one instance and returns its
// maillog once the queue is empty, with machine-specific paths replaced.
func captureScenarios(t *testing.T, long bool) []string {
	i := Start(t, Options{
		LongQueueIDs: long,
		Aliases: map[string]string{
			"forward": "forwarded@" + DomainOK,
			"team":    "team-a@" + DomainOK + ", team-b@" + DomainRcpt5xx,
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	alice := "alice@" + DomainOK

	// 1. One recipient, delivered.
	plain := i.Send(t, alice, []string{"bob@" + DomainOK}, Header("Subject", "plain"))
	// 2. Three recipients at one destination: three to= lines.
	same := i.Send(t, alice, []string{"bob@" + DomainOK, "carol@" + DomainOK, "dave@" + DomainOK}, Header("Subject", "same destination"))
	// 3. Every outcome in one message, including a recipient refused at
	// RCPT after an earlier one was accepted ("QID: reject:"), local
	// delivery to a mailbox, an unknown local user, and aliases that
	// forward to one and to two addresses.
	mixedRcpts := []string{
		"ok-user@" + DomainOK, "user@" + DomainRcpt5xx, "user@" + DomainData5xx,
		"user@" + DomainDefer, "user@" + DomainFlaky, "user@" + DomainDead,
		"nosuchuser@" + LocalDomain, "nobody@" + LocalDomain,
		"forward@" + LocalDomain, "team@" + LocalDomain, "user@" + DomainReject,
	}
	mixed := i.Send(t, alice, mixedRcpts, Header("Subject", "mixed outcomes"))
	// 4. Every recipient refused at RCPT: NOQUEUE, no queue file.
	i.Send(t, alice, []string{"user@" + DomainReject}, AllowFailure())
	// 5. Null sender, bounced: no notification goes back.
	null := i.Send(t, "", []string{"user@" + DomainRcpt5xx}, Header("Subject", "null sender"))
	// 6. Local submission through sendmail/postdrop/pickup.
	i.Submit(t, alice, []string{"bob@" + DomainOK}, "Subject: local submission\n\nhello\n")
	// 7. Only the flaky destination: deferred, then sent after Heal.
	flaky := i.Send(t, alice, []string{"user2@" + DomainFlaky}, Header("Subject", "flaky"))
	// 8. Only a dead destination: deferred until it expires.
	dead := i.Send(t, alice, []string{"user2@" + DomainDead}, Header("Subject", "dead"))

	i.WaitLog(t, ctx, Removed(plain.QueueID))
	i.WaitLog(t, ctx, Removed(same.QueueID))
	i.WaitLog(t, ctx, Delivery(null.QueueID, "user@"+DomainRcpt5xx, "bounced"))
	i.WaitLog(t, ctx, Delivery(mixed.QueueID, "user@"+DomainFlaky, "deferred"))
	i.WaitLog(t, ctx, Delivery(flaky.QueueID, "user2@"+DomainFlaky, "deferred"))
	i.Heal(t, DomainFlaky)
	i.Flush(t)
	i.WaitLog(t, ctx, Delivery(mixed.QueueID, "user@"+DomainFlaky, "sent"))
	i.WaitLog(t, ctx, Delivery(flaky.QueueID, "user2@"+DomainFlaky, "sent"))
	i.WaitLog(t, ctx, Expired(mixed.QueueID))
	i.WaitLog(t, ctx, Expired(dead.QueueID))
	i.WaitQueueEmpty(t, ctx)

	lines := i.Lines(t)
	for n, l := range lines {
		lines[n] = sanitize(l, i.Dir())
		if strings.Contains(lines[n], i.Dir()) {
			t.Fatalf("line still names the instance dir: %s", lines[n])
		}
	}
	return lines
}

// sanitize replaces the instance's temp paths by the usual Debian locations
// so a fixture does not name the machine it was made on. Ports and queue IDs
// are left as they are. A path that merely starts with the same characters
// (postfixtest-1234 for postfixtest-123) is not the instance's and is kept.
func sanitize(line, dir string) string {
	re := regexp.MustCompile(regexp.QuoteMeta(dir) + `(/(?:conf|queue|data|mail|maillog))?\b`)
	to := map[string]string{
		"":         "/var/tmp/postfixtest",
		"/conf":    "/etc/postfix",
		"/queue":   "/var/spool/postfix",
		"/data":    "/var/lib/postfix",
		"/mail":    "/var/mail",
		"/maillog": "/var/log/mail.log",
	}
	return re.ReplaceAllStringFunc(line, func(m string) string {
		return to[strings.TrimPrefix(m, dir)]
	})
}

func TestSanitize(t *testing.T) {
	const dir = "/tmp/postfixtest-123"
	cases := []struct{ in, want string }{
		{"Nov 27 09:58:40 mx postfix/master[13653]: daemon started -- version 3.7.11, configuration /tmp/postfixtest-123/conf",
			"Nov 27 09:58:40 mx postfix/master[13653]: daemon started -- version 3.7.11, configuration /etc/postfix"},
		{"warning: not owned by postfix: /tmp/postfixtest-123/data/.", "warning: not owned by postfix: /var/lib/postfix/."},
		{"x /tmp/postfixtest-123/mail/nobody y /tmp/postfixtest-123/other", "x /var/mail/nobody y /var/tmp/postfixtest/other"},
		{"/tmp/postfixtest-1234/conf is another instance", "/tmp/postfixtest-1234/conf is another instance"},
		{"/tmp/postfixtest-123/confx /tmp/postfixtest-123", "/var/tmp/postfixtest/confx /var/tmp/postfixtest"},
		{"(/tmp/postfixtest-123/maillog)", "(/var/log/mail.log)"},
		{"no paths here", "no paths here"},
	}
	for _, c := range cases {
		if got := sanitize(c.in, dir); got != c.want {
			t.Errorf("sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
