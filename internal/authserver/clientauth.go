package authserver

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpauth/mcpauth/internal/accesslog"
	"github.com/mcpauth/mcpauth/internal/safehttp"
	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAssertionAlgs is the RFC 7523 algorithm allowlist: never none, never
// HMAC (RFC 7523 §3, CIMD §8.2).
func clientAssertionAlgs() []string { return []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"} }

func joseAlgs() []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	for _, a := range clientAssertionAlgs() {
		out = append(out, jose.SignatureAlgorithm(a))
	}
	return out
}

// authenticateClient identifies and authenticates the client of a token,
// revocation or introspection request (CIMD §4.1, §8.2, RFC 7523 §3). It never
// consumes anything, so a failed authentication leaves codes usable.
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*client, error) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if !hasBasic && r.Header.Get("Authorization") != "" {
		// Ignoring it would authenticate a public client that meant to
		// send credentials, or blame a missing client_id.
		return nil, oauth.NewError(oauth.InvalidClient, "The Authorization header is not Basic credentials (RFC 6749 section 2.3.1: \"Basic \" and the base64 of client_id:client_secret). Public clients send no Authorization header.")
	}
	if hasBasic {
		var err1, err2 error
		basicID, err1 = url.QueryUnescape(basicID) // RFC 6749 §2.3.1
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return nil, oauth.NewError(oauth.InvalidClient, "The Basic credentials are not form-url-encoded (RFC 6749 §2.3.1).")
		}
	}
	id := form.Get("client_id")
	assertion := form.Get("client_assertion")
	var claims jwt.Claims
	var parsed *jwt.JSONWebToken
	if assertion != "" {
		if form.Get("client_assertion_type") != assertionType {
			return nil, oauth.NewError(oauth.InvalidClient, "client_assertion_type must be %s.", assertionType)
		}
		var err error
		parsed, err = jwt.ParseSigned(assertion, joseAlgs())
		if err != nil {
			return nil, oauth.NewError(oauth.InvalidClient, "client_assertion is not a JWT signed with one of %v (RFC 7523 section 3, CIMD section 8.2).", clientAssertionAlgs())
		}
		if err := parsed.UnsafeClaimsWithoutVerification(&claims); err != nil {
			return nil, oauth.NewError(oauth.InvalidClient, "client_assertion claims cannot be read.")
		}
		if id == "" {
			id = claims.Subject
		}
	}
	switch {
	case hasBasic && id != "" && id != basicID:
		return nil, oauth.NewError(oauth.InvalidRequest, "client_id in the body differs from the Basic credentials.")
	case hasBasic:
		id = basicID
	}
	if id == "" {
		return nil, oauth.NewError(oauth.InvalidClient, "client_id is required (OAuth 2.1 §4.1.3).")
	}
	c, err := s.loadClient(r.Context(), id)
	if err != nil {
		return nil, err
	}
	secret := form.Get("client_secret")
	if hasBasic {
		if secret != "" {
			return nil, oauth.NewError(oauth.InvalidRequest, "Use one client authentication method, not two.")
		}
		secret = basicSecret
	}
	switch c.AuthMethod {
	case "none":
		if hasBasic || secret != "" || assertion != "" {
			return nil, oauth.NewError(oauth.InvalidClient, "Client %s is a public client (token_endpoint_auth_method none): it must not send a client secret or assertion (CIMD section 4.1).", truncate(c.ID, 200))
		}
	case "client_secret_basic", "client_secret_post":
		if secret == "" || c.SecretHash == "" || !constantTimeEqual(token.Hash(secret), c.SecretHash) {
			return nil, oauth.NewError(oauth.InvalidClient, "Client authentication failed.")
		}
	case "private_key_jwt":
		if assertion == "" || hasBasic || secret != "" {
			return nil, oauth.NewError(oauth.InvalidClient, "Client %s uses private_key_jwt: send client_assertion (RFC 7523 §2.2) and no secret (RFC 7523 section 3, CIMD section 8.2).", truncate(c.ID, 200))
		}
		key, err := s.verifyAssertion(r.Context(), c, parsed, s.issuer+strings.TrimPrefix(r.URL.Path, s.base))
		if err != nil {
			return nil, err
		}
		c.AssertionKey = key
	default:
		return nil, oauth.NewError(oauth.InvalidClient, "Client %s has an unsupported authentication method.", truncate(c.ID, 200))
	}
	accesslog.SetClientID(r.Context(), c.ID)
	return c, nil
}

// assertionFutureSkew is the clock skew allowed for an assertion's iat and
// nbf (RFC 7523 §3 items 6 and 7): a client whose clock runs up to a minute
// ahead is not refused.
const assertionFutureSkew = time.Minute

// verifyAssertion checks an RFC 7523 client assertion (RFC 7523 §3, CIMD §8.2,
// RFC 7523 §3) sent to endpoint (our URL of the endpoint called)
// and returns the RFC 7638 thumbprint of the key that verified it.
func (s *Server) verifyAssertion(ctx context.Context, c *client, parsed *jwt.JSONWebToken, endpoint string) (string, error) {
	bad := func(why string) (string, error) {
		return "", oauth.NewError(oauth.InvalidClient, "client_assertion rejected: %s (RFC 7523 §3).", why)
	}
	if len(parsed.Headers) != 1 {
		return bad("exactly one signature expected")
	}
	kid := parsed.Headers[0].KeyID
	keys, err := s.clientKeys(ctx, c, kid)
	if err != nil {
		return "", err
	}
	var verified jwt.Claims
	var used *jose.JSONWebKey
	for i, k := range keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.IsPublic() && parsed.Claims(k.Key, &verified) == nil {
			used = &keys[i]
			break
		}
	}
	if used == nil {
		return bad("the signature does not verify with any key in the client's JWKS")
	}
	now := s.now()
	switch {
	case verified.Issuer != c.ID || verified.Subject != c.ID:
		return bad("iss and sub must both equal the client_id")
	case !slices.ContainsFunc(verified.Audience, func(a string) bool {
		return a == s.issuer || a == s.issuer+"/token" || a == endpoint
	}):
		return bad("aud must contain the issuer or the token endpoint URL")
	case verified.Expiry == nil || now.After(verified.Expiry.Time().Add(30*time.Second)):
		return bad("exp is missing or in the past")
	case verified.Expiry.Time().Sub(now) > 10*time.Minute:
		return bad("exp is more than 10 minutes ahead")
	case verified.IssuedAt == nil || verified.IssuedAt.Time().After(now.Add(assertionFutureSkew)):
		return bad("iat is missing or in the future")
	case verified.NotBefore != nil && verified.NotBefore.Time().After(now.Add(assertionFutureSkew)):
		return bad("nbf is " + verified.NotBefore.Time().UTC().Format(time.RFC3339) + ", in the future: the assertion is not valid yet")
	case verified.ID == "":
		return bad("jti is required")
	}
	err = s.store.RecordJTI(ctx, c.ID, verified.ID, verified.Expiry.Time().Add(time.Minute))
	if errors.Is(err, store.ErrConflict) {
		return bad("jti was used before (replay)")
	}
	if err != nil {
		return "", err
	}
	return keyThumbprint(*used)
}

// keyThumbprint is the RFC 7638 SHA-256 thumbprint of a key, base64url.
func keyThumbprint(k jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", oauth.NewError(oauth.InvalidClient, "The client's key cannot be thumbprinted (RFC 7638).")
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// keyStillPublished reports whether the key with this thumbprint is still
// among the client's keys (CIMD §8.4: a grant bound to a key that disappeared
// is revoked).
func (s *Server) keyStillPublished(ctx context.Context, c *client, thumbprint string) (bool, error) {
	keys, err := s.clientKeys(ctx, c, "")
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if tp, err := keyThumbprint(k); err == nil && tp == thumbprint {
			return true, nil
		}
	}
	return false, nil
}

// clientKeys returns the client's public keys from its document's jwks or
// its jwks_uri (fetched through safehttp, cached briefly; an unknown kid
// refetches at most once a minute).
func (s *Server) clientKeys(ctx context.Context, c *client, kid string) ([]jose.JSONWebKey, error) {
	if c.JWKS != nil {
		raw, err := json.Marshal(c.JWKS)
		if err != nil {
			return nil, err
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, oauth.NewError(oauth.InvalidClient, "The client's jwks cannot be parsed.")
		}
		return set.Keys, nil
	}
	if c.JWKSURI == "" {
		return nil, oauth.NewError(oauth.InvalidClient, "The client publishes no keys.")
	}
	return s.jwksCache.get(ctx, s.fetch, c.JWKSURI, kid, s.now())
}

type jwksEntry struct {
	keys    []jose.JSONWebKey
	fetched time.Time
}

// jwksCache caches client jwks_uri documents.
type jwksCache struct {
	mu      sync.Mutex
	entries map[string]jwksEntry
}

func (jc *jwksCache) get(ctx context.Context, f *safehttp.Client, uri, kid string, now time.Time) ([]jose.JSONWebKey, error) {
	jc.mu.Lock()
	e, ok := jc.entries[uri]
	jc.mu.Unlock()
	known := ok && (kid == "" || slices.ContainsFunc(e.keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid }))
	if ok && now.Sub(e.fetched) < 5*time.Minute && (known || now.Sub(e.fetched) < time.Minute) {
		return e.keys, nil
	}
	resp, err := f.Fetch(ctx, safehttp.Request{URL: uri, Accept: "application/jwk-set+json, application/json"})
	if err != nil {
		return nil, oauth.NewError(oauth.InvalidClient, "The client's jwks_uri could not be fetched: %v (CIMD section 8.6).", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(resp.Body, &set); err != nil {
		return nil, oauth.NewError(oauth.InvalidClient, "The client's jwks_uri did not return a JWK Set.")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, oauth.NewError(oauth.InvalidClient, "The client's jwks_uri publishes private or symmetric key material (CIMD section 4.1).")
		}
	}
	jc.mu.Lock()
	if jc.entries == nil || len(jc.entries) > 10000 {
		jc.entries = map[string]jwksEntry{}
	}
	jc.entries[uri] = jwksEntry{keys: set.Keys, fetched: now}
	jc.mu.Unlock()
	return set.Keys, nil
}
