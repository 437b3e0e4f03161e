package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/posthorn/posthorn/blocks"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// consoleBlocks is the block service as the console and its API see it.
type consoleBlocks struct{ svc *blockService }

var _ ui.BlockList = consoleBlocks{}

func (c consoleBlocks) ListBlocks(ctx context.Context, q ui.BlockQuery) ([]ui.BlockEntry, error) {
	entries, err := c.svc.List(ctx, storeBlockQuery(q))
	if err != nil {
		return nil, err
	}
	out := make([]ui.BlockEntry, len(entries))
	for i, e := range entries {
		out[i] = uiBlock(e)
	}
	return out, nil
}

func (c consoleBlocks) CountBlocks(ctx context.Context, q ui.BlockQuery) (int, error) {
	return c.svc.store.CountBlocks(ctx, storeBlockQuery(q))
}

func (c consoleBlocks) AddBlock(ctx context.Context, address, reason string, when ui.BlockWhen, watchDays int) (ui.BlockEntry, error) {
	r, err := blocks.ParseReason(reason)
	if err != nil {
		return ui.BlockEntry{}, &ui.BlockInputError{Field: "reason", Err: err}
	}
	e, err := c.svc.Add(ctx, address, r, blockWhen(when), watchDays)
	return uiBlock(e), uiBlockErr(err)
}

func (c consoleBlocks) DeleteBlock(ctx context.Context, address string) (ui.BlockEntry, error) {
	e, err := c.svc.Delete(ctx, address)
	return uiBlock(e), uiBlockErr(err)
}

func (c consoleBlocks) CancelBlock(ctx context.Context, address string) (ui.BlockEntry, error) {
	e, err := c.svc.Cancel(ctx, address)
	return uiBlock(e), uiBlockErr(err)
}

func (c consoleBlocks) BlockLocation(ctx context.Context) (*time.Location, error) {
	return c.svc.location(ctx)
}

func storeBlockQuery(q ui.BlockQuery) sqlite.BlockQuery {
	return sqlite.BlockQuery{Address: q.Address, Since: q.Since, Until: q.Until, Removed: q.Removed, Offset: q.Offset, Limit: q.Limit}
}

func uiBlock(e sqlite.Block) ui.BlockEntry {
	if e.ID == 0 {
		return ui.BlockEntry{}
	}
	return ui.BlockEntry{
		Address: e.Address, Reason: e.Reason, Status: e.Status(), Occurrences: e.Occurrences,
		Created: e.Created, Scheduled: e.Scheduled, Registered: e.Registered, Expires: e.Expires, Removed: e.Removed,
	}
}

// uiBlockErr adds the console's error kind to the store's.
func uiBlockErr(err error) error {
	var kind error
	var invalid invalidBlock
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return &ui.BlockInputError{Field: invalid.field, Err: invalid.error}
	case errors.Is(err, sqlite.ErrBlockExists):
		kind = ui.ErrBlockExists
	case errors.Is(err, sqlite.ErrNoBlock):
		kind = ui.ErrNoBlock
	case errors.Is(err, sqlite.ErrBlockScheduled), errors.Is(err, sqlite.ErrBlockRegistered):
		kind = ui.ErrBlockState
	default:
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}
