package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// CreateUser adds a local account; store.ErrConflict if the name or the ID
// is taken.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	return db.w.do(ctx, func(t *wtx) error {
		_, err := t.exec("INSERT INTO users (id, name, password_hash, created_at) VALUES (?, ?, ?, ?)",
			u.ID, u.Name, u.PasswordHash, ts(u.CreatedAt))
		if err != nil {
			return fmt.Errorf("create user %q: %w", u.Name, conflict(err))
		}
		return nil
	})
}

const userColumns = "id, name, password_hash, created_at"

func scanUser(s scanner) (store.User, error) {
	var u store.User
	err := s.Scan(&u.ID, &u.Name, &u.PasswordHash, tcol(&u.CreatedAt))
	return u, err
}

// GetUserByName returns the user with this name (case-sensitive), or
// store.ErrNotFound.
func (db *DB) GetUserByName(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(db.row(ctx, "SELECT "+userColumns+" FROM users WHERE name = ?", name))
	if err != nil {
		return store.User{}, fmt.Errorf("get user %q: %w", name, notFound(err))
	}
	return u, nil
}

// GetUser returns the user with this ID, or store.ErrNotFound.
func (db *DB) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(db.row(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
	if err != nil {
		return store.User{}, fmt.Errorf("get user id %q: %w", id, notFound(err))
	}
	return u, nil
}

// ListUsers returns every user, ordered by name.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	return list(ctx, db, "list users", scanUser, "SELECT "+userColumns+" FROM users ORDER BY name")
}

// DeleteUser deletes the user named name with their sessions, consents and
// authorization codes, and revokes their refresh families (RevokedAt is
// the wall-clock time of the call). store.ErrNotFound if there is no such
// user.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	now := ts(time.Now())
	return db.w.do(ctx, func(t *wtx) error {
		var id string
		if err := t.row("SELECT id FROM users WHERE name = ?", name).Scan(&id); err != nil {
			return fmt.Errorf("delete user %q: %w", name, notFound(err))
		}
		for _, q := range []string{
			"DELETE FROM sessions WHERE user_id = ?",
			"DELETE FROM consents WHERE user_id = ?",
			"DELETE FROM codes WHERE user_id = ?",
			"DELETE FROM users WHERE id = ?",
		} {
			if _, err := t.exec(q, id); err != nil {
				return fmt.Errorf("delete user %q: %w", name, err)
			}
		}
		if _, err := t.exec("UPDATE families SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", now, id); err != nil {
			return fmt.Errorf("delete user %q: revoke families: %w", name, err)
		}
		return nil
	})
}

// RateHit counts one event for key in the fixed window containing now and
// returns the count in that window, this event included. Windows are
// aligned to the Unix epoch: [k*window, (k+1)*window). A key counted over
// different window lengths keeps a counter per length.
func (db *DB) RateHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	w := window.Microseconds()
	if w <= 0 {
		return 0, fmt.Errorf("rate hit %q: window %v is shorter than a microsecond", key, window)
	}
	us := now.UnixMicro()
	start := us - us%w
	if us%w < 0 {
		start -= w
	}
	var n int
	err := db.w.do(ctx, func(t *wtx) error {
		return t.row(`INSERT INTO rate_hits (key, window_us, window_start, count, expires_at) VALUES (?, ?, ?, 1, ?)
			ON CONFLICT (key, window_us, window_start) DO UPDATE SET count = count + 1
			RETURNING count`, key, w, start, start+w).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("rate hit %q: %w", key, err)
	}
	return n, nil
}

// CreateSession stores a signed-in session; store.ErrConflict if its ID
// hash exists.
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	return db.w.do(ctx, func(t *wtx) error {
		_, err := t.exec("INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
			s.IDHash, s.UserID, ts(s.CreatedAt), ts(s.ExpiresAt))
		if err != nil {
			return fmt.Errorf("create session: %w", conflict(err))
		}
		return nil
	})
}

// GetSession returns the session with this ID hash, or store.ErrNotFound
// if there is none or it has expired (now is not before ExpiresAt).
func (db *DB) GetSession(ctx context.Context, idHash string, now time.Time) (store.Session, error) {
	var s store.Session
	err := db.row(ctx, "SELECT id_hash, user_id, created_at, expires_at FROM sessions WHERE id_hash = ? AND expires_at > ?",
		idHash, ts(now)).Scan(&s.IDHash, &s.UserID, tcol(&s.CreatedAt), tcol(&s.ExpiresAt))
	if err != nil {
		return store.Session{}, fmt.Errorf("get session: %w", notFound(err))
	}
	return s, nil
}

// DeleteSession deletes the session with this ID hash. Deleting a session
// that does not exist is not an error (signing out twice).
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	return db.w.do(ctx, func(t *wtx) error {
		if _, err := t.exec("DELETE FROM sessions WHERE id_hash = ?", idHash); err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		return nil
	})
}
