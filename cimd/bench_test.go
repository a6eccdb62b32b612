package cimd

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// BenchmarkResolveWarm measures Resolve for a cached, fresh document: the
// per-authorization cost of CIMD once the cache is warm (issue target: at
// most 1 µs and 2 allocations).
func BenchmarkResolveWarm(b *testing.B) {
	s := newDocServer(&testing.T{})
	defer s.srv.Close()
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "max-age=86400")
	pol, err := NewPolicy(PolicyConfig{Allow: []string{"*.example.com"}, Deny: []string{"evil.example", "*.bad.example"}})
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewResolver(Options{AllowLoopback: true, RootCAs: s.pool(), Policy: pol})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Resolve(ctx, id); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	if n := s.fetches.Load(); n != 1 {
		b.Fatalf("warm benchmark fetched %d times", n)
	}
}

// BenchmarkResolveWarmParallel is BenchmarkResolveWarm from every core.
func BenchmarkResolveWarmParallel(b *testing.B) {
	s := newDocServer(&testing.T{})
	defer s.srv.Close()
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "max-age=86400")
	r, err := NewResolver(Options{AllowLoopback: true, RootCAs: s.pool()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.Resolve(context.Background(), id); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := r.Resolve(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCache100k fills a memoryCache with 100,000 validated documents
// and reports the live heap they take (issue target: at most 150 MB).
func BenchmarkCache100k(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		c := newMemoryCache(0)
		r := &Resolver{}
		now := time.Now()
		for i := range n {
			raw := fmt.Sprintf("https://client%d.example.com/oauth/client-metadata.json", i)
			id, err := ParseClientID(raw)
			if err != nil {
				b.Fatal(err)
			}
			body := fmt.Sprintf(`{"client_id":%q,"client_name":"Example Client %d","client_uri":"https://client%d.example.com",`+
				`"logo_uri":"https://client%d.example.com/logo.png","redirect_uris":["http://127.0.0.1/callback","http://localhost/callback","https://client%d.example.com/oauth/callback"],`+
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none","scope":"openid profile mcp:tools"}`,
				raw, i, i, i, i)
			e := entryOf(raw, []byte(body), http.Header{"Cache-Control": {"max-age=3600"}, "Etag": {fmt.Sprintf(`"%d"`, i)}}, now)
			e.FreshUntil = now.Add(time.Hour)
			cl, err := r.clientFromEntry(id, e)
			if err != nil {
				b.Fatal(err)
			}
			e.client, e.Fingerprint = cl, cl.Fingerprint
			e.Body = nil // as the resolver stores it in an in-process cache
			if err := c.Put(context.Background(), e); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if c.Len() != n {
			b.Fatalf("cache holds %d of %d documents (budget %d bytes, accounted %d)", c.Len(), n, c.maxBytes, c.Bytes())
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB-heap")
		b.ReportMetric(float64(c.Bytes())/1e6, "MB-accounted")
		runtime.KeepAlive(c)
		b.StartTimer()
	}
}
