package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBlocksEvents: suppression-list changes made with the CLI and by
// serve's scheduler reach the Event Webhook receiver as blocks records
// (WIRE.md §2, version 2). The scheduler runs on a clock the test sets
// through POSTHORN_TEST_CLOCK, so the execution time comes without waiting
// for it.
func TestBlocksEvents(t *testing.T) {
	recv := startReceiver(t)
	dir := testDir(t)
	maillog := filepath.Join(dir, "maillog")
	if err := os.WriteFile(maillog, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, maillog, "")
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte("server_composition = \"e2e-composition\"\n"), data...), 0o644)
	importSettings(t, dir, cfg, hookSettings(recv.url, recv.caFile, "  blocks: true\n"))

	clockFile := filepath.Join(dir, "clock")
	setClock := func(s string) {
		t.Helper()
		if err := os.WriteFile(clockFile+".tmp", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(clockFile+".tmp", clockFile); err != nil {
			t.Fatal(err)
		}
	}
	setClock("2026-11-27T10:00:00Z")
	t.Setenv("POSTHORN_TEST_CLOCK", clockFile) // for the CLI and for serve

	out := posthornCmd(t, 0, "blocks", "add", "Scheduled@Example.ORG", "--exec-time", "12:00", "--zone", "UTC", "--config", cfg)
	if !strings.Contains(out, "Scheduled@example.org: scheduled for 2026-11-27 12:00:00") {
		t.Fatalf("add printed %q", out)
	}
	d := startServe(t, cfg)
	posthornCmd(t, 0, "blocks", "add", "now@example.org", "--now", "--reason", "2", "--zone", "UTC", "--config", cfg)
	posthornCmd(t, 0, "blocks", "del", "now@example.org", "--config", cfg)
	posthornCmd(t, 1, "blocks", "del", "Scheduled@example.org", "--config", cfg) // not in effect yet

	// The execution time: serve's scheduler registers the scheduled
	// address and wakes the dispatcher, which posts the three records.
	setClock("2026-11-27T12:00:00Z")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := map[string]map[string]string{
		"registered now@example.org":       {"created": "2026-11-27 10:00:00", "reason": "2"},
		"deleted now@example.org":          {"created": "2026-11-27 10:00:00", "reason": "2"},
		"registered Scheduled@example.org": {"created": "2026-11-27 12:00:00", "reason": "manual"},
	}
	for {
		posts, _, errs := recv.snapshot()
		if len(errs) > 0 {
			t.Fatalf("receiver: %v", errs)
		}
		got := map[string]map[string]string{}
		for _, p := range posts {
			if p.family != "blocks" {
				t.Errorf("post of family %s", p.family)
				continue
			}
			for _, r := range p.records {
				got[r["status"]+" "+r["email"]] = r
			}
		}
		if len(got) >= len(want) {
			for k, w := range want {
				r, ok := got[k]
				if !ok {
					t.Errorf("no record %q; got %v", k, got)
					continue
				}
				if len(r) != 5 || r["apiData"] != "" || r["created"] != w["created"] || r["reason"] != w["reason"] {
					t.Errorf("record %q = %v, want created %s reason %s and the five fields of version 2", k, r, w["created"], w["reason"])
				}
			}
			if len(got) != len(want) {
				t.Errorf("got %d records, want %d: %v", len(got), len(want), got)
			}
			break
		}
		select {
		case <-recv.notify:
		case <-ctx.Done():
			t.Fatalf("receiver got %v; serve log:\n%s", got, readFile(t, filepath.Join(dir, "serve.log")))
		case err := <-d.done:
			t.Fatalf("serve exited: %v", err)
		}
	}
	list := posthornCmd(t, 0, "blocks", "list", "--removed", "--zone", "UTC", "--config", cfg)
	if !strings.Contains(list, "Scheduled@example.org") || !strings.Contains(list, "registered") || !strings.Contains(list, "deleted") {
		t.Errorf("list:\n%s", list)
	}
}
