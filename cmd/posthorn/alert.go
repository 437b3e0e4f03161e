package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/sqlite"
)

// alertRepeat is the least time between two alerts about one failure that
// goes on (issue 6: "repeated at most hourly").
const alertRepeat = time.Hour

// sendmailTimeout bounds one run of sendmail, which only hands the mail to
// the local Postfix queue.
const sendmailTimeout = time.Minute

// alertWatcher tracks how long a webhook has failed without a success and
// raises an alert — an error line and, if configured, a mail — once that
// lasts config.Alerts.After. It is told of attempts by attempt and acts in
// check, which the run loop calls; tests call check with a fake clock.
type alertWatcher struct {
	webhook string // as people name it: "Event Webhook"
	after   time.Duration
	now     func() time.Time
	log     *slog.Logger
	// mail sends an alert mail; nil means alerts are only logged.
	mail func(ctx context.Context, subject, body string) error
	wake chan struct{} // run's nudge after an attempt changed the state

	mu        sync.Mutex
	since     time.Time // first failed attempt after the last success; zero: not failing
	endpoint  string    // of the latest failed attempt
	reason    string    // of the latest failed attempt
	lastAlert time.Time // zero: no alert raised about this failure
	mailed    bool      // a failure mail was sent about this failure
	recovered time.Time // a success ended an alerted failure; check reports it
	recMail   bool      // and a recovery mail is owed
}

func newAlertWatcher(webhook string, a config.Alerts, log *slog.Logger, now func() time.Time) *alertWatcher {
	w := &alertWatcher{webhook: webhook, after: time.Duration(a.After), now: now, log: log, wake: make(chan struct{}, 1)}
	if a.MailTo != "" {
		s := sendmail{path: a.Sendmail, args: a.SendmailArgs, from: a.From, to: a.MailTo, now: now}
		w.mail = s.send
	}
	return w
}

// attempt records the outcome of one attempt. It never blocks: the
// dispatcher calls it while recording the attempt.
func (w *alertWatcher) attempt(at time.Time, endpoint, state, reason string) {
	w.mu.Lock()
	switch state {
	case dispatcher.StateSucceeded:
		if !w.lastAlert.IsZero() {
			w.recovered, w.recMail = at, w.mailed
		}
		w.since, w.lastAlert, w.mailed = time.Time{}, time.Time{}, false
	case dispatcher.StateDeferred, dispatcher.StateFailed:
		if w.since.IsZero() {
			w.since = at
		}
		w.endpoint, w.reason = endpoint, reason
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// check raises an alert when one is due and reports a recovery.
func (w *alertWatcher) check(ctx context.Context) {
	w.mu.Lock()
	now := w.now()
	var recovered time.Time
	recMail := false
	if !w.recovered.IsZero() {
		recovered, recMail = w.recovered, w.recMail
		w.recovered, w.recMail = time.Time{}, false
	}
	due := !w.since.IsZero() && now.Sub(w.since) >= w.after &&
		(w.lastAlert.IsZero() || now.Sub(w.lastAlert) >= alertRepeat)
	since, endpoint, reason := w.since, w.endpoint, w.reason
	if due {
		w.lastAlert = now
	}
	w.mu.Unlock()

	// Mail is sent outside the lock: attempt must not wait for sendmail.
	if !recovered.IsZero() {
		w.log.Info(w.webhook+" recovered", "webhook", w.webhook, "recovered", recovered)
		if recMail && w.mail != nil {
			subject := fmt.Sprintf("posthorn: %s recovered", w.webhook)
			body := fmt.Sprintf("The %s answers again: an attempt succeeded at %s.\n", w.webhook, stamp(recovered))
			if err := w.mail(ctx, subject, body); err != nil {
				w.log.Warn("send recovery mail", "webhook", w.webhook, "err", err)
			}
		}
	}
	if !due {
		return
	}
	w.log.Error(w.webhook+" failing", "webhook", w.webhook, "endpoint", endpoint, "since", since, "reason", reason)
	if w.mail == nil {
		return
	}
	subject := fmt.Sprintf("posthorn: %s failing since %s", w.webhook, stamp(since))
	body := fmt.Sprintf(`Every attempt to post to the %s has failed since %s.

Endpoint:    %s
Last reason: %s

Events wait in posthorn's outbox and are posted once the endpoint answers,
until their retry period ends. This mail is repeated at most hourly while
the failure lasts; another one follows when it ends.
`, w.webhook, stamp(since), endpoint, reason)
	if err := w.mail(ctx, subject, body); err != nil {
		w.log.Warn("send alert mail", "webhook", w.webhook, "err", err)
		return
	}
	w.mu.Lock()
	if w.lastAlert.Equal(now) { // not recovered meanwhile
		w.mailed = true
	}
	w.mu.Unlock()
}

// run calls check after each attempt and every interval until ctx ends,
// so that an alert is raised on time even when the retry schedule leaves
// hours between attempts.
func (w *alertWatcher) run(ctx context.Context) {
	interval := min(w.after/10, time.Minute)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
		w.check(ctx)
	}
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// alertOutbox is the store as the dispatcher's outbox, telling the watcher
// of every recorded attempt, which carries the endpoint and reason that
// Options.Observe does not.
type alertOutbox struct {
	*sqlite.Store
	w *alertWatcher
}

func (o alertOutbox) Record(ctx context.Context, a dispatcher.Attempt) error {
	err := o.Store.Record(ctx, a)
	if err == nil {
		o.w.attempt(a.At, a.Endpoint, a.State, a.Reason)
	}
	return err
}

// sendmail submits a mail through Postfix's sendmail(1) command.
type sendmail struct {
	path     string
	args     []string
	from, to string
	now      func() time.Time
}

func (s sendmail) send(ctx context.Context, subject, body string) error {
	msg := s.message(subject, body)
	ctx, cancel := context.WithTimeout(ctx, sendmailTimeout)
	defer cancel()
	// -i: a line with a lone dot does not end the message; -f: the
	// envelope sender; "--" keeps the recipient from being read as an
	// option (sendmail(1)).
	args := append(append([]string{}, s.args...), "-i", "-f", s.from, "--", s.to)
	cmd := exec.CommandContext(ctx, s.path, args...)
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("run %s: %w: %s", s.path, err, bytes.TrimSpace(out))
	}
	return nil
}

// message builds a plain-text RFC 5322 message, complete with the Date
// and Message-ID that §3.6 asks of an originator, so it does not depend on
// which program submits it filling them in.
func (s sendmail) message(subject, body string) []byte {
	var id [12]byte
	_, _ = rand.Read(id[:])
	_, domain, _ := strings.Cut(s.from, "@")
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\n", s.from)
	fmt.Fprintf(&b, "To: %s\n", s.to)
	// RFC 5322 §3.3 date-time.
	fmt.Fprintf(&b, "Date: %s\n", s.now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\n", hex.EncodeToString(id[:]), domain)
	fmt.Fprintf(&b, "Subject: %s\n", subject)
	// RFC 3834 §5: machine-generated, so vacation responders stay quiet.
	b.WriteString("Auto-Submitted: auto-generated\n")
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\n\n")
	b.WriteString(body)
	return b.Bytes()
}
