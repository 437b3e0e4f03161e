package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// TestBlocksBrowser drives the console's Blocks screen in headless
// Chromium against a real `posthorn serve` with a real SQLite store and a
// real Event Webhook receiver: log in, add an address "now" (one refused
// line beside it), see it registered, schedule another and cancel it,
// search, delete with the confirmation the page asks for, see the
// receiver get the registered and deleted records, download the CSV and
// read it back with `posthorn blocks import`. Screenshots go to
// test-output/ui.
func TestBlocksBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: .ci/setup installs the Debian package chromium", chromiumPath)
		}
		t.Skipf("%s not found: install the Debian package chromium (.ci/setup does)", chromiumPath)
	}
	recv := startReceiver(t)
	dir := testDir(t)
	maillog := filepath.Join(dir, "maillog")
	if err := os.WriteFile(maillog, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The list's zone differs from the console's: the screen shows and
	// reads its times in the list's.
	port := freePort(t)
	cfg := writeConfig(t, dir, maillog, fmt.Sprintf(`[ui]
listen = "127.0.0.1:%d"
timezone = "Asia/Tokyo"
[blocks]
timezone = "America/New_York"
`, port))
	data, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append([]byte("server_composition = \"e2e-composition\"\n"), data...), 0o644); err != nil {
		t.Fatal(err)
	}
	importSettings(t, dir, cfg, hookSettings(recv.url, recv.caFile, "  blocks: true\n"))
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("e2e console password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	posthornCmd(t, 0, "user", "add", "admin", "--password-file", pw, "--config", cfg)
	d := startServe(t, cfg)
	var base string
	waitFor(t, d, 30*time.Second, "the console to listen", func() bool {
		b, _ := os.ReadFile(d.log.Name())
		if m := consoleURL.FindSubmatch(b[min(int(d.logStart), len(b)):]); m != nil {
			base = strings.TrimSuffix(string(m[1]), "/")
			return true
		}
		return false
	})
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}

	b := newBlocksBrowser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	b.do("open the Blocks screen",
		chromedp.Navigate(base+"/blocks"),
		chromedp.WaitVisible(css(`[data-testid="login-submit"]`)),
		chromedp.SendKeys(css("#user"), "admin"),
		chromedp.SendKeys(css("#password"), "e2e console password"),
		chromedp.Click(css(`[data-testid="login-submit"]`)),
		// Back on the page asked for first.
		chromedp.WaitVisible(css(`[data-testid="empty"]`)),
	)
	if n := b.count(`header nav a[href="/blocks"][aria-current="page"]`); n != 1 {
		t.Errorf("%d current Blocks links in the navigation", n)
	}
	if got := b.text("footer"); !strings.Contains(got, "America/New_York") {
		t.Errorf("footer %q does not name the list's zone", got)
	}
	b.shot("blocks-01-empty")

	// Add now, with a bounce class; the line that is no address is
	// refused and comes back in the form.
	b.do("add an address now",
		chromedp.Click(css(`[data-testid="add-open"]`)),
		chromedp.WaitVisible(css("#addresses")),
		chromedp.SendKeys(css("#addresses"), "Console@Example.ORG\nnot an address"),
		chromedp.SetValue(css("#reason"), "2"),
		chromedp.Click(css(`[data-testid="when-now"]`)),
		chromedp.Click(css(`[data-testid="add-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="added-summary"]`)),
	)
	if got := b.text(`[data-testid="added-summary"]`); got != "Result: 1 registered, 0 scheduled, 0 already listed, 1 refused." {
		t.Errorf("add summary %q", got)
	}
	if got := b.text(`[data-testid="added-row"][data-outcome="registered"] td.addr`); got != "Console@example.org" {
		t.Errorf("registered %q", got)
	}
	if got := b.text(`[data-testid="added-row"][data-outcome="invalid"]`); !strings.Contains(got, "not an address") {
		t.Errorf("refused row %q", got)
	}
	if got := b.value("#addresses"); got != "not an address" {
		t.Errorf("the form holds %q, want the refused line", got)
	}
	if got := b.text(`[data-testid="block-row"][data-status="registered"] td.addr`); got != "Console@example.org" {
		t.Errorf("registered row %q", got)
	}
	if got := b.text(`[data-testid="block-row"] [data-testid="reason"]`); got != "2 unknown user" {
		t.Errorf("reason shown %q", got)
	}
	b.shot("blocks-02-added")

	// Another at the next execution time, then cancelled: it never takes
	// effect and nothing is posted for it.
	b.do("schedule an address",
		chromedp.SetValue(css("#addresses"), "later@example.org"),
		chromedp.SetValue(css("#reason"), "manual"),
		chromedp.Click(css(`[data-testid="when-next"]`)),
		chromedp.Click(css(`[data-testid="add-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="added-row"][data-outcome="scheduled"]`)),
	)
	if got := b.text(`[data-testid="added-row"][data-outcome="scheduled"]`); !strings.Contains(got, "scheduled for ") || !strings.HasSuffix(got, " 00:00:00") {
		t.Errorf("scheduled result %q: want the next 00:00 in the list's zone", got)
	}
	b.do("cancel it",
		chromedp.Click(css(`[data-testid="block-row"][data-status="scheduled"] [data-testid="cancel"]`)),
		chromedp.WaitVisible(css(`[data-testid="cancel-confirm"]`)),
	)
	b.shot("blocks-03-cancel-confirm")
	b.do("confirm the cancel",
		chromedp.Click(css(`[data-testid="cancel-confirm"]`)),
		chromedp.WaitVisible(css(`[data-testid="done"]`)),
	)
	if got := b.text(`[data-testid="done"]`); got != "The scheduled registration of later@example.org was cancelled." {
		t.Errorf("cancel notice %q", got)
	}

	// Search: a GET form, so wait for the document it loads.
	b.do("search",
		chromedp.SetValue(css("#address"), "console@"),
		chromedp.Click(css(`[data-testid="search-submit"]`)),
	)
	b.waitDocument(`location.search.indexOf("address=console") >= 0`)
	b.do("the search result", chromedp.WaitVisible(css(`[data-testid="block-table"]`)))
	if n := b.count(`[data-testid="block-row"]`); n != 1 {
		t.Errorf("%d rows for console@, want 1", n)
	}
	b.shot("blocks-04-search")

	// Delete asks first, in the page.
	b.do("delete",
		chromedp.Click(css(`[data-testid="delete"]`)),
		chromedp.WaitVisible(css(`[data-testid="delete-confirm"]`)),
	)
	if got := b.text(`[data-testid="delete-confirm"]`); got != "Delete Console@example.org" {
		t.Errorf("confirm button %q", got)
	}
	b.do("confirm the delete",
		chromedp.Click(css(`[data-testid="delete-confirm"]`)),
		chromedp.WaitVisible(css(`[data-testid="done"]`)),
	)
	if got := b.text(`[data-testid="done"]`); got != "Console@example.org was deleted from the suppression list." {
		t.Errorf("delete notice %q", got)
	}
	// Back on the same search, which now finds nothing live.
	if got := b.value("#address"); got != "console@" {
		t.Errorf("after the delete the search is %q", got)
	}
	if got := b.text(`[data-testid="empty"]`); got != "No entries match." {
		t.Errorf("after the delete: %q", got)
	}
	b.shot("blocks-05-deleted")

	// The Event Webhook receiver gets the registration and the deletion,
	// and nothing for the cancelled address.
	want := []string{"registered Console@example.org", "deleted Console@example.org"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		posts, _, errs := recv.snapshot()
		if len(errs) > 0 {
			t.Fatalf("receiver: %v", errs)
		}
		var got []string
		for _, p := range posts {
			for _, r := range p.records {
				if p.family != "blocks" || r["reason"] != "2" {
					t.Errorf("%s record %v", p.family, r)
				}
				got = append(got, r["status"]+" "+r["email"])
			}
		}
		if len(got) >= len(want) {
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("receiver got %q, want %q", got, want)
			}
			break
		}
		select {
		case <-recv.notify:
		case <-ctx.Done():
			t.Fatalf("receiver got %q; serve log:\n%s", got, tail(d.log.Name(), 20))
		case err := <-d.done:
			t.Fatalf("serve exited: %v", err)
		}
	}

	// The CSV of the search with the removed entries: the columns of
	// `posthorn blocks export`, which import reads back.
	b.do("include the removed entries",
		chromedp.Navigate(base+"/blocks?removed=1"),
		chromedp.WaitVisible(css(`[data-testid="block-table"]`)),
	)
	b.shot("blocks-06-removed")
	csvPath := b.download("download the CSV", t.TempDir(), chromedp.Click(css(`[data-testid="csv"]`)))
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 3 || strings.Join(records[0], ",") != "address,reason,status,occurrences,created,effective,expires,removed" {
		t.Fatalf("CSV: %q", records)
	}
	got := map[string][]string{}
	for _, r := range records[1:] {
		got[r[0]] = r
	}
	if r := got["Console@example.org"]; r == nil || r[1] != "2" || r[2] != "deleted" || r[7] == "" {
		t.Errorf("CSV row of the deleted address: %q", r)
	}
	if r := got["later@example.org"]; r == nil || r[1] != "manual" || r[2] != "cancelled" || !strings.HasSuffix(r[5], " 00:00:00") {
		t.Errorf("CSV row of the cancelled address: %q", r)
	}
	out := posthornCmd(t, 0, "blocks", "import", csvPath, "--config", cfg)
	if !strings.Contains(out, "imported 2, already listed 0, refused 0") {
		t.Errorf("posthorn blocks import of the console's CSV: %s", out)
	}
}

// blocksBrowser is a headless Chromium for one test, with the steps the
// console tests take.
type blocksBrowser struct {
	t     *testing.T
	ctx   context.Context
	start time.Time
}

func newBlocksBrowser(t *testing.T) *blocksBrowser {
	t.Helper()
	return &blocksBrowser{t: t, ctx: startChromium(t), start: time.Now()}
}

func (b *blocksBrowser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.t.Logf("%6.2fs %s", time.Since(b.start).Seconds(), step)
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

// settled runs a read again while a navigation that has just replaced the
// document leaves Chromium without the JavaScript context the read started
// in (as TestConsoleBrowser's reads do).
func (b *blocksBrowser) settled(read func() error) error {
	var err error
	for range 50 {
		if err = read(); err == nil || !(strings.Contains(err.Error(), "Cannot find context") || strings.Contains(err.Error(), "No node with given id")) {
			return err
		}
		chromedp.Do(b.ctx, chromedp.WaitReady("body"))
	}
	return err
}

func (b *blocksBrowser) text(sel string) string {
	b.t.Helper()
	var s string
	err := b.settled(func() (err error) {
		s, err = chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(sel)))
		return err
	})
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

func (b *blocksBrowser) value(sel string) string {
	b.t.Helper()
	var s string
	err := b.settled(func() (err error) {
		s, err = chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf("document.querySelector(%q).value", sel)))
		return err
	})
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

func (b *blocksBrowser) count(sel string) int {
	b.t.Helper()
	var n int
	err := b.settled(func() (err error) {
		n, err = chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		return err
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

// waitDocument waits for the document a GET form loads: until cond, a
// JavaScript expression about the location, holds and the page is
// complete; the page before may show what is waited for already.
func (b *blocksBrowser) waitDocument(cond string) {
	b.t.Helper()
	err := b.settled(func() error {
		for {
			done, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](cond+` && document.readyState === "complete"`))
			if err != nil || done {
				return err
			}
			chromedp.Do(b.ctx, chromedp.WaitReady("body"))
		}
	})
	if err != nil {
		b.t.Fatalf("wait for %s: %v", cond, err)
	}
}

// shot saves a picture of the screen: a record for people, so a capture
// that fails is logged, not a failure.
func (b *blocksBrowser) shot(name string) {
	b.t.Helper()
	var png []byte
	var err error
	for _, capture := range []chromedp.Action[[]byte]{chromedp.FullScreenshot(100), chromedp.CaptureScreenshot()} {
		sctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
		png, err = chromedp.Run(sctx, capture)
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		b.t.Logf("WARNING: screenshot %s not saved: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// download runs actions that start a download into dir and returns the
// file's path once the browser reports it complete.
func (b *blocksBrowser) download(step, dir string, actions ...chromedp.Action[chromedp.Void]) string {
	b.t.Helper()
	progress := chromedp.Events(b.ctx, browser.DownloadProgress)
	b.do(step, append([]chromedp.Action[chromedp.Void]{
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior:      browser.SetDownloadBehaviorBehaviorAllowAndName,
				DownloadPath:  dir,
				EventsEnabled: ptr(true),
			})
			return err
		}),
	}, actions...)...)
	for ev, err := range progress {
		if err != nil {
			b.t.Fatal(err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			b.t.Fatalf("%s: the download was cancelled", step)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			return filepath.Join(dir, ev.GUID)
		}
	}
	b.t.Fatalf("%s: the browser reported no finished download", step)
	return ""
}
