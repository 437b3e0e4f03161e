package postfixtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Test domains. Each is routed by transport_maps to its own loopback peer, so
// one message can mix outcomes per recipient.
const (
	// LocalDomain is in mydestination; local(8) delivers it. Because
	// local_recipient_maps is empty an unknown user is accepted at RCPT and
	// bounces at delivery ("unknown user").
	LocalDomain = "local.test"
	// DomainOK is an smtp-sink that accepts everything.
	DomainOK = "ok.test"
	// DomainRcpt5xx answers RCPT TO with a 5xx: status=bounced.
	DomainRcpt5xx = "rcpt5xx.test"
	// DomainData5xx accepts RCPT but answers the end of DATA with a 5xx.
	DomainData5xx = "data5xx.test"
	// DomainDefer answers RCPT TO with a 4xx forever: status=deferred until
	// maximal_queue_lifetime, then status=expired.
	DomainDefer = "defer.test"
	// DomainFlaky answers RCPT TO with a 4xx until Heal is called.
	DomainFlaky = "flaky.test"
	// DomainDead routes to a reserved loopback port nobody listens on:
	// "Connection refused", status=deferred.
	DomainDead = "dead.test"
	// DomainReject is refused by the instance's own smtpd at RCPT time
	// (check_recipient_access), so it never gets a delivery line.
	DomainReject = "reject.test"
)

// sinkSpec says how smtp-sink(1) misbehaves for a domain. The replies name
// the domain so a log line can be traced back to the scenario that caused it.
type sinkSpec struct {
	domain string
	args   []string // extra smtp-sink options; nil accepts everything
}

// sinkSpecs: -f makes smtp-sink answer the listed commands with the hard
// reply (-B), -r with the soft reply (-b); "." is the end of DATA
// (smtp-sink(1)).
var sinkSpecs = []sinkSpec{
	{DomainOK, nil},
	{DomainRcpt5xx, []string{"-f", "RCPT", "-B", "550 5.1.1 Error: mailbox unavailable (rcpt5xx.test sink)"}},
	{DomainData5xx, []string{"-f", ".", "-B", "554 5.7.1 Error: message content rejected (data5xx.test sink)"}},
	{DomainDefer, []string{"-r", "RCPT", "-b", "451 4.3.0 Error: try again later (defer.test sink)"}},
	{DomainFlaky, []string{"-r", "RCPT", "-b", "450 4.2.0 Error: mailbox busy (flaky.test sink)"}},
}

// sink is one smtp-sink process listening on a reserved port.
type sink struct {
	domain string
	port   int
	proc   *proc
}

// startSink runs smtp-sink on port and returns once it answers with its
// greeting. The greeting hostname is unique per start, so a greeting from
// anything else (a previous sink, another program) is not taken for ours.
func startSink(ctx context.Context, bin, domain string, port int, args []string, generation int, started func(pid int)) (*sink, error) {
	hostname := fmt.Sprintf("sink%d.%s", generation, domain)
	argv := []string{bin, "-u", "nobody", "-h", hostname}
	argv = append(argv, args...)
	// 64 is the listen backlog, a required positional argument.
	argv = append(argv, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "64")
	p, err := startProc("smtp-sink for "+domain, argv...)
	if err != nil {
		return nil, err
	}
	started(p.pid())
	s := &sink{domain: domain, port: port, proc: p}
	err = waitFor(ctx, "smtp-sink for "+domain+" to greet", func() (bool, error) {
		if p.exited() {
			return false, p.exitError()
		}
		return greets(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), hostname), nil
	})
	if err != nil {
		p.stop(syscall.SIGKILL, time.Second)
		return nil, err
	}
	return s, nil
}

// greets reports whether an SMTP server at addr answers with a 220 greeting
// that names hostname (RFC 5321 section 4.2: "220 <domain> ...").
func greets(addr, hostname string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return false
	}
	fmt.Fprintf(c, "QUIT\r\n")
	return strings.HasPrefix(line, "220 "+hostname+" ")
}
