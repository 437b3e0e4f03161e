package postfixtest

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Sent is the result of one SMTP transaction with the instance.
type Sent struct {
	// QueueID is from the server's "250 2.0.0 Ok: queued as QID" (empty if
	// the message was not accepted).
	QueueID string
	// MessageID is the Message-Id header sent, without angle brackets.
	MessageID string
	// Output is swaks' transcript.
	Output string
	// Err is swaks' failure; only set with AllowFailure (otherwise the test
	// has already failed).
	Err error
}

type sendOpts struct {
	headers      []string
	body         string
	allowFailure bool
	extra        []string
	timeout      time.Duration
}

// SendOption adjusts Send.
type SendOption func(*sendOpts)

// Header adds a message header ("Subject", "hello").
func Header(name, value string) SendOption {
	return func(o *sendOpts) { o.headers = append(o.headers, name+": "+value) }
}

// Body sets the message body.
func Body(s string) SendOption { return func(o *sendOpts) { o.body = s } }

// AllowFailure reports a failed transaction in Sent.Err instead of failing
// the test (for example when every recipient is refused).
func AllowFailure() SendOption { return func(o *sendOpts) { o.allowFailure = true } }

// SwaksArgs passes extra arguments to swaks.
func SwaksArgs(args ...string) SendOption {
	return func(o *sendOpts) { o.extra = append(o.extra, args...) }
}

var (
	queuedAs = regexp.MustCompile(`(?m)^<-\s+250 .*queued as ([0-9A-Za-z]+)\s*$`)
	msgSeq   atomic.Uint64
)

// Send submits one message over SMTP with swaks: one session, one
// transaction, all recipients in it. swaks succeeds when at least one
// recipient is accepted; the others show up as "<** 5xx" in Output and as
// "reject:" lines in the maillog. An empty from is the null sender.
func (i *Instance) Send(t testing.TB, from string, to []string, opts ...SendOption) Sent {
	t.Helper()
	o := sendOpts{body: "Test message from e2e/postfixtest.", timeout: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	// swaks' default Message-Id names the machine's hostname; a fixed
	// domain keeps captured logs free of machine names.
	msgID := fmt.Sprintf("%d.%d@%s", time.Now().UnixNano(), msgSeq.Add(1), ClientHelo)
	if from == "" {
		// swaks would substitute $LOGNAME@host; "<>" is its null sender.
		from = "<>"
	}
	args := []string{
		"--server", "127.0.0.1", "--port", strconv.Itoa(i.l.smtpdPort),
		"--helo", ClientHelo,
		"--from", from,
		"--to", strings.Join(to, ","),
		"--header", "Message-Id: <" + msgID + ">",
		"--body", o.body,
		"--timeout", strconv.Itoa(int(o.timeout / time.Second)),
	}
	for _, h := range o.headers {
		args = append(args, "--header", h)
	}
	args = append(args, o.extra...)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout+10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, i.bins.swaks, args...).CombinedOutput()
	s := Sent{MessageID: msgID, Output: string(out)}
	if m := queuedAs.FindStringSubmatch(s.Output); m != nil {
		s.QueueID = m[1]
	}
	if err == nil && s.QueueID == "" {
		err = fmt.Errorf("no \"queued as\" in the reply to DATA")
	}
	if err != nil {
		s.Err = fmt.Errorf("send mail with swaks: %w", err)
		if !o.allowFailure {
			t.Fatalf("postfixtest: %v\n%s", s.Err, s.Output)
		}
	}
	return s
}

// Submit hands a message to the instance's sendmail(1), the local submission
// path: postdrop writes it to the maildrop queue and pickup(8) logs
// "QID: uid=0 from=<from>" instead of smtpd's "client=". message is the
// RFC 5322 text (headers, blank line, body); a Message-Id is added when it
// has none. It returns the Message-Id used, without angle brackets.
func (i *Instance) Submit(t testing.TB, from string, to []string, message string) string {
	t.Helper()
	msgID := ""
	head, _, _ := strings.Cut(message, "\n\n")
	for _, h := range strings.Split(head, "\n") {
		if name, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Message-Id") {
			msgID = strings.Trim(strings.TrimSpace(v), "<>")
		}
	}
	if msgID == "" {
		msgID = fmt.Sprintf("%d.%d@%s", time.Now().UnixNano(), msgSeq.Add(1), Hostname)
		message = "Message-Id: <" + msgID + ">\n" + message
	}
	// -C selects the instance's config directory; -f the envelope sender;
	// -i keeps a lone "." line from ending the message (sendmail(1)).
	args := append([]string{"-C", i.l.confDir(), "-i", "-f", from, "--"}, to...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, i.bins.sendmail, args...)
	cmd.Stdin = strings.NewReader(message)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("postfixtest: submit with sendmail: %v: %s", err, out)
	}
	return msgID
}
