package safehttp

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the rate limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestFetchRateLimit(t *testing.T) {
	srv, rec := newTLSServer(t, serveDoc)
	clock := newFakeClock()
	c, fake := publicClient(t, srv, Options{PerHostRate: 1, PerHostBurst: 2, Now: clock.now})
	fake.answer("other.example.com", publicIP)
	fetch := func(url string) error {
		_, err := c.Fetch(context.Background(), Request{URL: url})
		return err
	}
	for i := range 2 {
		if err := fetch("https://example.com/c.json"); err != nil {
			t.Fatalf("B13 fetch %d within the burst: %v", i, err)
		}
	}
	err := fetch("https://example.com/c.json")
	e := wantError(t, err, ReasonRateLimited)
	if !e.Unavailable() {
		t.Error("B13 rate limited: Unavailable() = false, want true")
	}
	if rec.count() != 2 {
		t.Errorf("B13 the server saw %d requests, want 2 (fail fast)", rec.count())
	}
	t.Run("B13 keyed by lowercase host", func(t *testing.T) {
		wantError(t, fetch("https://EXAMPLE.com/c.json"), ReasonRateLimited)
	})
	t.Run("B13 other hosts are not affected", func(t *testing.T) {
		if err := fetch("https://other.example.com/c.json"); err != nil {
			t.Fatalf("other.example.com: %v", err)
		}
	})
	t.Run("B13 tokens refill", func(t *testing.T) {
		clock.advance(time.Second)
		if err := fetch("https://example.com/c.json"); err != nil {
			t.Fatalf("after one second: %v", err)
		}
		wantError(t, fetch("https://example.com/c.json"), ReasonRateLimited)
	})
}

func TestFetchPerHostConcurrency(t *testing.T) {
	entered := make(chan struct{}, 10)
	unblock := make(chan struct{})
	srv, rec := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-unblock
		serveDoc(w, r)
	})
	c, _ := publicClient(t, srv, Options{PerHostConcurrency: 1})

	first := make(chan error, 1)
	go func() {
		_, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
		first <- err
	}()
	<-entered // the first fetch holds the only slot

	t.Run("B13 a waiter gives up at its deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Fetch(ctx, Request{URL: "https://example.com/c.json"})
		wantError(t, err, ReasonTimeout)
		if rec.count() != 1 {
			t.Errorf("the server saw %d requests while the slot was taken", rec.count())
		}
	})

	second := make(chan error, 1)
	go func() {
		_, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
		second <- err
	}()
	close(unblock)
	if err := <-first; err != nil {
		t.Fatalf("first fetch: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("B13 the waiting fetch, once the slot was free: %v", err)
	}
	if rec.count() != 2 {
		t.Errorf("the server saw %d requests, want 2", rec.count())
	}
}

func TestHostLimiterStaysBounded(t *testing.T) {
	clock := newFakeClock()
	l := newHostLimiter(5, 10, 4, clock.now)
	l.max = 8
	ctx := context.Background()

	// A host with a fetch in flight is never evicted.
	releaseBusy, err := l.acquire(ctx, "busy.example", false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		release, err := l.acquire(ctx, fmt.Sprintf("h%d.example", i), false)
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		release()
		if n := l.tracked(); n > l.max {
			t.Fatalf("B13 after %d hosts the limiter tracks %d, more than %d", i+1, n, l.max)
		}
	}
	l.mu.Lock()
	_, busy := l.hosts["busy.example"]
	l.mu.Unlock()
	if !busy {
		t.Error("B13 a host with a fetch in flight was evicted")
	}
	releaseBusy()

	// Hosts whose bucket has refilled are evicted first, losing no state.
	clock.advance(time.Hour)
	release, err := l.acquire(ctx, "new.example", false)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if n := l.tracked(); n != 1 {
		t.Errorf("after an idle hour the limiter tracks %d hosts, want 1", n)
	}
}

func TestHostLimiterKeepsRateStateUnderChurn(t *testing.T) {
	clock := newFakeClock()
	l := newHostLimiter(1, 1, 4, clock.now)
	l.max = 4
	ctx := context.Background()
	release, err := l.acquire(ctx, "a.example", false)
	if err != nil {
		t.Fatal(err)
	}
	release()
	// a.example's bucket is empty, so it is not evicted while fewer than max
	// other idle hosts exist.
	for _, h := range []string{"b.example", "c.example"} {
		release, err := l.acquire(ctx, h, false)
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	if _, err := l.acquire(ctx, "a.example", false); err != errRateLimited {
		t.Errorf("B13 a.example: err = %v, want errRateLimited", err)
	}
}

// TestHostLimiterKnownBudget: a flood of first fetches on a host (made-up
// URLs anyone can ask for) does not use up the budget for revalidating
// documents already known there (MCP SEP-991 §Best Practices without a
// lockout), and revalidations are rate-limited too.
func TestHostLimiterKnownBudget(t *testing.T) {
	clock := newFakeClock()
	l := newHostLimiter(1, 2, 4, clock.now)
	ctx := context.Background()
	take := func(known bool) error {
		release, err := l.acquire(ctx, "clients.example", known)
		if err == nil {
			release()
		}
		return err
	}
	for i := range 2 {
		if err := take(false); err != nil {
			t.Fatalf("first fetch %d: %v", i, err)
		}
	}
	if err := take(false); err != errRateLimited {
		t.Fatalf("third first fetch: err = %v, want errRateLimited", err)
	}
	for i := range 2 {
		if err := take(true); err != nil {
			t.Errorf("revalidation %d after the first-fetch budget ran out: %v, want nil", i, err)
		}
	}
	if err := take(true); err != errRateLimited {
		t.Errorf("third revalidation: err = %v, want errRateLimited", err)
	}
}
