package e2e

import (
	"bufio"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	demoConsole  = regexp.MustCompile(`^Web console:\s+(http://\S+)/\s+user (\S+)\s+password (\S+)`)
	demoReceived = regexp.MustCompile(`receiver got post #1: (\d+) \S+ records .*signature ok`)
	formToken    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// TestDemo runs `posthorn demo` as a newcomer would, at its normal pace,
// with no Postfix and no configuration: within 30 s it must serve the web
// console, accept the printed one-time password, and post events to its
// built-in HTTPS receiver with a valid signature. It checks function, not
// speed. An interrupt then ends it cleanly.
func TestDemo(t *testing.T) {
	cmd := exec.Command(posthorn, "demo", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedText{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	type found struct{ url, user, password, posted string }
	lines := make(chan found, 4)
	var transcript strings.Builder
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			transcript.WriteString(sc.Text() + "\n")
			if m := demoConsole.FindStringSubmatch(sc.Text()); m != nil {
				lines <- found{url: m[1], user: m[2], password: m[3]}
			}
			if m := demoReceived.FindStringSubmatch(sc.Text()); m != nil {
				lines <- found{posted: m[1]}
			}
		}
		io.Copy(io.Discard, stdout)
	}()

	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	var console found
	posted := ""
	for console.url == "" || posted == "" {
		select {
		case f, ok := <-lines:
			if !ok {
				t.Fatalf("the demo ended early:\nstdout:\n%s\nstderr:\n%s", transcript.String(), stderr.String())
			}
			if f.url != "" {
				console = f
			} else {
				posted = f.posted
			}
		case <-deadline.C:
			t.Fatalf("within 30 s: console %q, first post %q\nstderr:\n%s", console.url, posted, stderr.String())
		}
	}
	if posted == "0" {
		t.Errorf("the first post carried no records")
	}

	// Log in with the printed password, as the login form does.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(console.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	_, page := get("/login")
	m := formToken.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the login page:\n%s", page)
	}
	resp, err := client.PostForm(console.url+"/login", url.Values{"csrf": {m[1]}, "user": {console.user}, "password": {console.password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login with the printed password: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, page = get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="spool"`) {
		t.Errorf("dashboard after login: %s", resp.Status)
	}
	// The post log has the posts the receiver printed.
	if _, page = get("/posts"); !strings.Contains(page, `data-testid="post-row"`) {
		t.Errorf("the post log shows no post")
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Errorf("interrupted demo: %v\nstderr:\n%s", err, stderr.String())
	}
}

// lockedText collects a process's output while the test may read it.
type lockedText struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedText) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedText) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
