package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Errors of the console's user methods, for callers that tell them apart
// (`posthorn user add` on an existing name, `passwd` on a missing one).
var (
	ErrUserExists = errors.New("user already exists")
	ErrNoUser     = errors.New("no such user")
)

// AddUser stores a new console user with a password hash made by the
// caller (the store never sees a password). ErrUserExists when the name is
// taken.
func (s *Store) AddUser(ctx context.Context, name, passwordHash string) error {
	if name == "" || passwordHash == "" {
		return errors.New("add user: empty name or password hash")
	}
	now := s.now().UnixNano()
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (name, password_hash, created_at, updated_at)
			VALUES (?, ?, ?, ?)`, name, passwordHash, now, now)
		return err
	})
	if _, ext, ok := resultCode(err); ok && ext == codeConstraintPrimaryKey {
		return fmt.Errorf("add user %s: %w", name, ErrUserExists)
	}
	if err != nil {
		return fmt.Errorf("add user %s: %w", name, err)
	}
	return nil
}

// SetUserPassword replaces a user's password hash and ends all of the
// user's sessions: a password is changed because it may be known to
// someone else, who may be logged in with it. ErrNoUser when the user does
// not exist.
func (s *Store) SetUserPassword(ctx context.Context, name, passwordHash string) error {
	if passwordHash == "" {
		return errors.New("set password: empty password hash")
	}
	now := s.now().UnixNano()
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?`,
			passwordHash, now, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNoUser
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_name = ?`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	return nil
}

// DeleteUser removes a user and, through the foreign key, the user's
// sessions. ErrNoUser when the user does not exist.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNoUser
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	return nil
}

// Users returns the names of all console users, sorted.
func (s *Store) Users(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UserPasswordHash returns the stored hash of a user's password; ok is
// false when there is no such user.
func (s *Store) UserPasswordHash(ctx context.Context, name string) (hash string, ok bool, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE name = ?`, name).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read user %s: %w", name, err)
	}
	return hash, true, nil
}

// CreateSession stores a session of user under id (the hash of the cookie
// value, 64 hex digits), created and last seen at now. The user must exist.
func (s *Store) CreateSession(ctx context.Context, id, user string, now time.Time) error {
	ns := now.UnixNano()
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, user_name, created_at, seen_at)
			VALUES (?, ?, ?, ?)`, id, user, ns, ns)
		return err
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns the user, creation and last-seen time of a session; ok
// is false when there is none under id (never created, ended, or its user
// deleted).
func (s *Store) Session(ctx context.Context, id string) (user string, created, seen time.Time, ok bool, err error) {
	var c, sn int64
	err = s.r.QueryRowContext(ctx, `SELECT user_name, created_at, seen_at FROM sessions WHERE id = ?`, id).
		Scan(&user, &c, &sn)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, time.Time{}, false, fmt.Errorf("read session: %w", err)
	}
	return user, time.Unix(0, c), time.Unix(0, sn), true, nil
}

// TouchSession records that a session was used at seen.
func (s *Store) TouchSession(ctx context.Context, id string, seen time.Time) error {
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET seen_at = ? WHERE id = ?`, seen.UnixNano(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession ends a session; ending one that does not exist is no error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PruneSessions deletes the sessions last seen before idleBefore or
// created before createdBefore, which can no longer be used, and returns
// how many it deleted.
func (s *Store) PruneSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE seen_at < ? OR created_at < ?`,
			idleBefore.UnixNano(), createdBefore.UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	return n, nil
}

// loginFailureKeep is how long failed logins are kept: far longer than the
// minute they are counted over, short enough that the table stays small.
const loginFailureKeep = time.Hour

// AddLoginFailure records one failed login at at under each key, and
// prunes failures older than an hour.
func (s *Store) AddLoginFailure(ctx context.Context, keys []string, at time.Time) error {
	ns := at.UnixNano()
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO login_failures (key, at) VALUES (?, ?)`, k, ns); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE at < ?`, at.Add(-loginFailureKeep).UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("record failed login: %w", err)
	}
	return nil
}

// LoginFailures counts the failed logins recorded under key at or after
// since.
func (s *Store) LoginFailures(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM login_failures WHERE key = ? AND at >= ?`,
		key, since.UnixNano()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count failed logins: %w", err)
	}
	return n, nil
}
