package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// code runs the front channel for client and returns a fresh code and its
// PKCE pair.
func (b *browser) code(client string) (string, pkce) {
	b.h.t.Helper()
	p := newPKCE()
	cb := b.authorizeCode(authParams(client, p))
	return cb.Get("code"), p
}

// codeForm is a valid authorization_code token request.
func codeForm(client, code string, p pkce) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.verifier},
		"client_id": {client}, "redirect_uri": {testRedirect}, "resource": {testResource}}
}

// TestTokenAttacks runs attack cases 45-51, 53 and 54 and OAuth 2.1 §4.1.3
// against /token.
func TestTokenAttacks(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	noRefresh := h.publishClient("/no-refresh.json", func(d map[string]any) { d["grant_types"] = []string{"authorization_code"} })
	b := h.newBrowser()
	b.flow(id, nil)
	b.flow(noRefresh, nil)

	t.Run("attack 45 code reuse revokes tokens", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		first := mustTokens(t, h.redeem(id, c, p))
		wantError(t, h.redeem(id, c, p), http.StatusBadRequest, oauth.InvalidGrant)
		if in := h.introspect(first.AccessToken); in.Active {
			t.Errorf("access token from the first redemption still active: %+v", in)
		}
		wantError(t, h.refresh(id, first.RefreshToken), http.StatusBadRequest, oauth.InvalidGrant)
	})

	verifiers := []struct {
		name     string
		verifier func(p pkce) string
		code     oauth.ErrorCode
	}{
		{"attack 46 wrong code_verifier", func(pkce) string { return newPKCE().verifier }, oauth.InvalidGrant},
		{"attack 46 missing code_verifier", func(pkce) string { return "" }, oauth.InvalidRequest},
		{"attack 46 code_verifier shorter than 43", func(p pkce) string { return p.verifier[:42] }, oauth.InvalidGrant},
		{"attack 46 code_verifier longer than 128", func(pkce) string { return strings.Repeat("a", 129) }, oauth.InvalidGrant},
		{"attack 46 code_verifier with a forbidden character", func(p pkce) string { return p.verifier[:42] + "+" }, oauth.InvalidGrant},
		{"F1 the challenge itself as verifier", func(p pkce) string { return p.challenge }, oauth.InvalidGrant},
	}
	for _, tc := range verifiers {
		t.Run(tc.name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			c, p := b.code(id)
			form := codeForm(id, c, p)
			form.Set("code_verifier", tc.verifier(p))
			if form.Get("code_verifier") == "" {
				form.Del("code_verifier")
			}
			wantError(t, h.token(form, nil), http.StatusBadRequest, tc.code)
		})
	}

	// The token endpoint reads codes this process issued from memory
	// (codeCache); the store still decides single use.
	t.Run("F2 a failed exchange does not lose the code", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		form := codeForm(id, c, p)
		form.Set("code_verifier", newPKCE().verifier)
		wantError(t, h.token(form, nil), http.StatusBadRequest, oauth.InvalidGrant)
		mustTokens(t, h.redeem(id, c, p)) // now read from the database
	})
	t.Run("F2 a code redeemed through another replica fails here", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		cd, err := h.db.GetCode(t.Context(), token.Hash(c))
		if err != nil {
			t.Fatal(err)
		}
		now := h.clock.now()
		fam := store.Family{ID: cd.FamilyID, ClientID: id, UserID: cd.UserID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := h.db.RedeemCode(t.Context(), cd.Hash, now, fam, nil); err != nil {
			t.Fatalf("redeem in the store: %v", err)
		}
		wantError(t, h.redeem(id, c, p), http.StatusBadRequest, oauth.InvalidGrant)
	})
	t.Run("F2 a code revoked from the account page fails although cached", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		if err := h.db.RevokeClient(t.Context(), h.user.ID, id, h.clock.now()); err != nil {
			t.Fatal(err)
		}
		wantError(t, h.redeem(id, c, p), http.StatusBadRequest, oauth.InvalidGrant)
	})

	t.Run("attack 47 code redeemed by another client", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		wantError(t, h.redeem(noRefresh, c, p), http.StatusBadRequest, oauth.InvalidGrant)
	})
	t.Run("attack 48 expired code", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		cd, err := h.db.GetCode(context.Background(), token.Hash(c))
		if err != nil {
			t.Fatal(err)
		}
		if life := cd.ExpiresAt.Sub(h.clock.now()); life <= 0 || life > 10*time.Minute {
			t.Errorf("E10 code lifetime %v, want at most 10 minutes", life)
		}
		h.clock.advance(cd.ExpiresAt.Sub(h.clock.now()))
		wantError(t, h.redeem(id, c, p), http.StatusBadRequest, oauth.InvalidGrant)
	})
	t.Run("attack 49 redirect_uri differs from the code's", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		form := codeForm(id, c, p)
		form.Set("redirect_uri", testRedirectS)
		wantError(t, h.token(form, nil), http.StatusBadRequest, oauth.InvalidGrant)
	})
	t.Run("F3 redirect_uri may be omitted", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		form := codeForm(id, c, p)
		form.Del("redirect_uri")
		mustTokens(t, h.token(form, nil))
	})
	t.Run("E2 parameters without a value are omitted", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		form := codeForm(id, c, p)
		for _, k := range []string{"redirect_uri", "resource", "client_secret", "scope"} {
			form.Set(k, "")
		}
		mustTokens(t, h.token(form, nil))
	})
	for _, tc := range []struct {
		name     string
		resource []string
	}{
		{"attack 50 another resource", []string{testResource2}},
		{"attack 50 a broader set of resources", []string{testResource, testResource2}},
		{"attack 50 a resource with a fragment", []string{testResource + "#x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			c, p := b.code(id)
			form := codeForm(id, c, p)
			form["resource"] = tc.resource
			wantError(t, h.token(form, nil), http.StatusBadRequest, oauth.InvalidTarget)
		})
	}
	t.Run("F4 resource in another case names the same resource", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		form := codeForm(id, c, p)
		form.Set("resource", "HTTPS://MCP.EXAMPLE/mcp")
		tr := mustTokens(t, h.token(form, nil))
		if claims, err := h.keys.VerifyAccessToken(tr.AccessToken, h.clock.now()); err != nil || claims.Audience != testResource {
			t.Errorf("aud = %q, %v; want %q", claims.Audience, err, testResource)
		}
	})
	t.Run("attack 51 public client sends client_secret", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		form := codeForm(id, c, p)
		form.Set("client_secret", "guess")
		wantError(t, h.token(form, nil), http.StatusUnauthorized, oauth.InvalidClient)
		mustTokens(t, h.redeem(id, c, p)) // F2: a failed client authentication consumed nothing
	})
	t.Run("attack 51 public client sends Basic auth", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		form := codeForm(id, c, p)
		tr := h.token(form, func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), "guess") })
		wantError(t, tr, http.StatusUnauthorized, oauth.InvalidClient)
		if tr.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("F7 401 after Basic authentication without WWW-Authenticate")
		}
	})
	t.Run("F5 client_id missing", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		form := codeForm(id, c, p)
		form.Del("client_id")
		wantError(t, h.token(form, nil), http.StatusUnauthorized, oauth.InvalidClient)
	})
	t.Run("F1 unknown code", func(t *testing.T) {
		wantError(t, h.in(t).redeem(id, token.CodePrefix+"unknown", newPKCE()), http.StatusBadRequest, oauth.InvalidGrant)
	})

	t.Run("attack 53 refresh token replay revokes the family", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		first := b.flow(id, nil)
		second := mustTokens(t, h.refresh(id, first.RefreshToken))
		wantError(t, h.refresh(id, first.RefreshToken), http.StatusBadRequest, oauth.InvalidGrant)
		wantError(t, h.refresh(id, second.RefreshToken), http.StatusBadRequest, oauth.InvalidGrant)
		for _, tok := range []string{first.AccessToken, second.AccessToken, second.RefreshToken} {
			if in := h.introspect(tok); in.Active {
				t.Errorf("token of the revoked family still active: %+v", in)
			}
		}
	})
	t.Run("attack 53 refresh asking for more scope", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		first := b.flow(id, nil)
		tr := h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken},
			"client_id": {id}, "scope": {"read write"}}, nil)
		wantError(t, tr, http.StatusBadRequest, oauth.InvalidScope)
		mustTokens(t, h.refresh(id, first.RefreshToken)) // the refused request used nothing
	})
	t.Run("F8 refresh may narrow scope, not widen it later", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		first := b.flow(id, func(q url.Values) { q.Set("scope", "read write") })
		narrow := mustTokens(t, h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken},
			"client_id": {id}, "scope": {"read"}}, nil))
		if narrow.Scope != "read" {
			t.Errorf("scope = %q, want read", narrow.Scope)
		}
		again := mustTokens(t, h.refresh(id, narrow.RefreshToken))
		if again.Scope != "read write" {
			t.Errorf("scope after a plain refresh = %q, want the granted %q", again.Scope, "read write")
		}
	})
	t.Run("F8 refresh by another client", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		first := b.flow(id, nil)
		wantError(t, h.refresh(noRefresh, first.RefreshToken), http.StatusBadRequest, oauth.InvalidGrant)
	})
	t.Run("F8 no refresh token unless the client declares refresh_token", func(t *testing.T) {
		if tr := b.in(t).flow(noRefresh, nil); tr.RefreshToken != "" {
			t.Errorf("refresh token issued to a client without the refresh_token grant")
		}
	})
	t.Run("F9 access tokens are short-lived", func(t *testing.T) {
		if tr := b.in(t).flow(id, nil); tr.ExpiresIn <= 0 || tr.ExpiresIn > 30*60 {
			t.Errorf("expires_in = %d", tr.ExpiresIn)
		}
	})

	grants := []struct {
		name   string
		form   url.Values
		status int
		code   oauth.ErrorCode
	}{
		{"attack 54 grant_type password", url.Values{"grant_type": {"password"}, "client_id": {id}, "username": {testUser}, "password": {testPassword}}, http.StatusBadRequest, oauth.UnsupportedGrantType},
		{"attack 54 grant_type implicit", url.Values{"grant_type": {"implicit"}, "client_id": {id}}, http.StatusBadRequest, oauth.UnsupportedGrantType},
		{"F11 grant_type client_credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}}, http.StatusBadRequest, oauth.UnsupportedGrantType},
		{"F7 grant_type missing", url.Values{"client_id": {id}}, http.StatusBadRequest, oauth.InvalidRequest},
		{"F1 code missing", url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code_verifier": {newPKCE().verifier}}, http.StatusBadRequest, oauth.InvalidRequest},
		{"F8 refresh_token missing", url.Values{"grant_type": {"refresh_token"}, "client_id": {id}}, http.StatusBadRequest, oauth.InvalidRequest},
		{"E2 grant_type twice", url.Values{"grant_type": {"refresh_token", "authorization_code"}, "client_id": {id}}, http.StatusBadRequest, oauth.InvalidRequest},
	}
	for _, tc := range grants {
		t.Run(tc.name, func(t *testing.T) {
			tr := h.in(t).token(tc.form, nil)
			wantError(t, tr, tc.status, tc.code)
			if tr.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(tr.Header.Get("Content-Type"), "application/json") {
				t.Errorf("F7 error headers: %v", tr.Header)
			}
		})
	}
	t.Run("attack 54 parameters sent as JSON", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		body, err := json.Marshal(map[string]string{"grant_type": "authorization_code", "code": c, "code_verifier": p.verifier, "client_id": id})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, h.url("/token"), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		var tr tokenResult
		tr.Status, tr.Header = h.send(req, &tr)
		wantError(t, tr, http.StatusBadRequest, oauth.UnsupportedGrantType)
		if !strings.Contains(tr.ErrorDescription, "application/x-www-form-urlencoded") {
			t.Errorf("error_description %q does not say which body the endpoint reads", tr.ErrorDescription)
		}
		mustTokens(t, h.redeem(id, c, p)) // the refused request consumed nothing
	})
	t.Run("F7 parameters in the query string are not read", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c, p := b.code(id)
		var tr tokenResult
		tr.Status, _ = h.postForm("/token?"+codeForm(id, c, p).Encode(), url.Values{}, &tr, nil)
		wantError(t, tr, http.StatusBadRequest, oauth.InvalidRequest)
	})
	for _, tc := range []struct {
		name string
		auth func(form url.Values) func(*http.Request)
		ok   bool
	}{
		{"F7 static client with client_secret_basic", func(url.Values) func(*http.Request) {
			return func(r *http.Request) { r.SetBasicAuth(testStaticID, url.QueryEscape(testStaticPass)) }
		}, true},
		{"F7 static client with client_secret_post", func(f url.Values) func(*http.Request) { f.Set("client_secret", testStaticPass); return nil }, true},
		{"F7 static client with a wrong secret", func(url.Values) func(*http.Request) {
			return func(r *http.Request) { r.SetBasicAuth(testStaticID, "wrong") }
		}, false},
		{"F7 static client with Basic and a body secret", func(f url.Values) func(*http.Request) {
			f.Set("client_secret", testStaticPass)
			return func(r *http.Request) { r.SetBasicAuth(testStaticID, testStaticPass) }
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			p := newPKCE()
			q := authParams(testStaticID, p)
			q.Set("redirect_uri", testRedirectS)
			cb := b.authorizeCode(q)
			form := codeForm(testStaticID, cb.Get("code"), p)
			form.Set("redirect_uri", testRedirectS)
			tr := h.token(form, tc.auth(form))
			switch {
			case tc.ok:
				mustTokens(t, tr)
			case tr.Status == http.StatusOK || tr.Error == "":
				t.Errorf("accepted: %d", tr.Status)
			}
		})
	}
	t.Run("E9 CORS on the token endpoint", func(t *testing.T) {
		tr := h.in(t).token(url.Values{}, func(r *http.Request) { r.Header.Set("Origin", "https://app.example") })
		if tr.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("Access-Control-Allow-Origin = %q", tr.Header.Get("Access-Control-Allow-Origin"))
		}
	})
}

// TestRefreshLifetime checks that refresh tokens expire after inactivity
// (OAuth 2.1 §4.3.1, §4.3.3, RFC 9700 §4.14.2).
func TestRefreshLifetime(t *testing.T) {
	h := newHarness(t, harnessConfig{lifetimes: Lifetimes{RefreshIdle: time.Hour, RefreshAbsolute: 3 * time.Hour}})
	id := h.publishClient("/client.json", nil)
	b := h.newBrowser()
	first := b.flow(id, nil)
	h.clock.advance(50 * time.Minute)
	second := mustTokens(t, h.refresh(id, first.RefreshToken))
	t.Run("F8 idle refresh token expires", func(t *testing.T) {
		h := h.in(t)
		h.clock.advance(61 * time.Minute)
		wantError(t, h.refresh(id, second.RefreshToken), http.StatusBadRequest, oauth.InvalidGrant)
		if in := h.introspect(second.RefreshToken); in.Active {
			t.Errorf("expired refresh token active: %+v", in)
		}
	})
}

// TestBlockedClient: a client blocked by the trust policy can neither
// authorize nor refresh, and its tokens become inactive (CIMD §7.2, §8.9).
func TestBlockedClient(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	b := h.newBrowser()
	tr := b.flow(id, nil)
	policy, err := cimd.NewPolicy(cimd.PolicyConfig{Deny: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	h.resolver.SetPolicy(policy)

	t.Run("A12 blocked client cannot authorize", func(t *testing.T) {
		wantErrorPage(t, b.in(t).authorize(authParams(id, newPKCE())), http.StatusBadRequest)
	})
	t.Run("A12 blocked client cannot refresh", func(t *testing.T) {
		wantError(t, h.in(t).refresh(id, tr.RefreshToken), http.StatusUnauthorized, oauth.InvalidClient)
	})
	t.Run("A12 blocked client's tokens are inactive", func(t *testing.T) {
		h := h.in(t)
		for _, tok := range []string{tr.AccessToken, tr.RefreshToken} {
			if in := h.introspect(tok); in.Active {
				t.Errorf("token active: %+v", in)
			}
		}
	})
	t.Run("A12 unblocked client refreshes again", func(t *testing.T) {
		h := h.in(t)
		open, err := cimd.NewPolicy(cimd.PolicyConfig{})
		if err != nil {
			t.Fatal(err)
		}
		h.resolver.SetPolicy(open)
		mustTokens(t, h.refresh(id, tr.RefreshToken))
	})
}
