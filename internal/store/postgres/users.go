package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// CreateUser adds a local account; store.ErrConflict if the name or the ID
// is taken.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	_, err := db.exec(ctx, "INSERT INTO users (id, name, password_hash, created_at) VALUES ($1, $2, $3, $4)",
		u.ID, u.Name, u.PasswordHash, ts(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, conflict(err))
	}
	return nil
}

const userColumns = "id, name, password_hash, created_at"

func userDest(u *store.User) []any { return []any{&u.ID, &u.Name, &u.PasswordHash, tcol(&u.CreatedAt)} }

func scanUser(s scanner) (store.User, error) {
	var u store.User
	err := s.Scan(userDest(&u)...)
	return u, err
}

// getUser reads the user a query selects by one argument.
func (db *DB) getUser(ctx context.Context, where, arg string) (store.User, error) {
	var u store.User
	err := db.get(ctx, "SELECT "+userColumns+" FROM users WHERE "+where+" = $1", []any{arg}, userDest(&u)...)
	return u, notFound(err)
}

// GetUserByName returns the user with this name (case-sensitive), or
// store.ErrNotFound.
func (db *DB) GetUserByName(ctx context.Context, name string) (store.User, error) {
	u, err := db.getUser(ctx, "name", name)
	if err != nil {
		return store.User{}, fmt.Errorf("get user %q: %w", name, err)
	}
	return u, nil
}

// GetUser returns the user with this ID, or store.ErrNotFound.
func (db *DB) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := db.getUser(ctx, "id", id)
	if err != nil {
		return store.User{}, fmt.Errorf("get user id %q: %w", id, err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by name byte by byte.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	return list(ctx, db, "list users", scanUser, "SELECT "+userColumns+" FROM users ORDER BY name")
}

// DeleteUser deletes the user named name with their sessions, consents and
// authorization codes, and revokes their refresh families (RevokedAt is
// the wall-clock time of the call), in one statement. store.ErrNotFound if
// there is no such user.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	err := db.change(ctx, `WITH u AS (DELETE FROM users WHERE name = $1 RETURNING id),
			s AS (DELETE FROM sessions WHERE user_id IN (SELECT id FROM u)),
			c AS (DELETE FROM consents WHERE user_id IN (SELECT id FROM u)),
			k AS (DELETE FROM codes WHERE user_id IN (SELECT id FROM u)),
			f AS (UPDATE families SET revoked_at = $2 WHERE user_id IN (SELECT id FROM u) AND revoked_at IS NULL)
		SELECT id FROM u`, name, time.Now())
	if err != nil {
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	return nil
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
	// A write: never retried, or one event could count twice.
	err := db.pool.QueryRow(ctx, `INSERT INTO rate_hits AS r (key, window_us, window_start, count, expires_at)
			VALUES ($1, $2, $3, 1, $4)
		ON CONFLICT (key, window_us, window_start) DO UPDATE SET count = r.count + 1
		RETURNING count`, key, w, time.UnixMicro(start), time.UnixMicro(start+w)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("rate hit %q: %w", key, err)
	}
	return n, nil
}

// CreateSession stores a signed-in session; store.ErrConflict if its ID
// hash exists.
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	_, err := db.exec(ctx, "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
		s.IDHash, s.UserID, ts(s.CreatedAt), ts(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create session: %w", conflict(err))
	}
	return nil
}

// GetSession returns the session with this ID hash, or store.ErrNotFound
// if there is none or it has expired (now is not before ExpiresAt).
func (db *DB) GetSession(ctx context.Context, idHash string, now time.Time) (store.Session, error) {
	var s store.Session
	err := db.get(ctx, "SELECT id_hash, user_id, created_at, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2",
		[]any{idHash, now}, &s.IDHash, &s.UserID, tcol(&s.CreatedAt), tcol(&s.ExpiresAt))
	if err != nil {
		return store.Session{}, fmt.Errorf("get session: %w", notFound(err))
	}
	return s, nil
}

// DeleteSession deletes the session with this ID hash. Deleting a session
// that does not exist is not an error (signing out twice).
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := db.exec(ctx, "DELETE FROM sessions WHERE id_hash = $1", idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
