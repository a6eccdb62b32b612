package sqlite

import (
	"context"
	"fmt"
	"time"
)

// expireChunk is how many rows one statement of DeleteExpired deletes.
// Each chunk is a write of its own, so that collecting a large backlog
// never holds up other writes for long.
const expireChunk = 1000

// DeleteExpired deletes what has expired at now (ExpiresAt not after now):
// codes, sessions, pending authorization requests, refresh tokens,
// families past their absolute lifetime, jti records, rate counters whose
// window has ended, DCR clients never used, CIMD entries past StaleUntil
// and fetch leases past their end. Refresh tokens go by their
// own ExpiresAt, which the caller caps at their family's; a token whose
// family went first is no longer found. Revoked families stay until their
// lifetime ends, so that their access tokens keep introspecting as
// revoked. It returns how many rows it deleted.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	// Each takes now and a row limit.
	deletes := [...]string{
		"DELETE FROM families WHERE rowid IN (SELECT rowid FROM families WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM refresh_tokens WHERE rowid IN (SELECT rowid FROM refresh_tokens WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM codes WHERE rowid IN (SELECT rowid FROM codes WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM auth_requests WHERE rowid IN (SELECT rowid FROM auth_requests WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM jtis WHERE (client_id, jti) IN (SELECT client_id, jti FROM jtis WHERE expires_at <= ? LIMIT ?)",
		`DELETE FROM rate_hits WHERE (key, window_us, window_start) IN
			(SELECT key, window_us, window_start FROM rate_hits WHERE expires_at <= ? LIMIT ?)`,
		`DELETE FROM dcr_clients WHERE rowid IN
			(SELECT rowid FROM dcr_clients WHERE last_used_at IS NULL AND expires_at <= ? LIMIT ?)`,
		`DELETE FROM cimd_entries WHERE client_id IN
			(SELECT client_id FROM cimd_entries WHERE stale_until IS NULL OR stale_until <= ? LIMIT ?)`,
		`DELETE FROM cimd_fetch_leases WHERE client_id IN
			(SELECT client_id FROM cimd_fetch_leases WHERE expires_at <= ? LIMIT ?)`,
	}
	var total int64
	for _, q := range deletes {
		for {
			var n int64
			err := db.w.do(ctx, func(t *wtx) error {
				var err error
				n, err = t.execN(q, ts(now), expireChunk)
				return err
			})
			if err != nil {
				return total, fmt.Errorf("delete expired: %w", err)
			}
			total += n
			if n < expireChunk {
				break
			}
		}
	}
	return total, nil
}
