package postfixtest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Queue ID shapes (POSTFIX-LOGS.md 1.3): short IDs are upper-case hex; long
// IDs are 10 base-52 characters of time, "z", then the inode in an alphabet
// without vowels and without "z".
var (
	shortQID = regexp.MustCompile(`^[0-9A-F]{6,}$`)
	longQID  = regexp.MustCompile(`^[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+$`)
)

// TestDeliveryOutcomes proves the harness: every test domain produces the
// status it promises, with short and with long queue IDs, two instances
// running side by side.
func TestDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	for _, long := range []bool{false, true} {
		name, qidShape := "short-ids", shortQID
		if long {
			name, qidShape = "long-ids", longQID
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lifetime := 15 * time.Second
			i := Start(t, Options{
				LongQueueIDs:  long,
				QueueLifetime: lifetime,
				Aliases:       map[string]string{"forward": "forwarded@" + DomainOK},
			})
			if got := i.Postconf(t, "enable_long_queue_ids"); got != map[bool]string{false: "no", true: "yes"}[long] {
				t.Fatalf("enable_long_queue_ids = %q", got)
			}
			if got := i.Postconf(t, "maximal_queue_lifetime"); got != "15s" {
				t.Fatalf("maximal_queue_lifetime = %q, want 15s", got)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()

			cases := []struct {
				name  string
				rcpt  string
				first string // status of the first delivery attempt
				final string // "" if first is final; "expired" for message expiry
			}{
				{"ok", "bob@" + DomainOK, "sent", ""},
				{"rcpt5xx", "bob@" + DomainRcpt5xx, "bounced", ""},
				{"data5xx", "bob@" + DomainData5xx, "bounced", ""},
				{"unknown-local-user", "nosuchuser@" + LocalDomain, "bounced", ""},
				{"alias-forward", "forward@" + LocalDomain, "sent", ""},
				{"flaky", "bob@" + DomainFlaky, "deferred", "sent"},
				{"defer", "bob@" + DomainDefer, "deferred", "expired"},
				{"dead", "bob@" + DomainDead, "deferred", "expired"},
			}
			// Send everything first so all waits overlap, then check each
			// case in order; the expiring ones come last.
			sent := make([]Sent, len(cases))
			for n, c := range cases {
				sent[n] = i.Send(t, "alice@"+DomainOK, []string{c.rcpt}, Header("Subject", c.name))
			}
			rejected := i.Send(t, "alice@"+DomainOK, []string{"bob@" + DomainReject}, AllowFailure())
			for n, c := range cases {
				s := sent[n]
				t.Run(c.name, func(t *testing.T) {
					if !qidShape.MatchString(s.QueueID) {
						t.Errorf("queue ID %q does not look like a %s queue ID", s.QueueID, name)
					}
					line := i.WaitLog(t, ctx, Delivery(s.QueueID, c.rcpt, c.first))
					switch c.final {
					case "expired":
						line := i.WaitLog(t, ctx, Expired(s.QueueID))
						if !strings.Contains(line, "postfix/qmgr[") {
							t.Errorf("expiry logged by something else than qmgr: %s", line)
						}
					case "sent":
						// The next retry comes within maximal_backoff_time
						// (4 s). Not postqueue -f: it once raced the dead
						// domain's delivery ("skipped, still being
						// delivered") and left that message unscheduled
						// past its expiry.
						i.Heal(t, DomainFlaky)
						i.WaitLog(t, ctx, Delivery(s.QueueID, c.rcpt, "sent"))
					}
					if c.name == "alias-forward" {
						if !strings.Contains(line, "(forwarded as ") {
							t.Errorf("alias delivery does not say where it was forwarded: %s", line)
						}
						i.WaitLog(t, ctx, Contains(": to=<forwarded@"+DomainOK+">, orig_to=<"+c.rcpt+">", "status=sent"))
					}
					i.WaitLog(t, ctx, Removed(s.QueueID))
				})
			}
			t.Run("smtp-reject", func(t *testing.T) {
				if rejected.Err == nil || rejected.QueueID != "" {
					t.Errorf("a message to %s alone was accepted: %v, queue ID %q", DomainReject, rejected.Err, rejected.QueueID)
				}
				i.WaitLog(t, ctx, Contains("NOQUEUE: reject: RCPT from", "to=<bob@"+DomainReject+">"))
			})
			if !t.Failed() {
				i.WaitQueueEmpty(t, ctx)
			}
		})
	}
}

// TestSubmitPickup: a locally submitted message goes through pickup(8).
func TestSubmitPickup(t *testing.T) {
	t.Parallel()
	i := Start(t, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	id := i.Submit(t, "alice@"+DomainOK, []string{"bob@" + DomainOK}, "Subject: local submission\n\nhello\n")
	line := i.WaitLog(t, ctx, Contains("postfix/cleanup[", "message-id=<"+id+">"))
	qid := strings.TrimSuffix(strings.Fields(line)[5], ":")
	i.WaitLog(t, ctx, Contains("postfix/pickup[", " "+qid+": uid=0 from=<alice@"+DomainOK+">"))
	i.WaitLog(t, ctx, Delivery(qid, "bob@"+DomainOK, "sent"))
	i.WaitLog(t, ctx, Removed(qid))
}

// TestLaunchFailureCleansUp: a configuration the master cannot run with is
// reported with Postfix's own words, and nothing is left behind.
func TestLaunchFailureCleansUp(t *testing.T) {
	Require(t)
	t.Parallel()
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"bad main.cf line", Options{MainCF: []string{"not a setting"}}, "parse main.cf line"},
		// 192.0.2.1 (RFC 5737) is on no interface: the master cannot bind.
		{"unbindable smtpd", Options{MasterCF: []string{"192.0.2.1:2525 inet n - n - - smtpd"}}, "postfix master exited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i, err := Launch(c.o)
			if err == nil {
				i.Close()
				t.Fatal("Launch succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Launch error = %v, want it to mention %q", err, c.want)
			}
			if i != nil && i.Dir() != "" {
				if _, serr := os.Stat(i.Dir()); !errors.Is(serr, fs.ErrNotExist) {
					t.Errorf("instance dir %s left behind (%v)", i.Dir(), serr)
				}
			}
		})
	}
}
