//go:build linux

package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/posthorn/posthorn/event"
)

// crashChildEnv, when set to a database path, makes the test binary act as
// the child of TestCrashKeepsBatchesWhole instead of running tests. With
// crashHoldEnv set to one of its output lines, the child stops after writing
// that line and waits to be killed.
const (
	crashChildEnv = "POSTHORN_SQLITE_CRASH_CHILD"
	crashHoldEnv  = "POSTHORN_SQLITE_CRASH_HOLD"
)

const (
	crashSource   = "file:/var/log/mail.log"
	crashPerBatch = 400 // events per batch: big enough that a kill often lands mid-commit
	crashMaxBatch = 100000
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		if err := crashChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashBatch is batch number i (from 1) of the child: its events, the open
// messages they leave, the messages of the batch before closed, and the
// cursor offset i. A whole batch i in the store means exactly i*N events.
func crashBatch(i int) event.Batch {
	b := event.Batch{
		Events: genEvents((i-1)*crashPerBatch, crashPerBatch),
		Upsert: genMessages((i-1)*crashPerBatch, crashPerBatch),
		Cursor: event.Cursor{Source: crashSource, Dev: 2049, Inode: 131, Offset: int64(i)},
	}
	if i > 1 {
		for _, m := range genMessages((i-2)*crashPerBatch, crashPerBatch) {
			b.Close = append(b.Close, m.MessageKey)
		}
	}
	return b
}

// crashChild commits batches after the stored cursor until it is killed. It
// writes "stage NAME N" as Commit passes each stage of batch N and
// "committed N" after Commit returns, so that the parent can kill it at a
// chosen point.
func crashChild(path string) error {
	s, err := Open(path, Options{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	c, _, err := s.Cursor(ctx, crashSource)
	if err != nil {
		return err
	}
	hold := os.Getenv(crashHoldEnv)
	report := func(line string) {
		fmt.Fprintln(os.Stdout, line)
		if line == hold {
			// Wait for SIGKILL; the parent never writes to stdin. A
			// read that ends means the parent is gone.
			os.Stdin.Read(make([]byte, 1))
			fmt.Fprintln(os.Stderr, "crash child: stdin closed, exiting")
			os.Exit(3)
		}
	}
	var i int
	s.afterStage = func(stage string) { report(fmt.Sprintf("stage %s %d", stage, i)) }
	// Bounded, so that a child whose parent forgot it stops by itself.
	for i = int(c.Offset) + 1; i <= crashMaxBatch; i++ {
		if err := s.Commit(ctx, crashBatch(i)); err != nil {
			return err
		}
		report(fmt.Sprintf("committed %d", i))
	}
	return s.Close()
}

// TestCrashKeepsBatchesWhole kills a committing process with SIGKILL at
// random points, several times, and checks after each kill that the file
// is intact and holds whole batches only: every commit reported before
// the kill, and no part of any batch after the last whole one.
func TestCrashKeepsBatchesWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped with -short")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	// Where to kill: just after a commit returned, or just after a stage
	// inside Commit. Held, the child waits there, so the kill lands inside
	// the open transaction (after "cursor": just before COMMIT). Not held,
	// it runs on, and the kill lands wherever the child has got to by then,
	// sometimes inside COMMIT's write of the WAL.
	points := []string{"committed", "events", "close", "upsert", "cursor"}
	const rounds = 12
	lastBatch := 0
	for round := 1; round <= rounds; round++ {
		target := lastBatch + 1 + rng.IntN(6)
		if round == 1 {
			target = 1 // the file is new: a kill before the first commit
		}
		point := points[rng.IntN(len(points))]
		line := fmt.Sprintf("stage %s %d", point, target)
		if point == "committed" {
			line = fmt.Sprintf("committed %d", target)
		}
		held := rng.IntN(2) == 0
		reported := runAndKill(t, path, line, held)
		walSize := int64(-1)
		if fi, err := os.Stat(path + "-wal"); err == nil {
			walSize = fi.Size()
		}

		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		ctx := context.Background()
		var check string
		if err := s.w.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("round %d: integrity_check = %q, %v", round, check, err)
		}
		// No cursor yet means no batch: the kill came inside the first.
		c, _, err := s.Cursor(ctx, crashSource)
		if err != nil {
			t.Fatalf("round %d: cursor: %v", round, err)
		}
		n := int(c.Offset)
		want := target - 1 // held inside batch target
		if point == "committed" {
			want = target
		}
		if n < reported || (held && n != want) {
			t.Fatalf("round %d (held %v at %q): cursor at batch %d; batch %d was reported committed",
				round, held, line, n, reported)
		}
		counts, err := s.CountEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, v := range counts {
			total += v
		}
		if total != int64(n*crashPerBatch) {
			t.Fatalf("round %d: %d events with the cursor at batch %d, want %d: a batch is partly stored",
				round, total, n, n*crashPerBatch)
		}
		got, err := s.Events(ctx, event.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(genEvents(0, n*crashPerBatch), got, sameInstantAndOffset, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round %d: stored events differ from batches 1..%d (-want +got):\n%s", round, n, diff)
		}
		msgs, err := s.OpenMessages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var wantMsgs []event.Message
		if n > 0 {
			wantMsgs = genMessages((n-1)*crashPerBatch, crashPerBatch)
		}
		if diff := cmp.Diff(wantMsgs, msgs, sameInstantAndOffset); diff != "" {
			t.Fatalf("round %d: open messages differ from batch %d's (-want +got):\n%s", round, n, diff)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %q (held %v) with a %d-byte WAL; batches 1..%d stored whole",
			round, line, held, walSize, n)
		lastBatch = n
	}
}

// runAndKill starts a child on path, reads its lines up to and including
// stopAt, and kills it with SIGKILL. With hold the child waits at stopAt.
// It returns the last batch the child reported committed.
func runAndKill(t *testing.T, path, stopAt string, hold bool) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	if hold {
		cmd.Env = append(cmd.Env, crashHoldEnv+"="+stopAt)
	}
	cmd.Stderr = os.Stderr
	// The child dies with the test process, should the test die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Stdin stays open and silent until the child is dead: a held child
	// waits on it.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf(format, args...)
	}
	lines := bufio.NewScanner(out)
	committed := 0
	for {
		if !lines.Scan() {
			fail("child ended before %q: %v", stopAt, lines.Err())
		}
		line := lines.Text()
		if n, ok := strings.CutPrefix(line, "committed "); ok {
			if _, err := fmt.Sscan(n, &committed); err != nil {
				fail("child wrote %q", line)
			}
		}
		if line == stopAt {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || !strings.Contains(ee.String(), "killed") {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	return committed
}
