package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/settings"
)

// alertRepeat is the least time between two alerts about one failure that
// goes on (issue 6: "repeated at most hourly").
const alertRepeat = time.Hour

// sendmailTimeout bounds one run of sendmail, which only hands the mail to
// the local Postfix queue.
const sendmailTimeout = time.Minute

// alertWatcher tracks, for each webhook — the Event Webhook and each
// inbound filter's endpoint — how long it has failed without a success,
// and raises an alert (an error line and, if configured, a mail) once that
// lasts config.Alerts.After. It is told of attempts by observe and acts in
// check, which the run loop calls; tests call check with a fake clock.
type alertWatcher struct {
	after time.Duration
	now   func() time.Time
	log   *slog.Logger
	// mail sends an alert mail; nil means alerts are only logged.
	mail func(ctx context.Context, subject, body string) error
	wake chan struct{} // run's nudge after an attempt changed a state

	mu       sync.Mutex
	failures map[string]*failure // by webhook, as people name it
}

// failure is one webhook's state.
type failure struct {
	since     time.Time // first failed attempt after the last success; zero: not failing
	endpoint  string    // of the latest failed attempt
	reason    string    // of the latest failed attempt
	lastAlert time.Time // zero: no alert raised about this failure
	mailed    bool      // a failure mail was sent about this failure
	recovered time.Time // a success ended an alerted failure; check reports it
	recMail   bool      // and a recovery mail is owed
}

func newAlertWatcher(a config.Alerts, log *slog.Logger, now func() time.Time) *alertWatcher {
	w := &alertWatcher{after: time.Duration(a.After), now: now, log: log.With("component", "alerts"),
		wake: make(chan struct{}, 1), failures: map[string]*failure{}}
	if a.MailTo != "" {
		s := sendmail{path: a.Sendmail, args: a.SendmailArgs, from: a.From, to: a.MailTo, now: now}
		w.mail = s.send
	}
	return w
}

// webhookName is how logs and mails name the webhook of a report.
func webhookName(r dispatcher.PostReport) string {
	if r.Webhook == dispatcher.WebhookInbound {
		return fmt.Sprintf("Inbound Webhook filter %q", r.Filter)
	}
	return eventWebhook
}

const eventWebhook = "Event Webhook"

// observe is the dispatchers' Observe: it never blocks.
func (w *alertWatcher) observe(r dispatcher.PostReport) {
	w.attempt(webhookName(r), r.At, r.Endpoint, r.State, r.Reason)
}

// failureLog is the store's attempts log as resume reads it.
type failureLog interface {
	EventWebhookFailure(ctx context.Context) (since time.Time, endpoint, reason string, ok bool, err error)
}

// resume starts from the Event Webhook's failure recorded in the store, so
// that a restart does not reset how long it has been failing. (An inbound
// filter's failure starts again at its next attempt: the store keeps only
// each message's latest attempt.)
func (w *alertWatcher) resume(ctx context.Context, store failureLog) error {
	since, endpoint, reason, ok, err := store.EventWebhookFailure(ctx)
	if err != nil || !ok {
		return err
	}
	w.mu.Lock()
	f := w.state(eventWebhook)
	f.since, f.endpoint, f.reason = since, settings.LogEndpoint(endpoint), reason
	w.mu.Unlock()
	return nil
}

// state returns the webhook's failure, creating it; w.mu is held.
func (w *alertWatcher) state(webhook string) *failure {
	f := w.failures[webhook]
	if f == nil {
		f = &failure{}
		w.failures[webhook] = f
	}
	return f
}

// attempt records the outcome of one attempt. It never blocks: the
// dispatchers call it after recording the attempt.
func (w *alertWatcher) attempt(webhook string, at time.Time, endpoint, state, reason string) {
	w.mu.Lock()
	f := w.state(webhook)
	switch state {
	case dispatcher.StateSucceeded:
		if !f.lastAlert.IsZero() {
			f.recovered, f.recMail = at, f.mailed
		}
		f.since, f.lastAlert, f.mailed = time.Time{}, time.Time{}, false
	case dispatcher.StateDeferred, dispatcher.StateFailed:
		if f.since.IsZero() {
			f.since = at
		}
		f.endpoint, f.reason = endpoint, reason
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// alertDue is what check found to do about one webhook.
type alertDue struct {
	webhook          string
	recovered        time.Time
	recMail, due     bool
	since            time.Time
	endpoint, reason string
	alertAt          time.Time
}

// check raises the alerts that are due and reports recoveries, webhooks in
// name order so that logs and tests are stable.
func (w *alertWatcher) check(ctx context.Context) {
	w.mu.Lock()
	now := w.now()
	var todo []alertDue
	for _, name := range slices.Sorted(maps.Keys(w.failures)) {
		f := w.failures[name]
		d := alertDue{webhook: name, since: f.since, endpoint: f.endpoint, reason: f.reason, alertAt: now}
		if !f.recovered.IsZero() {
			d.recovered, d.recMail = f.recovered, f.recMail
			f.recovered, f.recMail = time.Time{}, false
		}
		d.due = !f.since.IsZero() && now.Sub(f.since) >= w.after &&
			(f.lastAlert.IsZero() || now.Sub(f.lastAlert) >= alertRepeat)
		if d.due {
			f.lastAlert = now
		}
		if d.due || !d.recovered.IsZero() {
			todo = append(todo, d)
		}
	}
	w.mu.Unlock()
	// Mail is sent outside the lock: attempt must not wait for sendmail.
	for _, d := range todo {
		w.report(ctx, d)
	}
}

func (w *alertWatcher) report(ctx context.Context, d alertDue) {
	if !d.recovered.IsZero() {
		w.log.Info(d.webhook+" recovered", "webhook", d.webhook, "recovered", d.recovered)
		if d.recMail && w.mail != nil {
			subject := fmt.Sprintf("posthorn: %s recovered", d.webhook)
			body := fmt.Sprintf("The %s answers again: an attempt succeeded at %s.\n", d.webhook, stamp(d.recovered))
			if err := w.mail(ctx, subject, body); err != nil {
				w.log.Warn("send recovery mail", "webhook", d.webhook, "err", err)
			}
		}
	}
	if !d.due {
		return
	}
	w.log.Error(d.webhook+" failing", "webhook", d.webhook, "endpoint", d.endpoint, "since", d.since, "reason", d.reason)
	if w.mail == nil {
		return
	}
	subject := fmt.Sprintf("posthorn: %s failing since %s", d.webhook, stamp(d.since))
	body := fmt.Sprintf(`Every attempt to post to the %s has failed since %s.

Endpoint:    %s
Last reason: %s

What was to be posted waits in posthorn's outbox and is posted once the
endpoint answers, until its retry period ends. This mail is repeated at
most hourly while the failure lasts; another one follows when it ends.
`, d.webhook, stamp(d.since), d.endpoint, d.reason)
	if err := w.mail(ctx, subject, body); err != nil {
		w.log.Warn("send alert mail", "webhook", d.webhook, "err", err)
		return
	}
	w.mu.Lock()
	if f := w.failures[d.webhook]; f.lastAlert.Equal(d.alertAt) { // not recovered meanwhile
		f.mailed = true
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
