package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// Defaults and fixed parameters of key rotation (see the package
// documentation).
const (
	// MaintainInterval is how often the server should call Keys.Maintain. The
	// expiry margin of retired keys and the default PublishLead assume that
	// every replica reloads keys at least this often.
	MaintainInterval = time.Minute

	// DefaultRotateEvery is how long a key signs when KeyOptions.RotateEvery is 0.
	DefaultRotateEvery = 30 * 24 * time.Hour
	// DefaultTokenLifetime is KeyOptions.TokenLifetime when it is 0.
	DefaultTokenLifetime = time.Hour
	// DefaultPublishLead is KeyOptions.PublishLead when it is 0.
	DefaultPublishLead = 10 * time.Minute

	// Algorithm is the one JWS algorithm keys are made for (RFC 7518 §3.4).
	Algorithm = "ES256"

	// expiryMargin keeps a retired key published this long after the last
	// token it could have signed expired.
	expiryMargin = 5 * time.Minute
	// maxSyncRounds bounds how often one Load, Rotate or Maintain re-reads
	// the store after its own writes or a lost race.
	maxSyncRounds = 8
	// successorLabel separates successor kid derivation from other hashes.
	successorLabel = "mcpauth signing key successor\x00"
)

// KeyStore is the part of store.Store the key manager needs.
// store.Store implements it.
type KeyStore interface {
	// CreateSigningKey must return store.ErrConflict when the kid exists.
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	UpdateSigningKey(ctx context.Context, k store.SigningKey) error
}

var _ KeyStore = store.Store(nil)

// KeyOptions configures NewKeys. Every zero value has a documented default.
type KeyOptions struct {
	// RotateEvery is how long a key signs before its successor takes over.
	// 0 means DefaultRotateEvery (30 days).
	RotateEvery time.Duration
	// TokenLifetime is the longest access token lifetime the server issues.
	// A retired key stays published at least this long plus a 5 minute
	// margin. 0 means DefaultTokenLifetime (1 hour).
	TokenLifetime time.Duration
	// PublishLead is how long a new key is published before it may sign:
	// scheduled successors are created at least this far ahead, and Rotate
	// promotes a next key younger than this only once it is this old.
	// 0 means DefaultPublishLead (10 minutes, ten MaintainIntervals, and the
	// JWKS refresh interval resource servers commonly use); a negative value
	// means no lead (tests, single-process deployments without caches).
	PublishLead time.Duration
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Logger receives key lifecycle events (never key material). nil
	// discards them.
	Logger *slog.Logger
	// KEK, when set, encrypts new private keys before they reach the store
	// and decrypts wrapped ones; plain (legacy) rows are read as they are.
	// nil stores new keys plain, and Load fails with ErrKEKRequired on a
	// wrapped row.
	KEK *KEK
}

// Keys manages the signing keys: it loads them from a KeyStore, rotates
// them, signs access tokens with the current one and verifies tokens against
// every published one. All methods are safe for concurrent use; Load, Rotate
// and Maintain of one Keys are serialized, and several Keys on one store
// (replicas) may run them concurrently.
type Keys struct {
	ks          KeyStore
	rotateEvery time.Duration
	lifetime    time.Duration
	lead        time.Duration
	now         func() time.Time
	log         *slog.Logger

	mu       sync.Mutex // serializes sync
	state    atomic.Pointer[keySet]
	verified verifiedCache
}

// keySet is one immutable snapshot of the published keys.
type keySet struct {
	signers []*Signer            // live keys by ActiveAt ascending, ties by kid
	public  map[string]publicKey // by kid
	jwks    []byte
}

type publicKey struct {
	key      *ecdsa.PublicKey
	expireAt time.Time // zero until a successor or Rotate sets it
}

// NewKeys returns a key manager over ks. It holds no keys until Load.
func NewKeys(ks KeyStore, opts KeyOptions) *Keys {
	k := &Keys{
		ks:          sealedKeyStore{KeyStore: ks, kek: opts.KEK},
		rotateEvery: opts.RotateEvery,
		lifetime:    opts.TokenLifetime,
		lead:        opts.PublishLead,
		now:         opts.Now,
		log:         opts.Logger,
	}
	if k.rotateEvery <= 0 {
		k.rotateEvery = DefaultRotateEvery
	}
	if k.lifetime <= 0 {
		k.lifetime = DefaultTokenLifetime
	}
	switch {
	case k.lead == 0:
		k.lead = DefaultPublishLead
	case k.lead < 0:
		k.lead = 0
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	return k
}

// Load reads the keys from the store and makes them the published set. On
// first start (no live key) it creates the current key, which signs at once,
// and the next one. It also does everything Maintain does.
func (k *Keys) Load(ctx context.Context) error {
	return k.sync(ctx, false)
}

// Maintain is the scheduled upkeep, to be called every MaintainInterval from
// every replica: it reloads keys created or changed by other replicas, records
// RetireAt and ExpireAt of keys their successor has replaced, brings the next
// key forward when the current one has signed longer than RotateEvery (at the
// earliest PublishLead after the next key was created), creates a next key
// when there is none, and drops expired keys from the JWK Set. Replicas
// racing here converge: a lost race only means a reload.
func (k *Keys) Maintain(ctx context.Context) error {
	return k.sync(ctx, false)
}

// Rotate promotes the next key to current now and retires the current one,
// which stays published until every token it signed has expired; Maintain
// then creates a new next key. A next key published for less than
// PublishLead is promoted only once it reaches that age (the old key signs
// until then, and the time is logged); while such a promotion is pending,
// another Rotate changes nothing.
func (k *Keys) Rotate(ctx context.Context) error {
	return k.sync(ctx, true)
}

// JWKS returns the JWK Set (RFC 7517 §5) of every published key: current,
// next and retired but unexpired, current first. Members are kty, crv, x, y,
// kid, use and alg; never a private member. The bytes are shared: do not
// modify them. Before Load it returns an empty set.
func (k *Keys) JWKS() []byte {
	st := k.state.Load()
	if st == nil {
		return []byte(`{"keys":[]}`)
	}
	return st.jwks
}

// Signer returns the key that signs now, or nil before Load. Successive
// calls may return different signers after a rotation or a reload.
func (k *Keys) Signer() *Signer {
	st := k.state.Load()
	if st == nil {
		return nil
	}
	return st.current(k.now())
}

// current is the last signer whose ActiveAt is not after now.
func (st *keySet) current(now time.Time) *Signer {
	for i := len(st.signers) - 1; i >= 0; i-- {
		if !st.signers[i].activeAt.After(now) {
			return st.signers[i]
		}
	}
	return nil
}

// entry is a live stored key with its parsed signer.
type entry struct {
	rec    store.SigningKey
	signer *Signer
}

// sync reads the store, repairs what a rotation or a crash left half done,
// optionally rotates, re-reads until nothing changes, and installs the result.
func (k *Keys) sync(ctx context.Context, rotate bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for range maxSyncRounds {
		now := k.now()
		all, err := k.ks.ListSigningKeys(ctx)
		if err != nil {
			return fmt.Errorf("list signing keys: %w", err)
		}
		live, err := k.parse(all, now)
		if err != nil {
			return err
		}
		changed, err := k.repair(ctx, all, live, now)
		if err != nil {
			return err
		}
		if changed {
			continue
		}
		if rotate {
			if err := k.promote(ctx, live, now); err != nil {
				return err
			}
			rotate = false
			continue
		}
		return k.install(live, now)
	}
	return fmt.Errorf("signing keys changed on every one of %d reads; another replica may be misconfigured", maxSyncRounds)
}

// parse returns the live keys (not past ExpireAt) by ActiveAt, ties by kid.
func (k *Keys) parse(all []store.SigningKey, now time.Time) ([]entry, error) {
	var prev map[string]*Signer
	if st := k.state.Load(); st != nil {
		prev = make(map[string]*Signer, len(st.signers))
		for _, s := range st.signers {
			prev[s.kid] = s
		}
	}
	live := make([]entry, 0, len(all))
	for _, rec := range all {
		if !rec.ExpireAt.IsZero() && !now.Before(rec.ExpireAt) {
			continue
		}
		if rec.Algorithm != Algorithm {
			k.log.Warn("signing key skipped: unsupported algorithm", "kid", rec.ID, "alg", rec.Algorithm)
			continue
		}
		s := prev[rec.ID]
		if s == nil || !bytes.Equal(s.der, rec.PrivateKey) {
			var err error
			if s, err = newSigner(rec.ID, rec.PrivateKey); err != nil {
				return nil, err
			}
		}
		s = s.at(rec.ActiveAt)
		live = append(live, entry{rec: rec, signer: s})
	}
	slices.SortFunc(live, func(a, b entry) int {
		if c := a.rec.ActiveAt.Compare(b.rec.ActiveAt); c != 0 {
			return c
		}
		return strings.Compare(a.rec.ID, b.rec.ID)
	})
	return live, nil
}

// repair makes one write that brings the stored keys closer to the intended
// state and reports whether it wrote (the caller then re-reads). A conflict
// with another replica counts as a write.
func (k *Keys) repair(ctx context.Context, all []store.SigningKey, live []entry, now time.Time) (bool, error) {
	active, future := splitActive(live, now)
	if len(active) == 0 {
		if len(future) > 0 {
			// Nothing can sign: the earliest next key has been published
			// since it was created and takes over at once.
			rec := future[0].rec
			rec.ActiveAt = now
			return true, k.update(ctx, rec, "signing key promoted: no current key")
		}
		return true, k.create(ctx, NewID(), now, "signing key created: first key")
	}
	// Record the end of every key a later one replaced.
	for i := 0; i+1 < len(active); i++ {
		rec := active[i].rec
		retire := active[i+1].rec.ActiveAt
		expire := retire.Add(k.lifetime + expiryMargin)
		if rec.RetireAt.IsZero() || rec.ExpireAt.IsZero() || rec.ExpireAt.Before(expire.Add(-time.Second)) {
			rec.RetireAt = retire
			if rec.ExpireAt.Before(expire) {
				rec.ExpireAt = expire
			}
			return true, k.update(ctx, rec, "signing key retired")
		}
	}
	cur := active[len(active)-1].rec
	due := cur.ActiveAt.Add(k.rotateEvery)
	if len(future) == 0 {
		at := due
		if earliest := now.Add(k.lead); at.Before(earliest) {
			at = earliest
		}
		return true, k.create(ctx, successorKID(cur.ID, all), at, "signing key created: next key")
	}
	if next := future[0].rec; !now.Before(due) {
		// The current key is past RotateEvery but the next one is scheduled
		// later (RotateEvery was shortened): bring it forward.
		if at := k.promotionTime(next, cur, now); at.Before(next.ActiveAt) {
			next.ActiveAt = at
			return true, k.update(ctx, next, "signing key promoted: current key past rotation period")
		}
	}
	return false, nil
}

// promote is Rotate's one step after repair has settled: the earliest next
// key signs from now (or once it has been published PublishLead), and the
// current key retires at that moment.
func (k *Keys) promote(ctx context.Context, live []entry, now time.Time) error {
	active, future := splitActive(live, now)
	if len(active) == 0 || len(future) == 0 {
		return errors.New("rotate: no current or no next signing key")
	}
	next, cur := future[0].rec, active[len(active)-1].rec
	at := k.promotionTime(next, cur, now)
	if !at.Before(next.ActiveAt) {
		k.log.Info("signing key rotation: next key already scheduled", "kid", next.ID, "active_at", next.ActiveAt)
		return nil
	}
	next.ActiveAt = at
	if err := k.update(ctx, next, "signing key promoted: rotation"); err != nil {
		return err
	}
	cur.RetireAt = at
	if expire := at.Add(k.lifetime + expiryMargin); cur.ExpireAt.Before(expire) {
		cur.ExpireAt = expire
	}
	return k.update(ctx, cur, "signing key retired: rotation")
}

// promotionTime is the earliest moment next may replace cur: now, once next
// has been published for PublishLead, and strictly after cur's ActiveAt (by
// a second, which survives a store that keeps whole seconds), since equal
// ActiveAt would leave the order to the kids.
func (k *Keys) promotionTime(next, cur store.SigningKey, now time.Time) time.Time {
	at := next.CreatedAt.Add(k.lead)
	if at.Before(now) {
		at = now
	}
	if !at.After(cur.ActiveAt) {
		at = cur.ActiveAt.Add(time.Second)
	}
	return at
}

// splitActive splits live keys into those whose ActiveAt has come and the
// future (next) ones.
func splitActive(live []entry, now time.Time) (active, future []entry) {
	i := 0
	for i < len(live) && !live[i].rec.ActiveAt.After(now) {
		i++
	}
	return live[:i], live[i:]
}

// create generates and stores a new key. A kid taken by another replica's
// concurrent create is not an error: the caller re-reads.
func (k *Keys) create(ctx context.Context, kid string, activeAt time.Time, msg string) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encode signing key: %w", err)
	}
	rec := store.SigningKey{
		ID:         kid,
		Algorithm:  Algorithm,
		PrivateKey: der,
		CreatedAt:  k.now(),
		ActiveAt:   activeAt,
	}
	switch err := k.ks.CreateSigningKey(ctx, rec); {
	case errors.Is(err, store.ErrConflict):
		k.log.Debug("signing key created by another replica", "kid", kid)
		return nil
	case err != nil:
		return fmt.Errorf("create signing key %q: %w", kid, err)
	}
	k.log.Info(msg, "kid", kid, "active_at", activeAt)
	return nil
}

func (k *Keys) update(ctx context.Context, rec store.SigningKey, msg string) error {
	if err := k.ks.UpdateSigningKey(ctx, rec); err != nil {
		return fmt.Errorf("update signing key %q: %w", rec.ID, err)
	}
	k.log.Info(msg, "kid", rec.ID, "active_at", rec.ActiveAt, "retire_at", rec.RetireAt, "expire_at", rec.ExpireAt)
	return nil
}

// install publishes live as the new key set.
func (k *Keys) install(live []entry, now time.Time) error {
	st := &keySet{
		signers: make([]*Signer, len(live)),
		public:  make(map[string]publicKey, len(live)),
	}
	for i, e := range live {
		st.signers[i] = e.signer
		st.public[e.rec.ID] = publicKey{key: &e.signer.priv.PublicKey, expireAt: e.rec.ExpireAt}
	}
	// current first, then next keys, then retired ones newest first.
	active, future := splitActive(live, now)
	order := make([]entry, 0, len(live))
	if n := len(active); n > 0 {
		order = append(order, active[n-1])
	}
	order = append(order, future...)
	for i := len(active) - 2; i >= 0; i-- {
		order = append(order, active[i])
	}
	set := jwkSet{Keys: make([]jwk, 0, len(order))}
	for _, e := range order {
		j, err := publicJWK(e.rec.ID, &e.signer.priv.PublicKey)
		if err != nil {
			return err
		}
		set.Keys = append(set.Keys, j)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("encode jwks: %w", err)
	}
	st.jwks = b
	var before *Signer
	if old := k.state.Swap(st); old != nil {
		before = old.current(now)
	}
	if after := st.current(now); after != nil && (before == nil || before.kid != after.kid) {
		k.log.Info("signing key in use", "kid", after.kid)
	}
	return nil
}

// jwkSet and jwk are the public JWK Set members (RFC 7517 §4, §5; RFC 7518
// §6.2.1).
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

func publicJWK(kid string, pub *ecdsa.PublicKey) (jwk, error) {
	pt, err := pub.Bytes() // 0x04 || X || Y, 32 bytes each for P-256
	if err != nil || len(pt) != 65 {
		return jwk{}, fmt.Errorf("signing key %q: encode public key: %v", kid, err)
	}
	enc := base64.RawURLEncoding
	return jwk{
		Kty: "EC", Crv: "P-256",
		X: enc.EncodeToString(pt[1:33]), Y: enc.EncodeToString(pt[33:]),
		Kid: kid, Use: "sig", Alg: Algorithm,
	}, nil
}

// successorKID is the kid of the key that follows kid: derived, so replicas
// racing to create it collide in the store. A derived kid already used by
// any stored key (possible only after manual edits) is derived again.
func successorKID(kid string, all []store.SigningKey) string {
	taken := make(map[string]bool, len(all))
	for _, k := range all {
		taken[k.ID] = true
	}
	for {
		sum := sha256.Sum256([]byte(successorLabel + kid))
		kid = base64.RawURLEncoding.EncodeToString(sum[:16])
		if !taken[kid] {
			return kid
		}
	}
}
