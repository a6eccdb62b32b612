package resource

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpauth/mcpauth/oauth"
)

// testResource is the MCP endpoint the tests protect.
const testResource = "https://mcp.example.com/mcp"

// testIssuer is an authorization server on loopback that publishes RFC 8414
// metadata and a JWKS whose keys a test can change at any time.
type testIssuer struct {
	srv          *httptest.Server
	mu           sync.Mutex
	keys         []jose.JSONWebKey
	jwksStatus   int    // 0 means 200
	metaIssuer   string // issuer to advertise; empty means the real one
	jwksHits     atomic.Int32
	metadataHits atomic.Int32
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	is := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+oauth.WellKnownAuthorizationServer, func(w http.ResponseWriter, r *http.Request) {
		is.metadataHits.Add(1)
		is.mu.Lock()
		iss := is.metaIssuer
		is.mu.Unlock()
		if iss == "" {
			iss = is.srv.URL
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(oauth.AuthorizationServerMetadata{
			Issuer:                 iss,
			AuthorizationEndpoint:  is.srv.URL + "/authorize",
			TokenEndpoint:          is.srv.URL + "/token",
			JWKSURI:                is.srv.URL + "/jwks",
			ResponseTypesSupported: []string{"code"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		if is.jwksStatus != 0 {
			w.WriteHeader(is.jwksStatus)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.keys})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *testIssuer) URL() string { return is.srv.URL }

// publish replaces the JWKS with the public halves of keys.
func (is *testIssuer) publish(keys ...testKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = nil
	for _, k := range keys {
		is.keys = append(is.keys, k.publicJWK())
	}
}

func (is *testIssuer) setJWKSStatus(code int) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.jwksStatus = code
}

// verifier returns a JWTVerifier for is protecting testResource.
func (is *testIssuer) verifier(t testing.TB, mod func(*JWTOptions)) *JWTVerifier {
	t.Helper()
	opts := JWTOptions{Issuer: is.URL(), Resource: testResource, Client: is.srv.Client()}
	if mod != nil {
		mod(&opts)
	}
	v, err := NewJWTVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims returns a valid RFC 9068 claims set from is for testResource.
func (is *testIssuer) claims(scope string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":       is.URL(),
		"sub":       "user-1",
		"aud":       testResource,
		"client_id": "https://client.example.com/cimd.json",
		"scope":     scope,
		"iat":       now.Unix(),
		"exp":       now.Add(10 * time.Minute).Unix(),
		"jti":       "jti-1",
	}
}

// testKey is a signing key of the test issuer.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newES256Key(t testing.TB, kid string) testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jose.ES256, priv: priv}
}

// mint signs claims as an at+jwt with k. Extra header members in hdr are
// added; a "typ" entry replaces the default.
func (k testKey) mint(t testing.TB, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	typ := any("at+jwt")
	if v, ok := hdr["typ"]; ok {
		typ = v
	}
	if typ != nil {
		opts = opts.WithType(jose.ContentType(typ.(string)))
	}
	for name, v := range hdr {
		if name != "typ" {
			opts = opts.WithHeader(jose.HeaderKey(name), v)
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, signer, claims)
}

// publicJWK returns k's public key as a JWK, for a jwk header.
func (k testKey) publicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// hmacToken signs claims with HS256 keyed by the JSON of k's public JWK, the
// algorithm confusion attack on verifiers that pick the algorithm from the
// token.
func hmacToken(t testing.TB, k testKey, claims map[string]any) string {
	t.Helper()
	secret, err := json.Marshal(k.publicJWK())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), k.kid))
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, signer, claims)
}

// tamperPayload replaces the payload of token with claims, keeping its
// header and signature.
func tamperPayload(t testing.TB, token string, claims map[string]any) string {
	t.Helper()
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
}

func signPayload(t testing.TB, signer jose.Signer, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsignedToken builds a compact JWS by hand, for alg none and other tokens
// no honest signer produces.
func unsignedToken(t testing.TB, header, claims map[string]any, sig string) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + sig
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// okHandler records that it ran and what it saw.
type okHandler struct {
	calls int
	info  *TokenInfo
	auth  string
}

func (h *okHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls++
	h.info = TokenInfoFromContext(r.Context())
	h.auth = r.Header.Get("Authorization")
	w.WriteHeader(http.StatusNoContent)
}
