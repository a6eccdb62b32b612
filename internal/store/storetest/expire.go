package storetest

import (
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

func testDeleteExpired(t *testing.T, open opener) {
	t.Run("I5 F8 collects exactly what expired and counts it", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		now := at(time.Hour)
		var want int64 // rows DeleteExpired(now) must delete

		// A family past its lifetime goes, and so do its tokens, whose
		// idle lifetime is capped by the family's, used or not, and its
		// code (codes live 10 minutes).
		must(t, "CreateCode", s.CreateCode(ctx, newCode("code-old", "u1", clientA, "fam-old")))
		fOld := newFamily("fam-old", "u1", clientA)
		fOld.ExpiresAt = now.Add(-time.Minute)
		rtOld1 := store.RefreshToken{Hash: "rt-old-1", FamilyID: "fam-old", CreatedAt: at(time.Minute), ExpiresAt: fOld.ExpiresAt}
		rtOld2 := store.RefreshToken{Hash: "rt-old-2", FamilyID: "fam-old", CreatedAt: at(2 * time.Minute), ExpiresAt: fOld.ExpiresAt}
		must(t, "RedeemCode", s.RedeemCode(ctx, "code-old", at(time.Minute), fOld, &rtOld1))
		must(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, "rt-old-1", at(2*time.Minute), rtOld2))
		want += 4

		// A live family keeps its live token and loses the one whose idle
		// lifetime ended.
		must(t, "CreateCode", s.CreateCode(ctx, newCode("code-live-fam", "u1", clientA, "fam-live")))
		rtLive1 := store.RefreshToken{Hash: "rt-live-1", FamilyID: "fam-live", CreatedAt: t0(), ExpiresAt: now}
		must(t, "RedeemCode", s.RedeemCode(ctx, "code-live-fam", at(time.Minute), newFamily("fam-live", "u1", clientA), &rtLive1))
		must(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, "rt-live-1", at(2*time.Minute), newRefresh("rt-live-2", "fam-live", at(2*time.Minute))))
		want += 2

		// A revoked family stays until its lifetime ends.
		grant(t, s, "u1", clientB, "fam-revoked", "rt-revoked")
		must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-revoked", at(3*time.Minute)))
		want++

		edge := newCode("code-edge", "u1", clientA, "fam-edge")
		edge.ExpiresAt = now
		live := newCode("code-live", "u1", clientA, "fam-code-live")
		live.ExpiresAt = now.Add(time.Millisecond)
		must(t, "CreateCode", s.CreateCode(ctx, edge))
		must(t, "CreateCode", s.CreateCode(ctx, live))
		want++

		must(t, "CreateSession", s.CreateSession(ctx, store.Session{IDHash: "s-exp", UserID: "u1", CreatedAt: t0(), ExpiresAt: now}))
		must(t, "CreateSession", s.CreateSession(ctx, store.Session{IDHash: "s-live", UserID: "u1", CreatedAt: t0(), ExpiresAt: now.Add(time.Millisecond)}))
		want++

		must(t, "PutAuthRequest", s.PutAuthRequest(ctx, store.AuthRequest{ID: "a-exp", Data: []byte("{}"), ExpiresAt: now.Add(-time.Second)}))
		must(t, "PutAuthRequest", s.PutAuthRequest(ctx, store.AuthRequest{ID: "a-live", Data: []byte("{}"), ExpiresAt: now.Add(time.Hour)}))
		want++

		must(t, "RecordJTI", s.RecordJTI(ctx, clientA, "j-exp", now))
		must(t, "RecordJTI", s.RecordJTI(ctx, clientA, "j-live", now.Add(time.Minute)))
		want++

		_, err := s.RateHit(ctx, "login:alice", time.Minute, now.Add(-time.Minute)) // a window that has ended
		must(t, "RateHit", err)
		_, err = s.RateHit(ctx, "login:alice", time.Minute, now) // the current window
		must(t, "RateHit", err)
		want++

		dcr := func(id string, expires time.Time) store.DCRClient {
			return store.DCRClient{ClientID: id, Metadata: []byte("{}"), MetadataHash: "m", SourceIP: "192.0.2.1", CreatedAt: t0(), ExpiresAt: expires}
		}
		must(t, "CreateDCRClient", s.CreateDCRClient(ctx, dcr("d-exp", now)))
		must(t, "CreateDCRClient", s.CreateDCRClient(ctx, dcr("d-used", now.Add(-time.Minute))))
		must(t, "TouchDCRClient", s.TouchDCRClient(ctx, "d-used", at(time.Minute)))
		must(t, "CreateDCRClient", s.CreateDCRClient(ctx, dcr("d-live", now.Add(time.Hour))))
		want++

		// Never collected: signing keys (even past ExpireAt), users,
		// consents, blocks and clients seen.
		must(t, "CreateSigningKey", s.CreateSigningKey(ctx, store.SigningKey{
			ID: "k-old", Algorithm: "ES256", PrivateKey: []byte("der"), CreatedAt: t0(), ActiveAt: t0(), RetireAt: at(time.Minute), ExpireAt: at(2 * time.Minute),
		}))
		must(t, "CreateUser", s.CreateUser(ctx, newUser("u1", "alice")))
		must(t, "PutConsent", s.PutConsent(ctx, store.Consent{UserID: "u1", ClientID: clientA, Resource: resource1, CreatedAt: t0()}))
		must(t, "PutBlock", s.PutBlock(ctx, store.Block{Pattern: "evil.example", CreatedAt: t0()}))
		must(t, "RecordClientSeen", s.RecordClientSeen(ctx, store.ClientSeen{ClientID: clientA, FirstSeen: t0(), LastSeen: t0()}))

		n, err := s.DeleteExpired(ctx, now)
		must(t, "DeleteExpired", err)
		if n != want {
			t.Errorf("DeleteExpired = %d, want %d", n, want)
		}
		n, err = s.DeleteExpired(ctx, now)
		must(t, "DeleteExpired again", err)
		if n != 0 {
			t.Errorf("DeleteExpired again = %d, want 0", n)
		}

		// Gone.
		for _, h := range []string{"code-old", "code-live-fam", "code-fam-revoked", "code-edge"} {
			_, err := s.GetCode(ctx, h)
			check(t, "GetCode "+h, err, store.ErrNotFound)
		}
		_, err = s.GetFamily(ctx, "fam-old")
		check(t, "GetFamily fam-old", err, store.ErrNotFound)
		for _, h := range []string{"rt-old-1", "rt-old-2", "rt-live-1"} {
			_, _, err := s.GetRefreshToken(ctx, h)
			check(t, "GetRefreshToken "+h, err, store.ErrNotFound)
		}
		_, err = s.GetSession(ctx, "s-exp", t0())
		check(t, "GetSession s-exp", err, store.ErrNotFound)
		_, err = s.GetAuthRequest(ctx, "a-exp", t0())
		check(t, "GetAuthRequest a-exp", err, store.ErrNotFound)
		must(t, "RecordJTI of the collected jti", s.RecordJTI(ctx, clientA, "j-exp", now.Add(time.Hour)))
		_, err = s.GetDCRClient(ctx, "d-exp")
		check(t, "GetDCRClient d-exp", err, store.ErrNotFound)

		// Kept.
		_, err = s.GetCode(ctx, "code-live")
		must(t, "GetCode code-live", err)
		for _, id := range []string{"fam-live", "fam-revoked"} {
			_, err := s.GetFamily(ctx, id)
			must(t, "GetFamily "+id, err)
		}
		for _, h := range []string{"rt-live-2", "rt-revoked"} {
			_, _, err := s.GetRefreshToken(ctx, h)
			must(t, "GetRefreshToken "+h, err)
		}
		_, err = s.GetSession(ctx, "s-live", t0())
		must(t, "GetSession s-live", err)
		_, err = s.GetAuthRequest(ctx, "a-live", t0())
		must(t, "GetAuthRequest a-live", err)
		check(t, "RecordJTI of the kept jti", s.RecordJTI(ctx, clientA, "j-live", now.Add(time.Hour)), store.ErrConflict)
		if got, err := s.RateHit(ctx, "login:alice", time.Minute, now); err != nil || got != 2 {
			t.Errorf("RateHit in the kept window = %d, %v; want 2", got, err)
		}
		for _, id := range []string{"d-used", "d-live"} {
			_, err := s.GetDCRClient(ctx, id)
			must(t, "GetDCRClient "+id, err)
		}
		keys, err := s.ListSigningKeys(ctx)
		must(t, "ListSigningKeys", err)
		blocks, err := s.ListBlocks(ctx)
		must(t, "ListBlocks", err)
		clients, err := s.ListClientsSeen(ctx)
		must(t, "ListClientsSeen", err)
		if len(keys) != 1 || len(blocks) != 1 || len(clients) != 1 {
			t.Errorf("kept %d signing keys, %d blocks, %d clients seen; want 1 each", len(keys), len(blocks), len(clients))
		}
		_, err = s.GetUser(ctx, "u1")
		must(t, "GetUser", err)
		_, err = s.GetConsent(ctx, "u1", clientA, resource1)
		must(t, "GetConsent", err)
	})
}
