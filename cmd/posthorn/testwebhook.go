package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

const testWebhookUsage = `usage:
  posthorn test-webhook [--type deliveries|bounces|blocks] [--config FILE]

Posts one sample batch to the Event Webhook endpoint with the saved
settings (format, authentication, signature) and prints the endpoint's
answer. Nothing is stored. The sample's addresses are under example.com,
and its batch id and event ids are new each time. A type that is turned
off in the settings (say blocks: false) is posted all the same, with a note
that posthorn serve does not post it. Exit status 0 on a 2xx answer, 1
otherwise; 2 when no endpoint is set.
`

func runTestWebhook(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test-webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, testWebhookUsage) }
	path := configFlag(fs)
	family := fs.String("type", settings.Deliveries, "the event type of the sample: deliveries, bounces or blocks")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, store, err := openStore(*path)
	if err != nil {
		return report(stderr, "posthorn test-webhook", err)
	}
	s, saved, err := store.EventWebhookSettings(ctx)
	store.Close()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	if !saved {
		fmt.Fprintln(stderr, "posthorn test-webhook: no Event Webhook settings saved yet (posthorn settings import FILE)")
		return exitConfig
	}
	if err := s.Validate(cfg.AllowInsecureHTTP); err != nil {
		fmt.Fprintf(stderr, "posthorn test-webhook: %v\n", err)
		return exitConfig
	}
	if s.Endpoint == "" {
		fmt.Fprintln(stderr, "posthorn test-webhook: the Event Webhook is off: no endpoint is set (event_webhook.endpoint, posthorn settings import FILE)")
		return exitConfig
	}
	evs, err := sampleEvents(cfg, *family, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "posthorn test-webhook: %v\n", err)
		return exitConfig
	}
	ct, body, err := dispatcher.Encode(s, cfg.ServerComposition, *family, evs)
	if err != nil {
		fmt.Fprintf(stderr, "posthorn test-webhook: %v\n", err)
		return exitConfig
	}
	p, err := dispatcher.NewPoster(dispatcher.PosterOptions{Version: version, CAFile: s.CAFile})
	if err != nil {
		fmt.Fprintf(stderr, "posthorn test-webhook: %v\n", err)
		return exitConfig
	}
	defer p.Close()
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	id := dispatcher.BatchID(*family, ids)
	if !s.Posts(*family) {
		// A test is asked for on purpose, often while setting the webhook
		// up, before the type is turned on: post it, but say that serve
		// would not.
		fmt.Fprintf(stdout, "note: %s records are turned off in the settings (%s: false): posthorn serve does not post them; this test posts one anyway\n", *family, *family)
	}
	fmt.Fprintf(stdout, "POST %s\n  %s, version %d, %s, %d records, %d bytes, webhook-id %s\n", s.Endpoint, *family, s.Version, ct, len(evs), len(body), id)
	res := p.Post(ctx, dispatcher.NewRequest(s, id, 1, ct, body))
	fmt.Fprintf(stdout, "%s after %s: %s\n", res.Outcome, res.Took.Round(time.Millisecond), res.Reason)
	if res.Status != 0 {
		more := ""
		if res.Read > len(res.Response) || res.Truncated {
			more = fmt.Sprintf(" (first %d of %d+ bytes)", len(res.Response), res.Read)
		}
		fmt.Fprintf(stdout, "answer%s:\n%s\n", more, event.ValidUTF8(string(res.Response)))
	}
	if res.Outcome != dispatcher.Success {
		return exitFail
	}
	return exitOK
}

// sampleEvents makes the records of a test batch: plausible, clearly a
// test, and never colliding with real event ids.
func sampleEvents(cfg *config.Config, family string, now time.Time) ([]event.Event, error) {
	nonce := make([]byte, 8)
	rand.Read(nonce) // never fails (crypto/rand documentation, Go 1.24+)
	tag := hex.EncodeToString(nonce)
	base := event.Event{
		Time: now, Host: cfg.Hostname, QueueID: "4TEST" + tag[:6], MessageID: "<posthorn-test." + tag + "@" + cfg.Hostname + ">",
		ReturnPath: "sender@example.com", To: "recipient@example.com", Subject: "Posthorn test-webhook",
	}
	mk := func(n int, t event.Type, f func(*event.Event)) event.Event {
		e := base
		e.ID, e.Type = fmt.Sprintf("test-%s-%d", tag, n), t
		if f != nil {
			f(&e)
		}
		return e
	}
	switch family {
	case settings.Deliveries:
		return []event.Event{
			mk(1, event.Queued, func(e *event.Event) { e.SourceIP = "192.0.2.10" }),
			mk(2, event.Succeeded, func(e *event.Event) {
				e.Relay, e.DSN, e.SenderIP, e.Delay, e.Attempt = "mx.example.com[192.0.2.25]:25", "2.0.0", "192.0.2.25", "0.5", 1
				e.Reason = "250 2.0.0 OK: queued as TEST"
			}),
		}, nil
	case settings.Bounces:
		return []event.Event{mk(1, event.Bounced, func(e *event.Event) {
			e.DSN, e.Class = "5.1.1", event.ClassUnknownUser
			e.Reason = "host mx.example.com[192.0.2.25] said: 550 5.1.1 <recipient@example.com>: User unknown (in reply to RCPT TO command)"
		})}, nil
	case settings.Blocks:
		return []event.Event{mk(1, event.Registered, func(e *event.Event) { e.Class = event.ClassUnknownUser })}, nil
	}
	return nil, fmt.Errorf("--type %q: want deliveries, bounces or blocks", family)
}
