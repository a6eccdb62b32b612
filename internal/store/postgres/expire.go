package postgres

import (
	"context"
	"fmt"
	"time"
)

// expireChunk is how many rows one statement of DeleteExpired deletes, so
// that collecting a large backlog never holds many row locks, or runs
// into the statement timeout.
const expireChunk = 1000

// DeleteExpired deletes what has expired at now (ExpiresAt not after now):
// codes, sessions, pending authorization requests, refresh tokens,
// families past their absolute lifetime, jti records, rate counters whose
// window has ended, DCR clients never used, CIMD entries past StaleUntil
// and fetch leases past their end. Refresh tokens go by their
// own ExpiresAt, which the caller caps at their family's; a token whose
// family went first is no longer found. Revoked families stay until their
// lifetime ends, so that their access tokens keep introspecting as
// revoked. It returns how many rows it deleted. Replicas may run it at
// the same time; each row is counted by the one that deleted it.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	// Each table with the condition that makes a row expired at $1.
	expiring := [...]struct{ table, expired string }{
		{"families", "expires_at <= $1"},
		{"refresh_tokens", "expires_at <= $1"},
		{"codes", "expires_at <= $1"},
		{"sessions", "expires_at <= $1"},
		{"auth_requests", "expires_at <= $1"},
		{"jtis", "expires_at <= $1"},
		{"rate_hits", "expires_at <= $1"},
		{"dcr_clients", "last_used_at IS NULL AND expires_at <= $1"},
		{"cimd_entries", "(stale_until IS NULL OR stale_until <= $1)"},
		{"cimd_fetch_leases", "expires_at <= $1"},
	}
	var total int64
	for _, e := range expiring {
		q := fmt.Sprintf("DELETE FROM %[1]s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %[1]s WHERE %[2]s LIMIT $2))", e.table, e.expired)
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
