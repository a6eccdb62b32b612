package sql

import (
	"context"
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
// CIMD §8.2, docs/security.md attack 52).
func (db *DB) RecordJTI(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	_, err := db.exec(ctx, "INSERT INTO jtis (client_id, jti, expires_at) VALUES (?, ?, ?)", clientID, jti, expiresAt)
	return wrapf(err, "record jti for client %q", clientID)
}
