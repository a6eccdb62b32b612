package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/store"
	sqlstore "github.com/mcpauth/mcpauth/internal/store/sql"
)

// Timing of the fetch leases of storeCache.
const (
	// cimdLease is how long one replica's claim to fetch a document lasts:
	// the resolver's fetch deadline (5 s) and a margin. Others wait for its
	// result at most this long before fetching themselves.
	cimdLease = 6 * time.Second
	// cimdPoll is how often a waiting replica looks for the result.
	cimdPoll = 20 * time.Millisecond
	// cimdSkipMemo bounds the clients remembered as "fetch failed
	// elsewhere" (see storeCache.skip).
	cimdSkipMemo = 1024
	// cimdLocalTTL is how long a replica answers from its own copy of a
	// fresh entry without reading the store; never past FreshUntil.
	cimdLocalTTL = 10 * time.Second
	// cimdLocalMax bounds the copies held (documents are at most 5 KiB).
	cimdLocalMax = 4096
)

// cimdStore is the part of store.Store that storeCache needs.
type cimdStore interface {
	GetCIMDEntry(ctx context.Context, clientID string) (store.CIMDEntry, error)
	PutCIMDEntry(ctx context.Context, e store.CIMDEntry) error
	DeleteCIMDEntry(ctx context.Context, clientID string) error
	LeaseCIMDFetch(ctx context.Context, clientID, holder string, now, until time.Time) (string, time.Time, error)
}

// storeCache is a cimd.Cache kept in the store, shared by every replica on
// one database (an RFC 9111 shared cache), so that a cluster fetches each
// client metadata document once per freshness lifetime (MCP SEP-991 §Best
// Practices, CIMD §5.2).
//
// When an entry is missing or stale, the first replica to claim the fetch
// lease (store.LeaseCIMDFetch) gets a miss and fetches; the others wait
// for its PutCIMDEntry, polling, for at most the lease. While the
// document is revalidated they serve the previous copy if it is still
// inside its stale-if-error window (stale-while-revalidate, RFC 5861 §3,
// for at most the lease). When the fetch fails the lease ends without an
// entry and every waiter fetches for itself, once, rather than waiting in
// turn. Policy is not the cache's business: the resolver checks it on
// every Resolve, so a block applies at once on every replica.
//
// A fresh entry read from the store is kept in process memory for at most
// cimdLocalTTL and never past its FreshUntil, which saves the two store
// reads of every Resolve. Nothing is lost by it: the store's copy of a
// fresh entry changes only when some replica finds it stale, which this
// one then also does; a block still applies at once, because the resolver
// checks the policy on every call.
//
// Entries handed out are fresh copies holding the exported fields only;
// the resolver re-validates their Body. It is safe for concurrent use.
type storeCache struct {
	db     cimdStore
	holder string // this process's lease holder name
	now    func() time.Time
	log    *slog.Logger
	group  singleflight.Group // concurrent Gets for one client share one look-up

	mu    sync.Mutex
	skip  map[string]time.Time  // client -> until when not to wait: another replica's fetch just failed
	local map[string]localEntry // client -> this replica's copy of a fresh entry
}

// localEntry is a fresh entry held in process memory until until.
type localEntry struct {
	e     store.CIMDEntry
	until time.Time
}

var _ cimd.Cache = (*storeCache)(nil)

// newStoreCache returns a cimd.Cache on db. now nil means time.Now; log
// nil discards.
func newStoreCache(db cimdStore, now func() time.Time, log *slog.Logger) *storeCache {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &storeCache{db: db, holder: "mcpauth-" + hex.EncodeToString(b), now: now, log: log,
		skip: map[string]time.Time{}, local: map[string]localEntry{}}
}

// lookup is the outcome of one shared look-up.
type lookup struct {
	e     store.CIMDEntry
	found bool
}

// Get implements cimd.Cache: the stored entry for clientID, a miss
// (cimd.ErrCacheMiss) when the caller is to fetch, after waiting for a
// fetch another replica is making.
func (c *storeCache) Get(ctx context.Context, clientID string) (*cimd.Entry, error) {
	if e, ok := c.recall(clientID); ok {
		return toEntry(e), nil
	}
	ch := c.group.DoChan(clientID, func() (any, error) {
		// The look-up outlives one caller giving up, like the resolver's fetch.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*cimdLease)
		defer cancel()
		l, err := c.lookup(lctx, clientID)
		if err == nil && l.found {
			c.remember(l.e)
		}
		return l, err
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("cimd cache get %q: %w", clientID, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		l := res.Val.(lookup)
		if !l.found {
			return nil, cimd.ErrCacheMiss
		}
		return toEntry(l.e), nil // a copy per caller: the resolver annotates what it gets
	}
}

// lookup reads the entry and, when it is missing or stale, settles which
// replica fetches.
func (c *storeCache) lookup(ctx context.Context, clientID string) (lookup, error) {
	deadline := c.now().Add(2 * cimdLease)
	var waitedFor string // the other holder this look-up has been waiting for
	for ended := 0; ; {
		now := c.now()
		e, found, err := c.read(ctx, clientID)
		if err != nil {
			return lookup{}, err
		}
		if found && now.Before(e.FreshUntil) {
			return lookup{e, true}, nil
		}
		if c.skipping(clientID, now) || !now.Before(deadline) {
			return lookup{e, found}, nil
		}
		holder, until, err := c.db.LeaseCIMDFetch(ctx, clientID, c.holder, now, now.Add(cimdLease))
		if err != nil {
			// Coordination is an optimisation: fetch rather than fail.
			c.log.Warn("cimd fetch lease failed", "client_id", clientID, "err", err)
			return lookup{e, found}, nil
		}
		switch {
		case holder == c.holder:
			// Ours. Another replica may have stored the document between
			// our read and our claim: read again before fetching.
			e, found, err = c.read(ctx, clientID)
			if err != nil {
				return lookup{}, err
			}
			return lookup{e, found}, nil
		case holder == "":
			// The claim ended between our two statements: look again.
			if ended++; ended > 3 {
				return lookup{e, found}, nil
			}
			continue
		case waitedFor != "" && holder != waitedFor:
			// The replica we waited for gave up its claim without storing
			// the document (the fetch failed) and another one is trying:
			// fetch too, rather than wait in turn.
			c.skipFor(clientID, now.Add(cimdLease))
			return lookup{e, found}, nil
		case found && now.Before(e.StaleUntil):
			// Another replica is revalidating: serve the previous copy meanwhile.
			e.FreshUntil = until
			if e.StaleUntil.Before(until) {
				e.FreshUntil = e.StaleUntil
			}
			return lookup{e, true}, nil
		}
		waitedFor = holder
		t := time.NewTimer(cimdPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return lookup{}, fmt.Errorf("cimd cache get %q: waiting for another replica's fetch: %w", clientID, ctx.Err())
		case <-t.C:
		}
	}
}

// read returns the stored entry, found false when there is none.
func (c *storeCache) read(ctx context.Context, clientID string) (store.CIMDEntry, bool, error) {
	e, err := c.db.GetCIMDEntry(ctx, clientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.CIMDEntry{}, false, nil
	case err != nil:
		return store.CIMDEntry{}, false, err
	}
	return e, true, nil
}

// skipping reports whether a fetch for clientID failed on another replica
// so recently that waiting for the next one is pointless.
func (c *storeCache) skipping(clientID string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.skip[clientID]
	if ok && !now.Before(until) {
		delete(c.skip, clientID)
		return false
	}
	return ok
}

func (c *storeCache) skipFor(clientID string, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.skip) >= cimdSkipMemo {
		clear(c.skip)
	}
	c.skip[clientID] = until
}

// recall returns this replica's copy of a fresh entry for clientID.
func (c *storeCache) recall(clientID string) (store.CIMDEntry, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.local[clientID]
	if !ok || !now.Before(l.until) || !now.Before(l.e.FreshUntil) {
		return store.CIMDEntry{}, false
	}
	return l.e, true
}

// remember keeps a copy of e if it is fresh.
func (c *storeCache) remember(e store.CIMDEntry) {
	now := c.now()
	if !now.Before(e.FreshUntil) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.local) >= cimdLocalMax {
		clear(c.local)
	}
	c.local[e.ClientID] = localEntry{e: e, until: now.Add(cimdLocalTTL)}
}

// forget drops this replica's copy of clientID's entry.
func (c *storeCache) forget(clientID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.local, clientID)
}

// Put implements cimd.Cache. It also ends this replica's fetch lease.
func (c *storeCache) Put(ctx context.Context, e *cimd.Entry) error {
	if len(e.Body) == 0 {
		return fmt.Errorf("cimd cache put %q: the entry has no body, which a shared cache needs", e.ClientID)
	}
	se := store.CIMDEntry{ClientID: e.ClientID, Body: e.Body, ETag: e.ETag,
		LastModified: e.LastModified, CacheControl: e.CacheControl, Expires: e.Expires,
		FetchedAt: e.FetchedAt, FreshUntil: e.FreshUntil, StaleUntil: e.StaleUntil, Fingerprint: e.Fingerprint}
	c.forget(e.ClientID)
	if err := c.db.PutCIMDEntry(ctx, se); err != nil {
		return err
	}
	c.remember(se)
	return nil
}

// Delete implements cimd.Cache. It also ends any fetch lease, so that
// waiting replicas stop waiting.
func (c *storeCache) Delete(ctx context.Context, clientID string) error {
	c.forget(clientID)
	return c.db.DeleteCIMDEntry(ctx, clientID)
}

// toEntry is the cimd.Entry holding e's fields.
func toEntry(e store.CIMDEntry) *cimd.Entry {
	return &cimd.Entry{ClientID: e.ClientID, Body: e.Body, ETag: e.ETag, LastModified: e.LastModified,
		CacheControl: e.CacheControl, Expires: e.Expires, FetchedAt: e.FetchedAt, FreshUntil: e.FreshUntil,
		StaleUntil: e.StaleUntil, Fingerprint: e.Fingerprint}
}

// cimdCacheFor is the CIMD document cache for a server on db: the shared
// storeCache when db is PostgreSQL (replicas), nil otherwise, which makes
// the resolver keep parsed documents in process memory (one process on
// SQLite has no one to share with, and skips re-validating every hit).
func cimdCacheFor(db store.Store, log *slog.Logger) cimd.Cache {
	if d, ok := db.(*sqlstore.DB); ok && d.Dialect() == sqlstore.Postgres {
		return newStoreCache(db, nil, log)
	}
	return nil
}
