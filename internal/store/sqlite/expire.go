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
// families past their absolute lifetime with all their refresh tokens, jti
// records, rate counters whose window has ended, and DCR clients never
// used. Revoked families stay until their lifetime ends, so their access
// tokens keep introspecting as revoked. It returns how many rows it
// deleted.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	// Run in this order; each takes now and a row limit. The refresh
	// tokens of a family past its lifetime go before the family so that
	// every deleted row is counted.
	deletes := [...]string{
		`DELETE FROM refresh_tokens WHERE hash IN (SELECT t.hash FROM families f JOIN refresh_tokens t ON t.family_id = f.id
			WHERE f.expires_at <= ? LIMIT ?)`,
		"DELETE FROM families WHERE id IN (SELECT id FROM families WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM refresh_tokens WHERE hash IN (SELECT hash FROM refresh_tokens WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM codes WHERE hash IN (SELECT hash FROM codes WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM auth_requests WHERE rowid IN (SELECT rowid FROM auth_requests WHERE expires_at <= ? LIMIT ?)",
		"DELETE FROM jtis WHERE (client_id, jti) IN (SELECT client_id, jti FROM jtis WHERE expires_at <= ? LIMIT ?)",
		`DELETE FROM rate_hits WHERE (key, window_us, window_start) IN
			(SELECT key, window_us, window_start FROM rate_hits WHERE expires_at <= ? LIMIT ?)`,
		`DELETE FROM dcr_clients WHERE rowid IN
			(SELECT rowid FROM dcr_clients WHERE last_used_at IS NULL AND expires_at <= ? LIMIT ?)`,
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
