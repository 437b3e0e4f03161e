package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/settings"
)

// TestLiveSettings drives the settings poller tick by tick: an unchanged
// read does nothing, a change is checked, made current and announced, an
// invalid one is logged and leaves the current settings, and a failed read
// is logged.
func TestLiveSettings(t *testing.T) {
	type conf struct{ N int }
	var mu sync.Mutex
	stored, readErr := conf{1}, error(nil)
	read := func(context.Context) (conf, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return stored, true, readErr
	}
	set := func(c conf, err error) {
		mu.Lock()
		stored, readErr = c, err
		mu.Unlock()
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	check := func(c conf) error {
		if c.N < 0 {
			return errors.New("N must not be negative")
		}
		return nil
	}
	announced := make(chan conf, 4)
	live := &liveSettings[conf]{cur: conf{1}}
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		live.pollOn(ctx, tick, log, "test settings", read, check, func(c conf, _ bool) { announced <- c })
	}()
	// step runs one round with the store as set, and has it end: the
	// poller takes a tick only between rounds, so the second send returns
	// once the first round is over (the second round reads the same
	// store, which changes nothing).
	step := func() {
		tick <- time.Time{}
		tick <- time.Time{}
	}

	step()
	set(conf{2}, nil)
	step()
	if c := <-announced; c.N != 2 || live.get().N != 2 {
		t.Errorf("announced %v, current %v; want 2", c, live.get())
	}
	set(conf{-1}, nil)
	step()
	set(conf{-1}, errors.New("database is locked"))
	step()
	cancel()
	<-done
	if live.get().N != 2 || len(announced) != 0 {
		t.Errorf("current %v, %d more announcements; want 2 and none", live.get(), len(announced))
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, want := range []string{`msg="test settings changed but are not valid: keeping the previous ones" err="N must not be negative"`,
		`msg="read test settings" err="database is locked"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// lockedWriter lets goroutines log into one buffer.
type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestPlainHTTPWarnedOncePerChange: serve warns about a plain http://
// endpoint when it starts with one and at each change of the settings
// that still holds one, not at every poll (nor at every post).
func TestPlainHTTPWarnedOncePerChange(t *testing.T) {
	var mu sync.Mutex
	stored := settings.Default()
	stored.Endpoint, stored.Deliveries = "http://127.0.0.1:8080/events?token=SECRET", true
	read := func(context.Context) (settings.EventWebhook, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return stored, true, nil
	}
	set := func(f func(*settings.EventWebhook)) {
		mu.Lock()
		f(&stored)
		mu.Unlock()
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	warnings := func() int {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Count(logs.String(), "level=WARN msg=\"plain http:// endpoint")
	}

	cur, _, _ := read(context.Background())
	describe(log, cur, true, "event webhook settings") // serve's start
	if n := warnings(); n != 1 {
		t.Fatalf("%d warnings at start:\n%s", n, logs.String())
	}
	live := &liveSettings[settings.EventWebhook]{cur: cur}
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		live.pollOn(ctx, tick, log, "event webhook settings", read, nil, func(s settings.EventWebhook, saved bool) {
			describe(log, s, saved, "event webhook settings changed")
		})
	}()
	step := func() { tick <- time.Time{}; tick <- time.Time{} } // as in TestLiveSettings

	step() // unchanged: no warning
	set(func(s *settings.EventWebhook) { s.Bounces = true })
	step() // changed, still http: one warning
	step()
	set(func(s *settings.EventWebhook) { s.Endpoint = "https://hook.example.com/events" })
	step() // https: none
	cancel()
	<-done
	logMu.Lock()
	defer logMu.Unlock()
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings, want 2 (start and one change):\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "SECRET") || !strings.Contains(logs.String(), "field=event_webhook.endpoint endpoint=http://127.0.0.1:8080/events") {
		t.Errorf("warning without the field and the redacted endpoint:\n%s", logs.String())
	}
}

func TestPlainHTTPWarnedForInboundFilters(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	in := settings.Inbound{Filters: []settings.InboundFilter{
		settings.NewInboundFilter("tls", "https://h.example/a"),
		settings.NewInboundFilter("dev", "http://u:SECRET@127.0.0.1/b"),
	}}
	describeInbound(log, in, true, "inbound settings")
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "filter=dev field=inbound.filters[1].endpoint endpoint=http://127.0.0.1/b") ||
		strings.Contains(logs.String(), "SECRET") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// serve warns at start while the config allows plain http://, and about
// the http:// endpoint of the saved settings.
func TestServeWarnsInsecureHTTPAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "posthorn.toml")
	conf := "hostname = \"mx1\"\nallow_insecure_http = true\n[store]\npath = \"" + filepath.Join(dir, "db") + "\"\n[maillog]\npath = \"" + filepath.Join(dir, "mail.log") + "\"\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, store, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s := settings.Default()
	s.Endpoint, s.Deliveries = "http://127.0.0.1:9/events", true
	if err := store.SaveEventWebhookSettingsHTTP(context.Background(), s, true); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	wh, err := startWebhook(context.Background(), cfg, store, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	wh.stop()
	for _, want := range []string{`level=WARN msg="allow_insecure_http = true: webhook endpoints may be plain http://`,
		`level=WARN msg="plain http:// endpoint: posts and their credentials cross the network unencrypted (allow_insecure_http is for local development only)" component="event webhook" field=event_webhook.endpoint endpoint=http://127.0.0.1:9/events`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}
