package e2e

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/zipaes/zipaestest"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir collects a picture of every screen the browser test
// visits (gitignored; CI can keep it as an artifact).
var screenshotDir = filepath.Join("..", "test-output", "ui")

// console is a running `posthorn serve` with its web console.
type console struct {
	url string
	db  string
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before serve does; then serve fails to start and the test says
// so.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var consoleURL = regexp.MustCompile(`msg="web console listening" url=(\S+)`)

// startConsole seeds a store with events, adds a user with the real
// `posthorn user add`, starts `posthorn serve` and waits for its log to
// say where the console listens.
func startConsole(t *testing.T, evs []event.Event, seed func(*sqlite.Store) error) *console {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "posthorn.db")
	maillog := filepath.Join(dir, "mail.log")
	if err := os.WriteFile(maillog, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "posthorn.toml")
	text := fmt.Sprintf(`hostname = "mx1.e2e.example"
[store]
path = %q
[maillog]
path = %q
[ui]
listen = "127.0.0.1:%d"
timezone = "Asia/Tokyo"
`, db, maillog, freePort(t))
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	store, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Commit(context.Background(), event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := seed(store); err != nil {
		t.Fatal(err)
	}
	store.Close()

	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("e2e console password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(posthorn, "user", "add", "admin", "--password-file", pw, "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("posthorn user add: %v\n%s", err, out)
	}

	cmd := exec.Command(posthorn, "serve", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if m := consoleURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		close(found)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("serve log:\n%s", b)
		}
	})
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatal("serve exited before the console listened")
		}
		return &console{url: strings.TrimSuffix(u, "/"), db: db}
	case <-time.After(30 * time.Second):
		t.Fatal("the console did not start within 30 s")
	}
	return nil
}

// consoleEvents makes n events a minute apart, the newest a minute ago,
// cycling through the statuses; the third newest has a reason that would
// run as script if it were not escaped.
func consoleEvents(n int, now time.Time) []event.Event {
	types := []event.Type{event.Queued, event.Succeeded, event.Deferred, event.Failed, event.Bounced}
	out := make([]event.Event, n)
	for i := range out {
		sum := sha256.Sum256([]byte(fmt.Sprint("browser event ", i)))
		e := event.Event{
			ID:         hex.EncodeToString(sum[:16]),
			Type:       types[i%len(types)],
			Time:       now.Add(-time.Duration(n-i) * time.Minute).Truncate(time.Second),
			Host:       "mx1.e2e.example",
			QueueID:    fmt.Sprintf("4bX%07d", i),
			MessageID:  fmt.Sprintf("<m%d@app.example.com>", i),
			ReturnPath: "bounces@app.example.com",
			To:         fmt.Sprintf("user%03d@example.org", i),
			Relay:      "mx.example.org[192.0.2.25]:25",
			DSN:        "2.0.0",
			Reason:     "250 2.0.0 OK",
		}
		if e.Type == event.Bounced || e.Type == event.Failed {
			e.DSN, e.Reason = "5.1.1", "550 5.1.1 <"+e.To+">: user unknown"
			if e.Type == event.Bounced {
				e.Class = event.ClassUnknownUser
			}
		}
		if i == n-3 {
			e.Reason = `550 <script>document.title="pwned"</script>`
		}
		out[i] = e
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// TestConsoleBrowser drives the web console in headless Chromium as a user
// would: log in, get an out-of-range interval refused next to its field,
// save valid settings, search the event log, page through it, open a
// detail dialog, download the CSV, read the inbound log, download it as an
// AES-256 ZIP and open it with 7-Zip, add a condition
// row to a filter, delete the filter with a wrong then the right
// password, switch to Japanese, log out. A
// screenshot of every screen goes to test-output/ui.
func TestConsoleBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: .ci/setup installs the Debian package chromium", chromiumPath)
		}
		t.Skipf("%s not found: install the Debian package chromium (.ci/setup does)", chromiumPath)
	}
	now := time.Now()
	const total = 150
	evs := consoleEvents(total, now)
	c := startConsole(t, evs, func(s *sqlite.Store) error {
		ctx := context.Background()
		in := settings.Inbound{
			Domains: []string{"example.org"},
			Filters: []settings.InboundFilter{settings.NewInboundFilter("support", "https://127.0.0.1:9/inbound",
				settings.Condition{Header: "To", Pattern: `^support@example\.org$`})},
		}
		if err := s.SaveInboundSettings(ctx, in, false); err != nil {
			return err
		}
		var rows []event.InboundLogEntry
		for i := range 25 {
			st := event.InboundSucceeded
			if i%3 == 0 {
				st = event.InboundDenied
			}
			rows = append(rows, event.InboundLogEntry{
				Time: now.Add(-time.Duration(25-i) * time.Minute), Status: st,
				From: fmt.Sprintf("Customer %d <c%d@example.com>", i, i), To: fmt.Sprintf("support%02d@example.org", i),
				Host: "mx1.e2e.example", MessageID: fmt.Sprintf("<in%d@example.com>", i), QueueID: fmt.Sprintf("4Q%05d", i),
				Filter: "support",
			})
		}
		if err := s.LogInbound(ctx, rows); err != nil {
			return err
		}
		return seedPosts(ctx, s, now)
	})
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx := startChromium(t)

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	start := time.Now()
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		t.Logf("%6.2fs %s", time.Since(start).Seconds(), step)
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	// settled runs a read of the page again while a navigation that has
	// just replaced the document leaves Chromium without the JavaScript
	// context the read started in ("Cannot find context with specified
	// id"): the page is there, only the moment was wrong.
	settled := func(read func() error) error {
		var err error
		for range 50 {
			if err = read(); err == nil || !(strings.Contains(err.Error(), "Cannot find context") || strings.Contains(err.Error(), "No node with given id")) {
				return err
			}
			chromedp.Do(ctx, chromedp.WaitReady("body"))
		}
		return err
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		err := settled(func() (err error) {
			s, err = chromedp.Run(ctx, chromedp.TextContent(css(sel)))
			return err
		})
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	count := func(sel string) int {
		t.Helper()
		var n int
		err := settled(func() (err error) {
			n, err = chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// shot saves a picture of the screen, which the issue asks of every
	// screen. Headless Chromium under load (2 shared cores) sometimes does
	// not finish a capture, so each of up to shotAttempts attempts, each
	// capture with a timeout of its own, tries a full-page capture and
	// then the viewport; only when every attempt fails does the test fail
	// (after the checks of the screen itself, which go on).
	const shotAttempts = 3
	shot := func(name string) {
		t.Helper()
		t.Logf("%6.2fs screenshot %s", time.Since(start).Seconds(), name)
		var png []byte
		var errs []error
		for attempt := 1; attempt <= shotAttempts && png == nil; attempt++ {
			for _, capture := range []chromedp.Action[[]byte]{chromedp.FullScreenshot(100), chromedp.CaptureScreenshot()} {
				sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				b, err := chromedp.Run(sctx, capture)
				cancel()
				if err == nil && len(b) > 0 {
					png = b
					break
				}
				errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, cmp.Or(err, errors.New("empty capture"))))
			}
		}
		if png == nil {
			t.Errorf("screenshot %s not saved after %d attempts: %v", name, shotAttempts, errors.Join(errs...))
			return
		}
		if len(errs) > 0 {
			t.Logf("screenshot %s saved after failed captures: %v", name, errors.Join(errs...))
		}
		if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Login.
	do("open the console",
		chromedp.Navigate(c.url+"/events"),
		chromedp.WaitVisible(css(`[data-testid="login-submit"]`)),
	)
	shot("01-login")
	do("log in with a wrong password",
		chromedp.SendKeys(css("#user"), "admin"),
		chromedp.SendKeys(css("#password"), "not the password"),
		chromedp.Click(css(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="login-error"]`)),
	)
	shot("02-login-error")
	do("log in",
		chromedp.SetValue(css("#user"), "admin"),
		chromedp.SendKeys(css("#password"), "e2e console password"),
		chromedp.Click(css(`[data-testid="login-submit"]`)),
		// Back on the page asked for first.
		chromedp.WaitVisible(css(`[data-testid="search"]`)),
	)

	// Dashboard.
	do("dashboard", chromedp.Navigate(c.url+"/"), chromedp.WaitVisible(css(`[data-testid="counts"]`)))
	if got := text(`[data-testid="count-total"]`); got != fmt.Sprint(total) {
		t.Errorf("dashboard total over 24 h: %s, want %d", got, total)
	}
	// Backlog and health from the seeded posts: one queued event; the
	// latest attempt failed with 400.
	if got := text(`[data-testid="spool-event"] [data-testid="pending"]`); got != "1" {
		t.Errorf("event webhook backlog %q, want 1", got)
	}
	if got := text(`[data-testid="spool-event"] [data-testid="health"]`); !strings.Contains(got, "Failed") || !strings.Contains(got, "HTTP 400") {
		t.Errorf("event webhook health %q", got)
	}
	shot("03-dashboard")

	// Event Webhook settings: an interval out of range is refused with
	// the message next to the field.
	do("settings",
		chromedp.Navigate(c.url+"/settings/event-webhook"),
		chromedp.WaitVisible(css(`[data-testid="webhook-form"]`)),
	)
	shot("04-settings")
	do("enter an out-of-range interval",
		chromedp.SetValue(css("#endpoint"), "https://127.0.0.1:9/hooks/posthorn"),
		chromedp.Click(css(`input[name="deliveries"]`)),
		chromedp.Click(css(`[data-testid="advanced"] summary`)),
		chromedp.SetValue(css("#interval"), "601"),
		// Secrets typed before the error must survive it unseen.
		chromedp.SetValue(css("#basic_user"), "hook"),
		chromedp.SendKeys(css("#basic_password"), "hook password"),
		chromedp.SendKeys(css("#basic_password_confirm"), "hook password"),
		chromedp.SendKeys(css("#api_key"), "hook-api-key"),
		chromedp.Click(css(`[data-testid="save"]`)),
		chromedp.WaitVisible(css(`[data-testid="interval-error"]`)),
	)
	for _, f := range []string{"basic_password", "api_key"} {
		if got := text(`[data-testid="` + f + `-state"]`); got != "entered, not saved yet" {
			t.Errorf("%s state after the error %q, want entered, not saved yet", f, got)
		}
	}
	if html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="webhook-form"]').outerHTML`)); err != nil ||
		strings.Contains(html, "hook password") || strings.Contains(html, "hook-api-key") {
		t.Errorf("the form shows a typed secret (%v)", err)
	}
	if got := text(`[data-testid="interval-error"]`); !strings.Contains(got, "between 1 and 600") {
		t.Errorf("interval error %q", got)
	}
	// The message is the next thing after the field's help, in its box.
	parent, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("interval-error").parentElement.querySelector("input").id`))
	if err != nil || parent != "interval" {
		t.Errorf("the interval error is not next to the interval field (%q, %v)", parent, err)
	}
	shot("05-settings-error")
	do("save valid settings",
		// Only the interval is corrected; the password fields stay empty.
		chromedp.SetValue(css("#interval"), "5"),
		chromedp.Click(css(`[data-testid="save"]`)),
		chromedp.WaitVisible(css(`[data-testid="saved"]`)),
	)
	if got := text(`[data-testid="basic_password-state"]`); got != "set" {
		t.Errorf("Basic password state %q, want set", got)
	}
	if n := count(`input[type="password"][value]`); n != 0 {
		t.Errorf("%d password fields carry a value", n)
	}
	shot("06-settings-saved")
	store, err := sqlite.Open(c.db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	saved, ok, err := store.EventWebhookSettings(context.Background())
	store.Close()
	if err != nil || !ok || saved.Interval != 5 || saved.Endpoint != "https://127.0.0.1:9/hooks/posthorn" ||
		!saved.Deliveries || saved.BasicUser != "hook" || saved.BasicPassword != "hook password" || saved.APIKey != "hook-api-key" {
		t.Errorf("stored settings after the save: %v %v %s", ok, err, saved)
	}

	// Event log: a period in the console's zone and two statuses; more
	// than 100 results, so the notice shows and the pager has 10 pages.
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	from := now.Add(-3 * time.Hour).In(tokyo).Format("2006-01-02T15:04")
	do("search the event log",
		chromedp.Navigate(c.url+"/events"),
		chromedp.WaitVisible(css(`[data-testid="search"]`)),
		chromedp.SetValue(css("#from"), from),
		chromedp.Click(css(`[data-testid="search-submit"]`)),
	)
	// The search is a GET form: wait for the document it loads, not for
	// the notice the page before it may show already.
	if err := settled(func() error {
		for {
			done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`location.search.indexOf("from=") >= 0 && document.readyState === "complete"`))
			if err != nil || done {
				return err
			}
			chromedp.Do(ctx, chromedp.WaitReady("body"))
		}
	}); err != nil {
		t.Fatalf("search the event log: %v", err)
	}
	do("the search result", chromedp.WaitVisible(css(`[data-testid="more-notice"]`)))
	if n := count(`[data-testid="event-row"]`); n != 10 {
		t.Errorf("%d rows on the first page, want 10", n)
	}
	if got := text(`[data-testid="event-row"] td.addr`); got != fmt.Sprintf("user%03d@example.org", total-1) {
		t.Errorf("newest row %q", got)
	}
	if n := count(`[data-testid="pager"] a[data-testid^="page-"]`); n != 9 {
		t.Errorf("pager has %d other pages, want 9", n)
	}
	// The reason with a script tag shows as text, and did not run.
	if title, _ := chromedp.Run(ctx, chromedp.Title()); title == "pwned" {
		t.Error("a reason ran as script")
	}
	shot("07-events")

	// Page through with htmx: the results change, the page does not
	// reload, and the URL follows.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	do("page 2",
		chromedp.Click(css(`[data-testid="page-2"]`)),
		chromedp.WaitVisible(css(`[data-testid="page-current"][data-page="2"]`)),
	)
	if got := text(`[data-testid="event-row"] td.addr`); got != fmt.Sprintf("user%03d@example.org", total-11) {
		t.Errorf("first row of page 2 %q", got)
	}
	stayed, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded === true`))
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !stayed || !strings.Contains(loc, "page=2") {
		t.Errorf("paging reloaded the page (%v) or the URL %q lacks page=2", !stayed, loc)
	}
	shot("08-events-page2")
	do("last page",
		chromedp.Click(css(`[data-testid="page-10"]`)),
		chromedp.WaitVisible(css(`[data-testid="page-current"][data-page="10"]`)),
	)
	if got := text(`[data-testid="event-row"] td.addr`); got != fmt.Sprintf("user%03d@example.org", total-91) {
		t.Errorf("first row of page 10 %q", got)
	}

	// Detail dialog: opened as a modal over the list.
	want := text(`[data-testid="event-row"] td.addr`)
	do("open a detail dialog",
		chromedp.Click(css(`[data-testid="detail-link"]`)),
		chromedp.WaitVisible(css(`dialog[open] [data-testid="detail-to"]`)),
	)
	if got := text(`[data-testid="detail-to"]`); got != want {
		t.Errorf("dialog shows %q, want %q", got, want)
	}
	modal, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("dialog").matches(":modal")`))
	if !modal {
		t.Error("the detail dialog is not modal")
	}
	shot("09-detail")
	do("close the dialog",
		chromedp.Click(css(`[data-testid="detail-close"]`)),
		chromedp.WaitNotVisible(css(`dialog [data-testid="detail-to"]`)),
	)

	// CSV: every matching row, not only the 100 shown.
	dlDir := t.TempDir()
	// download runs the actions, which start a download, and returns the
	// downloaded file's path once the browser reports it complete.
	download := func(step string, actions ...chromedp.Action[chromedp.Void]) string {
		t.Helper()
		progress := chromedp.Events(ctx, browser.DownloadProgress)
		do(step, append([]chromedp.Action[chromedp.Void]{
			chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
					Behavior:      browser.SetDownloadBehaviorBehaviorAllowAndName,
					DownloadPath:  dlDir,
					EventsEnabled: ptr(true),
				})
				return err
			}),
		}, actions...)...)
		for ev, err := range progress {
			if err != nil {
				t.Fatal(err)
			}
			if ev.State == browser.DownloadProgressStateCanceled {
				t.Fatalf("%s: the download was cancelled", step)
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				return filepath.Join(dlDir, ev.GUID)
			}
		}
		t.Fatalf("%s: the browser reported no finished download", step)
		return ""
	}
	csvPath := download("download the CSV", chromedp.Click(css(`[data-testid="csv"]`)))
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 1+total || records[0][0] != "received" || records[1][5] != "user000@example.org" {
		t.Errorf("CSV: %d rows (want %d), header %q, first %q", len(records)-1, total, records[0], records[1])
	}
	if !strings.HasSuffix(records[1][0], "+09:00") {
		t.Errorf("CSV time %q is not in the console's zone", records[1][0])
	}

	// Post log: one row per post; the detail shows every attempt's code
	// and answer; a failed post is replayed; the CSV holds every row.
	do("post log",
		chromedp.Navigate(c.url+"/posts"),
		chromedp.WaitVisible(css(`[data-testid="post-table"]`)),
	)
	if n := count(`[data-testid="post-row"]`); n != 3 {
		t.Errorf("%d post rows, want 3", n)
	}
	shot("11b-posts")
	do("post detail",
		chromedp.Click(css(`[data-testid="post-row"]:nth-child(2) [data-testid="detail-link"]`)),
		chromedp.WaitVisible(css(`dialog[open] [data-testid="attempts"]`)),
	)
	if got := text(`dialog [data-testid="attempt"]:nth-child(2) [data-testid="attempt-code"]`); got != "400" {
		t.Errorf("second attempt's code %q, want 400", got)
	}
	if got := text(`dialog [data-testid="attempt"]:nth-child(2) [data-testid="attempt-response"]`); got != `{"error":"unknown field"}` {
		t.Errorf("second attempt's answer %q", got)
	}
	shot("11c-post-detail")
	do("replay the failed post",
		chromedp.Click(css(`dialog [data-testid="detail-close"]`)),
		chromedp.WaitNotVisible(css(`dialog [data-testid="attempts"]`)),
		chromedp.Click(css(`[data-testid="post-row"] [data-testid="replay"]`)),
		chromedp.WaitVisible(css(`[data-testid="replayed"]`)),
	)
	store, err = sqlite.Open(c.db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, _, err := store.WebhookBatchByID(context.Background(), "e2e-failed")
	store.Close()
	// Queued again; serve may already have tried it (the endpoint is
	// refused here), which leaves it deferred, never failed.
	if err != nil || (b.State != sqlite.StateQueued && b.State != sqlite.StateDeferred) {
		t.Errorf("after replay the batch is %s (%q), %v", b.State, b.Reason, err)
	}
	postsCSV := download("download the post log CSV", chromedp.Click(css(`[data-testid="csv"]`)))
	f, err = os.Open(postsCSV)
	if err != nil {
		t.Fatal(err)
	}
	records, err = csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 4 || strings.Join(records[0], ",") != "received,status,hostName,endpointUrl,reason" || records[1][1] != "succeeded" {
		t.Errorf("post log CSV: %q", records)
	}

	// Inbound log: the same search screen over the inbound log.
	do("inbound log",
		chromedp.Navigate(c.url+"/inbound"),
		chromedp.WaitVisible(css(`[data-testid="inbound-table"]`)),
	)
	if n := count(`[data-testid="inbound-row"]`); n != 10 {
		t.Errorf("%d inbound rows on the first page, want 10", n)
	}
	shot("12-inbound")
	do("inbound detail",
		chromedp.Click(css(`[data-testid="detail-link"]`)),
		chromedp.WaitVisible(css(`dialog[open] [data-testid="detail-to"]`)),
	)
	if got := text(`[data-testid="detail-to"]`); got != "support24@example.org" {
		t.Errorf("inbound detail of %q", got)
	}
	shot("13-inbound-detail")

	// Inbound download: a password (refused when too short, next to the
	// field), then the CSV inside an AES-256 ZIP that 7-Zip opens.
	do("inbound download form",
		chromedp.Navigate(c.url+"/inbound?status=succeeded"),
		chromedp.WaitVisible(css(`[data-testid="zip"]`)),
		chromedp.Click(css(`[data-testid="zip"]`)),
		chromedp.WaitVisible(css(`[data-testid="zip-form"]`)),
		chromedp.SendKeys(css("#zip_password"), "short"),
		chromedp.SendKeys(css("#zip_password_confirm"), "short"),
		chromedp.Click(css(`[data-testid="zip-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="zip-error"]`)),
	)
	shot("13b-inbound-download")
	const zipPassword = "zip pass 2026"
	zipPath := download("download the inbound ZIP",
		chromedp.SendKeys(css("#zip_password"), zipPassword),
		chromedp.SendKeys(css("#zip_password_confirm"), zipPassword),
		chromedp.Click(css(`[data-testid="zip-submit"]`)),
	)
	out := filepath.Join(t.TempDir(), "zip")
	if msg, err := exec.Command(zipaestest.SevenZip(t), "x", "-p"+zipPassword, "-o"+out, zipPath).CombinedOutput(); err != nil {
		t.Fatalf("7z x: %v\n%s", err, msg)
	}
	f, err = os.Open(filepath.Join(out, "inbound-log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	records, err = csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// 25 rows, every third denied: 16 succeeded, oldest first.
	wantHeader := "received,status,from,to,hostName,messageId,filterName,reason"
	if len(records) != 1+16 || strings.Join(records[0], ",") != wantHeader || records[1][1] != "succeeded" || records[1][3] != "support01@example.org" {
		t.Errorf("inbound CSV: %d rows (want 16), header %q, first %q", len(records)-1, records[0], records[1])
	}

	// Inbound settings: the filter form adds a condition row without
	// JavaScript, and deleting the filter asks for the password.
	do("inbound settings",
		chromedp.Navigate(c.url+"/settings/inbound"),
		chromedp.WaitVisible(css(`[data-testid="filters"]`)),
	)
	shot("14-inbound-settings")
	do("edit the filter",
		chromedp.Click(css(`[data-testid="filter-name"]`)),
		chromedp.WaitVisible(css(`[data-testid="filter-form"]`)),
		// A secret typed and a signing secret asked for before "+".
		chromedp.Click(css(`[data-testid="advanced"] summary`)),
		chromedp.SendKeys(css("#api_key"), "filter-api-key"),
		chromedp.Click(css(`input[name="signing_secret_generate"]`)),
		chromedp.Click(css(`[data-testid="add-condition"]`)),
		chromedp.WaitVisible(css(`[data-testid="condition"]:nth-of-type(2) input[name="header"]`)),
	)
	if n := count(`[data-testid="condition"]`); n != 2 {
		t.Errorf("%d condition rows after +, want 2", n)
	}
	if got := text(`[data-testid="api_key-state"]`); got != "entered, not saved yet" {
		t.Errorf("API key state after + %q", got)
	}
	if n := count(`[data-testid="new-secret"]`) + count(`input[name="signing_secret_generate"]:not(:checked)`); n != 0 {
		t.Error("+ shows a signing secret not saved, or forgets the request for one")
	}
	shot("15-filter")
	do("save the filter with its new condition",
		chromedp.SendKeys(css(`[data-testid="condition"]:nth-of-type(2) input[name="header"]`), "Subject"),
		chromedp.SendKeys(css(`[data-testid="condition"]:nth-of-type(2) input[name="pattern"]`), "(?i)order"),
		chromedp.Click(css(`[data-testid="save"]`)),
		chromedp.WaitVisible(css(`[data-testid="new-secret"]`)),
	)
	shown := text(`[data-testid="new-secret"] code`)
	store, err = sqlite.Open(c.db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inbound, _, err := store.InboundSettings(context.Background())
	store.Close()
	if err != nil || len(inbound.Filters) != 1 || inbound.Filters[0].APIKey != "filter-api-key" ||
		string(inbound.Filters[0].SigningSecret) != shown || len(inbound.Filters[0].Conditions) != 2 {
		t.Errorf("stored filter after the save: %v %v (secret shown %q)", inbound.Filters, err, shown)
	}
	shot("15b-filter-saved")
	do("delete with a wrong password",
		chromedp.Navigate(c.url+"/settings/inbound"),
		chromedp.WaitVisible(css(`[data-testid="delete-form"]`)),
		chromedp.SendKeys(css(`[data-testid="delete-form"] input[name="password"]`), "not my password"),
		chromedp.Click(css(`[data-testid="delete"]`)),
		chromedp.WaitVisible(css(`[data-testid="delete-error"]`)),
	)
	shot("16-delete-wrong-password")
	do("delete with the right password",
		chromedp.SendKeys(css(`[data-testid="delete-form"] input[name="password"]`), "e2e console password"),
		chromedp.Click(css(`[data-testid="delete"]`)),
		chromedp.WaitVisible(css(`[data-testid="saved"]`)),
	)
	if n := count(`[data-testid="filter-row"]`); n != 0 {
		t.Errorf("%d filters after the delete", n)
	}
	store, err = sqlite.Open(c.db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inbound, _, err = store.InboundSettings(context.Background())
	store.Close()
	if err != nil || len(inbound.Filters) != 0 {
		t.Errorf("stored filters after the delete: %v %v", inbound.Filters, err)
	}

	// Japanese, from the switch.
	do("switch to Japanese",
		chromedp.Navigate(c.url+"/events"),
		chromedp.WaitVisible(css(`[data-testid="search"]`)),
		chromedp.Click(css(`[data-testid="lang-ja"]`)),
		chromedp.WaitVisible(css(`html[lang="ja"] [data-testid="search"]`)),
	)
	shot("17-events-ja")
	do("Japanese settings", chromedp.Navigate(c.url+"/settings/event-webhook"), chromedp.WaitVisible(css(`[data-testid="webhook-form"]`)))
	shot("18-settings-ja")

	// Logout ends the session.
	do("log out",
		chromedp.Click(css(`[data-testid="logout"]`)),
		chromedp.WaitVisible(css(`[data-testid="login-submit"]`)),
		chromedp.Navigate(c.url+"/events"),
		chromedp.WaitVisible(css(`[data-testid="login-submit"]`)),
	)
	resp, err := http.Get(c.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok\n" {
		t.Errorf("healthz: %q", body)
	}
}

// seedPosts stores three posts of the Event Webhook as the dispatcher
// would: one succeeded, one failed after a 503 and a 400, one queued.
func seedPosts(ctx context.Context, s *sqlite.Store, now time.Time) error {
	const endpoint = "https://hooks.e2e.example/posthorn"
	var formed []sqlite.Formed
	for i, id := range []string{"e2e-succeeded", "e2e-failed", "e2e-queued"} {
		at := now.Add(time.Duration(i-30) * time.Minute)
		formed = append(formed, sqlite.Formed{ID: id, Family: "deliveries", First: int64(i + 1), Last: int64(i + 1), Events: 1,
			FirstTime: at, LastTime: at, Host: "mx1.e2e.example", Endpoint: endpoint})
	}
	if err := s.Form(ctx, formed, map[string]int64{"deliveries": 3}, now.Add(time.Hour)); err != nil {
		return err
	}
	for _, a := range []sqlite.Attempt{
		{BatchID: "e2e-succeeded", Attempt: 1, At: now.Add(-29 * time.Minute), State: sqlite.StateSucceeded, Status: 200, Response: []byte("ok")},
		{BatchID: "e2e-failed", Attempt: 1, At: now.Add(-28 * time.Minute), State: sqlite.StateDeferred, Status: 503, Reason: "HTTP 503: service unavailable", Response: []byte("busy"), Next: now.Add(-27 * time.Minute)},
		{BatchID: "e2e-failed", Attempt: 2, At: now.Add(-27 * time.Minute), State: sqlite.StateFailed, Status: 400, Reason: "HTTP 400: bad request", Response: []byte(`{"error":"unknown field"}`)},
	} {
		a.Host, a.Endpoint = "mx1.e2e.example", endpoint
		if err := s.Record(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// startChromium starts a headless Chromium for one test and returns its
// context, with two minutes for the test's steps; the test's end closes it.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelCtx)
	// The first Run starts the browser and must not carry the timeout
	// (chromedp.Run's documentation); the steps after it do.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
