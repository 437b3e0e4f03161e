package postfixtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestFollowerLines: complete lines only, a partial line is held back until
// its newline arrives, and nothing is returned twice.
func TestFollowerLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	fl := &follower{path: path}
	defer fl.close()

	steps := []struct {
		write string
		want  []string
	}{
		{"", nil}, // file does not exist yet: no error, no lines
		{"one\ntw", []string{"one"}},
		{"o\n", []string{"two"}},
		{"", nil},
		{"three\nfour\n\nfi", []string{"three", "four", ""}},
		{"ve\n", []string{"five"}},
	}
	for n, s := range steps {
		if s.write != "" {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(s.write); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		got, err := fl.next()
		if err != nil {
			t.Fatalf("step %d: %v", n, err)
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("step %d: next() = %q, want %q", n, got, s.want)
		}
	}
}

// TestFollowerLongLine: a line longer than the read buffer is reassembled.
func TestFollowerLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	long := string(make([]byte, 200<<10))
	if err := os.WriteFile(path, []byte("a\n"+long+"\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readLines(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != "a" || len(got[1]) != len(long) || got[2] != "b" {
		t.Errorf("readLines: %d lines, want a, %d bytes, b", len(got), len(long))
	}
}

// TestWaitLineFollows: a line appended after the wait started is found, and
// an earlier line is found too (the wait scans from the beginning).
func TestWaitLineFollows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	if err := os.WriteFile(path, []byte("early line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if got, err := waitLine(ctx, path, Contains("early")); err != nil || got != "early line" {
		t.Fatalf("waitLine(early) = %q, %v", got, err)
	}

	started := make(chan struct{})
	result := make(chan string, 1)
	go func() {
		close(started)
		got, err := waitLine(ctx, path, Contains("late", "line"))
		if err != nil {
			got = err.Error()
		}
		result <- got
	}()
	<-started
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Written in two pieces: the predicate must see the joined line.
	if _, err := f.WriteString("a late "); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("line\n"); err != nil {
		t.Fatal(err)
	}
	if got := <-result; got != "a late line" {
		t.Errorf("waitLine(late) = %q", got)
	}
}

func TestWaitLineContextEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := waitLine(ctx, path, func(string) bool { return true })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("waitLine on a cancelled context = %v, want context.Canceled", err)
	}
}

func TestPredicates(t *testing.T) {
	const (
		sent    = "Nov 27 09:58:40 mx postfix/smtp[13664]: 4E06198544A: to=<bob@ok.test>, relay=127.0.0.1[127.0.0.1]:37189, delay=0.08, delays=0.02/0.03/0.02/0.01, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
		fwd     = "Nov 27 09:59:32 mx postfix/smtp[15890]: 835B7985015: to=<forwarded@ok.test>, orig_to=<forward@local.test>, relay=127.0.0.1[127.0.0.1]:33053, delay=0.02, delays=0.02/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
		removed = "Nov 27 09:58:40 mx postfix/qmgr[13655]: 7E310984074: removed"
		expired = "Nov 27 10:00:55 mx postfix/qmgr[18061]: BBF2D98464D: from=<alice@ok.test>, status=expired, returned to sender"
	)
	cases := []struct {
		name string
		pred func(string) bool
		line string
		want bool
	}{
		{"delivery", Delivery("4E06198544A", "bob@ok.test", "sent"), sent, true},
		{"delivery other status", Delivery("4E06198544A", "bob@ok.test", "deferred"), sent, false},
		{"delivery other qid", Delivery("4E06198544", "bob@ok.test", "sent"), sent, false},
		{"delivery other rcpt", Delivery("4E06198544A", "ob@ok.test", "sent"), sent, false},
		{"delivery orig_to is not to", Delivery("835B7985015", "forward@local.test", "sent"), fwd, false},
		{"removed", Removed("7E310984074"), removed, true},
		{"removed prefix qid", Removed("310984074"), removed, false},
		{"expired", Expired("BBF2D98464D"), expired, true},
		{"expired is not removed", Removed("BBF2D98464D"), expired, false},
		{"contains none", Contains(), sent, true},
	}
	for _, c := range cases {
		if got := c.pred(c.line); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
