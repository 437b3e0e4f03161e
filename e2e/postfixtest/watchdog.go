package postfixtest

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
)

// watchdogScript cleans up after a test binary that died without running
// t.Cleanup (go test -timeout panics, a crash, Ctrl-C). Its stdin is a pipe
// whose only writer is the test process, so EOF means the test process is
// gone. It then terminates every process it was told about and removes the
// instance directory.
//
// prctl(PR_SET_PDEATHSIG) cannot do this job: the kernel clears it when a
// process changes credentials (prctl(2)), which smtp-sink -u and the Postfix
// master both do.
const watchdogScript = `
dir=$1
pids=
while read -r op pid; do
	case $op in
	add) pids="$pids $pid" ;;
	del)
		kept=
		for p in $pids; do [ "$p" = "$pid" ] || kept="$kept $p"; done
		pids=$kept
		;;
	esac
done
for p in $pids; do kill -s TERM -- "$p" 2>/dev/null; done
sleep 2
for p in $pids; do kill -s KILL -- "$p" 2>/dev/null; done
case $dir in
/?*) [ -n "$POSTFIXTEST_KEEP" ] || rm -rf -- "$dir" ;;
esac
`

type watchdog struct {
	mu  sync.Mutex
	w   *os.File // nil once disarmed
	cmd *exec.Cmd
}

func startWatchdog(dir string) (*watchdog, error) {
	r, w, err := os.Pipe() // close-on-exec: no other child inherits w
	if err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "postfixtest-watchdog", dir)
	cmd.Stdin = r
	// Its own process group, so a Ctrl-C aimed at "go test" does not kill
	// the watchdog before it has done its work.
	cmd.SysProcAttr = ownProcessGroup()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	r.Close()
	return &watchdog{w: w, cmd: cmd}, nil
}

func (wd *watchdog) send(op string, id int) {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if wd.w != nil {
		fmt.Fprintf(wd.w, "%s %d\n", op, id)
	}
}

// watch registers a process; a negative id is a process group.
func (wd *watchdog) watch(id int) { wd.send("add", id) }

// forget unregisters a process that has been stopped, so a recycled pid is
// never signalled.
func (wd *watchdog) forget(id int) { wd.send("del", id) }

// disarm stops the watchdog without letting it act: Close does the orderly
// shutdown itself.
func (wd *watchdog) disarm() {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if wd.w == nil {
		return
	}
	wd.cmd.Process.Kill()
	wd.cmd.Wait()
	wd.w.Close()
	wd.w = nil
}
