package postfixtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// pollInterval is how often the harness re-checks a condition it waits for
// (a log line, a listening port, an empty queue). The waits are bounded by a
// context, never by a fixed sleep.
const pollInterval = 20 * time.Millisecond

// lockedBuffer collects a child's stdout and stderr for error messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Keep the tail only: a sink that logs per session must not grow without
	// bound in a long test.
	if l.b.Len() > 64<<10 {
		rest := l.b.Bytes()[l.b.Len()-32<<10:]
		l.b = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a child process owned by one goroutine that waits for it, so its
// exit is observable (done) instead of being discovered by polling a pid.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error // valid after done is closed
}

func startProc(name string, argv ...string) (*proc, error) {
	p := &proc{name: name, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes how the process ended, with its captured output.
func (p *proc) exitError() error {
	out := bytes.TrimSpace([]byte(p.out.String()))
	if len(out) > 0 {
		return fmt.Errorf("%s exited: %v: %s", p.name, p.err, out)
	}
	return fmt.Errorf("%s exited: %v", p.name, p.err)
}

// stop sends sig, waits up to grace for the exit, then kills.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, syscall.ESRCH) && !p.exited() {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("stop %s: still running %v after signal %v, killed", p.name, grace, sig)
}

// waitFor polls cond until it returns true, returns an error, or ctx ends.
func waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, context.Cause(ctx))
		case <-t.C:
		}
	}
}
