package dispatcher_test

import (
	"testing"
	"time"

	"github.com/posthorn/posthorn/dispatcher/outboxtest"
	"github.com/posthorn/posthorn/event"
)

// TestMemOutbox runs the Outbox scenarios against the in-memory reference;
// sqlite runs the same against a real database file.
func TestMemOutbox(t *testing.T) {
	outboxtest.Run(t, func(t *testing.T) outboxtest.Harness {
		m := outboxtest.NewMem()
		return outboxtest.Harness{
			Outbox:  m,
			Store:   func(_ testing.TB, evs ...event.Event) { m.Store(evs...) },
			Inspect: func(_ testing.TB, id string) (outboxtest.Batch, bool) { return m.Inspect(id) },
			IDs:     func(testing.TB) []string { return m.IDs() },
			FailOn:  func(method string) { m.FailOn = method },
			Replay:  func(_ testing.TB, now time.Time) int { return m.Requeue(now) },
		}
	})
}
