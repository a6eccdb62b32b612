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
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	return nil
}

const userColumns = "id, name, password_hash, created_at"

func userDest(u *store.User) []any { return []any{&u.ID, &u.Name, &u.PasswordHash, tcol(&u.CreatedAt)} }

// GetUserByName returns the user with this name (case-sensitive), or
// store.ErrNotFound.
func (db *DB) GetUserByName(ctx context.Context, name string) (store.User, error) {
	var u store.User
	if err := db.get(ctx, "SELECT "+userColumns+" FROM users WHERE name = ?", []any{name}, userDest(&u)...); err != nil {
		return store.User{}, fmt.Errorf("get user %q: %w", name, err)
	}
	return u, nil
}

// GetUser returns the user with this ID, or store.ErrNotFound.
func (db *DB) GetUser(ctx context.Context, id string) (store.User, error) {
	var u store.User
	if err := db.get(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", []any{id}, userDest(&u)...); err != nil {
		return store.User{}, fmt.Errorf("get user id %q: %w", id, err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by name byte by byte.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	return list(ctx, db, "list users", userDest, "SELECT "+userColumns+" FROM users ORDER BY name")
}

// DeleteUser deletes the user named name with their sessions, consents and
// authorization codes, and revokes their refresh families (RevokedAt is
// the wall-clock time of the call), in one transaction. store.ErrNotFound
// if there is no such user.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	now := time.Now()
	return db.write(ctx, func(t *tx) error {
		var id string
		if err := t.get("SELECT id FROM users WHERE name = ?", []any{name}, &id); err != nil {
			return fmt.Errorf("delete user %q: %w", name, err)
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
// different window lengths keeps a counter per length. It is a write,
// never retried, or one event could count twice.
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
	err := db.writeOne(ctx, func(t *tx) error {
		return t.get(`INSERT INTO rate_hits (key, window_us, window_start, count, expires_at) VALUES (?, ?, ?, 1, ?)
			ON CONFLICT (key, window_us, window_start) DO UPDATE SET count = rate_hits.count + 1
			RETURNING count`, []any{key, w, time.UnixMicro(start), time.UnixMicro(start + w)}, &n)
	})
	if err != nil {
		return 0, fmt.Errorf("rate hit %q: %w", key, err)
	}
	return n, nil
}

// CreateSession stores a signed-in session; store.ErrConflict if its ID
// hash exists.
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	_, err := db.exec(ctx, "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		s.IDHash, s.UserID, s.CreatedAt, s.ExpiresAt)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSession returns the session with this ID hash, or store.ErrNotFound
// if there is none or it has expired (now is not before ExpiresAt).
func (db *DB) GetSession(ctx context.Context, idHash string, now time.Time) (store.Session, error) {
	var s store.Session
	err := db.get(ctx, "SELECT id_hash, user_id, created_at, expires_at FROM sessions WHERE id_hash = ? AND expires_at > ?",
		[]any{idHash, now}, &s.IDHash, &s.UserID, tcol(&s.CreatedAt), tcol(&s.ExpiresAt))
	if err != nil {
		return store.Session{}, fmt.Errorf("get session: %w", err)
	}
	return s, nil
}

// DeleteSession deletes the session with this ID hash. Deleting a session
// that does not exist is not an error (signing out twice).
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := db.exec(ctx, "DELETE FROM sessions WHERE id_hash = ?", idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
