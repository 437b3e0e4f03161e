package logtail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/posthorn/posthorn/event"
)

// checkGolden compares got with testdata/source/name, or rewrites it
// under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	checkGoldenFile(t, filepath.Join("testdata", "source", name), got)
}

// checkGoldenFile compares got with the file at path, or rewrites it under
// -update.
func checkGoldenFile(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from the golden file (run with -update to accept; -want +got):\n%s", path, diff)
	}
}

// syncBuffer collects log output written from the Read goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// drain reads everything a source has now, max lines per Read, without
// waiting: a done context makes Read return what is there, then
// ctx.Err().
func drain(t *testing.T, src Source, max int) []Line {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out []Line
	for {
		buf, err := src.Read(ctx, nil, max)
		if len(buf) > max {
			t.Fatalf("Read returned %d lines, max %d", len(buf), max)
		}
		out = append(out, buf...)
		if errors.Is(err, context.Canceled) {
			if len(buf) != 0 {
				t.Fatalf("Read returned lines with ctx.Err()")
			}
			return out
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(buf) == 0 {
			t.Fatalf("Read returned no lines and no error")
		}
	}
}

func texts(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func ExampleFileSource() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mail.log")
	os.WriteFile(path, []byte("Nov 27 10:00:00 mx postfix/qmgr[1]: 4F3A21C2: removed\n"), 0o644)

	src, err := NewFileSource(path, event.Cursor{}, FileOptions{Start: StartBegin})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	lines, _ := src.Read(context.Background(), nil, 100)
	for _, l := range lines {
		fmt.Println(l.Text, l.Cursor.Offset)
	}
	// Output: Nov 27 10:00:00 mx postfix/qmgr[1]: 4F3A21C2: removed 54
}
