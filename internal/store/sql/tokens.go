package sql

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// CreateCode stores an authorization code (OAuth 2.1 §4.1.2, RFC 9207 §2);
// store.ErrConflict if its hash exists.
func (db *DB) CreateCode(ctx context.Context, c store.Code) error {
	return db.writeOne(ctx, func(t *tx) error { return insertCode(t, c) })
}

func insertCode(t *tx, c store.Code) error {
	_, err := t.exec(`INSERT INTO codes (hash, client_id, user_id, redirect_uri, code_challenge, resource, scopes,
			family_id, auth_time, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.ClientID, c.UserID, c.RedirectURI, c.CodeChallenge, c.Resource, c.Scopes,
		c.FamilyID, c.AuthTime, c.ExpiresAt, c.UsedAt)
	return wrapf(err, "create code")
}

// GetCode returns the code with this hash, used or expired alike, or
// store.ErrNotFound.
func (db *DB) GetCode(ctx context.Context, hash string) (store.Code, error) {
	c, err := one(ctx, db, func(c *store.Code) []any {
		return []any{&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.CodeChallenge, &c.Resource, &c.Scopes,
			&c.FamilyID, tcol(&c.AuthTime), tcol(&c.ExpiresAt), tcol(&c.UsedAt)}
	}, `SELECT hash, client_id, user_id, redirect_uri, code_challenge, resource, scopes,
			family_id, auth_time, expires_at, used_at FROM codes WHERE hash = ?`, hash)
	return c, wrapf(err, "get code")
}

// RedeemCode redeems the code as [store.Store] says (OAuth 2.1 §4.1.3,
// RFC 7636 §4.6). f.ID must be the code's FamilyID and rt.FamilyID f.ID.
func (db *DB) RedeemCode(ctx context.Context, hash string, now time.Time, f store.Family, rt *store.RefreshToken) error {
	if rt != nil && rt.FamilyID != f.ID {
		return fmt.Errorf("redeem code: refresh token belongs to family %q, not %q", rt.FamilyID, f.ID)
	}
	inserts := []row{familyRow(f)}
	if rt != nil {
		inserts = append(inserts, refreshTokenRow(*rt))
	}
	err := db.consume(ctx, consumption{
		what:  "the code",
		claim: "UPDATE codes SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ? AND family_id = ?",
		args:  []any{now, hash, now, f.ID}, inserts: inserts,
		explain:     "SELECT used_at IS NOT NULL, expires_at > ?, family_id FROM codes WHERE hash = ?",
		explainArgs: []any{now, hash}, family: f.ID,
	})
	return wrapf(err, "redeem code")
}

func familyRow(f store.Family) row {
	return row{"families (" + familyColumns + ")", []any{f.ID, f.ClientID, f.UserID, f.Resource, f.Scopes,
		f.Fingerprint, f.KeyID, f.CreatedAt, f.ExpiresAt, f.RevokedAt}}
}

func refreshTokenRow(rt store.RefreshToken) row {
	return row{"refresh_tokens (hash, family_id, created_at, expires_at, used_at)",
		[]any{rt.Hash, rt.FamilyID, rt.CreatedAt, rt.ExpiresAt, rt.UsedAt}}
}

const familyColumns = "id, client_id, user_id, resource, scopes, fingerprint, key_id, created_at, expires_at, revoked_at"

func familyDest(f *store.Family) []any {
	return []any{&f.ID, &f.ClientID, &f.UserID, &f.Resource, &f.Scopes, &f.Fingerprint, &f.KeyID,
		tcol(&f.CreatedAt), tcol(&f.ExpiresAt), tcol(&f.RevokedAt)}
}

// GetRefreshToken returns the refresh token with this hash and its family,
// used, expired or revoked alike, or store.ErrNotFound.
func (db *DB) GetRefreshToken(ctx context.Context, hash string) (store.RefreshToken, store.Family, error) {
	var rt store.RefreshToken
	var f store.Family
	dest := append([]any{&rt.Hash, &rt.FamilyID, tcol(&rt.CreatedAt), tcol(&rt.ExpiresAt), tcol(&rt.UsedAt)}, familyDest(&f)...)
	err := db.get(ctx, `SELECT t.hash, t.family_id, t.created_at, t.expires_at, t.used_at,
			f.id, f.client_id, f.user_id, f.resource, f.scopes, f.fingerprint, f.key_id, f.created_at, f.expires_at, f.revoked_at
		FROM refresh_tokens t JOIN families f ON f.id = t.family_id WHERE t.hash = ?`, []any{hash}, dest...)
	if err != nil {
		return store.RefreshToken{}, store.Family{}, wrapf(err, "get refresh token")
	}
	return rt, f, nil
}

// RotateRefreshToken rotates the token as [store.Store] says (OAuth 2.1
// §4.3.1, RFC 9700 §4.14.2); next.FamilyID must be the old token's family.
func (db *DB) RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, next store.RefreshToken) error {
	err := db.consume(ctx, consumption{
		what: "the old token",
		claim: `UPDATE refresh_tokens SET used_at = ?
			WHERE hash = ? AND used_at IS NULL AND expires_at > ? AND family_id = ?
				AND EXISTS (SELECT 1 FROM families f
					WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NULL AND f.expires_at > ?)`,
		args: []any{now, oldHash, now, next.FamilyID, now}, inserts: []row{refreshTokenRow(next)},
		explain: `SELECT t.used_at IS NOT NULL OR f.revoked_at IS NOT NULL, t.expires_at > ? AND f.expires_at > ?, t.family_id
			FROM refresh_tokens t JOIN families f ON f.id = t.family_id WHERE t.hash = ?`,
		explainArgs: []any{now, now, oldHash}, family: next.FamilyID,
	})
	return wrapf(err, "rotate refresh token")
}

// GetFamily returns the refresh family with this ID, revoked or expired
// alike, or store.ErrNotFound.
func (db *DB) GetFamily(ctx context.Context, id string) (store.Family, error) {
	f, err := one(ctx, db, familyDest, "SELECT "+familyColumns+" FROM families WHERE id = ?", id)
	return f, wrapf(err, "get family %q", id)
}

// FamilyRevoked reports whether the family with this ID is revoked, or
// store.ErrNotFound.
func (db *DB) FamilyRevoked(ctx context.Context, id string) (bool, error) {
	var revoked bool
	err := db.get(ctx, "SELECT revoked_at IS NOT NULL FROM families WHERE id = ?", []any{id}, &revoked)
	return revoked, wrapf(err, "family %q revoked", id)
}

// RevokeFamily revokes the family at now, which makes its refresh tokens
// unusable and its access tokens inactive. A family revoked before keeps
// its first RevokedAt. store.ErrNotFound if there is no such family.
func (db *DB) RevokeFamily(ctx context.Context, id string, now time.Time) error {
	return wrapf(db.change(ctx, "UPDATE families SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", now, id),
		"revoke family %q", id)
}
