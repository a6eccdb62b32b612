package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// newCIMDEntry is a document fetched at t0, fresh for an hour and servable
// stale for another hour.
func newCIMDEntry(clientID string) store.CIMDEntry {
	return store.CIMDEntry{
		ClientID:     clientID,
		Body:         []byte(`{"client_id":"` + clientID + `","redirect_uris":["http://127.0.0.1/cb"]}`),
		ETag:         `"v1"`,
		LastModified: "Sun, 01 Mar 2026 11:00:00 GMT",
		CacheControl: "max-age=3600, stale-if-error=3600",
		Expires:      "Sun, 01 Mar 2026 13:00:00 GMT",
		FetchedAt:    t0(),
		FreshUntil:   at(time.Hour),
		StaleUntil:   at(2 * time.Hour),
		Fingerprint:  "sha256:doc-" + clientID,
	}
}

func testCIMDCache(t *testing.T, open opener) {
	t.Run("B13 round trip of every field", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.GetCIMDEntry(ctx, clientA)
		check(t, "GetCIMDEntry on an empty store", err, store.ErrNotFound)
		e := newCIMDEntry(clientA)
		must(t, "PutCIMDEntry", s.PutCIMDEntry(ctx, e))
		got, err := s.GetCIMDEntry(ctx, clientA)
		must(t, "GetCIMDEntry", err)
		if d := diff(e, got); d != "" {
			t.Errorf("GetCIMDEntry mismatch (-want +got):\n%s", d)
		}
		checkUTC(t, "GetCIMDEntry", got.FetchedAt, got.FreshUntil, got.StaleUntil)
		_, err = s.GetCIMDEntry(ctx, clientB)
		check(t, "GetCIMDEntry of another client", err, store.ErrNotFound)
	})
	t.Run("B13 empty fields and zero times round trip", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		e := store.CIMDEntry{ClientID: clientA}
		must(t, "PutCIMDEntry", s.PutCIMDEntry(ctx, e))
		got, err := s.GetCIMDEntry(ctx, clientA)
		must(t, "GetCIMDEntry", err)
		if d := diff(e, got); d != "" {
			t.Errorf("GetCIMDEntry mismatch (-want +got):\n%s", d)
		}
		if !got.FetchedAt.IsZero() || !got.FreshUntil.IsZero() || !got.StaleUntil.IsZero() {
			t.Errorf("zero times came back as %v, %v, %v", got.FetchedAt, got.FreshUntil, got.StaleUntil)
		}
	})
	t.Run("B13 put replaces, delete removes, deleting twice is fine", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "PutCIMDEntry", s.PutCIMDEntry(ctx, newCIMDEntry(clientA)))
		must(t, "PutCIMDEntry other", s.PutCIMDEntry(ctx, newCIMDEntry(clientB)))
		next := newCIMDEntry(clientA)
		next.Body, next.ETag, next.Fingerprint = []byte(`{"changed":true}`), `"v2"`, "sha256:v2"
		next.FetchedAt, next.FreshUntil, next.StaleUntil = at(time.Hour), at(2*time.Hour), at(3*time.Hour)
		next.LastModified, next.CacheControl, next.Expires = "", "no-cache", ""
		must(t, "PutCIMDEntry again", s.PutCIMDEntry(ctx, next))
		got, err := s.GetCIMDEntry(ctx, clientA)
		must(t, "GetCIMDEntry", err)
		if d := diff(next, got); d != "" {
			t.Errorf("GetCIMDEntry after replace mismatch (-want +got):\n%s", d)
		}
		must(t, "DeleteCIMDEntry", s.DeleteCIMDEntry(ctx, clientA))
		_, err = s.GetCIMDEntry(ctx, clientA)
		check(t, "GetCIMDEntry after delete", err, store.ErrNotFound)
		must(t, "DeleteCIMDEntry missing", s.DeleteCIMDEntry(ctx, clientA))
		if _, err := s.GetCIMDEntry(ctx, clientB); err != nil {
			t.Errorf("deleting one client's entry removed another's: %v", err)
		}
	})
	t.Run("B13 entries are collected once past StaleUntil, not before", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		e := newCIMDEntry(clientA)
		must(t, "PutCIMDEntry", s.PutCIMDEntry(ctx, e))
		n, err := s.DeleteExpired(ctx, e.StaleUntil.Add(-time.Millisecond))
		must(t, "DeleteExpired before StaleUntil", err)
		if n != 0 {
			t.Errorf("DeleteExpired before StaleUntil = %d, want 0", n)
		}
		if _, err := s.GetCIMDEntry(ctx, clientA); err != nil {
			t.Fatalf("a stale entry inside its stale-if-error window was collected: %v", err)
		}
		n, err = s.DeleteExpired(ctx, e.StaleUntil)
		must(t, "DeleteExpired at StaleUntil", err)
		if n != 1 {
			t.Errorf("DeleteExpired at StaleUntil = %d, want 1", n)
		}
		_, err = s.GetCIMDEntry(ctx, clientA)
		check(t, "GetCIMDEntry after collection", err, store.ErrNotFound)
	})
	t.Run("B13 one fetch lease holder at a time, renewable by its holder", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		lease := func(holder string, now, until time.Time, wantHolder string, wantEnd time.Time) {
			t.Helper()
			got, end, err := s.LeaseCIMDFetch(ctx, clientA, holder, now, until)
			must(t, "LeaseCIMDFetch "+holder, err)
			if got != wantHolder || !sameTime(end, wantEnd) {
				t.Errorf("LeaseCIMDFetch(%s, now %v, until %v) = %q until %v, want %q until %v",
					holder, now.Sub(t0()), until.Sub(t0()), got, end.Sub(t0()), wantHolder, wantEnd.Sub(t0()))
			}
			checkUTC(t, "LeaseCIMDFetch", end)
		}
		lease("replica-a", t0(), at(6*time.Second), "replica-a", at(6*time.Second))
		lease("replica-b", at(time.Second), at(7*time.Second), "replica-a", at(6*time.Second))
		lease("replica-a", at(2*time.Second), at(8*time.Second), "replica-a", at(8*time.Second))
		lease("replica-b", at(8*time.Second-time.Millisecond), at(9*time.Second), "replica-a", at(8*time.Second))
		lease("replica-b", at(8*time.Second), at(14*time.Second), "replica-b", at(14*time.Second))
		got, _, err := s.LeaseCIMDFetch(ctx, clientB, "replica-a", at(8*time.Second), at(14*time.Second))
		must(t, "LeaseCIMDFetch other client", err)
		if got != "replica-a" {
			t.Errorf("a lease on one client blocked another client's: holder %q", got)
		}
	})
	t.Run("B13 put and delete end the fetch lease", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		for _, end := range []struct {
			name string
			do   func() error
		}{
			{"PutCIMDEntry", func() error { return s.PutCIMDEntry(ctx, newCIMDEntry(clientA)) }},
			{"DeleteCIMDEntry", func() error { return s.DeleteCIMDEntry(ctx, clientA) }},
		} {
			_, _, err := s.LeaseCIMDFetch(ctx, clientA, "replica-a", t0(), at(time.Minute))
			must(t, "LeaseCIMDFetch", err)
			must(t, end.name, end.do())
			got, _, err := s.LeaseCIMDFetch(ctx, clientA, "replica-b", at(time.Second), at(time.Minute))
			must(t, "LeaseCIMDFetch after "+end.name, err)
			if got != "replica-b" {
				t.Errorf("after %s the lease is still held by %q, want it ended", end.name, got)
			}
			must(t, "DeleteCIMDEntry", s.DeleteCIMDEntry(ctx, clientA))
		}
	})
	t.Run("B13 ended fetch leases are collected", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, _, err := s.LeaseCIMDFetch(ctx, clientA, "replica-a", t0(), at(time.Minute))
		must(t, "LeaseCIMDFetch", err)
		n, err := s.DeleteExpired(ctx, at(time.Minute-time.Millisecond))
		must(t, "DeleteExpired before the end", err)
		if n != 0 {
			t.Errorf("DeleteExpired before the lease ends = %d, want 0", n)
		}
		n, err = s.DeleteExpired(ctx, at(time.Minute))
		must(t, "DeleteExpired at the end", err)
		if n != 1 {
			t.Errorf("DeleteExpired at the lease's end = %d, want 1", n)
		}
	})
	t.Run("B13 of racing holders exactly one gets the lease", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const n = 8
		holders := make([]string, n)
		errs := race(n, func(i int) error {
			var err error
			holders[i], _, err = s.LeaseCIMDFetch(ctx, clientA, fmt.Sprintf("replica-%d", i), t0(), at(time.Minute))
			return err
		})
		if c := count(errs, nil); c != n {
			t.Fatalf("%d of %d LeaseCIMDFetch calls failed: %v", n-c, n, errs)
		}
		winners := map[string]bool{}
		for i, h := range holders {
			winners[h] = true
			if h == "" {
				t.Errorf("caller %d saw no lease in force", i)
			}
		}
		if len(winners) != 1 {
			t.Errorf("racing callers saw holders %v, want one", winners)
		}
	})
}
