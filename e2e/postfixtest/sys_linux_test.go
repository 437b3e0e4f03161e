//go:build linux

package postfixtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestReservedPortRefusesAndCanBeTaken: a reserved port refuses connections
// (dead.test relies on this), a SO_REUSEADDR listener (like Postfix's
// inet_listen, and like Go's net.Listen) can still take it, and it refuses
// again once that listener is gone.
func TestReservedPortRefusesAndCanBeTaken(t *testing.T) {
	r, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	defer r.release()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial reserved port: %v, want connection refused", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on reserved port: %v", err)
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			fmt.Fprintf(c, "220 taken.test ESMTP\r\n")
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	}()
	if !greets(addr, "taken.test") {
		t.Errorf("no greeting from the listener on the reserved port")
	}
	l.Close()
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial after the listener closed: %v, want connection refused", err)
	}
}

// TestReservedPortNotHandedOut: the kernel's ephemeral allocator skips a
// reserved port, so another test asking for ":0" never gets it.
func TestReservedPortNotHandedOut(t *testing.T) {
	r, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	defer r.release()
	for range 2000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port == r.port {
			t.Fatalf("listen on :0 was given the reserved port %d", port)
		}
	}
}

func TestGreets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "220 sink1.ok.test ESMTP\r\n")
			c.Close()
		}
	}()
	addr := l.Addr().String()
	if !greets(addr, "sink1.ok.test") {
		t.Errorf("greets(sink1.ok.test) = false")
	}
	if greets(addr, "sink2.ok.test") {
		t.Errorf("greets(sink2.ok.test) = true for another server's greeting")
	}
}

func TestWaitForReportsCause(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := waitFor(ctx, "nothing", func() (bool, error) { return false, nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waitFor = %v, want deadline exceeded", err)
	}
	boom := errors.New("boom")
	err = waitFor(t.Context(), "error", func() (bool, error) { return false, boom })
	if !errors.Is(err, boom) {
		t.Errorf("waitFor = %v, want the condition's error", err)
	}
}
