package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// CreateCode stores an authorization code (SPEC E10); store.ErrConflict if
// its hash exists.
func (db *DB) CreateCode(ctx context.Context, c store.Code) error {
	_, err := db.exec(ctx, `INSERT INTO codes (hash, client_id, user_id, redirect_uri, code_challenge, resource, scopes,
			family_id, auth_time, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		c.Hash, c.ClientID, c.UserID, c.RedirectURI, c.CodeChallenge, c.Resource, c.Scopes,
		c.FamilyID, ts(c.AuthTime), ts(c.ExpiresAt), ts(c.UsedAt))
	if err != nil {
		return fmt.Errorf("create code: %w", conflict(err))
	}
	return nil
}

// GetCode returns the code with this hash, used or expired alike, or
// store.ErrNotFound.
func (db *DB) GetCode(ctx context.Context, hash string) (store.Code, error) {
	var c store.Code
	err := db.get(ctx, `SELECT hash, client_id, user_id, redirect_uri, code_challenge, resource, scopes,
			family_id, auth_time, expires_at, used_at FROM codes WHERE hash = $1`, []any{hash},
		&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.CodeChallenge, &c.Resource, &c.Scopes,
		&c.FamilyID, tcol(&c.AuthTime), tcol(&c.ExpiresAt), tcol(&c.UsedAt))
	if err != nil {
		return store.Code{}, fmt.Errorf("get code: %w", notFound(err))
	}
	return c, nil
}

// The statements that consume a single-use value. Each is one
// transaction: the UPDATE claims the row only if it is still unused and
// live, and the INSERTs create what the redemption creates from the row it
// returns, so that nothing is inserted unless the claim succeeded, and a
// failing insert undoes the claim. Parameters in a SELECT list carry casts
// because PostgreSQL would type them as text.
const (
	// claimCode takes now, the code's hash and the family ID it must have.
	claimCode = `WITH used AS (
		UPDATE codes SET used_at = $1
		WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 AND family_id = $3
		RETURNING family_id)`
	// insertFamily takes the family after claimCode's parameters.
	insertFamily = `INSERT INTO families (id, client_id, user_id, resource, scopes, fingerprint, key_id,
			created_at, expires_at, revoked_at)
		SELECT family_id, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text,
			$10::timestamptz, $11::timestamptz, $12::timestamptz FROM used`
	redeemCode            = claimCode + "\n" + insertFamily
	redeemCodeWithRefresh = claimCode + `, family AS (` + insertFamily + ` RETURNING id)
		INSERT INTO refresh_tokens (hash, family_id, created_at, expires_at, used_at)
		SELECT $13::text, id, $14::timestamptz, $15::timestamptz, $16::timestamptz FROM family`

	// rotateRefresh takes now, the old token's hash, the family ID it must
	// have, and the next token.
	rotateRefresh = `WITH used AS (
		UPDATE refresh_tokens t SET used_at = $1
		WHERE t.hash = $2 AND t.used_at IS NULL AND t.expires_at > $1 AND t.family_id = $3
			AND EXISTS (SELECT 1 FROM families f WHERE f.id = t.family_id AND f.revoked_at IS NULL AND f.expires_at > $1)
		RETURNING t.family_id)
		INSERT INTO refresh_tokens (hash, family_id, created_at, expires_at, used_at)
		SELECT $4::text, family_id, $5::timestamptz, $6::timestamptz, $7::timestamptz FROM used`
)

// RedeemCode marks the code used at now, if it is unused and unexpired
// (now before ExpiresAt), and in the same statement creates the family f
// and, unless rt is nil, its first refresh token (SPEC F1, F2). f.ID must
// be the code's FamilyID and rt.FamilyID must be f.ID. It returns
// store.ErrAlreadyUsed if the code was redeemed before (also once it has
// expired since), and store.ErrNotFound if it is unknown or expired; then
// nothing is written. Of concurrent calls for one code exactly one
// succeeds.
func (db *DB) RedeemCode(ctx context.Context, hash string, now time.Time, f store.Family, rt *store.RefreshToken) error {
	if rt != nil && rt.FamilyID != f.ID {
		return fmt.Errorf("redeem code: refresh token belongs to family %q, not %q", rt.FamilyID, f.ID)
	}
	query := redeemCode
	args := []any{now, hash, f.ID, f.ClientID, f.UserID, f.Resource, f.Scopes, f.Fingerprint, f.KeyID,
		ts(f.CreatedAt), ts(f.ExpiresAt), ts(f.RevokedAt)}
	if rt != nil {
		query = redeemCodeWithRefresh
		args = append(args, rt.Hash, ts(rt.CreatedAt), ts(rt.ExpiresAt), ts(rt.UsedAt))
	}
	n, err := db.exec(ctx, query, args...)
	if err == nil && n == 0 {
		err = db.whyNotClaimed(ctx, "the code", f.ID,
			"SELECT used_at IS NOT NULL, expires_at > $2, family_id FROM codes WHERE hash = $1", hash, now)
	}
	if err != nil {
		return fmt.Errorf("redeem code: %w", conflict(err))
	}
	return nil
}

// whyNotClaimed explains why a statement consuming a code or refresh token
// changed nothing. query takes the value's hash and now and selects
// whether it was used (or its family revoked), whether it is live, and
// its family ID: used is store.ErrAlreadyUsed (a replay, even past
// expiry); absent or expired is store.ErrNotFound; a family other than
// the caller's is a caller bug.
func (db *DB) whyNotClaimed(ctx context.Context, what, familyID, query, hash string, now time.Time) error {
	var used, live bool
	var gotFamily string
	err := db.get(ctx, query, []any{hash, now}, &used, &live, &gotFamily)
	switch {
	case err != nil:
		return notFound(err)
	case used:
		return store.ErrAlreadyUsed
	case !live:
		return fmt.Errorf("expired: %w", store.ErrNotFound)
	case gotFamily != familyID:
		return fmt.Errorf("family %q is not the family %q of %s", familyID, gotFamily, what)
	default:
		// Only a change between the two statements gets here, such as a
		// concurrent redemption that rolled back.
		return fmt.Errorf("%s changed while it was consumed; try again", what)
	}
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
		FROM refresh_tokens t JOIN families f ON f.id = t.family_id WHERE t.hash = $1`, []any{hash}, dest...)
	if err != nil {
		return store.RefreshToken{}, store.Family{}, fmt.Errorf("get refresh token: %w", notFound(err))
	}
	return rt, f, nil
}

// RotateRefreshToken marks the token oldHash used at now and inserts next,
// in one statement (SPEC F8). It succeeds only if the old token is unused
// and unexpired and its family is neither revoked nor expired (now before
// ExpiresAt); next.FamilyID must be the old token's family. It returns
// store.ErrAlreadyUsed if the old token was used before or its family is
// revoked (the caller then revokes the family, attack 53), and
// store.ErrNotFound if the token is unknown or it or its family expired;
// then nothing is written. Of concurrent calls for one token exactly one
// succeeds.
func (db *DB) RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, next store.RefreshToken) error {
	n, err := db.exec(ctx, rotateRefresh, now, oldHash, next.FamilyID,
		next.Hash, ts(next.CreatedAt), ts(next.ExpiresAt), ts(next.UsedAt))
	if err == nil && n == 0 {
		err = db.whyNotClaimed(ctx, "the old token", next.FamilyID, `SELECT t.used_at IS NOT NULL OR f.revoked_at IS NOT NULL,
				t.expires_at > $2 AND f.expires_at > $2, t.family_id
			FROM refresh_tokens t JOIN families f ON f.id = t.family_id WHERE t.hash = $1`, oldHash, now)
	}
	if err != nil {
		return fmt.Errorf("rotate refresh token: %w", conflict(err))
	}
	return nil
}

// GetFamily returns the refresh family with this ID, revoked or expired
// alike, or store.ErrNotFound.
func (db *DB) GetFamily(ctx context.Context, id string) (store.Family, error) {
	var f store.Family
	if err := db.get(ctx, "SELECT "+familyColumns+" FROM families WHERE id = $1", []any{id}, familyDest(&f)...); err != nil {
		return store.Family{}, fmt.Errorf("get family %q: %w", id, notFound(err))
	}
	return f, nil
}

// FamilyRevoked reports whether the family with this ID is revoked, or
// store.ErrNotFound.
func (db *DB) FamilyRevoked(ctx context.Context, id string) (bool, error) {
	var revoked bool
	if err := db.get(ctx, "SELECT revoked_at IS NOT NULL FROM families WHERE id = $1", []any{id}, &revoked); err != nil {
		return false, fmt.Errorf("family %q revoked: %w", id, notFound(err))
	}
	return revoked, nil
}

// RevokeFamily revokes the family at now, which makes its refresh tokens
// unusable and its access tokens inactive. A family revoked before keeps
// its first RevokedAt. store.ErrNotFound if there is no such family.
func (db *DB) RevokeFamily(ctx context.Context, id string, now time.Time) error {
	if err := db.change(ctx, "UPDATE families SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1", id, now); err != nil {
		return fmt.Errorf("revoke family %q: %w", id, err)
	}
	return nil
}
