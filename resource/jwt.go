// This file verifies JWT access tokens: RFC 9068 §4 (validation), RFC 7515
// (JWS compact serialisation), RFC 7518 §3 (signature algorithms).

package resource

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpauth/mcpauth/oauth"
)

// Defaults of JWTOptions.
const (
	// DefaultJWKSMaxAge is how long a fetched JWKS is used before it is
	// fetched again, which bounds how long a key removed by the issuer stays
	// trusted.
	DefaultJWKSMaxAge = 5 * time.Minute
	// DefaultJWKSMinRefresh is the shortest time between two JWKS fetches,
	// which bounds the fetches that tokens with unknown kids can cause.
	DefaultJWKSMinRefresh = 30 * time.Second
)

// SupportedAlgorithms returns the JWS algorithms (RFC 7518 §3.1, RFC 8037
// §3.1) JWTVerifier can check, which are also the default allowlist. none
// and the HMAC algorithms are never accepted: a resource server holds no
// shared secret, and accepting them lets anyone mint tokens
// (RFC 9068 §4, OAuth 2.1 §5.2).
func SupportedAlgorithms() []string {
	return []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
}

// JWTOptions configures NewJWTVerifier. Issuer, Resource and Client are
// required.
type JWTOptions struct {
	// Issuer is the trusted authorization server's issuer identifier. A
	// token's iss must equal it exactly (RFC 9068 §4), and its RFC 8414
	// metadata is where jwks_uri is found.
	Issuer string
	// Resource is this MCP server's URL; a token's aud must include it after
	// canonicalisation on both sides (oauth.CanonicalResource; RFC 9068 §4,
	// OAuth 2.1 §5.2, RFC 8707 §2, MCP 2025-11-25 Authorization §Canonical
	// Server URI).
	Resource string
	// Client fetches the issuer's metadata and JWKS. It is required (never
	// http.DefaultClient); give it a Timeout. Redirects are not followed.
	Client *http.Client
	// JWKSURL, if set, is used instead of discovering jwks_uri from the
	// issuer's metadata.
	JWKSURL string
	// Algorithms is the allowlist of JWS algorithms. Zero means
	// SupportedAlgorithms(). none and HS* are refused.
	Algorithms []string
	// Types lists the accepted typ header values, compared without regard to
	// case. Zero means "at+jwt" and "application/at+jwt" (RFC 9068 §4); set
	// it only to accept tokens from servers that do not implement RFC 9068.
	Types []string
	// Leeway is the clock skew allowed for exp, nbf and iat. Zero means
	// DefaultLeeway; it is capped at 5 minutes.
	Leeway time.Duration
	// JWKSMaxAge and JWKSMinRefresh tune the key cache. Zero means
	// DefaultJWKSMaxAge and DefaultJWKSMinRefresh; JWKSMaxAge is raised to at
	// least JWKSMinRefresh.
	JWKSMaxAge     time.Duration
	JWKSMinRefresh time.Duration
	// AllowMissingSubOrClientID accepts tokens without a sub claim or
	// without a client_id claim. The zero value rejects them, as RFC 9068
	// §2.2 requires both (azp, which some OpenID providers send instead, is
	// taken for client_id). Set it only for an issuer that leaves them out,
	// and do not rely on TokenInfo.Subject or ClientID then.
	AllowMissingSubOrClientID bool
	// Now is the clock. Zero means time.Now.
	Now func() time.Time
}

// JWTVerifier verifies JWT access tokens (RFC 9068) signed by one issuer,
// with keys from the issuer's JWKS. It checks, in order: the JWS compact
// form and the algorithm allowlist (both with go-jose), typ, no crit or
// b64 header, the signature (go-jose) with a key from the issuer's JWKS
// selected by kid (never a key named by the token itself: jwk, jku, x5u and
// x5c headers are not used), then iss, aud (OAuth 2.1 §5.2, RFC 8707 §2), exp
// (required), nbf, iat, and that sub and client_id are present (RFC 9068 §2.2;
// see JWTOptions.AllowMissingSubOrClientID). The JWKS is fetched on first use,
// so construction does no I/O and a server starts while its authorization
// server is down.
//
// go-jose decodes base64url leniently (stray bits after the last byte,
// line breaks), so a few spellings of one token verify alike; RequireBearer
// lets no line break through. Not supported: encrypted tokens (JWE), nested
// JWTs, the RFC 7797 b64 header. A JWTVerifier is safe for concurrent use.
type JWTVerifier struct {
	issuer   string
	resource string
	types    []string
	leeway   time.Duration
	now      func() time.Time
	keys     *keySource
	// algs is the allowlist handed to go-jose, which refuses any other alg
	// before looking further.
	algs            []jose.SignatureAlgorithm
	allowMissingIDs bool
}

var _ TokenVerifier = (*JWTVerifier)(nil)

// NewJWTVerifier checks opts and returns a verifier. It does no I/O.
func NewJWTVerifier(opts JWTOptions) (*JWTVerifier, error) {
	if opts.Client == nil {
		return nil, errors.New("JWTOptions.Client is required; pass an *http.Client with a Timeout")
	}
	if _, err := oauth.AuthorizationServerMetadataURLs(opts.Issuer); err != nil {
		return nil, fmt.Errorf("JWTOptions.Issuer: %w", err)
	}
	resource, err := oauth.CanonicalResource(opts.Resource)
	if err != nil {
		return nil, fmt.Errorf("JWTOptions.Resource: %w", err)
	}
	if opts.JWKSURL != "" {
		if err := checkJWKSURI(opts.JWKSURL, opts.Issuer); err != nil {
			return nil, fmt.Errorf("JWTOptions.JWKSURL: %w", err)
		}
	}
	supported := SupportedAlgorithms()
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = supported
	}
	for _, a := range algs {
		if !slices.Contains(supported, a) {
			return nil, fmt.Errorf("JWTOptions.Algorithms: %q is not allowed; choose from %q (never none or HMAC)", a, supported)
		}
	}
	types := opts.Types
	if len(types) == 0 {
		types = []string{"at+jwt", "application/at+jwt"}
	}
	v := &JWTVerifier{
		issuer:          opts.Issuer,
		resource:        resource,
		types:           slices.Clone(types),
		leeway:          min(cmp.Or(opts.Leeway, DefaultLeeway), 5*time.Minute),
		now:             opts.Now,
		allowMissingIDs: opts.AllowMissingSubOrClientID,
	}
	for _, a := range algs {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	if v.now == nil {
		v.now = time.Now
	}
	minRefresh := cmp.Or(opts.JWKSMinRefresh, DefaultJWKSMinRefresh)
	v.keys = &keySource{
		client:     noRedirects(opts.Client),
		issuer:     opts.Issuer,
		jwksURL:    opts.JWKSURL,
		maxAge:     max(cmp.Or(opts.JWKSMaxAge, DefaultJWKSMaxAge), minRefresh),
		minRefresh: minRefresh,
		now:        v.now,
	}
	return v, nil
}

// LoadKeys makes sure the issuer's signing keys are loaded, for a
// readiness check: nil once a JWKS has been fetched, else it fetches one now
// (at most once per JWKSMinRefresh; in between it returns the last error).
func (v *JWTVerifier) LoadKeys(ctx context.Context) error {
	if v.keys.set.Load() != nil {
		return nil
	}
	_, err := v.keys.refresh(ctx, nil, false)
	return err
}

// VerifyToken implements TokenVerifier. Rejections wrap ErrInvalidToken
// (ErrTokenExpired for an expired token); failing to fetch the issuer's keys
// gives an error that does not.
func (v *JWTVerifier) VerifyToken(ctx context.Context, token string) (*TokenInfo, error) {
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		return nil, parseError(token, err)
	}
	hdr := jws.Signatures[0].Header // a compact JWS has exactly one
	typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string)
	switch {
	case !slices.ContainsFunc(v.types, func(t string) bool { return strings.EqualFold(t, typ) }):
		return nil, fmt.Errorf("%w: typ %q is not an access token type %q (RFC 9068 §4)", ErrInvalidToken, typ, v.types)
	case hdr.ExtraHeaders["crit"] != nil || hdr.ExtraHeaders["b64"] != nil:
		// go-jose would honour b64 (RFC 7797); access tokens never use it.
		return nil, fmt.Errorf("%w: crit or b64 header names an extension this verifier does not support (RFC 7515 §4.1.11, RFC 7797)", ErrInvalidToken)
	}
	keys, err := v.keys.candidates(ctx, hdr.KeyID, hdr.Algorithm)
	if err != nil {
		return nil, err
	}
	var payload []byte
	verified := slices.ContainsFunc(keys, func(k publicKey) bool {
		p, err := jws.Verify(k.key)
		payload = p
		return err == nil
	})
	if !verified {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalidToken)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrInvalidToken, err)
	}
	if err := c.check(v.now(), v.issuer, v.resource, v.leeway, true); err != nil {
		return nil, err
	}
	if !v.allowMissingIDs {
		switch {
		case c.Sub == "":
			return nil, fmt.Errorf("%w: no sub claim (RFC 9068 §2.2)", ErrInvalidToken)
		case c.ClientID == "" && c.Azp == "":
			return nil, fmt.Errorf("%w: no client_id claim (RFC 9068 §2.2)", ErrInvalidToken)
		}
	}
	return c.tokenInfo(payload), nil
}

// parseError turns go-jose's refusal of a compact JWS into an invalid_token
// error naming the part at fault: the serialisation, the algorithm, or the
// first segment that is not base64url (the header when all are, since its
// JSON is then what failed).
func parseError(token string, err error) error {
	if algErr := (*jose.ErrUnexpectedSignatureAlgorithm)(nil); errors.As(err, &algErr) {
		return fmt.Errorf("%w: alg %q is not allowed", ErrInvalidToken, algErr.Got)
	}
	segments := strings.Split(token, ".")
	if len(segments) != 3 {
		return fmt.Errorf("%w: not a JWS compact serialisation (JWE and unsecured JWTs are not accepted)", ErrInvalidToken)
	}
	part := "header"
	for i, name := range []string{"header", "payload", "signature"} {
		if _, e := base64.RawURLEncoding.DecodeString(segments[i]); e != nil {
			part = name
			break
		}
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalidToken, part, err)
}

// keyFitsAlg reports whether key can verify alg (RFC 7518 §3.1): EC keys on
// the curve the algorithm names, RSA keys for RS and PS, Ed25519 for EdDSA.
func keyFitsAlg(key crypto.PublicKey, alg string) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256() ||
			alg == "ES384" && k.Curve == elliptic.P384() ||
			alg == "ES512" && k.Curve == elliptic.P521()
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
