package sql

import (
	"context"
	"fmt"
	"time"
)

// expireChunk is how many rows one write of DeleteExpired deletes, so that
// a large backlog never holds up other writes, holds many row locks, or
// runs into the statement timeout.
const expireChunk = 1000

// DeleteExpired deletes what has expired at now (ExpiresAt not after now;
// see [store.Store]). Refresh tokens go by their own ExpiresAt, which the
// caller caps at their family's. Revoked families stay until their
// lifetime ends, so that their access tokens keep introspecting as
// revoked. Replicas may run it at once; each counts the rows it deleted.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	// Each table with its key and the condition for a row expired at now.
	expiring := [...]struct{ table, key, expired string }{
		{"families", "id", "expires_at <= ?"},
		{"refresh_tokens", "hash", "expires_at <= ?"},
		{"codes", "hash", "expires_at <= ?"},
		{"sessions", "id_hash", "expires_at <= ?"},
		{"auth_requests", "id", "expires_at <= ?"},
		{"jtis", "client_id, jti", "expires_at <= ?"},
		{"rate_hits", "key, window_us, window_start", "expires_at <= ?"},
		{"dcr_clients", "client_id", "last_used_at IS NULL AND expires_at <= ?"},
		{"cimd_entries", "client_id", "(stale_until IS NULL OR stale_until <= ?)"},
		{"cimd_fetch_leases", "client_id", "expires_at <= ?"},
	}
	var total int64
	for _, e := range expiring {
		q := fmt.Sprintf("DELETE FROM %[1]s WHERE (%[2]s) IN (SELECT %[2]s FROM %[1]s WHERE %[3]s LIMIT ?)", e.table, e.key, e.expired)
		for {
			n, err := db.exec(ctx, q, now, expireChunk)
			if err != nil {
				return total, fmt.Errorf("delete expired %s: %w", e.table, err)
			}
			total += n
			if n < expireChunk {
				break
			}
		}
	}
	return total, nil
}
