package ui

import (
	"context"
	"errors"
	"time"
)

// The suppression list as the Blocks screen and /api/v1/blocks use it.
// The implementation (cmd/posthorn's block service) schedules, normalises
// and validates; its errors wrap one of these so that the console can say
// what went wrong and the API can answer with the right status. Any other
// error is the server's fault.
var (
	// ErrBlockInvalid: the request itself is wrong (an address that is not
	// one, a time in the past, an unknown reason).
	ErrBlockInvalid = errors.New("invalid request")
	// ErrBlockExists: the address already has a live entry.
	ErrBlockExists = errors.New("address is already on the suppression list")
	// ErrNoBlock: no live entry for the address.
	ErrNoBlock = errors.New("address is not on the suppression list")
	// ErrBlockState: delete of an entry not yet in effect, or cancel of
	// one already in effect.
	ErrBlockState = errors.New("entry is in the wrong state for this action")
)

// BlockInputError is an ErrBlockInvalid about one input, named as the
// API's fields are: "address", "reason", "at", "watchDays".
type BlockInputError struct {
	Field string
	Err   error
}

func (e *BlockInputError) Error() string        { return ErrBlockInvalid.Error() + ": " + e.Err.Error() }
func (e *BlockInputError) Unwrap() error        { return e.Err }
func (e *BlockInputError) Is(target error) bool { return target == ErrBlockInvalid }

// BlockEntry is one suppression-list entry. Zero times are "not (yet)".
type BlockEntry struct {
	Address     string // normalised: domain in lower case, local part as given
	Reason      string // "manual", "unsubscribe" or a bounce class number
	Status      string // "scheduled", "registered", "deleted" or "cancelled"
	Occurrences int    // bounces counted before an automatic registration
	Created     time.Time
	Scheduled   time.Time // when it takes (or took) effect
	Registered  time.Time
	Expires     time.Time // end of the watch period
	Removed     time.Time // deleted or cancelled
}

// BlockQuery selects entries, newest first.
type BlockQuery struct {
	Address string    // substring, ASCII case-insensitive
	Since   time.Time // created at or after
	Until   time.Time // created before
	Removed bool      // include deleted and cancelled entries
	Offset  int
	Limit   int // 0: all
}

// BlockWhen says when a registration takes effect: Now, At, or (both
// zero) the next daily execution time.
type BlockWhen struct {
	Now bool
	At  time.Time
}

// BlockList is the suppression list.
type BlockList interface {
	ListBlocks(ctx context.Context, q BlockQuery) ([]BlockEntry, error)
	// CountBlocks counts what q selects, ignoring Offset and Limit.
	CountBlocks(ctx context.Context, q BlockQuery) (int, error)
	// AddBlock registers an address; watchDays < 0 means the configured
	// watch period.
	AddBlock(ctx context.Context, address, reason string, when BlockWhen, watchDays int) (BlockEntry, error)
	DeleteBlock(ctx context.Context, address string) (BlockEntry, error)
	CancelBlock(ctx context.Context, address string) (BlockEntry, error)
	// BlockLocation is the zone that execution times and "at" times are
	// in.
	BlockLocation(ctx context.Context) (*time.Location, error)
}
