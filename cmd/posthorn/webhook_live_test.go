package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
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
