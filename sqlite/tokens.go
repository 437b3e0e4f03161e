package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Errors of the API token methods, for `posthorn token` to tell apart.
var (
	ErrTokenExists = errors.New("a token of this name exists; revoke it first or choose another name")
	ErrNoToken     = errors.New("no live token of this name")
)

// APIToken is one row of api_tokens (0006_tokens.sql) as `posthorn token
// list` shows it. Zero times are "never".
type APIToken struct {
	Name    string
	Created time.Time
	Used    time.Time
	Revoked time.Time
}

// The token itself is never given to the store, only its hash: the
// SHA-256 of the token, 64 hex digits (ui.APITokenHash). A fast hash is
// right here, unlike for passwords: a token is 32 random bytes, so no
// amount of hashing speed lets anyone search for it from the hash, which
// a slow hash guards against for the few guessable passwords people pick.
// A fast, unsalted hash is also what lets a request's token be found by an
// index lookup rather than by checking every stored token in turn.
func checkTokenHash(hash string) error {
	if len(hash) != 64 {
		return fmt.Errorf("token hash is %d characters, want 64 hex digits", len(hash))
	}
	for i := 0; i < len(hash); i++ {
		if c := hash[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return errors.New("token hash is not lower-case hex")
		}
	}
	return nil
}

// AddAPIToken stores a new token under name, made at. ErrTokenExists when
// a live (not revoked) token has the name.
func (s *Store) AddAPIToken(ctx context.Context, name, hash string, at time.Time) error {
	if name == "" {
		return errors.New("add token: empty name")
	}
	if err := checkTokenHash(hash); err != nil {
		return fmt.Errorf("add token %s: %w", name, err)
	}
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL`, name).Scan(&one)
		switch {
		case err == nil:
			return ErrTokenExists
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO api_tokens (name, hash, created_at) VALUES (?, ?, ?)`,
			name, hash, at.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("add token %s: %w", name, err)
	}
	return nil
}

// RevokeAPIToken marks the live token of name revoked at at. Its row stays,
// so that the API can answer its holder 403 rather than 401. ErrNoToken
// when no live token has the name.
func (s *Store) RevokeAPIToken(ctx context.Context, name string, at time.Time) error {
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`,
			at.UnixNano(), name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNoToken
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", name, err)
	}
	return nil
}

// APITokens returns every token, revoked ones too, by name and then age.
func (s *Store) APITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, created_at, used_at, revoked_at FROM api_tokens
		ORDER BY name, created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		var t APIToken
		var created int64
		var used, revoked sql.NullInt64
		if err := rows.Scan(&t.Name, &created, &used, &revoked); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.Created = time.Unix(0, created).UTC()
		t.Used = decodeOptionalTime(used, 0)
		t.Revoked = decodeOptionalTime(revoked, 0)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// APIToken looks a token up by its hash: its name, whether it was revoked,
// and when it was last used (zero: never). ok is false for a hash no token
// has. A malformed hash is simply not found.
func (s *Store) APIToken(ctx context.Context, hash string) (name string, revoked bool, used time.Time, ok bool, err error) {
	if checkTokenHash(hash) != nil {
		return "", false, time.Time{}, false, nil
	}
	var u, r sql.NullInt64
	err = s.r.QueryRowContext(ctx, `SELECT name, used_at, revoked_at FROM api_tokens WHERE hash = ?`, hash).
		Scan(&name, &u, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, time.Time{}, false, nil
	}
	if err != nil {
		return "", false, time.Time{}, false, fmt.Errorf("look up token: %w", err)
	}
	return name, r.Valid, decodeOptionalTime(u, 0), true, nil
}

// TouchAPIToken records that the token with this hash was used at at.
func (s *Store) TouchAPIToken(ctx context.Context, hash string, at time.Time) error {
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET used_at = ? WHERE hash = ?`, at.UnixNano(), hash)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch token: %w", err)
	}
	return nil
}
