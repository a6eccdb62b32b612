package main

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/safehttp"
	"github.com/mcpauth/mcpauth/internal/store"
	sqlstore "github.com/mcpauth/mcpauth/internal/store/sql"
)

// openSQLite opens a fresh SQLite store closed when the test ends.
func openSQLite(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "mcpauth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// countedDoc serves a client metadata document over https on loopback and
// counts the requests for it. It returns the client_id and a resolver
// factory trusting the server.
func countedDoc(t *testing.T, cacheControl string) (string, *atomic.Int64, func(cimd.Cache) *cimd.Resolver) {
	t.Helper()
	var fetches atomic.Int64
	docs := map[string]func(w http.ResponseWriter){}
	srv, ca := checkServer(t, docs)
	clientID := srv.URL + "/client.json"
	doc := jsonDoc(`{"client_id":"`+clientID+`","client_name":"Shared","redirect_uris":["http://127.0.0.1/cb"]}`,
		"Cache-Control", cacheControl, "ETag", `"v1"`)
	docs["/client.json"] = func(w http.ResponseWriter) {
		fetches.Add(1)
		time.Sleep(20 * time.Millisecond) // a fetch takes a moment, so that requests overlap it
		doc(w)
	}
	roots, err := safehttp.LoadRootCAs(ca)
	if err != nil {
		t.Fatal(err)
	}
	newResolver := func(c cimd.Cache) *cimd.Resolver {
		r, err := cimd.NewResolver(cimd.Options{AllowLoopback: true, RootCAs: roots, Cache: c})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return clientID, &fetches, newResolver
}

// storedEntry is a valid-looking entry fetched at now.
func storedEntry(clientID string, now time.Time, fresh, stale time.Duration) store.CIMDEntry {
	return store.CIMDEntry{ClientID: clientID, Body: []byte(`{"client_id":"` + clientID + `"}`), ETag: `"v1"`,
		CacheControl: "max-age=60", FetchedAt: now, FreshUntil: now.Add(fresh), StaleUntil: now.Add(stale), Fingerprint: "sha256:x"}
}

// waitingGet lets holder claim the fetch of clientID, then starts c.Get
// in a goroutine and checks that it waits. It returns Get's result channel.
func waitingGet(t *testing.T, db *sqlstore.DB, c *storeCache, clientID, holder string) <-chan error {
	t.Helper()
	now := time.Now()
	if _, _, err := db.LeaseCIMDFetch(t.Context(), clientID, holder, now, now.Add(cimdLease)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(t.Context(), clientID)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Get returned (%v) while %s holds the fetch; it must wait for its result", err, holder)
	case <-time.After(3 * cimdPoll):
	}
	return done
}

// together runs fn(0..n-1) on n goroutines released at one instant and
// waits for all.
func together(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func TestStoreCache(t *testing.T) {
	const id = "https://client.example/cimd.json"
	t.Run("B13 a burst over three replicas' resolvers fetches once", func(t *testing.T) {
		db := openSQLite(t)
		clientID, fetches, newResolver := countedDoc(t, "max-age=600")
		resolvers := []*cimd.Resolver{
			newResolver(newStoreCache(db, nil, nil)), newResolver(newStoreCache(db, nil, nil)), newResolver(newStoreCache(db, nil, nil)),
		}
		const n = 30
		errs := make([]error, n)
		fps := make([]string, n)
		together(n, func(i int) {
			c, err := resolvers[i%len(resolvers)].Resolve(t.Context(), clientID)
			errs[i] = err
			if err == nil {
				fps[i] = c.Fingerprint
			}
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Resolve %d: %v", i, err)
			}
			if fps[i] != fps[0] {
				t.Errorf("Resolve %d: fingerprint %s, want %s", i, fps[i], fps[0])
			}
		}
		if got := fetches.Load(); got != 1 {
			t.Errorf("%d concurrent resolutions over %d replicas fetched the document %d times, want 1", n, len(resolvers), got)
		}
		e, err := db.GetCIMDEntry(t.Context(), clientID)
		if err != nil || len(e.Body) == 0 || e.ETag != `"v1"` || e.Fingerprint != fps[0] {
			t.Errorf("the store holds %+v, %v; want the fetched body, validators and fingerprint", e, err)
		}
	})
	t.Run("B13 a miss is cimd.ErrCacheMiss and an entry round trips", func(t *testing.T) {
		db := openSQLite(t)
		c := newStoreCache(db, nil, nil)
		if _, err := c.Get(t.Context(), id); !errors.Is(err, cimd.ErrCacheMiss) {
			t.Fatalf("Get of a missing entry: %v, want cimd.ErrCacheMiss", err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond) // what the store keeps
		s := storedEntry(id, now, time.Minute, time.Hour)
		want := toEntry(s)
		if err := c.Put(t.Context(), want); err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got, cmp.AllowUnexported(cimd.Entry{}), cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
			t.Errorf("Get mismatch (-want +got):\n%s", d)
		}
		if got == want {
			t.Error("Get must hand out a copy, not the stored pointer")
		}
		if err := c.Delete(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(t.Context(), id); !errors.Is(err, cimd.ErrCacheMiss) {
			t.Errorf("Get after Delete: %v, want cimd.ErrCacheMiss", err)
		}
		if err := c.Put(t.Context(), &cimd.Entry{ClientID: id}); err == nil {
			t.Error("Put of an entry without a body must fail: a shared entry is re-validated from its body")
		}
	})
	t.Run("B13 a waiting replica gets the document another one stored", func(t *testing.T) {
		db := openSQLite(t)
		done := waitingGet(t, db, newStoreCache(db, nil, nil), id, "other-replica")
		if err := db.PutCIMDEntry(t.Context(), storedEntry(id, time.Now(), time.Minute, time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Get after the other replica stored the document: %v, want the entry", err)
		}
	})
	t.Run("B13 a waiting replica fetches itself when the other one's fetch fails", func(t *testing.T) {
		db := openSQLite(t)
		c := newStoreCache(db, nil, nil)
		done := waitingGet(t, db, c, id, "other-replica")
		// The other replica's fetch fails: the resolver deletes the entry, which ends its claim.
		if err := db.DeleteCIMDEntry(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, cimd.ErrCacheMiss) {
			t.Fatalf("Get after the other replica's fetch failed: %v, want a miss (fetch)", err)
		}
		holder, _, err := db.LeaseCIMDFetch(t.Context(), id, "third-replica", time.Now(), time.Now().Add(cimdLease))
		if err != nil || holder != c.holder {
			t.Errorf("the replica that took over holds no claim: holder %q, %v", holder, err)
		}
	})
	t.Run("B13 waiters stop waiting when the claim passes to another replica without a document", func(t *testing.T) {
		db := openSQLite(t)
		c := newStoreCache(db, nil, nil)
		done := waitingGet(t, db, c, id, "replica-a")
		// replica-a's fetch fails and replica-b claims the retry at once.
		if err := db.DeleteCIMDEntry(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.LeaseCIMDFetch(t.Context(), id, "replica-b", time.Now(), time.Now().Add(cimdLease)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, cimd.ErrCacheMiss) && err != nil {
				t.Fatalf("Get: %v", err)
			}
		case <-time.After(cimdLease / 2):
			t.Fatal("Get still waits for replica-b after replica-a's fetch failed; replicas must not fetch in turn")
		}
		// The next look-up (the resolver's second) does not wait either.
		ctx, cancel := context.WithTimeout(t.Context(), cimdLease/2)
		defer cancel()
		if _, err := c.Get(ctx, id); !errors.Is(err, cimd.ErrCacheMiss) {
			t.Errorf("second Get after a failed fetch elsewhere: %v, want an immediate miss", err)
		}
	})
	t.Run("B13 a stale copy is served while another replica revalidates, never past StaleUntil", func(t *testing.T) {
		db := openSQLite(t)
		now := time.Now()
		if err := db.PutCIMDEntry(t.Context(), storedEntry(id, now.Add(-2*time.Minute), time.Minute, time.Hour)); err != nil {
			t.Fatal(err)
		}
		_, until, err := db.LeaseCIMDFetch(t.Context(), id, "other-replica", now, now.Add(cimdLease))
		if err != nil {
			t.Fatal(err)
		}
		got, err := newStoreCache(db, nil, nil).Get(t.Context(), id)
		if err != nil {
			t.Fatalf("Get of a stale entry another replica revalidates: %v", err)
		}
		if !got.FreshUntil.Equal(until) {
			t.Errorf("FreshUntil = %v, want the end of the other replica's claim %v", got.FreshUntil, until)
		}
		// Past StaleUntil the old copy is not served: the caller waits.
		if err := db.PutCIMDEntry(t.Context(), storedEntry(id, now.Add(-2*time.Hour), time.Minute, time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.LeaseCIMDFetch(t.Context(), id, "other-replica", now, now.Add(cimdLease)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*cimdPoll)
		defer cancel()
		if e, err := newStoreCache(db, nil, nil).Get(ctx, id); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get of an entry past StaleUntil while another replica fetches = %+v, %v; want to wait (deadline exceeded)", e, err)
		}
	})
	t.Run("B13 a claim of this replica is a miss, so that it fetches", func(t *testing.T) {
		db := openSQLite(t)
		c := newStoreCache(db, nil, nil)
		for i := range 2 { // the resolver asks twice per Resolve: both must be misses
			if _, err := c.Get(t.Context(), id); !errors.Is(err, cimd.ErrCacheMiss) {
				t.Fatalf("Get %d: %v, want a miss", i, err)
			}
		}
		holder, _, err := db.LeaseCIMDFetch(t.Context(), id, "other-replica", time.Now(), time.Now().Add(cimdLease))
		if err != nil || holder != c.holder {
			t.Errorf("after a miss the claim is held by %q (%v), want this replica %q", holder, err, c.holder)
		}
	})
}

// countingStore counts the store reads of a storeCache.
type countingStore struct {
	cimdStore
	reads atomic.Int64
}

func (s *countingStore) GetCIMDEntry(ctx context.Context, clientID string) (store.CIMDEntry, error) {
	s.reads.Add(1)
	return s.cimdStore.GetCIMDEntry(ctx, clientID)
}

func TestStoreCacheLocalCopy(t *testing.T) {
	const id = "https://client.example/cimd.json"
	var mu sync.Mutex
	clock := time.Now().UTC().Truncate(time.Microsecond)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); clock = clock.Add(d) }
	db := &countingStore{cimdStore: openSQLite(t)}
	other := newStoreCache(db, now, nil) // another replica
	c := newStoreCache(db, now, nil)
	get := func(what string, wantReads int64, wantETag string) {
		t.Helper()
		before := db.reads.Load()
		e, err := c.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := db.reads.Load() - before; got != wantReads || e.ETag != wantETag {
			t.Errorf("%s: %d store reads, ETag %s; want %d, %s", what, got, e.ETag, wantReads, wantETag)
		}
	}
	put := func(cache *storeCache, etag string, fresh time.Duration) {
		t.Helper()
		e := toEntry(storedEntry(id, now(), fresh, time.Hour))
		e.ETag = etag
		if err := cache.Put(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("B13 a fresh entry is answered from memory", func(t *testing.T) {
		put(other, `"v1"`, time.Minute)
		get("first Get", 1, `"v1"`)
		get("second Get", 0, `"v1"`)
	})
	t.Run("B13 the copy is read again after cimdLocalTTL", func(t *testing.T) {
		advance(cimdLocalTTL)
		get("Get after the local lifetime", 1, `"v1"`)
	})
	t.Run("D3 the copy never outlives FreshUntil", func(t *testing.T) {
		advance(time.Minute - cimdLocalTTL) // at FreshUntil: stale, revalidated by another replica
		put(other, `"v2"`, cimdLocalTTL/2)
		get("Get at FreshUntil", 1, `"v2"`)
		advance(cimdLocalTTL / 2)
		put(other, `"v3"`, time.Minute)
		get("Get at the next FreshUntil, inside the local lifetime", 1, `"v3"`)
	})
	t.Run("B13 Put and Delete replace this replica's copy", func(t *testing.T) {
		put(c, `"v4"`, time.Minute)
		get("Get after Put", 0, `"v4"`)
		if err := c.Delete(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(t.Context(), id); !errors.Is(err, cimd.ErrCacheMiss) {
			t.Errorf("Get after Delete: %v, want a miss", err)
		}
	})
}

func TestCIMDCacheFor(t *testing.T) {
	t.Run("B13 SQLite keeps parsed documents in process", func(t *testing.T) {
		if c := cimdCacheFor(openSQLite(t), nil); c != nil {
			t.Errorf("cimdCacheFor(SQLite) = %T, want nil (the resolver's in-memory cache)", c)
		}
	})
	t.Run("B13 PostgreSQL shares the cache between replicas", func(t *testing.T) {
		db := openPostgres(t)
		if _, ok := cimdCacheFor(db, nil).(*storeCache); !ok {
			t.Errorf("cimdCacheFor(PostgreSQL) is not the shared store cache")
		}
	})
}

// BenchmarkResolveCached is the cost of a cache hit per Resolve: the
// in-process cache keeps the parsed document; the shared cache answers
// from its local copy, and the resolver re-validates the body every time.
func BenchmarkResolveCached(b *testing.B) {
	docs := newDocServer(b)
	roots, err := safehttp.LoadRootCAs(docs.ca)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		cache func() cimd.Cache
	}{
		{"memory", func() cimd.Cache { return nil }},
		{"store", func() cimd.Cache { return newStoreCache(openSQLite(b), nil, nil) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := cimd.NewResolver(cimd.Options{AllowLoopback: true, RootCAs: roots, Cache: bc.cache()})
			if err != nil {
				b.Fatal(err)
			}
			id := docs.client("bench-" + bc.name)
			if _, err := r.Resolve(b.Context(), id); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Resolve(b.Context(), id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
