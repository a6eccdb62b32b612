package authserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpauth/mcpauth/oauth"
)

// clientKey is a private_key_jwt client's signing key.
type clientKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newClientKey(t *testing.T, kid string) clientKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{priv: k, kid: kid}
}

// publicJWK is the key as a client publishes it (CIMD-02 §4.1: public only).
func (k clientKey) publicJWK(t *testing.T) json.RawMessage {
	t.Helper()
	b, err := jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jwks(t *testing.T, keys ...clientKey) map[string]any {
	t.Helper()
	var list []json.RawMessage
	for _, k := range keys {
		list = append(list, k.publicJWK(t))
	}
	return map[string]any{"keys": list}
}

// assertionClaims are valid RFC 7523 claims for client at h's clock.
func (h *harness) assertionClaims(client string) jwt.Claims {
	now := h.clock.now()
	return jwt.Claims{Issuer: client, Subject: client, Audience: jwt.Audience{h.issuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), ID: randomID(12)}
}

// sign makes a client assertion with k (ES256).
func (k clientKey) sign(t *testing.T, c jwt.Claims) string {
	t.Helper()
	return signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, c)
}

// signJWT signs claims as a JWT with key.
func signJWT(t *testing.T, key jose.SigningKey, c jwt.Claims) string {
	t.Helper()
	s, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withAssertion adds RFC 7523 §2.2 client authentication to a form.
func withAssertion(form url.Values, assertion string) url.Values {
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", assertion)
	return form
}

// TestPrivateKeyJWT runs docs/security.md attack 52, RFC 7523 §3, CIMD §8.2
// against a private_key_jwt client whose keys are inline (jwks) and one that
// publishes a jwks_uri.
func TestPrivateKeyJWT(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	key := newClientKey(t, "k1")
	id := h.publishClient("/confidential.json", func(d map[string]any) {
		d["token_endpoint_auth_method"] = "private_key_jwt"
		d["jwks"] = jwks(t, key)
	})
	b := h.newBrowser()
	c, p := b.code(id)

	t.Run("F6 valid assertion", func(t *testing.T) {
		h := h.in(t)
		mustTokens(t, h.token(withAssertion(codeForm(id, c, p), key.sign(t, h.assertionClaims(id))), nil))
	})

	other := newClientKey(t, "k1") // same kid, key not in the JWKS
	hs256 := func(t *testing.T, cl jwt.Claims) string {
		return signJWT(t, jose.SigningKey{Algorithm: jose.HS256, Key: []byte(key.publicJWK(t))}, cl)
	}
	none := func(t *testing.T, cl jwt.Claims) string {
		payload, err := json.Marshal(cl)
		if err != nil {
			t.Fatal(err)
		}
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
	}
	bad := []struct {
		name string
		make func(t *testing.T, cl jwt.Claims) string
		edit func(cl *jwt.Claims)
	}{
		{"attack 52 alg none", none, nil},
		{"attack 52 HS256 with the public key as secret", hs256, nil},
		{"attack 52 wrong aud", nil, func(cl *jwt.Claims) { cl.Audience = jwt.Audience{"https://other-as.example"} }},
		{"attack 52 iss differs from sub", nil, func(cl *jwt.Claims) { cl.Issuer = "https://evil.example/c.json" }},
		{"attack 52 sub differs from client_id", nil, func(cl *jwt.Claims) { cl.Subject = "https://evil.example/c.json" }},
		{"attack 52 expired", nil, func(cl *jwt.Claims) { cl.Expiry = jwt.NewNumericDate(h.clock.now().Add(-2 * time.Minute)) }},
		{"F6 exp missing", nil, func(cl *jwt.Claims) { cl.Expiry = nil }},
		{"F6 jti missing", nil, func(cl *jwt.Claims) { cl.ID = "" }},
		{"F6 iat missing", nil, func(cl *jwt.Claims) { cl.IssuedAt = nil }},
		{"F6 iat in the future", nil, func(cl *jwt.Claims) { cl.IssuedAt = jwt.NewNumericDate(h.clock.now().Add(5 * time.Minute)) }},
		{"F6 exp too far ahead", nil, func(cl *jwt.Claims) { cl.Expiry = jwt.NewNumericDate(h.clock.now().Add(time.Hour)) }},
		{"RFC 7523 nbf in the future", nil, func(cl *jwt.Claims) { cl.NotBefore = jwt.NewNumericDate(h.clock.now().Add(2 * time.Minute)) }},
		{"attack 52 key not in the client's JWKS", func(t *testing.T, cl jwt.Claims) string { return other.sign(t, cl) }, nil},
		{"attack 52 unknown kid", func(t *testing.T, cl jwt.Claims) string { return clientKey{key.priv, "k2"}.sign(t, cl) }, nil},
		{"attack 52 not a JWT", func(*testing.T, jwt.Claims) string { return "not.a.jwt" }, nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			c, p := b.code(id)
			cl := h.assertionClaims(id)
			if tc.edit != nil {
				tc.edit(&cl)
			}
			mk := tc.make
			if mk == nil {
				mk = key.sign
			}
			wantError(t, h.token(withAssertion(codeForm(id, c, p), mk(t, cl)), nil), http.StatusUnauthorized, oauth.InvalidClient)
			// F2: a failed client authentication does not consume the code.
			mustTokens(t, h.token(withAssertion(codeForm(id, c, p), key.sign(t, h.assertionClaims(id))), nil))
		})
	}
	t.Run("attack 52 replayed jti", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c1, p1 := b.code(id)
		c2, p2 := b.code(id)
		a := key.sign(t, h.assertionClaims(id))
		mustTokens(t, h.token(withAssertion(codeForm(id, c1, p1), a), nil))
		wantError(t, h.token(withAssertion(codeForm(id, c2, p2), a), nil), http.StatusUnauthorized, oauth.InvalidClient)
	})
	forms := []struct {
		name string
		edit func(url.Values)
		ok   bool
	}{
		{"F6 no assertion", func(f url.Values) { f.Del("client_assertion"); f.Del("client_assertion_type") }, false},
		{"F6 wrong client_assertion_type", set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"), false},
		{"F6 assertion and a secret", set("client_secret", "x"), false},
		{"F6 assertion and Basic auth", nil, false},
		{"F6 client_id taken from the assertion", del("client_id"), true},
	}
	for _, tc := range forms {
		t.Run(tc.name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			c, p := b.code(id)
			form := withAssertion(codeForm(id, c, p), key.sign(t, h.assertionClaims(id)))
			basic := func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), "x") }
			if tc.edit != nil {
				tc.edit(form)
				basic = nil
			}
			if tr := h.token(form, basic); tc.ok {
				mustTokens(t, tr)
			} else {
				wantError(t, tr, http.StatusUnauthorized, oauth.InvalidClient)
			}
		})
	}
	t.Run("RFC 7523 nbf honoured with the iat skew", func(t *testing.T) {
		tests := []struct {
			name    string
			nbf     time.Duration // from now
			wantErr bool
		}{
			{"nbf in the past", -time.Minute, false},
			{"nbf within the skew", 50 * time.Second, false},
			{"nbf beyond the skew", 61 * time.Second, true},
			{"nbf far ahead", 5 * time.Minute, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h, b := h.in(t), b.in(t)
				c, p := b.code(id)
				cl := h.assertionClaims(id)
				cl.NotBefore = jwt.NewNumericDate(h.clock.now().Add(tt.nbf))
				tr := h.token(withAssertion(codeForm(id, c, p), key.sign(t, cl)), nil)
				if !tt.wantErr {
					mustTokens(t, tr)
					return
				}
				wantError(t, tr, http.StatusUnauthorized, oauth.InvalidClient)
				if !strings.Contains(tr.ErrorDescription, "nbf is") || !strings.Contains(tr.ErrorDescription, "not valid yet") {
					t.Errorf("error_description %q does not say nbf is in the future", tr.ErrorDescription)
				}
			})
		}
	})
	t.Run("F6 aud may be the token endpoint", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		cl := h.assertionClaims(id)
		cl.Audience = jwt.Audience{h.issuer + "/token"}
		mustTokens(t, h.token(withAssertion(codeForm(id, c, p), key.sign(t, cl)), nil))
	})
	t.Run("F6 refresh needs an assertion too", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		tr := mustTokens(t, h.token(withAssertion(codeForm(id, c, p), key.sign(t, h.assertionClaims(id))), nil))
		wantError(t, h.refresh(id, tr.RefreshToken), http.StatusUnauthorized, oauth.InvalidClient)
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {id}}
		mustTokens(t, h.token(withAssertion(form, key.sign(t, h.assertionClaims(id))), nil))
	})
}

// TestPrivateKeyJWTKeyChanges checks CIMD §8.4, docs/security.md attack 34 for
// a private_key_jwt client with a jwks_uri: a grant survives a key being
// added, and is revoked when its key disappears or the document downgrades
// to none.
func TestPrivateKeyJWTKeyChanges(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	k1, k2 := newClientKey(t, "k1"), newClientKey(t, "k2")
	h.publishJSON("/jwks.json", jwks(t, k1), nil)
	id := h.publishClient("/confidential.json", func(d map[string]any) {
		d["token_endpoint_auth_method"] = "private_key_jwt"
		d["jwks_uri"] = h.docs.url("/jwks.json")
	})
	b := h.newBrowser()
	grant := func(t *testing.T, k clientKey) tokenResult {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		return mustTokens(t, h.token(withAssertion(codeForm(id, c, p), k.sign(t, h.assertionClaims(id))), nil))
	}
	refresh := func(t *testing.T, k clientKey, rt string) tokenResult {
		h := h.in(t)
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {id}}
		return h.token(withAssertion(form, k.sign(t, h.assertionClaims(id))), nil)
	}

	first := grant(t, k1)
	t.Run("B14 keys from jwks_uri; a new key keeps the grant", func(t *testing.T) {
		h.publishJSON("/jwks.json", jwks(t, k1, k2), nil)
		h.clock.advance(time.Minute) // an unknown kid refetches the JWKS at most once a minute
		first = mustTokens(t, refresh(t, k2, first.RefreshToken))
	})
	t.Run("D6 the grant's key removed revokes the grant", func(t *testing.T) {
		h := h.in(t)
		h.publishJSON("/jwks.json", jwks(t, k2), nil)
		h.clock.advance(6 * time.Minute) // past the JWKS cache
		wantError(t, refresh(t, k2, first.RefreshToken), http.StatusBadRequest, oauth.InvalidGrant)
		if in := h.introspect(first.AccessToken); in.Active {
			t.Errorf("access token of the revoked grant active")
		}
	})
	t.Run("attack 34 auth method downgraded to none", func(t *testing.T) {
		h := h.in(t)
		tr := grant(t, k2)
		h.publishClient("/confidential.json", nil) // token_endpoint_auth_method none
		h.clock.advance(6 * time.Minute)
		wantError(t, h.refresh(id, tr.RefreshToken), http.StatusBadRequest, oauth.InvalidGrant)
		if in := h.introspect(tr.RefreshToken); in.Active {
			t.Errorf("refresh token of the downgraded grant active")
		}
	})
}

// TestMalformedAuthorizationHeader: an Authorization header that is not
// Basic credentials is refused (CIMD §4.1), not ignored: ignoring it issued
// tokens to a public client that meant to authenticate, and told other
// callers that client_id was missing.
func TestMalformedAuthorizationHeader(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	b := h.newBrowser()
	for _, hdr := range []string{"Basic !!!notbase64", "Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")), "Bearer x"} {
		p := newPKCE()
		q := authParams(id, p)
		cb := b.authorizeCode(q)
		tr := h.token(codeForm(id, cb.Get("code"), p), func(r *http.Request) { r.Header.Set("Authorization", hdr) })
		if tr.Status != http.StatusUnauthorized || tr.Error != string(oauth.InvalidClient) || tr.Header.Get("WWW-Authenticate") == "" ||
			!strings.Contains(tr.ErrorDescription, "Authorization header") {
			t.Errorf("Authorization %q: %d %s %q (WWW-Authenticate %q), want 401 invalid_client naming the header",
				hdr, tr.Status, tr.Error, tr.ErrorDescription, tr.Header.Get("WWW-Authenticate"))
		}
		if tr := h.redeem(id, cb.Get("code"), p); tr.Status != http.StatusOK {
			t.Errorf("the code after a refused authentication: %d %s, want it still usable (CIMD section 4.1)", tr.Status, tr.Error)
		}
	}
	var e struct{ Error string }
	status, _ := h.postForm("/introspect", url.Values{"token": {"x"}}, &e, func(r *http.Request) { r.Header.Set("Authorization", "Bearer rs-token") })
	if status != http.StatusUnauthorized || e.Error != string(oauth.InvalidClient) {
		t.Errorf("introspect with a Bearer header: %d %s, want 401 invalid_client", status, e.Error)
	}
}
