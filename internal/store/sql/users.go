package sql

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// CreateUser adds a local account; store.ErrConflict if the name or the ID
// is taken.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	_, err := db.exec(ctx, "INSERT INTO users (id, name, password_hash, created_at) VALUES (?, ?, ?, ?)",
		u.ID, u.Name, u.PasswordHash, u.CreatedAt)
	return wrapf(err, "create user %q", u.Name)
}

const selectUser = "SELECT id, name, password_hash, created_at FROM users"

func userDest(u *store.User) []any { return []any{&u.ID, &u.Name, &u.PasswordHash, tcol(&u.CreatedAt)} }

// GetUserByName returns the user with this name (case-sensitive), or
// store.ErrNotFound.
func (db *DB) GetUserByName(ctx context.Context, name string) (store.User, error) {
	u, err := one(ctx, db, userDest, selectUser+" WHERE name = ?", name)
	return u, wrapf(err, "get user %q", name)
}

// GetUser returns the user with this ID, or store.ErrNotFound.
func (db *DB) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := one(ctx, db, userDest, selectUser+" WHERE id = ?", id)
	return u, wrapf(err, "get user id %q", id)
}

// ListUsers returns every user, ordered by name byte by byte.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	return list(ctx, db, "list users", userDest, selectUser+" ORDER BY name")
}

// DeleteUser deletes the user with their sessions, consents and codes, and
// revokes their families (at the wall-clock time), in one transaction;
// store.ErrNotFound if there is no such user.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	now := time.Now()
	return wrapf(db.write(ctx, func(t *tx) error {
		var id string
		if err := t.get("SELECT id FROM users WHERE name = ?", []any{name}, &id); err != nil {
			return err
		}
		for _, q := range []string{
			"DELETE FROM sessions WHERE user_id = ?",
			"DELETE FROM consents WHERE user_id = ?",
			"DELETE FROM codes WHERE user_id = ?",
			"DELETE FROM users WHERE id = ?",
		} {
			if _, err := t.exec(q, id); err != nil {
				return err
			}
		}
		_, err := t.exec("UPDATE families SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", now, id)
		return wrapf(err, "revoke families")
	}), "delete user %q", name)
}

// RateHit counts one event as [store.Store] says. Windows are aligned to
// the Unix epoch: [k*window, (k+1)*window); each window length has its own
// counter. It is a write, never retried, or one event could count twice.
func (db *DB) RateHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	w, start, err := rateWindow(window, now)
	if err != nil {
		return 0, fmt.Errorf("rate hit %q: %w", key, err)
	}
	var n int
	err = db.writeOne(ctx, func(t *tx) error {
		return t.get(`INSERT INTO rate_hits (key, window_us, window_start, count, expires_at) VALUES (?, ?, ?, 1, ?)
			ON CONFLICT (key, window_us, window_start) DO UPDATE SET count = rate_hits.count + 1
			RETURNING count`, []any{key, w, time.UnixMicro(start), time.UnixMicro(start + w)}, &n)
	})
	return n, wrapf(err, "rate hit %q", key)
}

// RateUndo takes back one event as [store.Store] says; a count never goes
// below zero. Like RateHit it is never retried.
func (db *DB) RateUndo(ctx context.Context, key string, window time.Duration, now time.Time) error {
	w, start, err := rateWindow(window, now)
	if err != nil {
		return fmt.Errorf("rate undo %q: %w", key, err)
	}
	err = db.writeOne(ctx, func(t *tx) error {
		_, err := t.exec("UPDATE rate_hits SET count = count - 1 WHERE key = ? AND window_us = ? AND window_start = ? AND count > 0",
			key, w, time.UnixMicro(start))
		return err
	})
	return wrapf(err, "rate undo %q", key)
}

// rateWindow is the window length and the start of the window containing
// now, in microseconds since the Unix epoch.
func rateWindow(window time.Duration, now time.Time) (w, start int64, err error) {
	w = window.Microseconds()
	if w <= 0 {
		return 0, 0, fmt.Errorf("window %v is shorter than a microsecond", window)
	}
	us := now.UnixMicro()
	start = us - us%w
	if us%w < 0 {
		start -= w
	}
	return w, start, nil
}

// CreateSession stores a signed-in session; store.ErrConflict if its ID
// hash exists.
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	_, err := db.exec(ctx, "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		s.IDHash, s.UserID, s.CreatedAt, s.ExpiresAt)
	return wrapf(err, "create session")
}

// GetSession returns the session with this ID hash, or store.ErrNotFound
// if there is none or it has expired (now is not before ExpiresAt).
func (db *DB) GetSession(ctx context.Context, idHash string, now time.Time) (store.Session, error) {
	s, err := one(ctx, db, func(s *store.Session) []any {
		return []any{&s.IDHash, &s.UserID, tcol(&s.CreatedAt), tcol(&s.ExpiresAt)}
	}, "SELECT id_hash, user_id, created_at, expires_at FROM sessions WHERE id_hash = ? AND expires_at > ?", idHash, now)
	return s, wrapf(err, "get session")
}

// DeleteSession deletes the session with this ID hash. Deleting a session
// that does not exist is not an error (signing out twice).
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	_, err := db.exec(ctx, "DELETE FROM sessions WHERE id_hash = ?", idHash)
	return wrapf(err, "delete session")
}
