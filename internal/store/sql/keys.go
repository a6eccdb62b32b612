package sql

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// CreateSigningKey stores a JWT signing key (RFC 9068 §2); store.ErrConflict if
// its ID exists.
func (db *DB) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := db.exec(ctx, `INSERT INTO signing_keys (id, algorithm, private_key, created_at, active_at, retire_at, expire_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, k.PrivateKey, k.CreatedAt, k.ActiveAt, k.RetireAt, k.ExpireAt)
	return wrapf(err, "create signing key %q", k.ID)
}

// ListSigningKeys returns every signing key ordered by ActiveAt, then ID.
func (db *DB) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return list(ctx, db, "list signing keys", func(k *store.SigningKey) []any {
		return []any{&k.ID, &k.Algorithm, &k.PrivateKey, tcol(&k.CreatedAt), tcol(&k.ActiveAt), tcol(&k.RetireAt), tcol(&k.ExpireAt)}
	}, "SELECT id, algorithm, private_key, created_at, active_at, retire_at, expire_at FROM signing_keys ORDER BY active_at, id")
}

// UpdateSigningKey changes the schedule of the key with k.ID: ActiveAt,
// RetireAt and ExpireAt. Algorithm, PrivateKey and CreatedAt never change.
// store.ErrNotFound if there is no such key.
func (db *DB) UpdateSigningKey(ctx context.Context, k store.SigningKey) error {
	err := db.change(ctx, "UPDATE signing_keys SET active_at = ?, retire_at = ?, expire_at = ? WHERE id = ?",
		k.ActiveAt, k.RetireAt, k.ExpireAt, k.ID)
	return wrapf(err, "update signing key %q", k.ID)
}

// RecordJTI stores the client's assertion jti until expiresAt;
// store.ErrConflict while the pair is stored, expired or not (RFC 7523 §3,
// CIMD §8.2, RFC 7523 §3).
func (db *DB) RecordJTI(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	_, err := db.exec(ctx, "INSERT INTO jtis (client_id, jti, expires_at) VALUES (?, ?, ?)", clientID, jti, expiresAt)
	return wrapf(err, "record jti for client %q", clientID)
}

// ErrLogHeld is returned by [DB.ReplaceSigningKeyMaterial] when the change
// committed but another process kept the SQLite write-ahead log from being
// emptied, so the old bytes may remain in it.
var ErrLogHeld = errors.New("committed, but the old key bytes may remain in the write-ahead log: another process holds the database")

// ReplaceSigningKeyMaterial stores the New bytes of every change in one
// transaction: all or none. The changes must cover exactly the stored keys,
// each still holding its Old bytes; otherwise (a key was added, removed or
// changed since they were read) nothing is written and the error is
// store.ErrConflict. On SQLite the database is then rebuilt (VACUUM) and its
// log truncated, so that the Old bytes do not linger in free pages or the
// WAL; that part fails, after the commit, only when another process holds
// the log (a running serve), and the error says so.
func (db *DB) ReplaceSigningKeyMaterial(ctx context.Context, changes []store.KeyMaterial) error {
	err := db.write(ctx, func(t *tx) error {
		var n int
		if err := t.get("SELECT count(*) FROM signing_keys", nil, &n); err != nil {
			return fmt.Errorf("count signing keys: %w", err)
		}
		if n != len(changes) {
			return fmt.Errorf("replace signing key material: %d keys stored, %d given: %w", n, len(changes), store.ErrConflict)
		}
		for _, c := range changes {
			m, err := t.exec("UPDATE signing_keys SET private_key = ? WHERE id = ? AND private_key = ?", c.New, c.ID, c.Old)
			if err != nil {
				return fmt.Errorf("replace signing key material %q: %w", c.ID, err)
			}
			if m != 1 {
				return fmt.Errorf("replace signing key material %q: changed since read: %w", c.ID, store.ErrConflict)
			}
		}
		return nil
	})
	if err != nil || db.w == nil {
		return err
	}
	return db.scrub(ctx)
}

// scrub rewrites the SQLite file without free pages (VACUUM) and empties
// the WAL (a TRUNCATE checkpoint), on a connection of its own.
func (db *DB) scrub(ctx context.Context) error {
	c, err := stdsql.Open("sqlite", dsn(db.file, backupRole))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetMaxOpenConns(1)
	if _, err := c.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("vacuum after replacing key material: %w", err)
	}
	var busy, frames, done int
	if err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
		return fmt.Errorf("checkpoint after replacing key material: %w", err)
	}
	if busy != 0 {
		return ErrLogHeld
	}
	return nil
}
