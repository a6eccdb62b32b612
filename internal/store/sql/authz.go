package sql

import (
	"context"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// PutAuthRequest stores a pending authorization request, replacing one
// with the same ID.
func (db *DB) PutAuthRequest(ctx context.Context, r store.AuthRequest) error {
	_, err := db.exec(ctx, `INSERT INTO auth_requests (id, data, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`,
		r.ID, r.Data, r.ExpiresAt)
	return wrapf(err, "put auth request")
}

func authRequestDest(r *store.AuthRequest) []any { return []any{&r.Data, tcol(&r.ExpiresAt)} }

// GetAuthRequest returns the pending request, or store.ErrNotFound if there
// is none or it has expired (now is not before ExpiresAt).
func (db *DB) GetAuthRequest(ctx context.Context, id string, now time.Time) (store.AuthRequest, error) {
	r, err := one(ctx, db, authRequestDest, "SELECT data, expires_at FROM auth_requests WHERE id = ? AND expires_at > ?", id, now)
	if err != nil {
		return r, wrapf(err, "get auth request")
	}
	r.ID = id
	return r, nil
}

// ConsumeAuthRequest deletes and returns the pending request in one
// statement: at most one of concurrent calls succeeds. An expired request
// is store.ErrNotFound and left for DeleteExpired.
func (db *DB) ConsumeAuthRequest(ctx context.Context, id string, now time.Time) (store.AuthRequest, error) {
	r := store.AuthRequest{ID: id}
	err := db.writeOne(ctx, func(t *tx) error {
		return t.get("DELETE FROM auth_requests WHERE id = ? AND expires_at > ? RETURNING data, expires_at",
			[]any{id, now}, authRequestDest(&r)...)
	})
	if err != nil {
		return store.AuthRequest{}, wrapf(err, "consume auth request")
	}
	return r, nil
}

// PutConsent records a consent, replacing the one for the same user,
// client and resource (MCP Security Best Practices §Confused Deputy Problem).
func (db *DB) PutConsent(ctx context.Context, c store.Consent) error {
	_, err := db.exec(ctx, `INSERT INTO consents (user_id, client_id, resource, scopes, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id, resource) DO UPDATE SET
			scopes = excluded.scopes, fingerprint = excluded.fingerprint, created_at = excluded.created_at`,
		c.UserID, c.ClientID, c.Resource, c.Scopes, c.Fingerprint, c.CreatedAt)
	return wrapf(err, "put consent for client %q", c.ClientID)
}

const selectConsent = "SELECT user_id, client_id, resource, scopes, fingerprint, created_at FROM consents"

func consentDest(c *store.Consent) []any {
	return []any{&c.UserID, &c.ClientID, &c.Resource, &c.Scopes, &c.Fingerprint, tcol(&c.CreatedAt)}
}

// GetConsent returns the user's consent for the client and resource, or
// store.ErrNotFound.
func (db *DB) GetConsent(ctx context.Context, userID, clientID, resource string) (store.Consent, error) {
	c, err := one(ctx, db, consentDest, selectConsent+" WHERE user_id = ? AND client_id = ? AND resource = ?",
		userID, clientID, resource)
	return c, wrapf(err, "get consent for client %q", clientID)
}

// ListConsents returns the user's consents ordered by client ID, then
// resource.
func (db *DB) ListConsents(ctx context.Context, userID string) ([]store.Consent, error) {
	return list(ctx, db, "list consents", consentDest, selectConsent+" WHERE user_id = ? ORDER BY client_id, resource", userID)
}

// RevokeClient deletes the user's consents and unredeemed codes for the
// client and revokes their families at now, in one transaction; families
// revoked before keep their RevokedAt. A client never authorized is no error.
func (db *DB) RevokeClient(ctx context.Context, userID, clientID string, now time.Time) error {
	return wrapf(db.write(ctx, func(t *tx) error {
		for _, q := range []string{
			"DELETE FROM consents WHERE user_id = ? AND client_id = ?",
			"DELETE FROM codes WHERE user_id = ? AND client_id = ? AND used_at IS NULL",
		} {
			if _, err := t.exec(q, userID, clientID); err != nil {
				return err
			}
		}
		_, err := t.exec("UPDATE families SET revoked_at = ? WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL",
			now, userID, clientID)
		return err
	}), "revoke client %q", clientID)
}
