package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/posthorn/posthorn/event"
)

// BenchmarkCommit commits batches shaped like the log reader's: events,
// upserts of the open messages they touch, closes of the messages before
// them, and the cursor, into a real file. events/s is the figure to hold
// against the reader's need (about 60-100k events/s at 200k lines/s).
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{100, 1000, 5000} {
		for _, full := range []bool{false, true} {
			name := fmt.Sprintf("batch=%d/sync=normal", size)
			if full {
				name = fmt.Sprintf("batch=%d/sync=full", size)
			}
			b.Run(name, func(b *testing.B) {
				s := openTest(b, Options{FullSync: full})
				// The log reader's context can be cancelled, as at shutdown.
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				// Build the batches first so that the timed loop measures
				// the store, not the generator.
				distinct := min(b.N, 64)
				batches := make([]event.Batch, distinct)
				for i := range batches {
					batches[i] = event.Batch{
						Events: genEvents(i*size, size),
						Upsert: genMessages(i*size, size),
						Cursor: event.Cursor{Source: "file:/var/log/mail.log", Dev: 2049, Inode: 131, Offset: int64(i * size * 180)},
					}
					if i > 0 {
						for _, m := range genMessages((i-1)*size, size) {
							batches[i].Close = append(batches[i].Close, m.MessageKey)
						}
					}
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					batch := batches[i%distinct]
					if i >= distinct {
						// Fresh ids, so every event is a real insert.
						b.StopTimer()
						batch.Events = genEvents(i*size, size)
						b.StartTimer()
					}
					if err := s.Commit(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
