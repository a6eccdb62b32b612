package sql

import (
	"context"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// RecordClientSeen inserts a CIMD client the server fetched, or updates
// one seen before, keeping its FirstSeen (on the first call, a zero
// FirstSeen means LastSeen). c.Users is ignored.
func (db *DB) RecordClientSeen(ctx context.Context, c store.ClientSeen) error {
	first := c.FirstSeen
	if first.IsZero() {
		first = c.LastSeen
	}
	_, err := db.exec(ctx, `INSERT INTO clients_seen (client_id, first_seen, last_seen, last_result, tier, fingerprint)
			VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (client_id) DO UPDATE SET last_seen = excluded.last_seen, last_result = excluded.last_result,
			tier = excluded.tier, fingerprint = excluded.fingerprint`,
		c.ClientID, first, c.LastSeen, c.LastResult, c.Tier, c.Fingerprint)
	return wrapf(err, "record client %q", c.ClientID)
}

// UpdateClientSeen updates LastSeen, LastResult, Tier and Fingerprint of a
// client recorded before, and does nothing for any other.
func (db *DB) UpdateClientSeen(ctx context.Context, c store.ClientSeen) error {
	_, err := db.exec(ctx, "UPDATE clients_seen SET last_seen = ?, last_result = ?, tier = ?, fingerprint = ? WHERE client_id = ?",
		c.LastSeen, c.LastResult, c.Tier, c.Fingerprint, c.ClientID)
	return wrapf(err, "update client %q", c.ClientID)
}

// ListClientsSeen returns every CIMD client seen, ordered by client ID,
// with Users set to the number of distinct users holding a consent for it.
func (db *DB) ListClientsSeen(ctx context.Context) ([]store.ClientSeen, error) {
	return list(ctx, db, "list clients", func(c *store.ClientSeen) []any {
		return []any{&c.ClientID, tcol(&c.FirstSeen), tcol(&c.LastSeen), &c.LastResult, &c.Tier, &c.Fingerprint, &c.Users}
	}, `SELECT c.client_id, c.first_seen, c.last_seen, c.last_result, c.tier, c.fingerprint,
			(SELECT count(DISTINCT k.user_id) FROM consents k WHERE k.client_id = c.client_id)
		FROM clients_seen c ORDER BY c.client_id`)
}

// PutBlock stores an operator's block rule, replacing the reason and time
// of an existing rule with the same pattern.
func (db *DB) PutBlock(ctx context.Context, b store.Block) error {
	_, err := db.exec(ctx, `INSERT INTO blocks (pattern, reason, created_at) VALUES (?, ?, ?)
		ON CONFLICT (pattern) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at`,
		b.Pattern, b.Reason, b.CreatedAt)
	return wrapf(err, "put block %q", b.Pattern)
}

// DeleteBlock deletes the block rule with this pattern, or returns
// store.ErrNotFound.
func (db *DB) DeleteBlock(ctx context.Context, pattern string) error {
	return wrapf(db.change(ctx, "DELETE FROM blocks WHERE pattern = ?", pattern), "delete block %q", pattern)
}

// ListBlocks returns every block rule, ordered by pattern.
func (db *DB) ListBlocks(ctx context.Context) ([]store.Block, error) {
	return list(ctx, db, "list blocks", func(b *store.Block) []any {
		return []any{&b.Pattern, &b.Reason, tcol(&b.CreatedAt)}
	}, "SELECT pattern, reason, created_at FROM blocks ORDER BY pattern")
}

// CreateDCRClient stores a dynamically registered client (RFC 7591 §3.2.1);
// store.ErrConflict if its ID exists.
func (db *DB) CreateDCRClient(ctx context.Context, c store.DCRClient) error {
	_, err := db.exec(ctx, `INSERT INTO dcr_clients (client_id, secret_hash, metadata, metadata_hash, source_ip,
			created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ClientID, c.SecretHash, c.Metadata, c.MetadataHash, c.SourceIP, c.CreatedAt, c.LastUsedAt, c.ExpiresAt)
	return wrapf(err, "create dcr client %q", c.ClientID)
}

const dcrColumns = "client_id, secret_hash, metadata, metadata_hash, source_ip, created_at, last_used_at, expires_at"

func dcrDest(c *store.DCRClient) []any {
	return []any{&c.ClientID, &c.SecretHash, &c.Metadata, &c.MetadataHash, &c.SourceIP,
		tcol(&c.CreatedAt), tcol(&c.LastUsedAt), tcol(&c.ExpiresAt)}
}

// GetDCRClient returns the registered client, expired or not, or
// store.ErrNotFound.
func (db *DB) GetDCRClient(ctx context.Context, clientID string) (store.DCRClient, error) {
	c, err := one(ctx, db, dcrDest, "SELECT "+dcrColumns+" FROM dcr_clients WHERE client_id = ?", clientID)
	return c, wrapf(err, "get dcr client %q", clientID)
}

// FindDCRClient returns the newest registration with this metadata hash
// from this source IP that is live at now (used once, or not expired), for
// deduplication (RFC 7591 §5); store.ErrNotFound if there is none.
func (db *DB) FindDCRClient(ctx context.Context, metadataHash, sourceIP string, now time.Time) (store.DCRClient, error) {
	c, err := one(ctx, db, dcrDest, "SELECT "+dcrColumns+` FROM dcr_clients
		WHERE metadata_hash = ? AND source_ip = ? AND (last_used_at IS NOT NULL OR expires_at > ?)
		ORDER BY created_at DESC, client_id DESC LIMIT 1`, metadataHash, sourceIP, now)
	return c, wrapf(err, "find dcr client")
}

// TouchDCRClient sets the client's LastUsedAt to now, which exempts it from
// expiry; store.ErrNotFound if there is no such client.
func (db *DB) TouchDCRClient(ctx context.Context, clientID string, now time.Time) error {
	return wrapf(db.change(ctx, "UPDATE dcr_clients SET last_used_at = ? WHERE client_id = ?", now, clientID),
		"touch dcr client %q", clientID)
}

// CountDCRClients returns how many registered clients are stored, expired
// ones not yet collected included (the global registration budget,
// RFC 7591 §5).
func (db *DB) CountDCRClients(ctx context.Context) (int, error) {
	var n int
	err := db.get(ctx, "SELECT count(*) FROM dcr_clients", nil, &n)
	return n, wrapf(err, "count dcr clients")
}
