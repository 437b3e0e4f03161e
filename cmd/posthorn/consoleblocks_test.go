package main

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// TestConsoleBlocksErrors checks the kinds the console and the API tell
// apart, on a real store: which input was wrong, an entry already there,
// none there, and an entry in the other state.
func TestConsoleBlocksErrors(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	cfg := config.Default()
	cfg.Blocks.Timezone = "UTC"
	c := consoleBlocks{newBlockService(cfg, store, &fakeClock{now: t0, changed: make(chan struct{})}, nil)}

	for _, tc := range []struct {
		name, addr, reason string
		when               ui.BlockWhen
		field              string
	}{
		{"not an address", "nobody", "manual", ui.BlockWhen{Now: true}, "address"},
		{"unknown reason", "a@example.org", "42", ui.BlockWhen{Now: true}, "reason"},
		{"time in the past", "a@example.org", "manual", ui.BlockWhen{At: t0.Add(-time.Minute)}, "at"},
	} {
		_, err := c.AddBlock(ctx, tc.addr, tc.reason, tc.when, -1)
		var input *ui.BlockInputError
		if !errors.Is(err, ui.ErrBlockInvalid) || !errors.As(err, &input) || input.Field != tc.field {
			t.Errorf("%s: %v, want an invalid %s", tc.name, err, tc.field)
		}
	}
	if _, err := c.AddBlock(ctx, "a@example.org", "manual", ui.BlockWhen{Now: true}, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddBlock(ctx, "a@example.org", "manual", ui.BlockWhen{Now: true}, -1); !errors.Is(err, ui.ErrBlockExists) {
		t.Errorf("second add: %v, want exists", err)
	}
	if _, err := c.CancelBlock(ctx, "a@example.org"); !errors.Is(err, ui.ErrBlockState) {
		t.Errorf("cancel of a registered entry: %v, want wrong state", err)
	}
	if _, err := c.DeleteBlock(ctx, "b@example.org"); !errors.Is(err, ui.ErrNoBlock) {
		t.Errorf("delete of an absent entry: %v, want not found", err)
	}
	e, err := c.AddBlock(ctx, "later@Example.ORG", "unsubscribe", ui.BlockWhen{}, -1)
	if err != nil || e.Status != "scheduled" || e.Address != "later@example.org" || !e.Scheduled.Equal(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("scheduled add = %+v, %v; want at the next 00:00", e, err)
	}
}
