package prof

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/loggen"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/logtail"
	"github.com/posthorn/posthorn/sqlite"
)

type discard struct{ n int; b []byte }

func (d *discard) Commit(_ context.Context, b event.Batch) error {
	for i := range b.Events { d.b = b.Events[i].AppendJSON(d.b[:0]); d.n += len(d.b) }
	return nil
}

func BenchmarkPipeline(b *testing.B) {
	sample, _ := os.ReadFile("/work/main/cmd/posthorn/sample.log")
	tpl, _ := loggen.New(string(sample))
	f, _ := os.Create("/tmp/prof/1m.log")
	tpl.Write(f, 1000000)
	f.Close()
	for b.Loop() {
		src, _ := logtail.NewReaderSource([]string{"/tmp/prof/1m.log"}, logtail.ReaderOptions{})
		t := &logtail.Tailer{Source: src, Sink: &discard{}, Resolver: logtail.NewResolver(time.UTC, time.Now(), 2026), Correlator: logtail.NewCorrelator(logtail.CorrelatorOptions{})}
		t.Run(context.Background())
	}
}

func BenchmarkServe(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		st, err := sqlite.Open(dir+"/p.db", sqlite.Options{})
		if err != nil { b.Fatal(err) }
		src, _ := logtail.NewReaderSource([]string{"/tmp/prof/1m.log"}, logtail.ReaderOptions{})
		t := &logtail.Tailer{Source: src, Sink: st, Resolver: logtail.NewResolver(time.UTC, time.Now(), 2026), Correlator: logtail.NewCorrelator(logtail.CorrelatorOptions{Persist: true})}
		t.Run(context.Background())
		st.Close()
	}
}
