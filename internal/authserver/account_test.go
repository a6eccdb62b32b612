package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// TestIntrospection checks RFC 7662: only a static client allowed to
// introspect, authenticated with its secret, may call it, and it reports
// revocation at once.
func TestIntrospection(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	b := h.newBrowser()
	tr := b.flow(id, nil)

	t.Run("RFC 7662 access token", func(t *testing.T) {
		h := h.in(t)
		in := h.introspect(tr.AccessToken)
		now := h.clock.now().Unix()
		if !in.Active || in.Scope != "read" || in.ClientID != id || in.Sub != h.user.ID || in.Aud != testResource ||
			in.Iss != h.issuer || in.Iat != now || in.Exp != now+600 || in.Jti == "" || in.TokenType != "Bearer" {
			t.Errorf("introspection = %+v", in)
		}
	})
	t.Run("RFC 7662 refresh token", func(t *testing.T) {
		if in := h.in(t).introspect(tr.RefreshToken); !in.Active || in.TokenType != "refresh_token" || in.ClientID != id {
			t.Errorf("introspection = %+v", in)
		}
	})
	t.Run("RFC 7662 unknown and malformed tokens are inactive", func(t *testing.T) {
		h := h.in(t)
		for _, tok := range []string{"garbage", token.RefreshPrefix + "unknown", "a.b.c", tr.AccessToken + "x"} {
			if in := h.introspect(tok); in != (introspection{}) {
				t.Errorf("introspect(%q) = %+v, want only active false", tok, in)
			}
		}
	})
	t.Run("RFC 7662 token is required", func(t *testing.T) {
		var e struct{ Error, ErrorDescription string }
		status, _ := h.in(t).postForm("/introspect", url.Values{}, &e, func(r *http.Request) { r.SetBasicAuth(testRSClient, testRSSecret) })
		if status != http.StatusBadRequest || e.Error != string(oauth.InvalidRequest) {
			t.Errorf("introspect without token: %d %s, want 400 invalid_request", status, e.Error)
		}
	})
	callers := []struct {
		name string
		form url.Values
		auth func(r *http.Request)
	}{
		{"RFC 7662 no client authentication", url.Values{}, nil},
		{"RFC 7662 public CIMD client", url.Values{"client_id": {id}}, nil},
		{"RFC 7662 static client without introspect", url.Values{}, func(r *http.Request) { r.SetBasicAuth(testStaticID, testStaticPass) }},
		{"RFC 7662 wrong secret", url.Values{}, func(r *http.Request) { r.SetBasicAuth(testRSClient, "wrong") }},
		{"RFC 7662 wrong secret in the body", url.Values{"client_id": {testRSClient}, "client_secret": {"wrong"}}, nil},
	}
	for _, tc := range callers {
		t.Run(tc.name, func(t *testing.T) {
			h := h.in(t)
			tc.form.Set("token", tr.AccessToken)
			var res tokenResult
			res.Status, res.Header = h.postForm("/introspect", tc.form, &res, tc.auth)
			wantError(t, res, http.StatusUnauthorized, oauth.InvalidClient)
		})
	}
	t.Run("RFC 7662 client_secret_post", func(t *testing.T) {
		h := h.in(t)
		var in introspection
		status, _ := h.postForm("/introspect", url.Values{"token": {tr.AccessToken}, "client_id": {testRSClient}, "client_secret": {testRSSecret}}, &in, nil)
		if status != http.StatusOK || !in.Active {
			t.Errorf("%d %+v", status, in)
		}
	})
	t.Run("RFC 7662 expired access token is inactive", func(t *testing.T) {
		h := h.in(t)
		h.clock.advance(11 * time.Minute)
		if in := h.introspect(tr.AccessToken); in.Active {
			t.Errorf("expired token active: %+v", in)
		}
	})
}

// TestRevocation checks RFC 7009.
func TestRevocation(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	other := h.publishClient("/other.json", nil)
	b := h.newBrowser()
	revoke := func(h *harness, form url.Values) tokenResult {
		var res tokenResult
		res.Status, res.Header = h.postForm("/revoke", form, &res, nil)
		return res
	}

	for _, which := range []string{"refresh", "access"} {
		t.Run("RFC 7009 revoking the "+which+" token revokes the grant", func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			tr := b.flow(id, nil)
			tok := tr.RefreshToken
			if which == "access" {
				tok = tr.AccessToken
			}
			if res := revoke(h, url.Values{"token": {tok}, "client_id": {id}}); res.Status != http.StatusOK {
				t.Fatalf("revoke: %d %s", res.Status, res.Error)
			}
			wantError(t, h.refresh(id, tr.RefreshToken), http.StatusBadRequest, oauth.InvalidGrant)
			if in := h.introspect(tr.AccessToken); in.Active {
				t.Errorf("access token active after revocation")
			}
		})
	}
	t.Run("RFC 7009 unknown token is 200", func(t *testing.T) {
		if res := revoke(h.in(t), url.Values{"token": {token.RefreshPrefix + "nope"}, "client_id": {id}}); res.Status != http.StatusOK {
			t.Errorf("revoke: %d %s", res.Status, res.Error)
		}
	})
	t.Run("RFC 7009 another client's token is not revoked", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		tr := b.flow(id, nil)
		if res := revoke(h, url.Values{"token": {tr.RefreshToken}, "client_id": {other}}); res.Status != http.StatusOK {
			t.Errorf("revoke: %d %s", res.Status, res.Error)
		}
		mustTokens(t, h.refresh(id, tr.RefreshToken))
	})
	t.Run("RFC 7009 token missing", func(t *testing.T) {
		wantError(t, revoke(h.in(t), url.Values{"client_id": {id}}), http.StatusBadRequest, oauth.InvalidRequest)
	})
	t.Run("F5 public client revoking with a secret", func(t *testing.T) {
		wantError(t, revoke(h.in(t), url.Values{"token": {"x"}, "client_id": {id}, "client_secret": {"x"}}), http.StatusUnauthorized, oauth.InvalidClient)
	})
}

// TestAccount checks the account page: sign-in, the list of authorized
// clients, revoking one, signing out.
func TestAccount(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	b := h.newBrowser()
	ctx := context.Background()

	toLogin := b.get("/account")
	back := b.login(toLogin, testPassword)
	if back.status != http.StatusSeeOther || !strings.HasSuffix(back.location(), "/account") {
		t.Fatalf("after sign-in: %d %q", back.status, back.location())
	}
	tr := b.flow(id, nil)
	acct := b.get("/account")
	if acct.status != http.StatusOK || !strings.Contains(acct.body, id) {
		t.Fatalf("account page does not list %s:\n%s", id, acct.body)
	}

	t.Run("account revoke without the CSRF token", func(t *testing.T) {
		wantErrorPage(t, b.in(t).post("/account/revoke", url.Values{"client_id": {id}}), http.StatusForbidden)
	})
	t.Run("account revoke", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		resp := b.post(formAction(t, acct.body), url.Values{"client_id": {id}, "csrf": {hiddenField(t, acct.body, "csrf")}})
		if resp.status != http.StatusSeeOther {
			t.Fatalf("revoke: %d", resp.status)
		}
		if _, err := h.db.GetConsent(ctx, h.user.ID, id, testResource); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("consent kept: %v", err)
		}
		wantError(t, h.refresh(id, tr.RefreshToken), http.StatusBadRequest, oauth.InvalidGrant)
		if in := h.introspect(tr.AccessToken); in.Active {
			t.Errorf("access token active after the user revoked the client")
		}
		b.consentPage(b.authorize(authParams(id, newPKCE()))) // E12: asked again
	})
	t.Run("sign out", func(t *testing.T) {
		b := b.in(t)
		acct := b.get("/account")
		resp := b.post("/logout", url.Values{"csrf": {hiddenField(t, acct.body, "csrf")}})
		if resp.status != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.status)
		}
		if resp := b.get("/account"); resp.status != http.StatusSeeOther || !strings.Contains(resp.location(), "/login?") {
			t.Errorf("still signed in: %d %q", resp.status, resp.location())
		}
	})
}

// TestLogin checks sign-in failures and the rate limit.
func TestLogin(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	ctx := context.Background()

	t.Run("wrong password", func(t *testing.T) {
		b := h.in(t).newBrowser()
		resp := b.login(b.authorize(authParams(id, newPKCE())), "wrong")
		if resp.status != http.StatusUnauthorized || !strings.Contains(resp.body, "Wrong user name or password") || resp.header.Get("Set-Cookie") != "" {
			t.Errorf("%d %q:\n%s", resp.status, resp.header.Get("Set-Cookie"), resp.body)
		}
	})
	t.Run("login without the CSRF token", func(t *testing.T) {
		b := h.in(t).newBrowser()
		lp := b.follow(b.authorize(authParams(id, newPKCE())), "/login?")
		resp := b.post("/login", url.Values{"username": {testUser}, "password": {testPassword}, "request": {hiddenField(t, lp.body, "request")}})
		wantErrorPage(t, resp, http.StatusForbidden)
	})
	// hit counts n sign-in attempts under each key, as loginLimited would.
	hit := func(t *testing.T, h *harness, n int, keys ...string) {
		t.Helper()
		for range n {
			for _, key := range keys {
				if _, err := h.db.RateHit(ctx, key, loginWindow, h.clock.now()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Run("login rate limit per user at an address", func(t *testing.T) {
		h := h.in(t)
		key, _, _ := loginRateKeys(testUser, "127.0.0.1")
		hit(t, h, loginPerUserAtAddr, key)
		b := h.newBrowser()
		resp := b.login(b.authorize(authParams(id, newPKCE())), testPassword) // the right password
		if resp.status != http.StatusTooManyRequests || resp.header.Get("Set-Cookie") != "" {
			t.Errorf("over the limit: %d %q", resp.status, resp.header.Get("Set-Cookie"))
		}
		h.clock.advance(loginWindow)
		b.flow(id, nil) // the next window lets the user in
	})
	t.Run("wrong passwords from another address do not lock the user out", func(t *testing.T) {
		h := h.in(t)
		// An attacker's attempts from its address (no traffic is sent
		// there): they count for that address and for the user name.
		other, user, _ := loginRateKeys(testUser, "192.0.2.7")
		hit(t, h, loginPerUserAtAddr+5, other, user)
		b := h.newBrowser()
		b.flow(id, nil) // the user, from their own address, still signs in
		h.clock.advance(loginWindow)
	})
	t.Run("login rate limit per user from all addresses", func(t *testing.T) {
		h := h.in(t)
		_, key, _ := loginRateKeys(testUser, "127.0.0.1")
		hit(t, h, loginPerUser, key)
		b := h.newBrowser()
		if resp := b.login(b.authorize(authParams(id, newPKCE())), testPassword); resp.status != http.StatusTooManyRequests {
			t.Errorf("over the limit: %d", resp.status)
		}
		h.clock.advance(loginWindow)
	})
	t.Run("login rate limit per address", func(t *testing.T) {
		h := h.in(t)
		_, _, addrKey := loginRateKeys("", "127.0.0.1")
		hit(t, h, loginPerAddress, addrKey)
		b := h.newBrowser()
		if resp := b.login(b.authorize(authParams(id, newPKCE())), testPassword); resp.status != http.StatusTooManyRequests {
			t.Errorf("over the limit: %d", resp.status)
		}
	})
	t.Run("only failed sign-ins count toward the limits", func(t *testing.T) {
		h := h.in(t)
		h.clock.advance(loginWindow) // a fresh window, whatever the subtests above counted
		for _, step := range []struct {
			password string
			times    int
			want     int
		}{
			{testPassword, loginPerUserAtAddr + 2, http.StatusSeeOther}, // a developer iterating is never locked out
			{"wrong", loginPerUserAtAddr, http.StatusUnauthorized},
			{"wrong", 1, http.StatusTooManyRequests},
			{testPassword, 1, http.StatusTooManyRequests}, // and over the limit, the right password is refused too
		} {
			for i := range step.times {
				b := h.newBrowser()
				if resp := b.login(b.authorize(authParams(id, newPKCE())), step.password); resp.status != step.want {
					t.Fatalf("sign-in %d with password %q: %d, want %d", i+1, step.password, resp.status, step.want)
				}
			}
		}
	})
}
