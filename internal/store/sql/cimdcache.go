package sql

import (
	"context"
	"errors"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// cimdColumns are the columns of cimd_entries in CIMDEntry field order.
const cimdColumns = "client_id, body, etag, last_modified, cache_control, expires, fetched_at, fresh_until, stale_until, fingerprint"

// GetCIMDEntry returns the cached client metadata document for clientID,
// stale or not; store.ErrNotFound if none is stored.
func (db *DB) GetCIMDEntry(ctx context.Context, clientID string) (store.CIMDEntry, error) {
	e, err := one(ctx, db, func(e *store.CIMDEntry) []any {
		return []any{&e.ClientID, &e.Body, &e.ETag, &e.LastModified, &e.CacheControl, &e.Expires,
			tcol(&e.FetchedAt), tcol(&e.FreshUntil), tcol(&e.StaleUntil), &e.Fingerprint}
	}, "SELECT "+cimdColumns+" FROM cimd_entries WHERE client_id = ?", clientID)
	return e, wrapf(err, "get cimd entry %q", clientID)
}

// PutCIMDEntry stores e, replacing the entry for e.ClientID, and ends any
// fetch lease on it, in one transaction.
func (db *DB) PutCIMDEntry(ctx context.Context, e store.CIMDEntry) error {
	err := db.write(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO cimd_entries (`+cimdColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (client_id) DO UPDATE SET body = excluded.body, etag = excluded.etag,
				last_modified = excluded.last_modified, cache_control = excluded.cache_control, expires = excluded.expires,
				fetched_at = excluded.fetched_at, fresh_until = excluded.fresh_until, stale_until = excluded.stale_until,
				fingerprint = excluded.fingerprint`,
			e.ClientID, e.Body, e.ETag, e.LastModified, e.CacheControl, e.Expires,
			e.FetchedAt, e.FreshUntil, e.StaleUntil, e.Fingerprint)
		if err == nil {
			_, err = t.exec("DELETE FROM cimd_fetch_leases WHERE client_id = ?", e.ClientID)
		}
		return err
	})
	return wrapf(err, "put cimd entry %q", e.ClientID)
}

// DeleteCIMDEntry removes the entry for clientID and ends any fetch lease
// on it, in one transaction; a missing entry is not an error.
func (db *DB) DeleteCIMDEntry(ctx context.Context, clientID string) error {
	err := db.write(ctx, func(t *tx) error {
		_, err := t.exec("DELETE FROM cimd_entries WHERE client_id = ?", clientID)
		if err == nil {
			_, err = t.exec("DELETE FROM cimd_fetch_leases WHERE client_id = ?", clientID)
		}
		return err
	})
	return wrapf(err, "delete cimd entry %q", clientID)
}

// LeaseCIMDFetch claims the fetch as [store.Store] says. The claim and the
// read are one transaction: of replicas racing for an expired or missing
// claim, exactly one wins.
func (db *DB) LeaseCIMDFetch(ctx context.Context, clientID, holder string, now, until time.Time) (string, time.Time, error) {
	var got string
	var end time.Time
	err := db.write(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO cimd_fetch_leases (client_id, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (client_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE cimd_fetch_leases.expires_at <= ? OR cimd_fetch_leases.holder = excluded.holder`,
			clientID, holder, until, now)
		if err != nil {
			return err
		}
		got, end = "", time.Time{}
		err = t.get("SELECT holder, expires_at FROM cimd_fetch_leases WHERE client_id = ?", []any{clientID}, &got, tcol(&end))
		if errors.Is(err, store.ErrNotFound) {
			return nil // another holder's claim ended since the statement above (PostgreSQL reads committed rows)
		}
		return err
	})
	if err != nil {
		return "", time.Time{}, wrapf(err, "lease cimd fetch %q", clientID)
	}
	return got, end, nil
}
