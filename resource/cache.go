package resource

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults of CacheOptions.
const (
	DefaultCacheTTL        = time.Minute
	DefaultCacheMaxEntries = 10000
)

// CacheOptions configures NewCache. The zero value is usable.
type CacheOptions struct {
	// TTL is the longest time a verified token is trusted without asking the
	// wrapped verifier again; an entry never outlives the token's exp. Zero
	// means DefaultCacheTTL. It also bounds how late a revoked (introspected)
	// token or a key removed from the issuer's JWKS is noticed.
	TTL time.Duration
	// MaxEntries bounds the cache; the oldest entries go first. Zero means
	// DefaultCacheMaxEntries.
	MaxEntries int
	// Now is the clock. Zero means time.Now.
	Now func() time.Time
}

// Cache is a TokenVerifier that remembers the tokens another verifier
// accepted, keyed by the SHA-256 of the token (the token itself is not
// kept), for at most TTL and never past the token's expiry. Rejections and
// errors are not cached. Concurrent misses for the same token share one call
// to the wrapped verifier. A Cache is safe for concurrent use.
type Cache struct {
	v     TokenVerifier
	ttl   time.Duration
	max   int
	now   func() time.Time
	group singleflight.Group

	mu      sync.RWMutex
	entries map[[sha256.Size]byte]cacheEntry
	order   [][sha256.Size]byte // insertion order, a ring of at most max keys
	head    int                 // index of the oldest key in order once it is full
}

type cacheEntry struct {
	info    *TokenInfo
	expires time.Time
}

var _ TokenVerifier = (*Cache)(nil)

// NewCache returns a Cache in front of v.
func NewCache(v TokenVerifier, opts CacheOptions) *Cache {
	c := &Cache{
		v:       v,
		ttl:     cmp.Or(opts.TTL, DefaultCacheTTL),
		max:     cmp.Or(opts.MaxEntries, DefaultCacheMaxEntries),
		now:     opts.Now,
		entries: make(map[[sha256.Size]byte]cacheEntry),
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// VerifyToken implements TokenVerifier.
func (c *Cache) VerifyToken(ctx context.Context, token string) (*TokenInfo, error) {
	key := sha256.Sum256([]byte(token))
	if info := c.get(key); info != nil {
		return info, nil
	}
	ch := c.group.DoChan(hex.EncodeToString(key[:]), func() (any, error) {
		if info := c.get(key); info != nil { // filled since our miss
			return info, nil
		}
		// Detached from one caller's cancellation: others wait for the result.
		info, err := c.v.VerifyToken(context.WithoutCancel(ctx), token)
		if err == nil && info != nil {
			c.put(key, info)
		}
		return info, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*TokenInfo), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// get returns the unexpired cached info for key, or nil.
func (c *Cache) get(key [sha256.Size]byte) *TokenInfo {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if ok && c.now().Before(e.expires) {
		return e.info
	}
	return nil
}

func (c *Cache) put(key [sha256.Size]byte, info *TokenInfo) {
	now := c.now()
	expires := now.Add(c.ttl)
	if !info.Expiry.IsZero() && info.Expiry.Before(expires) {
		expires = info.Expiry
	}
	if !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok {
		if len(c.order) < c.max {
			c.order = append(c.order, key)
		} else {
			delete(c.entries, c.order[c.head])
			c.order[c.head] = key
			c.head = (c.head + 1) % c.max
		}
	}
	c.entries[key] = cacheEntry{info: info, expires: expires}
}

// Len returns the number of cached tokens, expired ones included until they
// are evicted.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
