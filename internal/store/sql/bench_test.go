package sql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// benchClients is how many callers per core the benchmarks run: 4 on 2
// cores is the 8 concurrent clients of the issue 4 token target.
const benchClients = 4

// benchHash is a stored key, as the token package makes them: a
// time-ordered stamp (here the first argument) and a SHA-256.
func benchHash(format string, args ...any) string {
	sum := sha256.Sum256(fmt.Appendf(nil, format, args...))
	return fmt.Sprintf("%016x", args[0]) + hex.EncodeToString(sum[:])
}

func benchFamily(id string, now time.Time) store.Family {
	return store.Family{
		ID: id, ClientID: "https://client.example/cimd.json", UserID: "u1", Resource: "https://mcp.example/mcp",
		Scopes: "files:read tools:call", Fingerprint: "sha256:fp", CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour),
	}
}

// benchDialects runs bench on a new SQLite database and on a new
// PostgreSQL schema (see testServer).
func benchDialects(b *testing.B, bench func(b *testing.B, db *DB)) {
	b.Run(SQLite, func(b *testing.B) {
		db, _ := openTemp(b)
		bench(b, db)
	})
	b.Run(Postgres, func(b *testing.B) { bench(b, testServer(b).open(b, Options{})) })
}

// seed runs n inserts in one transaction.
func seed(b *testing.B, db *DB, n int, insert func(t *tx, i int) error) {
	b.Helper()
	ctx := context.Background()
	err := db.write(ctx, func(t *tx) error {
		for i := range n {
			if err := insert(t, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
	if db.Dialect() == Postgres {
		// The planner's statistics, as autovacuum would gather them.
		if _, err := db.r.ExecContext(ctx, "ANALYZE"); err != nil {
			b.Fatalf("analyze: %v", err)
		}
	}
}

// BenchmarkRedeemCode is the durable write of an authorization_code
// exchange: consume the code, create the family and its refresh token.
func BenchmarkRedeemCode(b *testing.B) { benchDialects(b, benchRedeemCode) }

func benchRedeemCode(b *testing.B, db *DB) {
	now := time.Now()
	seed(b, db, b.N, func(t *tx, i int) error {
		return insertCode(t, store.Code{
			Hash: benchHash("code/%d", i), ClientID: "https://client.example/cimd.json", UserID: "u1",
			RedirectURI: "http://127.0.0.1:33418/callback", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
			Resource: "https://mcp.example/mcp", Scopes: "files:read tools:call", FamilyID: benchHash("family/%d", i),
			AuthTime: now, ExpiresAt: now.Add(10 * time.Minute),
		})
	})
	var next atomic.Int64
	b.SetParallelism(benchClients)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := next.Add(1) - 1
			f := benchFamily(benchHash("family/%d", i), now)
			rt := store.RefreshToken{Hash: benchHash("rt/%d", i), FamilyID: f.ID, CreatedAt: now, ExpiresAt: now.Add(14 * 24 * time.Hour)}
			if err := db.RedeemCode(ctx, benchHash("code/%d", i), now, f, &rt); err != nil {
				b.Errorf("RedeemCode: %v", err)
				return
			}
		}
	})
}

// BenchmarkRotateRefreshToken is the durable write of a refresh_token
// grant: each caller rotates its own family's token chain.
func BenchmarkRotateRefreshToken(b *testing.B) { benchDialects(b, benchRotateRefreshToken) }

func benchRotateRefreshToken(b *testing.B, db *DB) {
	now := time.Now()
	const families = 256 // more than the parallel callers
	seed(b, db, families, func(t *tx, i int) error {
		f := benchFamily(benchHash("family/%d", i), now)
		if err := t.insert(familyRow(f)); err != nil {
			return err
		}
		return t.insert(refreshTokenRow(store.RefreshToken{
			Hash: benchHash("rt/%d/0", i), FamilyID: f.ID, CreatedAt: now, ExpiresAt: now.Add(14 * 24 * time.Hour),
		}))
	})
	var caller atomic.Int64
	b.SetParallelism(benchClients)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		id := int(caller.Add(1) - 1)
		if id >= families {
			b.Errorf("more than %d parallel callers", families)
			return
		}
		family := benchHash("family/%d", id)
		for k := 0; pb.Next(); k++ {
			next := store.RefreshToken{Hash: benchHash("rt/%d/%d", id, k+1), FamilyID: family, CreatedAt: now, ExpiresAt: now.Add(14 * 24 * time.Hour)}
			if err := db.RotateRefreshToken(ctx, benchHash("rt/%d/%d", id, k), now, next); err != nil {
				b.Errorf("RotateRefreshToken: %v", err)
				return
			}
		}
	})
}

// BenchmarkGetFamily is the store's part of an introspection: is the
// token's family revoked?
func BenchmarkGetFamily(b *testing.B) { benchDialects(b, benchGetFamily) }

func benchGetFamily(b *testing.B, db *DB) {
	now := time.Now()
	const families = 10000
	seed(b, db, families, func(t *tx, i int) error {
		return t.insert(familyRow(benchFamily(benchHash("family/%d", i), now)))
	})
	ids := make([]string, families)
	for i := range ids {
		ids[i] = benchHash("family/%d", i)
	}
	var next atomic.Int64
	b.SetParallelism(benchClients)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithCancel(context.Background()) // as an HTTP request's
		defer cancel()
		for pb.Next() {
			if _, err := db.GetFamily(ctx, ids[next.Add(1)%families]); err != nil {
				b.Errorf("GetFamily: %v", err)
				return
			}
		}
	})
}
