package storetest

import (
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

func testCodes(t *testing.T, open opener) {
	t.Run("E10 round trip, unused", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		c := newCode("code-1", "u1", clientA, "fam-1")
		must(t, "CreateCode", s.CreateCode(ctx, c))
		got, err := s.GetCode(ctx, "code-1")
		must(t, "GetCode", err)
		if d := diff(c, got); d != "" {
			t.Errorf("GetCode mismatch (-want +got):\n%s", d)
		}
		checkUTC(t, "GetCode", got.AuthTime, got.ExpiresAt)
		check(t, "CreateCode again", s.CreateCode(ctx, c), store.ErrConflict)
	})
	t.Run("unknown code is ErrNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.GetCode(ctx, "no-such-code")
		check(t, "GetCode", err, store.ErrNotFound)
		f := newFamily("fam-1", "u1", clientA)
		check(t, "RedeemCode", s.RedeemCode(ctx, "no-such-code", t0(), f, nil), store.ErrNotFound)
		_, err = s.GetFamily(ctx, "fam-1")
		check(t, "GetFamily after a refused redemption", err, store.ErrNotFound)
	})
	t.Run("F1 redeem marks it used and creates the family and refresh token", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		c := newCode("code-1", "u1", clientA, "fam-1")
		must(t, "CreateCode", s.CreateCode(ctx, c))
		f := newFamily("fam-1", "u1", clientA)
		f.KeyID = "client-key-1"
		rt := newRefresh("rt-1", "fam-1", at(time.Minute))
		must(t, "RedeemCode", s.RedeemCode(ctx, "code-1", at(time.Minute), f, &rt))

		got, err := s.GetCode(ctx, "code-1")
		must(t, "GetCode", err)
		c.UsedAt = at(time.Minute)
		if d := diff(c, got); d != "" {
			t.Errorf("GetCode mismatch (-want +got):\n%s", d)
		}
		gotF, err := s.GetFamily(ctx, "fam-1")
		must(t, "GetFamily", err)
		if d := diff(f, gotF); d != "" {
			t.Errorf("GetFamily mismatch (-want +got):\n%s", d)
		}
		gotRT, gotF, err := s.GetRefreshToken(ctx, "rt-1")
		must(t, "GetRefreshToken", err)
		if d := diff(rt, gotRT); d != "" {
			t.Errorf("GetRefreshToken token mismatch (-want +got):\n%s", d)
		}
		if d := diff(f, gotF); d != "" {
			t.Errorf("GetRefreshToken family mismatch (-want +got):\n%s", d)
		}
		checkUTC(t, "GetRefreshToken", gotRT.CreatedAt, gotRT.ExpiresAt, gotF.CreatedAt, gotF.ExpiresAt)
	})
	t.Run("F8 redeem without a refresh token creates the family only", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateCode", s.CreateCode(ctx, newCode("code-1", "u1", clientA, "fam-1")))
		f := newFamily("fam-1", "u1", clientA)
		must(t, "RedeemCode", s.RedeemCode(ctx, "code-1", at(time.Minute), f, nil))
		got, err := s.GetFamily(ctx, "fam-1")
		must(t, "GetFamily", err)
		if d := diff(f, got); d != "" {
			t.Errorf("GetFamily mismatch (-want +got):\n%s", d)
		}
	})
	t.Run("second redemption is ErrAlreadyUsed and creates nothing", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		f, _ := grant(t, s, "u1", clientA, "fam-1", "rt-1")
		again := newFamily("fam-1", "u1", clientA)
		again.Scopes = "everything"
		rt2 := newRefresh("rt-2", "fam-1", at(2*time.Minute))
		check(t, "RedeemCode again", s.RedeemCode(ctx, "code-fam-1", at(2*time.Minute), again, &rt2), store.ErrAlreadyUsed)
		_, _, err := s.GetRefreshToken(ctx, "rt-2")
		check(t, "GetRefreshToken of the refused redemption", err, store.ErrNotFound)
		got, err := s.GetFamily(ctx, "fam-1")
		must(t, "GetFamily", err)
		if d := diff(f, got); d != "" {
			t.Errorf("family changed by the refused redemption (-want +got):\n%s", d)
		}
		c, err := s.GetCode(ctx, "code-fam-1")
		must(t, "GetCode", err)
		if !sameTime(c.UsedAt, at(time.Minute)) {
			t.Errorf("UsedAt = %v, want the first redemption's %v", c.UsedAt, at(time.Minute))
		}
	})
	t.Run("F2 a replay after expiry is still ErrAlreadyUsed", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		f, _ := grant(t, s, "u1", clientA, "fam-1", "rt-1")
		check(t, "RedeemCode after expiry", s.RedeemCode(ctx, "code-fam-1", at(time.Hour), f, nil), store.ErrAlreadyUsed)
	})
	t.Run("expired code is ErrNotFound and stays unused", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		c := newCode("code-1", "u1", clientA, "fam-1")
		must(t, "CreateCode", s.CreateCode(ctx, c))
		f := newFamily("fam-1", "u1", clientA)
		rt := newRefresh("rt-1", "fam-1", c.ExpiresAt)
		for _, now := range []time.Time{c.ExpiresAt, at(time.Hour)} {
			check(t, "RedeemCode at "+now.String(), s.RedeemCode(ctx, "code-1", now, f, &rt), store.ErrNotFound)
		}
		got, err := s.GetCode(ctx, "code-1")
		must(t, "GetCode", err)
		if !got.UsedAt.IsZero() {
			t.Errorf("UsedAt = %v after refused redemptions, want zero", got.UsedAt)
		}
		_, err = s.GetFamily(ctx, "fam-1")
		check(t, "GetFamily", err, store.ErrNotFound)
		// Just before expiry it is still good.
		must(t, "RedeemCode just before expiry", s.RedeemCode(ctx, "code-1", c.ExpiresAt.Add(-time.Millisecond), f, &rt))
	})
	t.Run("family other than the code's is refused and the code stays unused", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateCode", s.CreateCode(ctx, newCode("code-1", "u1", clientA, "fam-1")))
		f := newFamily("fam-other", "u1", clientA)
		rt := newRefresh("rt-1", "fam-other", t0())
		checkOther(t, "RedeemCode with another family", s.RedeemCode(ctx, "code-1", t0(), f, &rt))
		f = newFamily("fam-1", "u1", clientA)
		checkOther(t, "RedeemCode with a token of another family", s.RedeemCode(ctx, "code-1", t0(), f, &rt))
		got, err := s.GetCode(ctx, "code-1")
		must(t, "GetCode", err)
		if !got.UsedAt.IsZero() {
			t.Errorf("UsedAt = %v after refused redemptions, want zero", got.UsedAt)
		}
		for _, id := range []string{"fam-1", "fam-other"} {
			_, err := s.GetFamily(ctx, id)
			check(t, "GetFamily "+id, err, store.ErrNotFound)
		}
	})
	t.Run("a failing insert undoes the redemption", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		grant(t, s, "u1", clientA, "fam-1", "rt-1")
		// A second code wrongly issued for the same family: the family
		// insert conflicts, and the code must not be consumed.
		must(t, "CreateCode", s.CreateCode(ctx, newCode("code-2", "u1", clientA, "fam-1")))
		rt := newRefresh("rt-2", "fam-1", t0())
		check(t, "RedeemCode", s.RedeemCode(ctx, "code-2", t0(), newFamily("fam-1", "u1", clientA), &rt), store.ErrConflict)
		got, err := s.GetCode(ctx, "code-2")
		must(t, "GetCode", err)
		if !got.UsedAt.IsZero() {
			t.Errorf("UsedAt = %v after a failed redemption, want zero", got.UsedAt)
		}
		_, _, err = s.GetRefreshToken(ctx, "rt-2")
		check(t, "GetRefreshToken", err, store.ErrNotFound)
	})
}

func testRefreshTokens(t *testing.T, open opener) {
	t.Run("F8 rotation marks the old token used and stores the next", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		f, rt1 := grant(t, s, "u1", clientA, "fam-1", "rt-1")
		rt2 := newRefresh("rt-2", "fam-1", at(time.Hour))
		must(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, "rt-1", at(time.Hour), rt2))
		got, gotF, err := s.GetRefreshToken(ctx, "rt-1")
		must(t, "GetRefreshToken old", err)
		rt1.UsedAt = at(time.Hour)
		if d := diff(rt1, got); d != "" {
			t.Errorf("old token mismatch (-want +got):\n%s", d)
		}
		if d := diff(f, gotF); d != "" {
			t.Errorf("family mismatch (-want +got):\n%s", d)
		}
		got, _, err = s.GetRefreshToken(ctx, "rt-2")
		must(t, "GetRefreshToken next", err)
		if d := diff(rt2, got); d != "" {
			t.Errorf("next token mismatch (-want +got):\n%s", d)
		}
		rt3 := newRefresh("rt-3", "fam-1", at(2*time.Hour))
		must(t, "RotateRefreshToken next", s.RotateRefreshToken(ctx, "rt-2", at(2*time.Hour), rt3))
	})
	t.Run("a replayed rotated token is ErrAlreadyUsed and creates nothing", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		grant(t, s, "u1", clientA, "fam-1", "rt-1")
		must(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, "rt-1", at(time.Hour), newRefresh("rt-2", "fam-1", at(time.Hour))))
		check(t, "RotateRefreshToken replayed",
			s.RotateRefreshToken(ctx, "rt-1", at(2*time.Hour), newRefresh("rt-3", "fam-1", at(2*time.Hour))), store.ErrAlreadyUsed)
		_, _, err := s.GetRefreshToken(ctx, "rt-3")
		check(t, "GetRefreshToken of the refused rotation", err, store.ErrNotFound)
		got, _, err := s.GetRefreshToken(ctx, "rt-1")
		must(t, "GetRefreshToken old", err)
		if !sameTime(got.UsedAt, at(time.Hour)) {
			t.Errorf("old UsedAt = %v, want the first rotation's %v", got.UsedAt, at(time.Hour))
		}
		// A used token stays a replay after its expiry.
		check(t, "RotateRefreshToken replayed after expiry",
			s.RotateRefreshToken(ctx, "rt-1", at(60*day), newRefresh("rt-4", "fam-1", at(60*day))), store.ErrAlreadyUsed)
	})
	t.Run("F8 a revoked family refuses rotation with ErrAlreadyUsed", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		grant(t, s, "u1", clientA, "fam-1", "rt-1")
		must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-1", at(time.Hour)))
		check(t, "RotateRefreshToken",
			s.RotateRefreshToken(ctx, "rt-1", at(2*time.Hour), newRefresh("rt-2", "fam-1", at(2*time.Hour))), store.ErrAlreadyUsed)
		got, f, err := s.GetRefreshToken(ctx, "rt-1")
		must(t, "GetRefreshToken", err)
		if !got.UsedAt.IsZero() {
			t.Errorf("UsedAt = %v after a refused rotation, want zero", got.UsedAt)
		}
		if !sameTime(f.RevokedAt, at(time.Hour)) {
			t.Errorf("RevokedAt = %v, want %v", f.RevokedAt, at(time.Hour))
		}
		_, _, err = s.GetRefreshToken(ctx, "rt-2")
		check(t, "GetRefreshToken of the refused rotation", err, store.ErrNotFound)
	})
	t.Run("FamilyRevoked follows RevokeFamily", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		grant(t, s, "u1", clientA, "fam-1", "rt-1")
		revoked, err := s.FamilyRevoked(ctx, "fam-1")
		must(t, "FamilyRevoked", err)
		if revoked {
			t.Errorf("FamilyRevoked = true for a new family")
		}
		must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-1", at(time.Hour)))
		revoked, err = s.FamilyRevoked(ctx, "fam-1")
		must(t, "FamilyRevoked", err)
		if !revoked {
			t.Errorf("FamilyRevoked = false after RevokeFamily")
		}
		_, err = s.FamilyRevoked(ctx, "no-such-family")
		check(t, "FamilyRevoked of an unknown family", err, store.ErrNotFound)
	})
	t.Run("RevokeFamily keeps the first revocation time", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		grant(t, s, "u1", clientA, "fam-1", "rt-1")
		must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-1", at(time.Hour)))
		must(t, "RevokeFamily again", s.RevokeFamily(ctx, "fam-1", at(2*time.Hour)))
		f, err := s.GetFamily(ctx, "fam-1")
		must(t, "GetFamily", err)
		if !sameTime(f.RevokedAt, at(time.Hour)) {
			t.Errorf("RevokedAt = %v, want the first revocation's %v", f.RevokedAt, at(time.Hour))
		}
		checkUTC(t, "GetFamily", f.RevokedAt)
	})
	t.Run("expired token is ErrNotFound and stays unused", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, rt1 := grant(t, s, "u1", clientA, "fam-1", "rt-1")
		check(t, "RotateRefreshToken at ExpiresAt",
			s.RotateRefreshToken(ctx, "rt-1", rt1.ExpiresAt, newRefresh("rt-2", "fam-1", rt1.ExpiresAt)), store.ErrNotFound)
		got, _, err := s.GetRefreshToken(ctx, "rt-1")
		must(t, "GetRefreshToken", err)
		if !got.UsedAt.IsZero() {
			t.Errorf("UsedAt = %v after a refused rotation, want zero", got.UsedAt)
		}
	})
	t.Run("F8 family past its absolute lifetime is ErrNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateCode", s.CreateCode(ctx, newCode("code-1", "u1", clientA, "fam-1")))
		f := newFamily("fam-1", "u1", clientA)
		f.ExpiresAt = at(day)
		rt := newRefresh("rt-1", "fam-1", t0()) // idle lifetime beyond the family's, on purpose
		must(t, "RedeemCode", s.RedeemCode(ctx, "code-1", t0(), f, &rt))
		check(t, "RotateRefreshToken at the family's ExpiresAt",
			s.RotateRefreshToken(ctx, "rt-1", f.ExpiresAt, newRefresh("rt-2", "fam-1", f.ExpiresAt)), store.ErrNotFound)
		must(t, "RotateRefreshToken just before",
			s.RotateRefreshToken(ctx, "rt-1", f.ExpiresAt.Add(-time.Millisecond), newRefresh("rt-2", "fam-1", t0())))
	})
	t.Run("unknown token or family is ErrNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		check(t, "RotateRefreshToken",
			s.RotateRefreshToken(ctx, "no-such-token", t0(), newRefresh("rt-2", "fam-1", t0())), store.ErrNotFound)
		_, _, err := s.GetRefreshToken(ctx, "no-such-token")
		check(t, "GetRefreshToken", err, store.ErrNotFound)
		_, err = s.GetFamily(ctx, "no-such-family")
		check(t, "GetFamily", err, store.ErrNotFound)
		check(t, "RevokeFamily", s.RevokeFamily(ctx, "no-such-family", t0()), store.ErrNotFound)
	})
	t.Run("next token of another family is refused and the old stays unused", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		grant(t, s, "u1", clientA, "fam-1", "rt-1")
		grant(t, s, "u1", clientA, "fam-2", "rt-x")
		checkOther(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, "rt-1", at(time.Hour), newRefresh("rt-2", "fam-2", at(time.Hour))))
		got, _, err := s.GetRefreshToken(ctx, "rt-1")
		must(t, "GetRefreshToken", err)
		if !got.UsedAt.IsZero() {
			t.Errorf("UsedAt = %v after a refused rotation, want zero", got.UsedAt)
		}
	})
	t.Run("a taken next hash is ErrConflict and the old stays unused", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		grant(t, s, "u1", clientA, "fam-1", "rt-1")
		grant(t, s, "u1", clientA, "fam-2", "rt-taken")
		check(t, "RotateRefreshToken",
			s.RotateRefreshToken(ctx, "rt-1", at(time.Hour), newRefresh("rt-taken", "fam-1", at(time.Hour))), store.ErrConflict)
		got, _, err := s.GetRefreshToken(ctx, "rt-1")
		must(t, "GetRefreshToken", err)
		if !got.UsedAt.IsZero() {
			t.Errorf("UsedAt = %v after a failed rotation, want zero", got.UsedAt)
		}
	})
}

func testRevocation(t *testing.T, open opener) {
	consent := func(userID, clientID, resource string) store.Consent {
		return store.Consent{UserID: userID, ClientID: clientID, Resource: resource, Scopes: "files:read", Fingerprint: "sha256:fp", CreatedAt: t0()}
	}
	t.Run("RevokeClient removes one user's grant to one client", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		for _, c := range []store.Consent{
			consent("u1", clientA, resource1), consent("u1", clientA, resource2),
			consent("u1", clientB, resource1), consent("u2", clientA, resource1),
		} {
			must(t, "PutConsent", s.PutConsent(ctx, c))
		}
		grant(t, s, "u1", clientA, "fam-1a", "rt-1a")
		grant(t, s, "u1", clientB, "fam-1b", "rt-1b")
		grant(t, s, "u2", clientA, "fam-2a", "rt-2a")
		must(t, "CreateCode", s.CreateCode(ctx, newCode("pending-1a", "u1", clientA, "fam-p1a")))
		must(t, "CreateCode", s.CreateCode(ctx, newCode("pending-1b", "u1", clientB, "fam-p1b")))

		must(t, "RevokeClient", s.RevokeClient(ctx, "u1", clientA, at(5*time.Minute)))

		got, err := s.ListConsents(ctx, "u1")
		must(t, "ListConsents u1", err)
		if d := diff([]store.Consent{consent("u1", clientB, resource1)}, got); d != "" {
			t.Errorf("ListConsents u1 mismatch (-want +got):\n%s", d)
		}
		got, err = s.ListConsents(ctx, "u2")
		must(t, "ListConsents u2", err)
		if d := diff([]store.Consent{consent("u2", clientA, resource1)}, got); d != "" {
			t.Errorf("ListConsents u2 mismatch (-want +got):\n%s", d)
		}
		for id, want := range map[string]time.Time{"fam-1a": at(5 * time.Minute), "fam-1b": {}, "fam-2a": {}} {
			f, err := s.GetFamily(ctx, id)
			must(t, "GetFamily "+id, err)
			if !sameTime(f.RevokedAt, want) {
				t.Errorf("family %s RevokedAt = %v, want %v", id, f.RevokedAt, want)
			}
		}
		check(t, "RotateRefreshToken of the revoked client",
			s.RotateRefreshToken(ctx, "rt-1a", at(time.Hour), newRefresh("rt-1a2", "fam-1a", at(time.Hour))), store.ErrAlreadyUsed)
		must(t, "RotateRefreshToken of the other client",
			s.RotateRefreshToken(ctx, "rt-1b", at(time.Hour), newRefresh("rt-1b2", "fam-1b", at(time.Hour))))
		must(t, "RotateRefreshToken of the other user",
			s.RotateRefreshToken(ctx, "rt-2a", at(time.Hour), newRefresh("rt-2a2", "fam-2a", at(time.Hour))))
		_, err = s.GetCode(ctx, "pending-1a")
		check(t, "GetCode of the revoked client's pending code", err, store.ErrNotFound)
		check(t, "RedeemCode of the revoked client's pending code",
			s.RedeemCode(ctx, "pending-1a", at(6*time.Minute), newFamily("fam-p1a", "u1", clientA), nil), store.ErrNotFound)
		_, err = s.GetCode(ctx, "pending-1b")
		must(t, "GetCode of the other client's pending code", err)
	})
	t.Run("RevokeClient keeps an earlier revocation time", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		grant(t, s, "u1", clientA, "fam-1", "rt-1")
		must(t, "RevokeFamily", s.RevokeFamily(ctx, "fam-1", at(2*time.Minute)))
		must(t, "RevokeClient", s.RevokeClient(ctx, "u1", clientA, at(5*time.Minute)))
		f, err := s.GetFamily(ctx, "fam-1")
		must(t, "GetFamily", err)
		if !sameTime(f.RevokedAt, at(2*time.Minute)) {
			t.Errorf("RevokedAt = %v, want the first revocation's %v", f.RevokedAt, at(2*time.Minute))
		}
	})
	t.Run("RevokeClient with nothing to revoke is not an error", func(t *testing.T) {
		s := open(t)
		must(t, "RevokeClient", s.RevokeClient(t.Context(), "u1", clientA, t0()))
	})
	t.Run("DeleteUser deletes sessions, consents and codes and revokes families", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		for _, u := range []store.User{newUser("u1", "alice"), newUser("u2", "bob")} {
			must(t, "CreateUser", s.CreateUser(ctx, u))
			must(t, "CreateSession", s.CreateSession(ctx, store.Session{IDHash: "sess-" + u.ID, UserID: u.ID, CreatedAt: t0(), ExpiresAt: at(day)}))
			must(t, "PutConsent", s.PutConsent(ctx, consent(u.ID, clientA, resource1)))
			grant(t, s, u.ID, clientA, "fam-"+u.ID, "rt-"+u.ID)
			must(t, "CreateCode", s.CreateCode(ctx, newCode("pending-"+u.ID, u.ID, clientA, "fam-p-"+u.ID)))
		}

		must(t, "DeleteUser", s.DeleteUser(ctx, "alice"))

		_, err := s.GetUserByName(ctx, "alice")
		check(t, "GetUserByName alice", err, store.ErrNotFound)
		_, err = s.GetUser(ctx, "u1")
		check(t, "GetUser u1", err, store.ErrNotFound)
		_, err = s.GetSession(ctx, "sess-u1", t0())
		check(t, "GetSession of alice", err, store.ErrNotFound)
		_, err = s.GetConsent(ctx, "u1", clientA, resource1)
		check(t, "GetConsent of alice", err, store.ErrNotFound)
		f, err := s.GetFamily(ctx, "fam-u1")
		must(t, "GetFamily of alice", err)
		if f.RevokedAt.IsZero() {
			t.Errorf("alice's family is not revoked")
		}
		check(t, "RotateRefreshToken of alice",
			s.RotateRefreshToken(ctx, "rt-u1", at(time.Hour), newRefresh("rt-u1-2", "fam-u1", at(time.Hour))), store.ErrAlreadyUsed)
		check(t, "RedeemCode of alice's pending code",
			s.RedeemCode(ctx, "pending-u1", at(2*time.Minute), newFamily("fam-p-u1", "u1", clientA), nil), store.ErrNotFound)

		_, err = s.GetUserByName(ctx, "bob")
		must(t, "GetUserByName bob", err)
		_, err = s.GetSession(ctx, "sess-u2", t0())
		must(t, "GetSession of bob", err)
		_, err = s.GetConsent(ctx, "u2", clientA, resource1)
		must(t, "GetConsent of bob", err)
		must(t, "RotateRefreshToken of bob",
			s.RotateRefreshToken(ctx, "rt-u2", at(time.Hour), newRefresh("rt-u2-2", "fam-u2", at(time.Hour))))
		must(t, "RedeemCode of bob's pending code",
			s.RedeemCode(ctx, "pending-u2", at(2*time.Minute), newFamily("fam-p-u2", "u2", clientA), nil))
	})
}
