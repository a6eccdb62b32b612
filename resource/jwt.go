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
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

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
// shared secret, and accepting them lets anyone mint tokens (attack 58).
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
	// SPEC H8, H10).
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
	// Now is the clock. Zero means time.Now.
	Now func() time.Time
}

// JWTVerifier verifies JWT access tokens (RFC 9068) signed by one issuer,
// with keys from the issuer's JWKS. It checks, in order: the JWS compact
// form, typ, the algorithm allowlist, no crit header, the signature with a
// key from the issuer's JWKS selected by kid (never a key named by the
// token itself: jwk, jku, x5u and x5c headers are ignored), then iss, aud
// (SPEC H8), exp (required), nbf and iat. The JWKS is fetched on first use,
// so construction does no I/O and a server starts while its authorization
// server is down.
//
// Not supported: encrypted tokens (JWE), nested JWTs, the RFC 7797 b64
// header. A JWTVerifier is safe for concurrent use.
type JWTVerifier struct {
	issuer   string
	resource string
	algs     []string
	types    []string
	leeway   time.Duration
	now      func() time.Time
	keys     *keySource
	b64      *base64.Encoding // strict unpadded base64url (RFC 7515 §2)
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
		issuer:   opts.Issuer,
		resource: resource,
		algs:     slices.Clone(algs),
		types:    slices.Clone(types),
		leeway:   min(cmp.Or(opts.Leeway, DefaultLeeway), 5*time.Minute),
		now:      opts.Now,
		b64:      base64.RawURLEncoding.Strict(),
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

// jwsHeader holds the JOSE header members verification reads.
type jwsHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// VerifyToken implements TokenVerifier. Rejections wrap ErrInvalidToken
// (ErrTokenExpired for an expired token); failing to fetch the issuer's keys
// gives an error that does not.
func (v *JWTVerifier) VerifyToken(ctx context.Context, token string) (*TokenInfo, error) {
	headerB64, rest, ok1 := strings.Cut(token, ".")
	payloadB64, sigB64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sigB64, ".") {
		return nil, fmt.Errorf("%w: not a JWS compact serialisation (JWE and unsecured JWTs are not accepted)", ErrInvalidToken)
	}
	var hdr jwsHeader
	if err := v.decodeSegment(headerB64, &hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrInvalidToken, err)
	}
	switch {
	case !slices.ContainsFunc(v.types, func(t string) bool { return strings.EqualFold(t, hdr.Typ) }):
		return nil, fmt.Errorf("%w: typ %q is not an access token type %q (RFC 9068 §4)", ErrInvalidToken, hdr.Typ, v.types)
	case !slices.Contains(v.algs, hdr.Alg):
		return nil, fmt.Errorf("%w: alg %q is not allowed", ErrInvalidToken, hdr.Alg)
	case hdr.Crit != nil:
		return nil, fmt.Errorf("%w: crit header names extensions this verifier does not understand", ErrInvalidToken)
	}
	sig, err := v.b64.DecodeString(sigB64)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrInvalidToken, err)
	}
	keys, err := v.keys.candidates(ctx, hdr.Kid, hdr.Alg)
	if err != nil {
		return nil, err
	}
	signingInput := token[:len(headerB64)+1+len(payloadB64)]
	if !slices.ContainsFunc(keys, func(k publicKey) bool { return verifySignature(hdr.Alg, k.key, signingInput, sig) }) {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalidToken)
	}
	payload, err := v.b64.DecodeString(payloadB64)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrInvalidToken, err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrInvalidToken, err)
	}
	if err := c.check(v.now(), v.issuer, v.resource, v.leeway, true); err != nil {
		return nil, err
	}
	return c.tokenInfo(payload), nil
}

func (v *JWTVerifier) decodeSegment(seg string, dst any) error {
	b, err := v.b64.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
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

// verifySignature checks a JWS signature (RFC 7518 §3.3-3.5, RFC 8037 §3.1).
// key must fit alg (keyFitsAlg).
func verifySignature(alg string, key crypto.PublicKey, signingInput string, sig []byte) bool {
	if alg == "EdDSA" {
		k, ok := key.(ed25519.PublicKey)
		return ok && ed25519.Verify(k, []byte(signingInput), sig)
	}
	var h crypto.Hash
	var digest []byte
	switch alg[2:] {
	case "256":
		d := sha256.Sum256([]byte(signingInput))
		h, digest = crypto.SHA256, d[:]
	case "384":
		d := sha512.Sum384([]byte(signingInput))
		h, digest = crypto.SHA384, d[:]
	case "512":
		d := sha512.Sum512([]byte(signingInput))
		h, digest = crypto.SHA512, d[:]
	default:
		return false
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false
		}
		r := new(big.Int).SetBytes(sig[:n])
		s := new(big.Int).SetBytes(sig[n:])
		return ecdsa.Verify(k, digest, r, s)
	case *rsa.PublicKey:
		if alg[0] == 'P' {
			return rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
	}
	return false
}
