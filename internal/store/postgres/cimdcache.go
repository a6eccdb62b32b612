package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpauth/mcpauth/internal/store"
)

// cimdColumns are the columns of cimd_entries in CIMDEntry field order.
const cimdColumns = "client_id, body, etag, last_modified, cache_control, expires, fetched_at, fresh_until, stale_until, fingerprint"

// GetCIMDEntry returns the cached client metadata document for clientID,
// stale or not; store.ErrNotFound if none is stored. Reads are retried.
func (db *DB) GetCIMDEntry(ctx context.Context, clientID string) (store.CIMDEntry, error) {
	var e store.CIMDEntry
	err := db.get(ctx, "SELECT "+cimdColumns+" FROM cimd_entries WHERE client_id = $1", []any{clientID},
		&e.ClientID, &e.Body, &e.ETag, &e.LastModified, &e.CacheControl, &e.Expires,
		tcol(&e.FetchedAt), tcol(&e.FreshUntil), tcol(&e.StaleUntil), &e.Fingerprint)
	if err != nil {
		return store.CIMDEntry{}, fmt.Errorf("get cimd entry %q: %w", clientID, notFound(err))
	}
	return e, nil
}

// PutCIMDEntry stores e, replacing the entry for e.ClientID, and ends any
// fetch lease on it, in one statement.
func (db *DB) PutCIMDEntry(ctx context.Context, e store.CIMDEntry) error {
	_, err := db.exec(ctx, `WITH lease AS (DELETE FROM cimd_fetch_leases WHERE client_id = $1)
		INSERT INTO cimd_entries (`+cimdColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (client_id) DO UPDATE SET body = EXCLUDED.body, etag = EXCLUDED.etag,
			last_modified = EXCLUDED.last_modified, cache_control = EXCLUDED.cache_control, expires = EXCLUDED.expires,
			fetched_at = EXCLUDED.fetched_at, fresh_until = EXCLUDED.fresh_until, stale_until = EXCLUDED.stale_until,
			fingerprint = EXCLUDED.fingerprint`,
		e.ClientID, blob(e.Body), e.ETag, e.LastModified, e.CacheControl, e.Expires,
		ts(e.FetchedAt), ts(e.FreshUntil), ts(e.StaleUntil), e.Fingerprint)
	if err != nil {
		return fmt.Errorf("put cimd entry %q: %w", e.ClientID, err)
	}
	return nil
}

// DeleteCIMDEntry removes the entry for clientID and ends any fetch lease
// on it, in one statement; a missing entry is not an error.
func (db *DB) DeleteCIMDEntry(ctx context.Context, clientID string) error {
	_, err := db.exec(ctx, `WITH lease AS (DELETE FROM cimd_fetch_leases WHERE client_id = $1)
		DELETE FROM cimd_entries WHERE client_id = $1`, clientID)
	if err != nil {
		return fmt.Errorf("delete cimd entry %q: %w", clientID, err)
	}
	return nil
}

// LeaseCIMDFetch claims the fetch of clientID's document for holder until
// the given time unless another holder's claim is unexpired at now, and
// returns the claim in force ("" when the other claim ended between the
// two statements). The claim is one statement: of replicas racing for an
// expired or missing claim, exactly one wins. It is not retried.
func (db *DB) LeaseCIMDFetch(ctx context.Context, clientID, holder string, now, until time.Time) (string, time.Time, error) {
	var got string
	var end time.Time
	err := db.pool.QueryRow(ctx, `INSERT INTO cimd_fetch_leases (client_id, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (client_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
		WHERE cimd_fetch_leases.expires_at <= $4 OR cimd_fetch_leases.holder = EXCLUDED.holder
		RETURNING holder, expires_at`, clientID, holder, ts(until), now).Scan(&got, tcol(&end))
	if errors.Is(err, pgx.ErrNoRows) {
		// Another holder's claim is in force: report it.
		err = db.get(ctx, "SELECT holder, expires_at FROM cimd_fetch_leases WHERE client_id = $1", []any{clientID}, &got, tcol(&end))
		if errors.Is(err, pgx.ErrNoRows) {
			return "", time.Time{}, nil
		}
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("lease cimd fetch %q: %w", clientID, err)
	}
	return got, end, nil
}
