// This file finds and caches the issuer's signing keys: RFC 8414 §3 metadata
// discovery for jwks_uri, RFC 7517 §5 key sets.

package resource

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpauth/mcpauth/oauth"
)

const (
	// maxKeys caps how many keys of a JWKS are kept.
	maxKeys = 64
	// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
	minRSABits = 2048
)

// publicKey is one usable signing key of a JWKS.
type publicKey struct {
	kid string
	alg string // the JWK's alg member, empty when absent
	key crypto.PublicKey
}

// keySet is one fetched JWKS.
type keySet struct {
	keys    []publicKey
	fetched time.Time
}

// match returns the keys that may have signed a token with this kid and
// alg: same kid (or any kid when the token names none), a key type that
// fits alg, and no conflicting JWK alg.
func (s *keySet) match(kid, alg string) []publicKey {
	var out []publicKey
	for _, k := range s.keys {
		if (kid == "" || k.kid == kid) && (k.alg == "" || k.alg == alg) && keyFitsAlg(k.key, alg) {
			out = append(out, k)
		}
	}
	return out
}

// keySource fetches the issuer's JWKS, keeps it for maxAge, and refetches
// early for an unknown kid at most once per minRefresh. Readers never lock;
// fetches are serialised, so a burst of requests causes one fetch.
type keySource struct {
	client     *http.Client
	issuer     string
	jwksURL    string // fixed; empty means discover from the issuer's metadata
	maxAge     time.Duration
	minRefresh time.Duration
	now        func() time.Time

	set atomic.Pointer[keySet]

	mu          sync.Mutex // serialises fetches and guards the fields below
	lastAttempt time.Time
	lastErr     error
}

// candidates returns the keys to try for a token header's kid and alg. An
// unknown key wraps ErrInvalidToken; keys that cannot be fetched give an
// error that does not.
func (s *keySource) candidates(ctx context.Context, kid, alg string) ([]publicKey, error) {
	set := s.set.Load()
	if set == nil || !s.now().Before(set.fetched.Add(s.maxAge)) {
		var err error
		if set, err = s.refresh(ctx, set, false); err != nil {
			return nil, err
		}
	}
	if keys := set.match(kid, alg); len(keys) > 0 {
		return keys, nil
	}
	if kid != "" {
		if fresh, err := s.refresh(ctx, set, true); err == nil {
			set = fresh
		}
		if keys := set.match(kid, alg); len(keys) > 0 {
			return keys, nil
		}
	}
	return nil, fmt.Errorf("%w: no %s key with kid %q in the issuer's JWKS", ErrInvalidToken, alg, kid)
}

// refresh fetches a new key set unless another caller replaced seen
// meanwhile or the last attempt was less than minRefresh ago. For an unknown
// kid (early) a rate-limited refresh returns the current set; for an expired
// or missing set it returns the last error.
func (s *keySource) refresh(ctx context.Context, seen *keySet, early bool) (*keySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.set.Load(); cur != seen {
		return cur, nil
	}
	now := s.now()
	if !s.lastAttempt.IsZero() && now.Before(s.lastAttempt.Add(s.minRefresh)) {
		if early {
			return seen, nil
		}
		if s.lastErr != nil {
			return nil, fmt.Errorf("issuer keys unavailable: %w", s.lastErr)
		}
	}
	set, err := s.fetch(ctx)
	if err != nil {
		if ctx.Err() == nil { // a cancelled request says nothing about the issuer
			s.lastAttempt, s.lastErr = now, err
		}
		return nil, err
	}
	set.fetched = now
	s.lastAttempt, s.lastErr = now, nil
	s.set.Store(set)
	return set, nil
}

func (s *keySource) fetch(ctx context.Context) (*keySet, error) {
	jwksURL := s.jwksURL
	if jwksURL == "" {
		var err error
		if jwksURL, err = discoverJWKSURI(ctx, s.client, s.issuer); err != nil {
			return nil, err
		}
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, s.client, jwksURL, &doc); err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	set := &keySet{}
	for _, raw := range doc.Keys {
		if len(set.keys) == maxKeys {
			break
		}
		if k, ok := parseJWK(raw); ok {
			set.keys = append(set.keys, k)
		}
	}
	if len(set.keys) == 0 {
		return nil, fmt.Errorf("JWKS %q has no usable public signing key", jwksURL)
	}
	return set, nil
}

// parseJWK returns the public signing key of one JWK (RFC 7517 §4). Keys for
// encryption, symmetric keys, small RSA keys and keys go-jose cannot parse
// are skipped rather than failing the whole set.
func parseJWK(raw json.RawMessage) (publicKey, bool) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return publicKey{}, false
	}
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, false
	}
	pub := k.Public()
	if !pub.Valid() {
		return publicKey{}, false
	}
	switch key := pub.Key.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return publicKey{}, false
		}
	default:
		return publicKey{}, false
	}
	return publicKey{kid: k.KeyID, alg: k.Algorithm, key: pub.Key}, true
}

// discoverJWKSURI reads the issuer's metadata from the first well-known URL
// that answers (RFC 8414 §3.1, MCP 2025-11-25 Authorization §Authorization
// Server Metadata Discovery), checks that its issuer is identical to issuer
// (RFC 8414 §3.3) and returns its jwks_uri.
func discoverJWKSURI(ctx context.Context, c *http.Client, issuer string) (string, error) {
	urls, err := oauth.AuthorizationServerMetadataURLs(issuer)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, u := range urls {
		var md oauth.AuthorizationServerMetadata
		if err := getJSON(ctx, c, u, &md); err != nil {
			errs = append(errs, err)
			continue
		}
		if md.Issuer != issuer {
			return "", fmt.Errorf("metadata at %q names issuer %q, want %q (RFC 8414 §3.3)", u, md.Issuer, issuer)
		}
		if err := checkJWKSURI(md.JWKSURI, issuer); err != nil {
			return "", fmt.Errorf("metadata at %q: %w", u, err)
		}
		return md.JWKSURI, nil
	}
	return "", fmt.Errorf("discover metadata of issuer %q: %w", issuer, errors.Join(errs...))
}

// checkJWKSURI requires an absolute http(s) URL, and https when the issuer
// uses https.
func checkJWKSURI(jwksURI, issuer string) error {
	u, err := url.Parse(jwksURI)
	if jwksURI == "" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("jwks_uri %q must be an absolute https URL", jwksURI)
	}
	if iu, err := url.Parse(issuer); err == nil && iu.Scheme == "https" && u.Scheme != "https" {
		return fmt.Errorf("jwks_uri %q must use https like the issuer", jwksURI)
	}
	return nil
}
