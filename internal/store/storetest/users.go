package storetest

import (
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

func testUsers(t *testing.T, open opener) {
	t.Run("round trip, times in UTC", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		u := newUser("u1", "alice")
		u.CreatedAt = t0().In(time.FixedZone("UTC+5", 5*3600))
		must(t, "CreateUser", s.CreateUser(ctx, u))
		got, err := s.GetUser(ctx, "u1")
		must(t, "GetUser", err)
		if d := diff(u, got); d != "" {
			t.Errorf("GetUser mismatch (-want +got):\n%s", d)
		}
		checkUTC(t, "GetUser", got.CreatedAt)
		got, err = s.GetUserByName(ctx, "alice")
		must(t, "GetUserByName", err)
		if d := diff(u, got); d != "" {
			t.Errorf("GetUserByName mismatch (-want +got):\n%s", d)
		}
	})
	t.Run("taken name is ErrConflict", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateUser", s.CreateUser(ctx, newUser("u1", "alice")))
		check(t, "CreateUser same name", s.CreateUser(ctx, newUser("u2", "alice")), store.ErrConflict)
		_, err := s.GetUser(ctx, "u2")
		check(t, "GetUser of the refused user", err, store.ErrNotFound)
	})
	t.Run("taken ID is ErrConflict", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateUser", s.CreateUser(ctx, newUser("u1", "alice")))
		check(t, "CreateUser same ID", s.CreateUser(ctx, newUser("u1", "bob")), store.ErrConflict)
	})
	t.Run("names are case-sensitive", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateUser alice", s.CreateUser(ctx, newUser("u1", "alice")))
		must(t, "CreateUser Alice", s.CreateUser(ctx, newUser("u2", "Alice")))
		got, err := s.GetUserByName(ctx, "Alice")
		must(t, "GetUserByName Alice", err)
		if got.ID != "u2" {
			t.Errorf("GetUserByName(Alice).ID = %q, want u2", got.ID)
		}
		_, err = s.GetUserByName(ctx, "ALICE")
		check(t, "GetUserByName ALICE", err, store.ErrNotFound)
	})
	t.Run("unknown user is ErrNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.GetUser(ctx, "nobody")
		check(t, "GetUser", err, store.ErrNotFound)
		_, err = s.GetUserByName(ctx, "nobody")
		check(t, "GetUserByName", err, store.ErrNotFound)
		check(t, "DeleteUser", s.DeleteUser(ctx, "nobody"), store.ErrNotFound)
	})
	t.Run("list ordered by name, byte by byte", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		got, err := s.ListUsers(ctx)
		must(t, "ListUsers on an empty store", err)
		if len(got) != 0 {
			t.Fatalf("ListUsers on an empty store = %v, want none", got)
		}
		for _, u := range []store.User{newUser("u3", "carol"), newUser("u1", "alice"), newUser("u4", "Zed"), newUser("u2", "bob")} {
			must(t, "CreateUser", s.CreateUser(ctx, u))
		}
		// Byte order: "Zed" sorts before "alice".
		want := []store.User{newUser("u4", "Zed"), newUser("u1", "alice"), newUser("u2", "bob"), newUser("u3", "carol")}
		got, err = s.ListUsers(ctx)
		must(t, "ListUsers", err)
		if d := diff(want, got); d != "" {
			t.Errorf("ListUsers mismatch (-want +got):\n%s", d)
		}
	})
	t.Run("deleting a user frees the name", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateUser", s.CreateUser(ctx, newUser("u1", "alice")))
		must(t, "DeleteUser", s.DeleteUser(ctx, "alice"))
		_, err := s.GetUserByName(ctx, "alice")
		check(t, "GetUserByName after delete", err, store.ErrNotFound)
		check(t, "DeleteUser again", s.DeleteUser(ctx, "alice"), store.ErrNotFound)
		must(t, "CreateUser with the freed name", s.CreateUser(ctx, newUser("u2", "alice")))
	})
}

func testRateHit(t *testing.T, open opener) {
	t.Run("fixed windows aligned to the epoch", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		base := time.Unix(1_800_000_000, 0).UTC() // a whole hour
		hits := []struct {
			key    string
			window time.Duration
			at     time.Time
			want   int
		}{
			{"login:alice", time.Minute, base, 1},
			{"login:alice", time.Minute, base.Add(30 * time.Second), 2},
			{"login:alice", time.Minute, base.Add(time.Minute - time.Millisecond), 3},
			{"login:bob", time.Minute, base.Add(time.Second), 1},                 // another key
			{"login:alice", time.Hour, base.Add(2 * time.Second), 1},             // another window length
			{"login:alice", time.Minute, base.Add(time.Minute), 1},               // the next window starts at the boundary
			{"login:alice", time.Minute, base.Add(time.Minute + time.Second), 2}, // and counts on
			{"login:alice", time.Minute, base.Add(10 * time.Second), 4},          // a late event counts in its own window
			{"login:alice", time.Hour, base.Add(59 * time.Minute), 2},
		}
		for i, h := range hits {
			got, err := s.RateHit(ctx, h.key, h.window, h.at)
			must(t, "RateHit", err)
			if got != h.want {
				t.Errorf("hit %d: RateHit(%q, %v, %v) = %d, want %d", i, h.key, h.window, h.at, got, h.want)
			}
		}
	})
	t.Run("RateUndo takes back one event in its window, never below zero", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		base := time.Unix(1_800_000_000, 0).UTC()
		must(t, "RateUndo of nothing", s.RateUndo(ctx, "login:alice", time.Minute, base))
		steps := []struct {
			undo bool
			at   time.Time
			want int // RateHit's count; unused for an undo
		}{
			{false, base, 1},
			{false, base.Add(time.Second), 2},
			{true, base.Add(2 * time.Second), 0},
			{false, base.Add(3 * time.Second), 2}, // 2 - 1 + 1
			{true, base.Add(time.Minute), 0},      // the next window: nothing to take back there
			{false, base.Add(4 * time.Second), 3}, // the first window kept its count
			{true, base.Add(5 * time.Second), 0},
			{true, base.Add(5 * time.Second), 0},
			{true, base.Add(5 * time.Second), 0},
			{true, base.Add(5 * time.Second), 0}, // below zero: stays at zero
			{false, base.Add(6 * time.Second), 1},
			{false, base.Add(time.Minute + time.Second), 1},
		}
		for i, st := range steps {
			if st.undo {
				must(t, "RateUndo", s.RateUndo(ctx, "login:alice", time.Minute, st.at))
				continue
			}
			got, err := s.RateHit(ctx, "login:alice", time.Minute, st.at)
			must(t, "RateHit", err)
			if got != st.want {
				t.Errorf("step %d: RateHit at %v = %d, want %d", i, st.at, got, st.want)
			}
		}
	})
	t.Run("window shorter than a microsecond is refused", func(t *testing.T) {
		s := open(t)
		_, err := s.RateHit(t.Context(), "login:alice", 0, t0())
		checkOther(t, "RateHit with window 0", err)
		checkOther(t, "RateUndo with window 0", s.RateUndo(t.Context(), "login:alice", 0, t0()))
	})
}

func testSessions(t *testing.T, open opener) {
	sess := store.Session{IDHash: "sess-hash-1", UserID: "u1", CreatedAt: t0(), ExpiresAt: at(time.Hour)}
	t.Run("round trip until expiry", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateSession", s.CreateSession(ctx, sess))
		for _, now := range []time.Time{t0(), at(time.Hour - time.Millisecond)} {
			got, err := s.GetSession(ctx, sess.IDHash, now)
			must(t, "GetSession", err)
			if d := diff(sess, got); d != "" {
				t.Errorf("GetSession at %v mismatch (-want +got):\n%s", now, d)
			}
			checkUTC(t, "GetSession", got.CreatedAt, got.ExpiresAt)
		}
	})
	t.Run("expired at ExpiresAt is ErrNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateSession", s.CreateSession(ctx, sess))
		for _, now := range []time.Time{sess.ExpiresAt, at(2 * time.Hour)} {
			_, err := s.GetSession(ctx, sess.IDHash, now)
			check(t, "GetSession at "+now.String(), err, store.ErrNotFound)
		}
	})
	t.Run("duplicate ID hash is ErrConflict", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateSession", s.CreateSession(ctx, sess))
		check(t, "CreateSession again", s.CreateSession(ctx, sess), store.ErrConflict)
	})
	t.Run("delete signs out, twice is fine", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "CreateSession", s.CreateSession(ctx, sess))
		must(t, "DeleteSession", s.DeleteSession(ctx, sess.IDHash))
		_, err := s.GetSession(ctx, sess.IDHash, t0())
		check(t, "GetSession after delete", err, store.ErrNotFound)
		must(t, "DeleteSession again", s.DeleteSession(ctx, sess.IDHash))
		must(t, "DeleteSession unknown", s.DeleteSession(ctx, "no-such-session"))
	})
	t.Run("unknown session is ErrNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.GetSession(t.Context(), "no-such-session", t0())
		check(t, "GetSession", err, store.ErrNotFound)
	})
}

func testAuthRequests(t *testing.T, open opener) {
	req := store.AuthRequest{ID: "req-1", Data: []byte(`{"client_id":"https://client.example/cimd.json","state":"xyz"}`), ExpiresAt: at(10 * time.Minute)}
	t.Run("round trip until expiry", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "PutAuthRequest", s.PutAuthRequest(ctx, req))
		got, err := s.GetAuthRequest(ctx, req.ID, at(10*time.Minute-time.Millisecond))
		must(t, "GetAuthRequest", err)
		if d := diff(req, got); d != "" {
			t.Errorf("GetAuthRequest mismatch (-want +got):\n%s", d)
		}
		_, err = s.GetAuthRequest(ctx, req.ID, req.ExpiresAt)
		check(t, "GetAuthRequest at ExpiresAt", err, store.ErrNotFound)
	})
	t.Run("put replaces", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "PutAuthRequest", s.PutAuthRequest(ctx, req))
		next := store.AuthRequest{ID: req.ID, Data: []byte(`{"user_id":"u1"}`), ExpiresAt: at(20 * time.Minute)}
		must(t, "PutAuthRequest again", s.PutAuthRequest(ctx, next))
		got, err := s.GetAuthRequest(ctx, req.ID, at(15*time.Minute))
		must(t, "GetAuthRequest", err)
		if d := diff(next, got); d != "" {
			t.Errorf("GetAuthRequest mismatch (-want +got):\n%s", d)
		}
	})
	t.Run("consume returns it once, a replay is ErrNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "PutAuthRequest", s.PutAuthRequest(ctx, req))
		got, err := s.ConsumeAuthRequest(ctx, req.ID, t0())
		must(t, "ConsumeAuthRequest", err)
		if d := diff(req, got); d != "" {
			t.Errorf("ConsumeAuthRequest mismatch (-want +got):\n%s", d)
		}
		_, err = s.ConsumeAuthRequest(ctx, req.ID, t0())
		check(t, "ConsumeAuthRequest replayed", err, store.ErrNotFound)
		_, err = s.GetAuthRequest(ctx, req.ID, t0())
		check(t, "GetAuthRequest after consume", err, store.ErrNotFound)
	})
	t.Run("consuming an expired request is ErrNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "PutAuthRequest", s.PutAuthRequest(ctx, req))
		_, err := s.ConsumeAuthRequest(ctx, req.ID, req.ExpiresAt)
		check(t, "ConsumeAuthRequest at ExpiresAt", err, store.ErrNotFound)
	})
	t.Run("unknown request is ErrNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.GetAuthRequest(ctx, "no-such-request", t0())
		check(t, "GetAuthRequest", err, store.ErrNotFound)
		_, err = s.ConsumeAuthRequest(ctx, "no-such-request", t0())
		check(t, "ConsumeAuthRequest", err, store.ErrNotFound)
	})
}

func testConsents(t *testing.T, open opener) {
	consent := func(userID, clientID, resource, scopes string) store.Consent {
		return store.Consent{UserID: userID, ClientID: clientID, Resource: resource, Scopes: scopes, Fingerprint: "sha256:fp1", CreatedAt: t0()}
	}
	t.Run("E12 round trip per user, client and resource", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		c := consent("u1", clientA, resource1, "files:read")
		must(t, "PutConsent", s.PutConsent(ctx, c))
		got, err := s.GetConsent(ctx, "u1", clientA, resource1)
		must(t, "GetConsent", err)
		if d := diff(c, got); d != "" {
			t.Errorf("GetConsent mismatch (-want +got):\n%s", d)
		}
		for _, k := range [][3]string{{"u2", clientA, resource1}, {"u1", clientB, resource1}, {"u1", clientA, resource2}} {
			_, err := s.GetConsent(ctx, k[0], k[1], k[2])
			check(t, "GetConsent of another key", err, store.ErrNotFound)
		}
	})
	t.Run("D6 put replaces scopes and fingerprint", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		must(t, "PutConsent", s.PutConsent(ctx, consent("u1", clientA, resource1, "files:read")))
		next := consent("u1", clientA, resource1, "files:read files:write")
		next.Fingerprint = "sha256:fp2"
		next.CreatedAt = at(time.Hour)
		must(t, "PutConsent again", s.PutConsent(ctx, next))
		got, err := s.ListConsents(ctx, "u1")
		must(t, "ListConsents", err)
		if d := diff([]store.Consent{next}, got); d != "" {
			t.Errorf("ListConsents mismatch (-want +got):\n%s", d)
		}
	})
	t.Run("list is the user's, ordered by client and resource", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		all := []store.Consent{
			consent("u1", clientB, resource1, "b"),
			consent("u1", clientA, resource2, "a2"),
			consent("u2", clientA, resource1, "other user"),
			consent("u1", clientA, resource1, "a1"),
		}
		for _, c := range all {
			must(t, "PutConsent", s.PutConsent(ctx, c))
		}
		got, err := s.ListConsents(ctx, "u1")
		must(t, "ListConsents", err)
		if d := diff([]store.Consent{all[3], all[1], all[0]}, got); d != "" {
			t.Errorf("ListConsents mismatch (-want +got):\n%s", d)
		}
		got, err = s.ListConsents(ctx, "u3")
		must(t, "ListConsents of a user with none", err)
		if len(got) != 0 {
			t.Errorf("ListConsents of a user with none = %v, want none", got)
		}
	})
}
