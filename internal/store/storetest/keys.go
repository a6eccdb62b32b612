package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

func testSigningKeys(t *testing.T, open opener) {
	key := func(id string, active time.Time) store.SigningKey {
		return store.SigningKey{
			ID:         id,
			Algorithm:  "ES256",
			PrivateKey: []byte("pkcs8-der-" + id),
			CreatedAt:  t0(),
			ActiveAt:   active,
		}
	}
	t.Run("F10 round trip ordered by ActiveAt, then ID", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		got, err := s.ListSigningKeys(ctx)
		must(t, "ListSigningKeys on an empty store", err)
		if len(got) != 0 {
			t.Fatalf("ListSigningKeys on an empty store = %v, want none", got)
		}
		next, current, twin := key("k-next", at(day)), key("k-current", t0()), key("k-a", at(day))
		current.RetireAt, current.ExpireAt = at(day), at(2*day)
		for _, k := range []store.SigningKey{next, current, twin} {
			must(t, "CreateSigningKey", s.CreateSigningKey(ctx, k))
		}
		got, err = s.ListSigningKeys(ctx)
		must(t, "ListSigningKeys", err)
		if d := diff([]store.SigningKey{current, twin, next}, got); d != "" {
			t.Errorf("ListSigningKeys mismatch (-want +got):\n%s", d)
		}
		if len(got) > 0 {
			checkUTC(t, "ListSigningKeys", got[0].CreatedAt, got[0].ActiveAt, got[0].RetireAt, got[0].ExpireAt)
		}
		check(t, "CreateSigningKey again", s.CreateSigningKey(ctx, current), store.ErrConflict)
	})
	t.Run("F10 update changes the schedule only", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		k := key("k-1", t0())
		must(t, "CreateSigningKey", s.CreateSigningKey(ctx, k))
		u := k
		u.Algorithm, u.PrivateKey, u.CreatedAt = "RS256", []byte("other key"), at(time.Hour)
		u.ActiveAt, u.RetireAt, u.ExpireAt = at(time.Minute), at(day), at(2*day)
		must(t, "UpdateSigningKey", s.UpdateSigningKey(ctx, u))
		got, err := s.ListSigningKeys(ctx)
		must(t, "ListSigningKeys", err)
		want := k
		want.ActiveAt, want.RetireAt, want.ExpireAt = u.ActiveAt, u.RetireAt, u.ExpireAt
		if d := diff([]store.SigningKey{want}, got); d != "" {
			t.Errorf("ListSigningKeys mismatch (-want +got):\n%s", d)
		}
		check(t, "UpdateSigningKey unknown", s.UpdateSigningKey(ctx, key("k-unknown", t0())), store.ErrNotFound)
	})
	t.Run("replace key material: all keys or none", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		r, ok := s.(interface {
			ReplaceSigningKeyMaterial(ctx context.Context, changes []store.KeyMaterial) error
		})
		if !ok {
			t.Fatalf("%T has no ReplaceSigningKeyMaterial", s)
		}
		a, b := key("k-a", t0()), key("k-b", at(day))
		for _, k := range []store.SigningKey{a, b} {
			must(t, "CreateSigningKey", s.CreateSigningKey(ctx, k))
		}
		change := func(k store.SigningKey, old string) store.KeyMaterial {
			return store.KeyMaterial{ID: k.ID, Old: []byte(old), New: []byte("wrapped-" + k.ID)}
		}
		for _, tc := range []struct {
			name    string
			changes []store.KeyMaterial
		}{
			{"one key left out", []store.KeyMaterial{change(a, string(a.PrivateKey))}},
			{"one key changed since read", []store.KeyMaterial{change(a, string(a.PrivateKey)), change(b, "stale")}},
		} {
			check(t, tc.name, r.ReplaceSigningKeyMaterial(ctx, tc.changes), store.ErrConflict)
			got, err := s.ListSigningKeys(ctx)
			must(t, "ListSigningKeys", err)
			if d := diff([]store.SigningKey{a, b}, got); d != "" {
				t.Errorf("%s: a refused replacement changed keys (-want +got):\n%s", tc.name, d)
			}
		}
		must(t, "ReplaceSigningKeyMaterial", r.ReplaceSigningKeyMaterial(ctx,
			[]store.KeyMaterial{change(a, string(a.PrivateKey)), change(b, string(b.PrivateKey))}))
		got, err := s.ListSigningKeys(ctx)
		must(t, "ListSigningKeys", err)
		a.PrivateKey, b.PrivateKey = []byte("wrapped-k-a"), []byte("wrapped-k-b")
		if d := diff([]store.SigningKey{a, b}, got); d != "" {
			t.Errorf("ListSigningKeys after replacement (-want +got):\n%s", d)
		}
	})
}

func testJTI(t *testing.T, open opener) {
	t.Run("F6 a replayed jti is ErrConflict, per client", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "RecordJTI", s.RecordJTI(ctx, clientA, "jti-1", at(5*time.Minute)))
		check(t, "RecordJTI replayed", s.RecordJTI(ctx, clientA, "jti-1", at(5*time.Minute)), store.ErrConflict)
		must(t, "RecordJTI same jti, other client", s.RecordJTI(ctx, clientB, "jti-1", at(5*time.Minute)))
		must(t, "RecordJTI other jti", s.RecordJTI(ctx, clientA, "jti-2", at(5*time.Minute)))
	})
	t.Run("a jti stays refused until collected after expiry", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "RecordJTI", s.RecordJTI(ctx, clientA, "jti-1", at(5*time.Minute)))
		_, err := s.DeleteExpired(ctx, at(5*time.Minute-time.Millisecond))
		must(t, "DeleteExpired before expiry", err)
		check(t, "RecordJTI before expiry", s.RecordJTI(ctx, clientA, "jti-1", at(10*time.Minute)), store.ErrConflict)
		n, err := s.DeleteExpired(ctx, at(5*time.Minute))
		must(t, "DeleteExpired at expiry", err)
		if n != 1 {
			t.Errorf("DeleteExpired = %d, want 1", n)
		}
		must(t, "RecordJTI after collection", s.RecordJTI(ctx, clientA, "jti-1", at(10*time.Minute)))
	})
}
