package cimd

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// docServer is a loopback https server publishing client metadata documents.
type docServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	handler http.HandlerFunc
	fetches atomic.Int64
	lastINM atomic.Value // If-None-Match of the last request
}

func newDocServer(t *testing.T) *docServer {
	t.Helper()
	s := &docServer{}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.lastINM.Store(r.Header.Get("If-None-Match"))
		s.mu.Lock()
		h := s.handler
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *docServer) url(path string) string { return s.srv.URL + path }

func (s *docServer) set(h http.HandlerFunc) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// serve publishes body as JSON with the given extra headers.
func (s *docServer) serve(body string, headers ...string) {
	s.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if etag := w.Header().Get("ETag"); etag != "" && r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte(body))
	})
}

func (s *docServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.srv.Certificate())
	return p
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }
func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestResolver(t *testing.T, s *docServer, opts Options) *Resolver {
	t.Helper()
	opts.AllowLoopback = true
	opts.RootCAs = s.pool()
	r, err := NewResolver(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func docJSON(clientID string, redirects ...string) string {
	if len(redirects) == 0 {
		redirects = []string{"http://127.0.0.1/callback"}
	}
	b, _ := json.Marshal(map[string]any{"client_id": clientID, "client_name": "Test Client", "redirect_uris": redirects})
	return string(b)
}

func reasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func TestResolveCachesPerMaxAgeAndRevalidates(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "max-age=600", "ETag", `"v1"`)
	clk := newClock()
	r := newTestResolver(t, s, Options{Now: clk.now})
	ctx := context.Background()

	c, err := r.Resolve(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Document.ClientID != id || c.Tier != TierUnverified || c.Stale {
		t.Fatalf("first resolve: %+v", c)
	}
	clk.advance(599 * time.Second)
	if _, err := r.Resolve(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := s.fetches.Load(); n != 1 {
		t.Fatalf("D1: fetched %d times within max-age, want 1", n)
	}
	clk.advance(2 * time.Second)
	c, err = r.Resolve(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.fetches.Load(); n != 2 {
		t.Fatalf("D3: fetched %d times after expiry, want 2", n)
	}
	if inm := s.lastINM.Load(); inm != `"v1"` {
		t.Errorf("revalidation sent If-None-Match %q, want %q", inm, `"v1"`)
	}
	if !c.FreshUntil.Equal(clk.now().Add(600 * time.Second)) {
		t.Errorf("D1: a 304 must refresh the entry: fresh until %v, now %v", c.FreshUntil, clk.now())
	}
	clk.advance(300 * time.Second)
	if _, err := r.Resolve(ctx, id); err != nil || s.fetches.Load() != 2 {
		t.Errorf("after 304 refresh the entry should be fresh: err=%v fetches=%d", err, s.fetches.Load())
	}
}

func TestResolveLastModifiedRevalidation(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	lm := "Tue, 24 Nov 2026 10:00:00 GMT"
	var ims atomic.Value
	s.set(func(w http.ResponseWriter, r *http.Request) {
		ims.Store(r.Header.Get("If-Modified-Since"))
		if r.Header.Get("If-Modified-Since") == lm {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Last-Modified", lm)
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte(docJSON(id)))
	})
	clk := newClock()
	r := newTestResolver(t, s, Options{Now: clk.now})
	if _, err := r.Resolve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	clk.advance(61 * time.Second)
	if _, err := r.Resolve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if got := ims.Load(); got != lm {
		t.Errorf("If-Modified-Since = %q, want %q", got, lm)
	}
}

func TestResolveNoStoreUsedOnce(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "no-store, max-age=600")
	r := newTestResolver(t, s, Options{})
	for range 3 {
		if _, err := r.Resolve(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.fetches.Load(); n != 3 {
		t.Errorf("decision 3: no-store document fetched %d times for 3 requests, want 3", n)
	}
}

func TestResolveClampsLifetime(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "max-age=1")
	clk := newClock()
	r := newTestResolver(t, s, Options{Now: clk.now})
	if _, err := r.Resolve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	clk.advance(59 * time.Second)
	if _, err := r.Resolve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("D4: max-age=1 must be clamped to 60 s; fetched %d times", n)
	}
}

func TestResolveStaleIfError(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "max-age=60")
	clk := newClock()
	r := newTestResolver(t, s, Options{Now: clk.now, Limits: Limits{MaxStale: 10 * time.Minute}})
	if _, err := r.Resolve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	s.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	clk.advance(2 * time.Minute)
	c, err := r.Resolve(context.Background(), id)
	if err != nil {
		t.Fatalf("host down within the stale window: %v", err)
	}
	if !c.Stale {
		t.Errorf("a document served past its freshness must be flagged stale")
	}
	clk.advance(10 * time.Minute)
	if _, err := r.Resolve(context.Background(), id); reasonOf(err) != ReasonFetch {
		t.Errorf("past the stale bound: err=%v, want a fetch error", err)
	}
}

func TestResolveStaleNotServedWhenHostAnswersNo(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "max-age=60")
	clk := newClock()
	r := newTestResolver(t, s, Options{Now: clk.now})
	if _, err := r.Resolve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	s.set(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	clk.advance(2 * time.Minute)
	if _, err := r.Resolve(context.Background(), id); reasonOf(err) != ReasonFetch {
		t.Fatalf("attack 17: a 404 on refetch must fail, got %v", err)
	}
	// The host is back with a valid document: it is fetched again, not served from a dead entry.
	s.serve(docJSON(id))
	if _, err := r.Resolve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := s.fetches.Load(); n != 3 {
		t.Errorf("fetches = %d, want 3", n)
	}
}

func TestResolveNeverCachesErrorsOrInvalidDocuments(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	r := newTestResolver(t, s, Options{})
	ctx := context.Background()

	s.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	if _, err := r.Resolve(ctx, id); reasonOf(err) != ReasonFetch {
		t.Fatalf("attack 17: 500 gave %v", err)
	}
	s.serve(`{"client_id":"https://someone-else.example/client.json","redirect_uris":["http://127.0.0.1/cb"]}`, "Cache-Control", "max-age=600")
	if _, err := r.Resolve(ctx, id); reasonOf(err) != ReasonClientIDMismatch {
		t.Fatalf("C2: mismatched client_id gave %v", err)
	}
	s.serve(docJSON(id), "Cache-Control", "max-age=600")
	if _, err := r.Resolve(ctx, id); err != nil {
		t.Fatalf("D2: after errors, a valid document must be fetched and accepted: %v", err)
	}
	if n := s.fetches.Load(); n != 3 {
		t.Errorf("D2: fetches = %d, want 3 (nothing cached from the failures)", n)
	}
}

func TestResolveContentType(t *testing.T) {
	for _, tt := range []struct {
		name, ct string
		lenient  bool
		ok       bool
	}{
		{"B9 application/json", "application/json; charset=utf-8", false, true},
		{"B9 application/cimd+json", "application/cimd+json", false, true},
		{"attack 21 text/html", "text/html", false, false},
		{"attack 21 text/plain strict", "text/plain", false, false},
		{"decision 4 text/plain lenient", "text/plain; charset=utf-8", true, true},
		{"attack 21 application/xml", "application/xml", false, false},
		{"attack 21 application/json-seq", "application/json-seq", false, false},
		{"attack 21 missing", "", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newDocServer(t)
			id := s.url("/client.json")
			s.set(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = []string{tt.ct}
				_, _ = w.Write([]byte(docJSON(id)))
			})
			r := newTestResolver(t, s, Options{LenientContentType: tt.lenient})
			_, err := r.Resolve(context.Background(), id)
			if tt.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tt.ok && reasonOf(err) != ReasonContentType {
				t.Fatalf("got %v, want %s", err, ReasonContentType)
			}
		})
	}
}

func TestResolve304WithoutCachedCopy(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.set(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
	r := newTestResolver(t, s, Options{})
	if _, err := r.Resolve(context.Background(), id); reasonOf(err) != ReasonFetch {
		t.Errorf("attack 16: 304 without a cached copy gave %v", err)
	}
}

func TestResolveCoalescesConcurrentCalls(t *testing.T) {
	const n = 10000
	s := newDocServer(t)
	id := s.url("/client.json")
	var calls, waitingAtResponse atomic.Int64
	s.set(func(w http.ResponseWriter, r *http.Request) {
		// Hold the response until every caller has called Resolve (or 2 s
		// passed on a slow machine), so that they pile up on this one fetch.
		deadline := time.Now().Add(2 * time.Second)
		for calls.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		waitingAtResponse.Store(calls.Load())
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(docJSON(id)))
	})
	// A generous deadline: this test is about coalescing, not timeouts.
	r := newTestResolver(t, s, Options{Timeout: 30 * time.Second})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Go(func() {
			calls.Add(1)
			c, err := r.Resolve(context.Background(), id)
			if err != nil || c.Document.ClientID != id {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("B13: %d of %d callers failed", f, n)
	}
	if got := s.fetches.Load(); got != 1 {
		t.Errorf("B13: %d concurrent cold calls caused %d fetches, want 1", n, got)
	}
	if w := waitingAtResponse.Load(); w < 2 {
		t.Errorf("only %d callers were waiting when the fetch answered; the test did not exercise coalescing", w)
	}
	t.Logf("%d callers had called Resolve when the single fetch answered", waitingAtResponse.Load())
}

func TestResolveCallerCancelDoesNotFailOthers(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	release := make(chan struct{})
	s.set(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(docJSON(id)))
	})
	r := newTestResolver(t, s, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := r.Resolve(ctx, id); first <- err }()
	for s.fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() { _, err := r.Resolve(context.Background(), id); second <- err }()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	close(release)
	if err := <-second; err != nil {
		t.Errorf("the other caller failed with the first one's cancellation: %v", err)
	}
}

func TestResolvePolicyBeforeFetchAndOnCacheHits(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "max-age=3600")
	deny, err := NewPolicy(PolicyConfig{Deny: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	r := newTestResolver(t, s, Options{Policy: deny})
	ctx := context.Background()
	if _, err := r.Resolve(ctx, id); reasonOf(err) != ReasonBlocked {
		t.Fatalf("A12 deny: %v", err)
	}
	if n := s.fetches.Load(); n != 0 {
		t.Fatalf("a denied client was fetched %d times", n)
	}
	r.SetPolicy(nil)
	if _, err := r.Resolve(ctx, id); err != nil {
		t.Fatal(err)
	}
	allow, _ := NewPolicy(PolicyConfig{Allow: []string{id}})
	r.SetPolicy(allow)
	c, err := r.Resolve(ctx, id)
	if err != nil || c.Tier != TierVerified || c.Rule != id {
		t.Fatalf("A12 allow on a cache hit: %+v, %v", c, err)
	}
	r.SetPolicy(deny)
	if _, err := r.Resolve(ctx, id); reasonOf(err) != ReasonBlocked {
		t.Fatalf("A12 a block must apply to cached clients at once: %v", err)
	}
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
	var e *Error
	if _, err := r.Resolve(ctx, id); !errors.As(err, &e) || e.OAuth().Code != "invalid_client" {
		t.Errorf("a blocked client must map to invalid_client: %v", err)
	}
}

func TestResolveChangeEvent(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id, "http://127.0.0.1/callback"), "Cache-Control", "max-age=60")
	clk := newClock()
	var mu sync.Mutex
	var events []ChangeEvent
	r := newTestResolver(t, s, Options{Now: clk.now, OnChange: func(ev ChangeEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}})
	ctx := context.Background()
	first, err := r.Resolve(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Minute)
	if _, err := r.Resolve(ctx, id); err != nil { // same document: no event
		t.Fatal(err)
	}
	s.serve(docJSON(id, "https://attacker.example/cb"), "Cache-Control", "max-age=60")
	clk.advance(2 * time.Minute)
	second, err := r.Resolve(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 {
		t.Fatalf("attack 34 / D6: %d change events, want 1: %+v", len(events), events)
	}
	ev := events[0]
	if ev.ClientID != id || ev.OldFingerprint != first.Fingerprint || ev.NewFingerprint != second.Fingerprint || ev.OldFingerprint == ev.NewFingerprint {
		t.Errorf("event %+v; fingerprints %s -> %s", ev, first.Fingerprint, second.Fingerprint)
	}
	if len(ev.Fields) != 1 || ev.Fields[0] != "redirect_uris" {
		t.Errorf("changed fields = %v, want [redirect_uris]", ev.Fields)
	}
}

func TestResolveRejectsBadClientIDBeforeFetch(t *testing.T) {
	s := newDocServer(t)
	r := newTestResolver(t, s, Options{})
	for _, id := range []string{s.srv.URL, s.srv.URL + "/", s.url("/c.json#x"), "https://user@127.0.0.1/c.json"} {
		if _, err := r.Resolve(context.Background(), id); err == nil {
			t.Errorf("%q accepted", id)
		}
	}
	if n := s.fetches.Load(); n != 0 {
		t.Errorf("invalid client_ids caused %d fetches", n)
	}
}

func TestResolveStrictModeBlocksLoopback(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id))
	r, err := NewResolver(Options{RootCAs: s.pool()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(context.Background(), id); err == nil {
		t.Fatal("B5: a loopback client_id was accepted without the development exception")
	}
	if n := s.fetches.Load(); n != 0 {
		t.Errorf("B5: loopback fetched %d times without the development exception", n)
	}
}

// sharedCache stands in for a cache shared between processes: it keeps
// only the exported fields, as a database table would.
type sharedCache struct {
	mu sync.Mutex
	m  map[string]Entry
}

func (c *sharedCache) Get(_ context.Context, id string) (*Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return nil, ErrCacheMiss
	}
	return &Entry{ClientID: e.ClientID, Body: e.Body, ETag: e.ETag, LastModified: e.LastModified,
		CacheControl: e.CacheControl, Expires: e.Expires, FetchedAt: e.FetchedAt, FreshUntil: e.FreshUntil,
		StaleUntil: e.StaleUntil, Fingerprint: e.Fingerprint}, nil
}

func (c *sharedCache) Put(_ context.Context, e *Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[e.ClientID] = *e
	return nil
}

func (c *sharedCache) Delete(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
	return nil
}

func TestResolveSharedCacheOneFetchForTwoResolvers(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "max-age=600", "ETag", `"v1"`)
	clk := newClock()
	shared := &sharedCache{m: map[string]Entry{}}
	a := newTestResolver(t, s, Options{Now: clk.now, Cache: shared})
	b := newTestResolver(t, s, Options{Now: clk.now, Cache: shared})
	ca, err := a.Resolve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := shared.Get(context.Background(), id); len(e.Body) == 0 || e.ETag != `"v1"` {
		t.Fatalf("a shared cache must receive the body and validators: %+v", e)
	}
	cb, err := b.Resolve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("two resolvers on one shared cache fetched %d times, want 1", n)
	}
	if ca.Fingerprint != cb.Fingerprint || cb.Document.ClientID != id {
		t.Errorf("the second resolver must re-validate the shared body to the same document: %s vs %s", ca.Fingerprint, cb.Fingerprint)
	}
	// Expiry: the second resolver revalidates with the stored ETag.
	clk.advance(601 * time.Second)
	if _, err := b.Resolve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n, inm := s.fetches.Load(), s.lastINM.Load(); n != 2 || inm != `"v1"` {
		t.Errorf("revalidation from a shared entry: fetches=%d If-None-Match=%v", n, inm)
	}
}

// TestResolveFloodOfUnknownURLsDoesNotLockOutKnownClient: anyone can make
// the server fetch made-up URLs on a client's host until the host's fetch
// budget (MCP SEP-991 §Best Practices) runs out; revalidating the host's real
// client draws on a budget of its own, so the client keeps working during such
// a flood.
func TestResolveFloodOfUnknownURLsDoesNotLockOutKnownClient(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	doc := docJSON(id)
	s.set(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/client.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte(doc))
	})
	clk := newClock()
	r := newTestResolver(t, s, Options{Now: clk.now})
	ctx := context.Background()
	if _, err := r.Resolve(ctx, id); err != nil {
		t.Fatal(err)
	}
	limited := false
	for i := range 20 {
		_, err := r.Resolve(ctx, s.url(fmt.Sprintf("/junk-%d.json", i)))
		if err == nil {
			t.Fatalf("junk URL %d resolved", i)
		}
		limited = limited || strings.Contains(err.Error(), "too many fetches")
	}
	if !limited {
		t.Fatal("20 first fetches on one host were never rate-limited; the test needs the budget used up")
	}
	clk.advance(61 * time.Second) // the cached copy is stale: revalidate
	before := s.fetches.Load()
	c, err := r.Resolve(ctx, id)
	if err != nil {
		t.Fatalf("B13: known client after a flood of unknown URLs on its host: %v", err)
	}
	if s.fetches.Load() != before+1 || c.Stale {
		t.Errorf("known client: %d fetches, stale %v; want one revalidation and a fresh copy", s.fetches.Load()-before, c.Stale)
	}
}
