package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mcpauth/mcpauth/internal/store"
)

// opener returns a fresh, empty store for one subtest and closes it with
// t.Cleanup.
type opener func(t *testing.T) store.Store

// Run runs the conformance suite against the stores open returns. Every
// subtest opens its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name string
		run  func(*testing.T, opener)
	}{
		{"users", testUsers},
		{"rate hits", testRateHit},
		{"sessions", testSessions},
		{"auth requests", testAuthRequests},
		{"consents", testConsents},
		{"codes", testCodes},
		{"refresh tokens", testRefreshTokens},
		{"revocation", testRevocation},
		{"clients seen", testClientsSeen},
		{"blocks", testBlocks},
		{"dcr clients", testDCRClients},
		{"signing keys", testSigningKeys},
		{"jti", testJTI},
		{"cimd cache", testCIMDCache},
		{"delete expired", testDeleteExpired},
		{"concurrency", testConcurrency},
		{"ping", testPing},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, open) })
	}
}

func testPing(t *testing.T, open opener) {
	t.Run("Ping answers", func(t *testing.T) {
		s := open(t)
		must(t, "Ping", s.Ping(t.Context()))
	})
}

// Fixture values.
const (
	clientA   = "https://client.example/cimd.json"
	clientB   = "https://other.example/mcp-client.json"
	resource1 = "https://mcp.example/mcp"
	resource2 = "https://tools.example/mcp"
)

// t0 is the suite's clock. Its nanoseconds make a backend that keeps less
// than millisecond precision fail the round trips.
func t0() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.UTC) }

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0().Add(d) }

const day = 24 * time.Hour

// sameTime compares times truncated to the millisecond.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

// diff compares records, times by sameTime.
func diff(want, got any) string {
	return cmp.Diff(want, got, cmpopts.EquateEmpty(), cmp.Comparer(sameTime))
}

// check fails the test unless errors.Is(err, want); want nil means success.
func check(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// must fails the test if err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	check(t, what, err, nil)
}

// checkOther fails the test unless err is an error that is none of the
// store's sentinels (a caller bug the store refuses).
func checkOther(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: err = nil, want an error", what)
	}
	for _, s := range []error{store.ErrNotFound, store.ErrConflict, store.ErrAlreadyUsed} {
		if errors.Is(err, s) {
			t.Fatalf("%s: err = %v, want an error other than %v", what, err, s)
		}
	}
}

// checkUTC fails the test unless every non-zero time is in UTC.
func checkUTC(t *testing.T, what string, times ...time.Time) {
	t.Helper()
	for i, tm := range times {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s: time %d is in %v, want UTC", what, i, tm.Location())
		}
	}
}

// race runs fn(0..n-1) on n goroutines released together and returns
// their errors by index.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// count returns how many errs match target (nil counts successes).
func count(errs []error, target error) int {
	return len(slices.DeleteFunc(slices.Clone(errs), func(err error) bool { return !errors.Is(err, target) }))
}

func newUser(id, name string) store.User {
	return store.User{
		ID:           id,
		Name:         name,
		PasswordHash: "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		CreatedAt:    t0(),
	}
}

// newCode is a code issued at t0 that expires 10 minutes later
// (OAuth 2.1 §4.1.2, RFC 9207 §2).
func newCode(hash, userID, clientID, familyID string) store.Code {
	return store.Code{
		Hash:          hash,
		ClientID:      clientID,
		UserID:        userID,
		RedirectURI:   "http://127.0.0.1:33418/callback",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Resource:      resource1,
		Scopes:        "files:read tools:call",
		FamilyID:      familyID,
		AuthTime:      at(-time.Minute),
		ExpiresAt:     at(10 * time.Minute),
	}
}

// newFamily is a family created at t0 with a 30-day lifetime.
func newFamily(id, userID, clientID string) store.Family {
	return store.Family{
		ID:          id,
		ClientID:    clientID,
		UserID:      userID,
		Resource:    resource1,
		Scopes:      "files:read tools:call",
		Fingerprint: "sha256:fp-" + clientID,
		CreatedAt:   t0(),
		ExpiresAt:   at(30 * day),
	}
}

// newRefresh is a refresh token of familyID created at created with a
// 14-day idle lifetime.
func newRefresh(hash, familyID string, created time.Time) store.RefreshToken {
	return store.RefreshToken{Hash: hash, FamilyID: familyID, CreatedAt: created, ExpiresAt: created.Add(14 * day)}
}

// grant issues a code for the user and client and redeems it at t0 plus
// one minute, creating family familyID with refresh token rtHash. It
// returns the family and the token.
func grant(t *testing.T, s store.Store, userID, clientID, familyID, rtHash string) (store.Family, store.RefreshToken) {
	t.Helper()
	ctx := t.Context()
	must(t, "CreateCode", s.CreateCode(ctx, newCode("code-"+familyID, userID, clientID, familyID)))
	f := newFamily(familyID, userID, clientID)
	rt := newRefresh(rtHash, familyID, at(time.Minute))
	must(t, "RedeemCode", s.RedeemCode(ctx, "code-"+familyID, at(time.Minute), f, &rt))
	return f, rt
}
