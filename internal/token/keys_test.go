package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/internal/store"
)

const (
	day   = 24 * time.Hour
	month = 30 * day
)

func TestLoadFirstStart(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	t0 := clk.Now()
	k := loadKeys(t, ks, clk, KeyOptions{})

	cur := k.Signer().KeyID()
	next := successorKID(cur, nil)
	if got, want := jwksKIDs(t, k.JWKS()), []string{cur, next}; !slices.Equal(got, want) {
		t.Errorf("JWKS kids = %q, want current then next %q", got, want)
	}
	want := map[string]store.SigningKey{
		cur:  {ID: cur, Algorithm: "ES256", CreatedAt: t0, ActiveAt: t0},
		next: {ID: next, Algorithm: "ES256", CreatedAt: t0, ActiveAt: t0.Add(month)},
	}
	got := map[string]store.SigningKey{}
	for id, rec := range ks.keys {
		if _, err := x509.ParsePKCS8PrivateKey(rec.PrivateKey); err != nil {
			t.Errorf("key %q is not PKCS#8: %v", id, err)
		}
		rec.PrivateKey = nil
		got[id] = rec
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored keys (-want +got):\n%s", diff)
	}

	// A second replica on the same store creates nothing and agrees.
	k2 := loadKeys(t, ks, clk, KeyOptions{})
	if ks.creates != 2 {
		t.Errorf("%d keys created, want 2", ks.creates)
	}
	if k2.Signer().KeyID() != cur || string(k2.JWKS()) != string(k.JWKS()) {
		t.Errorf("second replica: signer %q, JWKS %s; want %q, %s", k2.Signer().KeyID(), k2.JWKS(), cur, k.JWKS())
	}
}

func TestJWKSPublicMembersOnly(t *testing.T) {
	clk := newFakeClock()
	k := loadKeys(t, newFakeKeyStore(), clk, KeyOptions{})
	set := parseJWKS(t, k.JWKS())
	if len(set) != 2 {
		t.Fatalf("JWKS has %d keys, want current and next", len(set))
	}
	for kid, jwk := range set {
		members := slices.Sorted(func(yield func(string) bool) {
			for m := range jwk.Members {
				if !yield(m) {
					return
				}
			}
		})
		if want := []string{"alg", "crv", "kid", "kty", "use", "x", "y"}; !slices.Equal(members, want) {
			t.Errorf("C6 key %q members %q, want exactly %q (no private d)", kid, members, want)
		}
		for m, want := range map[string]string{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256"} {
			if jwk.Members[m] != want {
				t.Errorf("key %q: %s = %v, want %q", kid, m, jwk.Members[m], want)
			}
		}
	}
	// The current key's public half is the signer's.
	s := k.Signer()
	if !set[s.KeyID()].Key.Equal(&s.priv.PublicKey) {
		t.Error("JWKS key differs from the signing key")
	}
}

func TestRotateOverlap(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	ctx := context.Background()
	k := loadKeys(t, ks, clk, KeyOptions{TokenLifetime: time.Hour})
	old := k.Signer().KeyID()
	next := successorKID(old, nil)

	tokOld, err := k.SignAccessToken(claimsAt(clk.Now(), time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(20 * time.Minute) // the next key is older than PublishLead
	rotatedAt := clk.Now()
	if err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := k.Signer().KeyID(); got != next {
		t.Fatalf("after Rotate the signer is %q, want the published next key %q", got, next)
	}
	newNext := successorKID(next, nil)
	if got, want := jwksKIDs(t, k.JWKS()), []string{next, newNext, old}; !slices.Equal(got, want) {
		t.Errorf("JWKS after Rotate = %q, want current, new next, retired %q", got, want)
	}
	rec := ks.get(t, old)
	if wantExp := rotatedAt.Add(time.Hour + expiryMargin); !rec.RetireAt.Equal(rotatedAt) || !rec.ExpireAt.Equal(wantExp) {
		t.Errorf("retired key: RetireAt %v ExpireAt %v, want %v and %v", rec.RetireAt, rec.ExpireAt, rotatedAt, wantExp)
	}
	if got := ks.get(t, newNext).ActiveAt; !got.Equal(rotatedAt.Add(month)) {
		t.Errorf("new next key ActiveAt = %v, want %v", got, rotatedAt.Add(month))
	}

	// The token signed before the rotation stays valid until it expires.
	for _, d := range []time.Duration{0, 39*time.Minute + 59*time.Second} {
		if _, err := k.VerifyAccessToken(tokOld, rotatedAt.Add(d)); err != nil {
			t.Errorf("F10 rotation overlap: token from the old key at +%v: %v", d, err)
		}
	}
	tokNew, err := k.SignAccessToken(claimsAt(clk.Now(), time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.VerifyAccessToken(tokNew, clk.Now()); err != nil {
		t.Errorf("token from the new key: %v", err)
	}

	// The retired key leaves the JWKS only after ExpireAt.
	clk.Advance(time.Hour + expiryMargin - time.Second)
	if err := k.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(jwksKIDs(t, k.JWKS()), old) {
		t.Error("retired key removed before ExpireAt")
	}
	clk.Advance(time.Second)
	if err := k.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := jwksKIDs(t, k.JWKS()), []string{next, newNext}; !slices.Equal(got, want) {
		t.Errorf("JWKS after ExpireAt = %q, want %q", got, want)
	}
	if _, err := k.VerifyAccessToken(tokOld, clk.Now()); !errors.Is(err, ErrInvalid) {
		t.Errorf("token of a dropped key: %v, want ErrInvalid", err)
	}
}

func TestRotateDefersYoungNextKey(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	t0 := clk.Now()
	ctx := context.Background()
	k := loadKeys(t, ks, clk, KeyOptions{})
	old := k.Signer().KeyID()
	next := successorKID(old, nil)

	clk.Advance(time.Minute)
	if err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := k.Signer().KeyID(); got != old {
		t.Errorf("right after Rotate the signer is %q, want %q until the next key is published for PublishLead", got, old)
	}
	if got := ks.get(t, next).ActiveAt; !got.Equal(t0.Add(DefaultPublishLead)) {
		t.Errorf("next key ActiveAt = %v, want its creation plus PublishLead %v", got, t0.Add(DefaultPublishLead))
	}
	// A second Rotate while the promotion is pending changes nothing.
	updates := ks.updates
	if err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if ks.updates != updates {
		t.Errorf("second Rotate wrote %d records, want none", ks.updates-updates)
	}

	// The switch happens on time without any Maintain.
	clk.Advance(DefaultPublishLead - time.Minute)
	if got := k.Signer().KeyID(); got != next {
		t.Errorf("at the promotion time the signer is %q, want %q", got, next)
	}
}

func TestRotateWithoutLead(t *testing.T) {
	tests := []struct {
		name     string
		wait     time.Duration // between Load and Rotate
		switchIn time.Duration // from Rotate until the new key signs
	}{
		{"F10 promoted at once", time.Minute, 0},
		// Equal ActiveAt would leave the order to the kids: the new key
		// starts one second after the current one.
		{"F10 rotate in the instant the current key started", 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			k := loadKeys(t, newFakeKeyStore(), clk, KeyOptions{PublishLead: -1})
			old := k.Signer().KeyID()
			clk.Advance(tt.wait)
			if err := k.Rotate(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tt.switchIn > 0 {
				if got := k.Signer().KeyID(); got != old {
					t.Errorf("signer right after Rotate = %q, want still %q", got, old)
				}
				clk.Advance(tt.switchIn)
			}
			if got, want := k.Signer().KeyID(), successorKID(old, nil); got != want {
				t.Errorf("signer after Rotate with no lead = %q, want %q", got, want)
			}
		})
	}
}

func TestScheduledRotation(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	t0 := clk.Now()
	ctx := context.Background()
	k := loadKeys(t, ks, clk, KeyOptions{RotateEvery: 7 * day, TokenLifetime: 10 * time.Minute})
	first := k.Signer().KeyID()
	second := successorKID(first, nil)

	clk.Advance(7*day - time.Second)
	if err := k.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := k.Signer().KeyID(); got != first {
		t.Fatalf("before RotateEvery the signer is %q, want %q", got, first)
	}
	clk.Advance(time.Second)
	if got := k.Signer().KeyID(); got != second {
		t.Fatalf("at RotateEvery the signer is %q, want %q without waiting for Maintain", got, second)
	}
	if err := k.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	third := successorKID(second, nil)
	rec := ks.get(t, first)
	if rotated := t0.Add(7 * day); !rec.RetireAt.Equal(rotated) || !rec.ExpireAt.Equal(rotated.Add(10*time.Minute+expiryMargin)) {
		t.Errorf("first key RetireAt %v ExpireAt %v", rec.RetireAt, rec.ExpireAt)
	}
	if got := ks.get(t, third).ActiveAt; !got.Equal(t0.Add(14 * day)) {
		t.Errorf("third key ActiveAt = %v, want %v", got, t0.Add(14*day))
	}
	if got, want := jwksKIDs(t, k.JWKS()), []string{second, third, first}; !slices.Equal(got, want) {
		t.Errorf("JWKS = %q, want %q", got, want)
	}
}

func TestMaintainAfterLongDowntime(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	ctx := context.Background()
	k := loadKeys(t, ks, clk, KeyOptions{RotateEvery: day})
	first := k.Signer().KeyID()
	second := successorKID(first, nil)

	clk.Advance(5 * day) // no Maintain ran: the next key took over after one day
	k2 := loadKeys(t, ks, clk, KeyOptions{RotateEvery: day})
	if got := k2.Signer().KeyID(); got != second {
		t.Fatalf("signer after downtime = %q, want %q", got, second)
	}
	// The new next key is published PublishLead before it signs, never at once.
	third := successorKID(second, nil)
	if got, want := ks.get(t, third).ActiveAt, clk.Now().Add(DefaultPublishLead); !got.Equal(want) {
		t.Errorf("next key after downtime ActiveAt = %v, want %v", got, want)
	}
	if got, want := jwksKIDs(t, k2.JWKS()), []string{second, third}; !slices.Equal(got, want) {
		t.Errorf("JWKS = %q, want %q (the first key expired long ago)", got, want)
	}
	if err := k.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if string(k.JWKS()) != string(k2.JWKS()) {
		t.Errorf("replicas disagree: %s vs %s", k.JWKS(), k2.JWKS())
	}
}

func TestShortenedRotateEvery(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	first := loadKeys(t, ks, clk, KeyOptions{}).Signer().KeyID() // next key scheduled after 30 days
	second := successorKID(first, nil)
	clk.Advance(2 * day)
	k := loadKeys(t, ks, clk, KeyOptions{RotateEvery: day})
	if got := k.Signer().KeyID(); got != second {
		t.Errorf("signer = %q, want the next key %q: the current one is past RotateEvery", got, second)
	}
	third := successorKID(second, nil)
	if got := ks.future(clk.Now()); !slices.Equal(got, []string{third}) {
		t.Errorf("future keys %q, want %q", got, third)
	}
	if got, want := ks.get(t, third).ActiveAt, clk.Now().Add(day); !got.Equal(want) {
		t.Errorf("new next key ActiveAt = %v, want %v", got, want)
	}
}

func TestVerifyAcrossReplicas(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	ctx := context.Background()
	a := loadKeys(t, ks, clk, KeyOptions{})
	b := loadKeys(t, ks, clk, KeyOptions{})

	clk.Advance(time.Hour)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	tokA, err := a.SignAccessToken(claimsAt(clk.Now(), 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// B has not reloaded yet, but knows A's new key: it was published as next.
	tokB, err := b.SignAccessToken(claimsAt(clk.Now(), 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string]struct {
		k   *Keys
		tok string
	}{"B verifies A": {b, tokA}, "A verifies stale B": {a, tokB}} {
		if _, err := pair.k.VerifyAccessToken(pair.tok, clk.Now()); err != nil {
			t.Errorf("F10 %s before Maintain: %v", name, err)
		}
	}
	if a.Signer().KeyID() == b.Signer().KeyID() {
		t.Fatal("B switched keys without reloading")
	}
	clk.Advance(MaintainInterval)
	if err := b.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Signer().KeyID() != b.Signer().KeyID() {
		t.Errorf("after Maintain B signs with %q, A with %q", b.Signer().KeyID(), a.Signer().KeyID())
	}
	if string(a.JWKS()) != string(b.JWKS()) {
		t.Errorf("JWKS differ:\nA %s\nB %s", a.JWKS(), b.JWKS())
	}
	for _, k := range []*Keys{a, b} {
		for _, tok := range []string{tokA, tokB} {
			if _, err := k.VerifyAccessToken(tok, clk.Now()); err != nil {
				t.Errorf("after Maintain: %v", err)
			}
		}
	}
}

// TestNoValidTokenFailsBecauseOfRotation simulates two replicas for half a
// day in half-minute ticks. Each reloads once a minute (MaintainInterval),
// half a minute apart, and signs tokens just before its reload (keys a
// minute stale), just after the other's reload (half a minute stale) and
// just after its own. Keys rotate on schedule,
// and A also rotates by hand, twice in a row once. Every token is checked by
// both replicas when issued, in mid-life and one second before it expires.
func TestNoValidTokenFailsBecauseOfRotation(t *testing.T) {
	const (
		lifetime = 30 * time.Minute
		tick     = MaintainInterval / 2
	)
	ks := newFakeKeyStore()
	clk := newFakeClock()
	ctx := context.Background()
	opts := KeyOptions{RotateEvery: 3 * time.Hour, TokenLifetime: lifetime}
	a := loadKeys(t, ks, clk, opts)
	b := loadKeys(t, ks, clk, opts)
	replicas := []*Keys{a, b}

	type issued struct {
		tok    string
		at     time.Time
		signer string
	}
	var tokens []issued // in issue order
	seenKIDs := map[string]bool{}
	check := func(tk issued, at time.Time) {
		t.Helper()
		for i, k := range replicas {
			if _, err := k.VerifyAccessToken(tk.tok, at); err != nil {
				t.Fatalf("F10 rotation: replica %d rejects a token signed at %v by %q, checked at %v: %v", i, tk.at, tk.signer, at, err)
			}
		}
	}
	sign := func(k *Keys) {
		t.Helper()
		s := k.Signer()
		seenKIDs[s.KeyID()] = true
		tok, err := s.SignAccessToken(claimsAt(clk.Now(), lifetime))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, issued{tok, clk.Now(), s.KeyID()})
	}
	for i := range 12 * 60 * 2 {
		clk.Advance(tick)
		now := clk.Now()
		k, other := a, b
		if i%2 == 1 {
			k, other = b, a
		}
		sign(k) // keys up to a MaintainInterval stale
		if err := k.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 201: // twice in a row, on B's tick: the second next key is brand new
			for range 2 {
				if err := a.Rotate(ctx); err != nil {
					t.Fatal(err)
				}
			}
		case 801:
			if err := a.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		sign(other) // keys up to a tick stale
		sign(k)
		for _, tk := range tokens[max(0, len(tokens)-3*int(lifetime/tick)-6):] {
			switch age := now.Sub(tk.at); {
			case age == 0:
				check(tk, now)
			case age >= lifetime/2 && age < lifetime/2+tick:
				check(tk, now)
			case age >= lifetime-tick && age < lifetime:
				check(tk, tk.at.Add(lifetime-time.Second))
			}
		}
	}
	if len(seenKIDs) < 6 {
		t.Errorf("only %d keys signed; the simulation should cover several rotations", len(seenKIDs))
	}
	if got := ks.future(clk.Now()); len(got) != 1 {
		t.Errorf("future keys at the end = %q, want exactly one", got)
	}
}

// TestMaintainLosesCreateRace makes replica A lose the race to create the
// next key: while A creates it, B creates the same kid first.
func TestMaintainLosesCreateRace(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	ctx := context.Background()
	opts := KeyOptions{RotateEvery: day}
	a := loadKeys(t, ks, clk, opts)
	b := loadKeys(t, ks, clk, opts)
	clk.Advance(day) // the next key takes over; both replicas must create a new next

	var fired atomic.Bool
	var bErr error
	ks.beforeCreate = func(store.SigningKey) {
		if fired.CompareAndSwap(false, true) { // B's own create must not recurse
			bErr = b.Maintain(ctx)
		}
	}
	if err := a.Maintain(ctx); err != nil {
		t.Fatalf("A lost the race and failed: %v", err)
	}
	if bErr != nil {
		t.Fatalf("B: %v", bErr)
	}
	if ks.creates != 3 {
		t.Errorf("%d keys created, want 3 (first, next, and one new next)", ks.creates)
	}
	if got := ks.future(clk.Now()); len(got) != 1 {
		t.Errorf("future keys %q, want one", got)
	}
	if string(a.JWKS()) != string(b.JWKS()) {
		t.Errorf("JWKS differ:\nA %s\nB %s", a.JWKS(), b.JWKS())
	}
	// A has B's private key for the new next key, not the one it generated.
	clk.Advance(day)
	tok, err := a.SignAccessToken(claimsAt(clk.Now(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.VerifyAccessToken(tok, clk.Now()); err != nil {
		t.Errorf("B rejects A's token from the raced key: %v", err)
	}
}

func TestConcurrentMaintain(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	ctx := context.Background()
	opts := KeyOptions{RotateEvery: 6 * time.Hour, TokenLifetime: time.Hour}
	replicas := []*Keys{loadKeys(t, ks, clk, opts), loadKeys(t, ks, clk, opts), loadKeys(t, ks, clk, opts)}

	var wg sync.WaitGroup
	errs := make(chan error, len(replicas))
	stop := make(chan struct{})
	for _, k := range replicas {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := k.Maintain(ctx); err != nil {
					errs <- err
					return
				}
				if _, err := k.SignAccessToken(claimsAt(clk.Now(), time.Minute)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 200 {
		clk.Advance(10 * time.Minute)
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Maintain: %v", err)
	}
	for _, k := range replicas {
		if err := k.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range replicas[1:] {
		if string(k.JWKS()) != string(replicas[0].JWKS()) || k.Signer().KeyID() != replicas[0].Signer().KeyID() {
			t.Errorf("replica %d disagrees with replica 0", i+1)
		}
	}
	if got := ks.future(clk.Now()); len(got) != 1 {
		t.Errorf("future keys %q, want exactly one", got)
	}
	// 200 × 10 minutes is about 33 hours: 5 or 6 scheduled rotations.
	if n := len(ks.keys); n < 6 || n > 8 {
		t.Errorf("%d keys in the store, want one per rotation", n)
	}
}

// TestFirstStartRace starts two replicas on an empty store at once: both
// see no key and create their own first and next keys.
func TestFirstStartRace(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	ctx := context.Background()
	opts := KeyOptions{RotateEvery: day, TokenLifetime: 10 * time.Minute}

	var barrier sync.WaitGroup
	barrier.Add(2)
	var lists atomic.Int32
	ks.afterList = func() {
		// The first two Lists, one per replica, wait for each other, so both
		// replicas see an empty store.
		if lists.Add(1) <= 2 {
			barrier.Done()
			barrier.Wait()
		}
	}
	replicas := make([]*Keys, 2)
	tokens := make([]string, 2)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			replicas[i] = NewKeys(ks, KeyOptions{RotateEvery: opts.RotateEvery, TokenLifetime: opts.TokenLifetime, Now: clk.Now})
			if err := replicas[i].Load(ctx); err != nil {
				t.Errorf("Load %d: %v", i, err)
				return
			}
			tok, err := replicas[i].SignAccessToken(claimsAt(clk.Now(), 10*time.Minute))
			if err != nil {
				t.Errorf("sign %d: %v", i, err)
			}
			tokens[i] = tok
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ks.afterList = nil
	if ks.creates < 3 {
		t.Fatalf("%d keys created; the test wants both replicas to create a first key", ks.creates)
	}
	for _, k := range replicas {
		if err := k.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a, b := replicas[0], replicas[1]
	if a.Signer().KeyID() != b.Signer().KeyID() || string(a.JWKS()) != string(b.JWKS()) {
		t.Errorf("replicas disagree after Maintain: %q vs %q", a.Signer().KeyID(), b.Signer().KeyID())
	}
	for _, k := range replicas {
		for _, tok := range tokens {
			if _, err := k.VerifyAccessToken(tok, clk.Now()); err != nil {
				t.Errorf("token signed during the race: %v", err)
			}
		}
	}
	// Two rotations later the two chains have merged into one.
	for range 2 {
		clk.Advance(day)
		for _, k := range replicas {
			if err := k.Maintain(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := ks.future(clk.Now()); len(got) != 1 {
		t.Errorf("future keys %q, want one", got)
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("database is locked")
	clk := newFakeClock()

	t.Run("list fails", func(t *testing.T) {
		ks := newFakeKeyStore()
		ks.listErr = boom
		if err := NewKeys(ks, KeyOptions{Now: clk.Now}).Load(ctx); !errors.Is(err, boom) {
			t.Errorf("Load = %v, want it to wrap %v", err, boom)
		}
	})
	t.Run("create fails", func(t *testing.T) {
		ks := newFakeKeyStore()
		ks.createErr = boom
		if err := NewKeys(ks, KeyOptions{Now: clk.Now}).Load(ctx); !errors.Is(err, boom) {
			t.Errorf("Load = %v, want it to wrap %v", err, boom)
		}
	})
	t.Run("corrupt key", func(t *testing.T) {
		ks := newFakeKeyStore()
		ks.keys["bad"] = store.SigningKey{ID: "bad", Algorithm: "ES256", PrivateKey: []byte("junk"), ActiveAt: clk.Now()}
		err := NewKeys(ks, KeyOptions{Now: clk.Now}).Load(ctx)
		if err == nil || !strings.Contains(err.Error(), `"bad"`) {
			t.Errorf("Load = %v, want an error naming the key", err)
		}
	})
	t.Run("P-384 key", func(t *testing.T) {
		priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		ks := newFakeKeyStore()
		ks.keys["p384"] = store.SigningKey{ID: "p384", Algorithm: "ES256", PrivateKey: der, ActiveAt: clk.Now()}
		if err := NewKeys(ks, KeyOptions{Now: clk.Now}).Load(ctx); err == nil {
			t.Error("Load accepted a P-384 key as ES256")
		}
	})
	t.Run("unknown algorithm skipped", func(t *testing.T) {
		ks := newFakeKeyStore()
		ks.keys["ed"] = store.SigningKey{ID: "ed", Algorithm: "EdDSA", PrivateKey: []byte("x"), ActiveAt: clk.Now()}
		k := NewKeys(ks, KeyOptions{Now: clk.Now})
		if err := k.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if kids := jwksKIDs(t, k.JWKS()); slices.Contains(kids, "ed") || len(kids) != 2 {
			t.Errorf("JWKS kids %q, want two new ES256 keys and not %q", kids, "ed")
		}
	})
	t.Run("update fails", func(t *testing.T) {
		ks := newFakeKeyStore()
		k := loadKeys(t, ks, clk, KeyOptions{PublishLead: -1})
		ks.updateErr = boom
		if err := k.Rotate(ctx); !errors.Is(err, boom) {
			t.Errorf("Rotate = %v, want it to wrap %v", err, boom)
		}
	})
}

func TestVerifyRejectsTokenOfExpiredKey(t *testing.T) {
	ks := newFakeKeyStore()
	clk := newFakeClock()
	ctx := context.Background()
	k := loadKeys(t, ks, clk, KeyOptions{TokenLifetime: 10 * time.Minute, PublishLead: -1})
	// A token living longer than TokenLifetime (a misconfiguration) outlives its key.
	long, err := k.SignAccessToken(claimsAt(clk.Now(), 2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	at := clk.Now().Add(10*time.Minute + expiryMargin)
	if _, err := k.VerifyAccessToken(long, at.Add(-time.Second)); err != nil {
		t.Errorf("before the key's ExpireAt: %v", err)
	}
	if _, err := k.VerifyAccessToken(long, at); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
		t.Errorf("at the key's ExpireAt: %v, want ErrInvalid for the key", err)
	}
}
