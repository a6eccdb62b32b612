package cimd

import (
	"container/list"
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// ErrCacheMiss is returned by Cache.Get when nothing is stored for a client_id.
var ErrCacheMiss = errors.New("cimd: cache miss")

// Entry is one stored client metadata document: the validated body as
// fetched and the HTTP metadata needed for RFC 9111 freshness and
// revalidation. Only documents that passed validation are stored (CIMD §5.2).
// Entries are immutable once stored; a Cache may hand the same *Entry to many
// callers.
type Entry struct {
	ClientID string
	// Body is the document as fetched, for caches shared between processes.
	// It is nil in an in-process cache, which keeps the parsed form instead.
	Body []byte
	// The response fields needed to revalidate (RFC 9111 §4.3) and to
	// update freshness from a 304 (§4.3.4).
	ETag, LastModified, CacheControl, Expires string

	FetchedAt   time.Time
	FreshUntil  time.Time // used without contacting the host until then
	StaleUntil  time.Time // after FreshUntil, served (flagged stale) only while the host is down, until then
	Fingerprint string    // Document.Fingerprint of Body

	client *Client // parsed form, kept by in-process caches; nil from a shared cache
}

// size approximates the bytes an entry holds, for byte-bounded caches.
func (e *Entry) size() int {
	n := 400 + len(e.ClientID) + len(e.Body) + len(e.Fingerprint) + len(e.ETag) + len(e.LastModified) + len(e.CacheControl) + len(e.Expires)
	if e.client != nil && e.client.Document != nil {
		n += 200 + e.client.Document.size()
	}
	return n
}

// header returns the stored fields as a header, overridden by those present
// in h (a 304 response), with Date and Age taken from h only.
func (e *Entry) header(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range map[string]string{"Etag": e.ETag, "Last-Modified": e.LastModified, "Cache-Control": e.CacheControl, "Expires": e.Expires} {
		if v != "" {
			out.Set(k, v)
		}
	}
	for _, k := range [...]string{"Etag", "Last-Modified", "Cache-Control", "Expires", "Date", "Age"} {
		if vs := h.Values(k); len(vs) > 0 {
			out[k] = vs
		}
	}
	return out
}

// inProcess marks caches that hold entries in this process's memory: the
// resolver stores parsed documents there and leaves Body out.
type inProcess interface{ inProcess() }

// Cache stores entries by client_id. Implementations must be safe for
// concurrent use. The default is an in-process LRU of 256 MiB; a shared cache (one
// table for a cluster of servers) implements this interface so that every
// replica fetches each document once per freshness lifetime. Entries read
// from a shared cache carry only the exported fields: the resolver
// re-validates their Body before use, exactly as after a fetch.
type Cache interface {
	// Get returns the entry for clientID, or ErrCacheMiss.
	Get(ctx context.Context, clientID string) (*Entry, error)
	// Put stores e, replacing any entry for e.ClientID.
	Put(ctx context.Context, e *Entry) error
	// Delete removes the entry for clientID; deleting a missing entry is not an error.
	Delete(ctx context.Context, clientID string) error
}

// memoryCache is a byte-bounded LRU Cache held in process memory. It is safe
// for concurrent use. Get does not allocate.
type memoryCache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	ll       *list.List // front = most recently used; values are *memItem
	items    map[string]*list.Element
}

type memItem struct {
	e    *Entry
	size int
}

// newMemoryCache returns a cache that evicts least recently used entries once
// it holds more than maxBytes (approximate, see Entry.size). maxBytes <= 0
// means 256 MiB.
func newMemoryCache(maxBytes int) *memoryCache {
	if maxBytes <= 0 {
		maxBytes = 256 << 20
	}
	return &memoryCache{maxBytes: maxBytes, ll: list.New(), items: map[string]*list.Element{}}
}

var _ Cache = (*memoryCache)(nil)

func (*memoryCache) inProcess() {}

// Get implements Cache.
func (c *memoryCache) Get(_ context.Context, clientID string) (*Entry, error) {
	c.mu.Lock()
	el, ok := c.items[clientID]
	if !ok {
		c.mu.Unlock()
		return nil, ErrCacheMiss
	}
	c.ll.MoveToFront(el)
	e := el.Value.(*memItem).e
	c.mu.Unlock()
	return e, nil
}

// Put implements Cache. An entry larger than the whole cache is not stored.
func (c *memoryCache) Put(_ context.Context, e *Entry) error {
	size := e.size()
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.ClientID]; ok {
		c.removeElement(el)
	}
	if size > c.maxBytes {
		return nil
	}
	c.items[e.ClientID] = c.ll.PushFront(&memItem{e: e, size: size})
	c.bytes += size
	for c.bytes > c.maxBytes {
		c.removeElement(c.ll.Back())
	}
	return nil
}

// Delete implements Cache.
func (c *memoryCache) Delete(_ context.Context, clientID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[clientID]; ok {
		c.removeElement(el)
	}
	return nil
}

func (c *memoryCache) removeElement(el *list.Element) {
	it := el.Value.(*memItem)
	c.ll.Remove(el)
	delete(c.items, it.e.ClientID)
	c.bytes -= it.size
}

// Len reports the number of entries held.
func (c *memoryCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// Bytes reports the approximate bytes held.
func (c *memoryCache) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
