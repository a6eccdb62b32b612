package safehttp

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxTrackedHosts bounds the per-host limiter map. Above it, idle hosts are
// evicted: first those whose token bucket has refilled (evicting them loses
// nothing), then any host with no fetch in flight.
const maxTrackedHosts = 1024

// errRateLimited is returned by hostLimiter.acquire when the host's token
// bucket is empty.
var errRateLimited = errors.New("rate limited")

// hostLimiter enforces a per-host concurrency cap and per-host token
// buckets (MCP SEP-991 §Best Practices: rate-limit outbound fetches): one for
// first fetches and one for revalidations of documents already known, so that a
// flood of fetches for made-up URLs on a host cannot stop the host's real
// clients from being revalidated. It is safe for concurrent use.
type hostLimiter struct {
	rate  rate.Limit
	burst int
	slots int
	max   int
	now   func() time.Time

	mu    sync.Mutex
	hosts map[string]*hostState
}

// hostState is the limiter state of one host.
type hostState struct {
	bucket *rate.Limiter // first fetches
	known  *rate.Limiter // revalidations
	slots  chan struct{}
	users  int // fetches holding or waiting for a slot; guarded by hostLimiter.mu
}

func newHostLimiter(perSecond float64, burst, slots int, now func() time.Time) *hostLimiter {
	return &hostLimiter{
		rate:  rate.Limit(perSecond),
		burst: burst,
		slots: slots,
		max:   maxTrackedHosts,
		now:   now,
		hosts: make(map[string]*hostState),
	}
}

// acquire takes a token from host's bucket (the revalidation bucket when
// known is set), failing fast with errRateLimited when it is empty, then
// waits for one of host's concurrency slots until ctx is done (returning
// ctx.Err()). On success the caller must call release.
func (l *hostLimiter) acquire(ctx context.Context, host string, known bool) (release func(), err error) {
	l.mu.Lock()
	s := l.hosts[host]
	if s == nil {
		if len(l.hosts) >= l.max {
			l.evictLocked()
		}
		s = &hostState{bucket: rate.NewLimiter(l.rate, l.burst), known: rate.NewLimiter(l.rate, l.burst),
			slots: make(chan struct{}, l.slots)}
		l.hosts[host] = s
	}
	bucket := s.bucket
	if known {
		bucket = s.known
	}
	if !bucket.AllowN(l.now(), 1) {
		l.mu.Unlock()
		return nil, errRateLimited
	}
	s.users++
	l.mu.Unlock()

	done := func() {
		l.mu.Lock()
		s.users--
		l.mu.Unlock()
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
	return func() {
		<-s.slots
		done()
	}, nil
}

// evictLocked drops idle hosts: first those whose buckets are full again, and
// if that is not enough, any host with no fetch in flight. Hosts with fetches
// in flight are never dropped, so the map holds at most max entries plus the
// hosts currently being fetched.
func (l *hostLimiter) evictLocked() {
	now := l.now()
	for h, s := range l.hosts {
		if s.users == 0 && s.bucket.TokensAt(now) >= float64(l.burst) && s.known.TokensAt(now) >= float64(l.burst) {
			delete(l.hosts, h)
		}
	}
	for h, s := range l.hosts {
		if len(l.hosts) < l.max {
			return
		}
		if s.users == 0 {
			delete(l.hosts, h)
		}
	}
}

// tracked returns how many hosts the limiter holds state for.
func (l *hostLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hosts)
}
