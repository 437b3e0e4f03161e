package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/event"
)

// clock is the time the suppression list runs on. Changed, when not nil,
// delivers a value when the time moved other than by running (a test
// clock set forward), so the scheduler looks again at once.
type clock interface {
	Now() time.Time
	Changed() <-chan struct{}
	Stop()
}

// testClockEnv names a file holding the current time (RFC 3339) for the
// suppression list's clock, read instead of the system clock. Only tests
// set it: the end-to-end test moves the time to an execution time without
// waiting for it.
const testClockEnv = "POSTHORN_TEST_CLOCK"

func newClock() (clock, error) {
	path := os.Getenv(testClockEnv)
	if path == "" {
		return systemClock{}, nil
	}
	return newFileClock(path, 20*time.Millisecond)
}

type systemClock struct{}

func (systemClock) Now() time.Time           { return time.Now() }
func (systemClock) Changed() <-chan struct{} { return nil }
func (systemClock) Stop()                    {}

// fileClock reads the time from a file and reports a change when the
// file's content changes.
type fileClock struct {
	path    string
	mu      sync.Mutex
	now     time.Time
	changed chan struct{}
	stop    chan struct{}
	done    sync.WaitGroup
}

func newFileClock(path string, poll time.Duration) (*fileClock, error) {
	c := &fileClock{path: path, changed: make(chan struct{}, 1), stop: make(chan struct{})}
	t, err := c.read()
	if err != nil {
		return nil, err
	}
	c.now = t
	c.done.Go(func() {
		tick := time.NewTicker(poll)
		defer tick.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			t, err := c.read()
			if err != nil {
				continue // mid-write; the next look gets it
			}
			c.mu.Lock()
			moved := !t.Equal(c.now)
			c.now = t
			c.mu.Unlock()
			if moved {
				select {
				case c.changed <- struct{}{}:
				default:
				}
			}
		}
	})
	return c, nil
}

func (c *fileClock) read() (time.Time, error) {
	b, err := os.ReadFile(c.path)
	if err != nil {
		return time.Time{}, fmt.Errorf("read test clock: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, fmt.Errorf("read test clock %s: %w", c.path, err)
	}
	return t, nil
}

func (c *fileClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fileClock) Changed() <-chan struct{} { return c.changed }

func (c *fileClock) Stop() {
	close(c.stop)
	c.done.Wait()
}

// blockStore is what the scheduler needs of the store.
type blockStore interface {
	FireBlocks(ctx context.Context, now time.Time) ([]event.Event, error)
	NextBlockDue(ctx context.Context) (time.Time, bool, error)
}

// blockPoll bounds the scheduler's sleep: entries added by `posthorn
// blocks add` run in another process, which cannot wake this one, and a
// system clock that jumps is noticed within it.
const blockPoll = 30 * time.Second

// runBlockScheduler makes scheduled registrations and watch-period
// expiries take effect when their time comes, until ctx ends. notify
// tells the Event Webhook that records were stored.
func runBlockScheduler(ctx context.Context, store blockStore, clk clock, notify func(), log *slog.Logger) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failing := false
	for {
		wait := blockPoll
		evs, err := store.FireBlocks(ctx, clk.Now())
		if err == nil {
			var next time.Time
			var ok bool
			next, ok, err = store.NextBlockDue(ctx)
			if ok {
				wait = min(wait, max(0, next.Sub(clk.Now())))
			}
		}
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				log.Error("suppression list scheduler", "err", err)
			}
			failing = true
		case err == nil:
			failing = false
		}
		for _, e := range evs {
			log.Info("suppression list", "address", e.To, "event", e.Type, "at", e.Time)
		}
		if len(evs) > 0 && notify != nil {
			notify()
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-clk.Changed():
		}
	}
}

// startBlocks runs the scheduler beside serve's other components, on the
// service's clock; the returned function stops it and waits.
func startBlocks(ctx context.Context, svc *blockService, log *slog.Logger) func() {
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { runBlockScheduler(rctx, svc.store, svc.clk, svc.notify, log.With("component", "blocks")) })
	return func() { cancel(); wg.Wait() }
}
