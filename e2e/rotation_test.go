package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/postfixtest"
)

// TestServeFollowsPostfixLogrotate rotates a real Postfix's maillog_file
// with `postfix logrotate` (rename, HUP so postlogd reopens, then gzip the
// old file) while mail keeps flowing. Every line of every rotated file must
// reach the store once: the stored events equal `posthorn parse` over the
// rotated files and the live one, in order.
func TestServeFollowsPostfixLogrotate(t *testing.T) {
	inst := postfixtest.Start(t, postfixtest.Options{})
	dir := testDir(t)
	db := filepath.Join(dir, "posthorn.db")
	maillog := inst.MaillogPath()
	d := startServe(t, writeConfig(t, dir, maillog, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Two clients send mail without pause while the log rotates.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				inst.Send(t, "alice@"+postfixtest.DomainOK, []string{"bob@" + postfixtest.DomainOK, "carol@" + postfixtest.DomainOK})
			}
		}()
	}
	last := time.Now().Unix()
	for range 4 {
		// Let some mail be logged in this file first.
		m := inst.Send(t, "marker@"+postfixtest.DomainOK, []string{"dave@" + postfixtest.DomainOK})
		inst.WaitLog(t, ctx, postfixtest.Removed(m.QueueID))
		// The rotated file is named with a one-second suffix: a second
		// rotation within the same second would overwrite the first.
		for time.Now().Unix() == last {
			inst.WaitLog(t, ctx, func(string) bool { return time.Now().Unix() != last })
		}
		last = time.Now().Unix()
		out, err := exec.Command("postfix", "-c", inst.ConfigDir(), "logrotate").CombinedOutput()
		if err != nil {
			t.Fatalf("postfix logrotate: %v\n%s", err, out)
		}
	}
	close(stop)
	wg.Wait()
	inst.WaitQueueEmpty(t, ctx)
	waitFor(t, d, time.Minute, "serve to consume the live maillog", func() bool {
		c, ok := storeCursor(t, db, "file:"+maillog)
		return ok && c.Inode == inode(t, maillog) && c.Offset == fileSize(t, maillog)
	})

	rotated, err := filepath.Glob(maillog + ".*")
	if err != nil || len(rotated) != 4 {
		t.Fatalf("rotated files: %v %v", rotated, err)
	}
	slices.Sort(rotated) // the suffix is %Y%m%d-%H%M%S
	want := parseOracle(t, append(rotated, maillog)...)
	got := storedEvents(t, db)
	gm, wm := byID(got), byID(want)
	for id, w := range wm {
		if _, ok := gm[id]; !ok {
			t.Errorf("lost event %s %s %s", w.Type, w.QueueID, w.To)
		}
	}
	for id, g := range gm {
		if _, ok := wm[id]; !ok {
			t.Errorf("event not in the rotated files: %s %s %s", g.Type, g.QueueID, g.To)
		}
	}
	if len(want) < 40 {
		t.Errorf("only %d events: too little mail to mean anything", len(want))
	}
	t.Logf("%d events over %d rotated files and the live one", len(want), len(rotated))
}
