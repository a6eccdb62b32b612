package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// The benchmarks compare, in one run, the cost of a request through
// RequireBearer with a JWTVerifier against the raw ES256 signature check
// that any verifier must do (SHA-256 of the signing input and ecdsa.Verify).

func benchToken(b *testing.B) (*testIssuer, testKey, string) {
	is := newTestIssuer(b)
	key := newES256Key(b, "k1")
	is.publish(key)
	return is, key, key.mint(b, is.claims("mcp:tools"), nil)
}

// rawVerifier returns the raw ES256 check of token's signature.
func rawVerifier(b *testing.B, key testKey, token string) func() {
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := key.priv.Public().(*ecdsa.PublicKey)
	return func() {
		digest := sha256.Sum256([]byte(token[:dot]))
		if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkES256RawVerify(b *testing.B) {
	_, key, token := benchToken(b)
	raw := rawVerifier(b, key, token)
	b.ReportAllocs()
	for b.Loop() {
		raw()
	}
}

// BenchmarkRequireBearerVsRawES256 alternates one request through
// RequireBearer+JWTVerifier and one raw ES256 verification per iteration, so
// that both see the same machine load, and reports the median time of each
// (medians, because a shared machine preempts some iterations) and the
// middleware's overhead in percent: 17-24 with go-jose parsing and
// verifying, against 8-12 for the hand-written verifier it replaced.
func BenchmarkRequireBearerVsRawES256(b *testing.B) {
	is, key, token := benchToken(b)
	raw := rawVerifier(b, key, token)
	serve := middlewareRequest(b, is.verifier(b, nil), token)
	var rawTimes, mwTimes []time.Duration
	for b.Loop() {
		t0 := time.Now()
		raw()
		t1 := time.Now()
		serve()
		rawTimes = append(rawTimes, t1.Sub(t0))
		mwTimes = append(mwTimes, time.Since(t1))
	}
	rawMedian, mwMedian := median(rawTimes), median(mwTimes)
	b.ReportMetric(float64(rawMedian.Nanoseconds()), "raw-ns/op")
	b.ReportMetric(float64(mwMedian.Nanoseconds()), "middleware-ns/op")
	b.ReportMetric(100*(float64(mwMedian)/float64(rawMedian)-1), "overhead-%")
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

func BenchmarkJWTVerifier(b *testing.B) {
	is, _, token := benchToken(b)
	benchVerify(b, is.verifier(b, nil), token)
}

func BenchmarkRequireBearerJWT(b *testing.B) {
	is, _, token := benchToken(b)
	benchMiddleware(b, is.verifier(b, nil), token)
}

func BenchmarkRequireBearerCacheHit(b *testing.B) {
	is, _, token := benchToken(b)
	benchMiddleware(b, NewCache(is.verifier(b, nil), CacheOptions{}), token)
}

func BenchmarkCacheHit(b *testing.B) {
	is, _, token := benchToken(b)
	benchVerify(b, NewCache(is.verifier(b, nil), CacheOptions{}), token)
}

// benchVerify measures v.VerifyToken on token after one warm-up call (JWKS
// fetched, cache filled).
func benchVerify(b *testing.B, v TokenVerifier, token string) {
	ctx := context.Background()
	if _, err := v.VerifyToken(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyToken(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

// benchMiddleware serves one authenticated MCP-like request per iteration
// through RequireBearer to a handler that does nothing.
func benchMiddleware(b *testing.B, v TokenVerifier, token string) {
	serve := middlewareRequest(b, v, token)
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

// middlewareRequest returns a function that serves one authenticated
// MCP-like request through RequireBearer to a handler that does nothing.
func middlewareRequest(b *testing.B, v TokenVerifier, token string) func() {
	h := RequireBearer(v, Options{Resource: testResource, Scopes: []string{"mcp:tools"}})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("POST", testResource, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	w := &discardWriter{header: http.Header{}}
	return func() {
		h.ServeHTTP(w, r)
		if w.status != 0 {
			b.Fatalf("status %d", w.status)
		}
	}
}

type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
