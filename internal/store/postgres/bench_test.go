package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpauth/mcpauth/internal/store"
)

// benchClients is how many callers per core the benchmarks run: 4 on 2
// cores is the 8 concurrent clients of the token endpoint target, as in
// the SQLite benchmarks.
const benchClients = 4

// benchHash is a stored secret hash, as the token package makes them.
func benchHash(format string, args ...any) string {
	sum := sha256.Sum256(fmt.Appendf(nil, format, args...))
	return hex.EncodeToString(sum[:])
}

func benchFamily(id string, now time.Time) store.Family {
	return store.Family{
		ID: id, ClientID: "https://client.example/cimd.json", UserID: "u1", Resource: "https://mcp.example/mcp",
		Scopes: "files:read tools:call", Fingerprint: "sha256:fp", CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour),
	}
}

// openBench opens a store on a fresh schema for a benchmark.
func openBench(b *testing.B) *DB {
	b.Helper()
	return testServer(b).open(b, Options{})
}

// seed copies n rows into table.
func seed(b *testing.B, db *DB, table string, columns []string, n int, row func(i int) []any) {
	b.Helper()
	_, err := db.pool.CopyFrom(context.Background(), pgx.Identifier{table}, columns,
		pgx.CopyFromFunc(func() func() ([]any, error) {
			i := 0
			return func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				i++
				return row(i - 1), nil
			}
		}()))
	if err != nil {
		b.Fatalf("seed %s: %v", table, err)
	}
	if _, err := db.pool.Exec(context.Background(), "ANALYZE "+table); err != nil {
		b.Fatalf("analyze %s: %v", table, err)
	}
}

// seedFamilies stores n families with the IDs benchHash("family/%d", i).
func seedFamilies(b *testing.B, db *DB, n int, now time.Time) {
	b.Helper()
	seed(b, db, "families", []string{"id", "client_id", "user_id", "resource", "scopes", "fingerprint", "key_id",
		"created_at", "expires_at"}, n, func(i int) []any {
		f := benchFamily(benchHash("family/%d", i), now)
		return []any{f.ID, f.ClientID, f.UserID, f.Resource, f.Scopes, f.Fingerprint, f.KeyID, f.CreatedAt, f.ExpiresAt}
	})
}

// BenchmarkRedeemCode is the durable write of an authorization_code
// exchange: consume the code, create the family and its refresh token.
func BenchmarkRedeemCode(b *testing.B) {
	db := openBench(b)
	now := time.Now()
	seed(b, db, "codes", []string{"hash", "client_id", "user_id", "redirect_uri", "code_challenge", "resource", "scopes",
		"family_id", "auth_time", "expires_at"}, b.N, func(i int) []any {
		return []any{benchHash("code/%d", i), "https://client.example/cimd.json", "u1", "http://127.0.0.1:33418/callback",
			"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "https://mcp.example/mcp", "files:read tools:call",
			benchHash("family/%d", i), now, now.Add(10 * time.Minute)}
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
func BenchmarkRotateRefreshToken(b *testing.B) {
	db := openBench(b)
	now := time.Now()
	const families = 256 // more than the parallel callers
	seedFamilies(b, db, families, now)
	seed(b, db, "refresh_tokens", []string{"hash", "family_id", "created_at", "expires_at"}, families, func(i int) []any {
		return []any{benchHash("rt/%d/0", i), benchHash("family/%d", i), now, now.Add(14 * 24 * time.Hour)}
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
func BenchmarkGetFamily(b *testing.B) {
	db := openBench(b)
	now := time.Now()
	const families = 10000
	seedFamilies(b, db, families, now)
	ids := make([]string, families)
	for i := range ids {
		ids[i] = benchHash("family/%d", i)
	}
	var next atomic.Int64
	b.SetParallelism(benchClients)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := db.GetFamily(ctx, ids[next.Add(1)%families]); err != nil {
				b.Errorf("GetFamily: %v", err)
				return
			}
		}
	})
}
