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
	"github.com/mcpauth/mcpauth/oauth"
)

// Edits of an authorization request.
func set(k, v string) func(url.Values) { return func(q url.Values) { q.Set(k, v) } }
func add(k, v string) func(url.Values) { return func(q url.Values) { q.Add(k, v) } }
func del(k string) func(url.Values)    { return func(q url.Values) { q.Del(k) } }

// wantErrorPage checks that resp is our HTML error page, not a redirect to
// the client (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2, CIMD §5.1).
func wantErrorPage(t *testing.T, resp reply, status int) {
	t.Helper()
	if resp.status != status || resp.location() != "" {
		t.Errorf("got %d Location %q, want an error page with status %d and no redirect", resp.status, resp.location(), status)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(resp.body, "This request cannot continue") {
		t.Errorf("not the error page (%s): %s", ct, resp.body)
	}
}

// wantRedirectError checks that resp sends error code back to the
// client's redirect URI with state and iss, and no code (RFC 6749 §4.1.2.1,
// RFC 9700 §4.11.2, OAuth 2.1 §4.1.2, RFC 9207 §2).
func (h *harness) wantRedirectError(resp reply, q url.Values, code oauth.ErrorCode) url.Values {
	h.t.Helper()
	got := h.callback(resp, q)
	if got.Get("error") != string(code) || got.Has("code") {
		h.t.Errorf("redirect carries error %q (%s) code %q, want error %q and no code", got.Get("error"), got.Get("error_description"), got.Get("code"), code)
	}
	return got
}

// TestAuthorizeAttacks runs attack cases 36-44 against /authorize.
func TestAuthorizeAttacks(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	b := h.newBrowser()
	b.flow(id, nil) // signs in; consent for (id, testResource, read) is remembered

	errorPages := []struct {
		name string
		edit func(url.Values)
	}{
		{"attack 36 redirect_uri with a trailing slash", set("redirect_uri", testRedirect+"/")},
		{"attack 36 redirect_uri in another case", set("redirect_uri", "https://App.example/callback")},
		{"attack 36 redirect_uri with an extra query", set("redirect_uri", testRedirectS+"?x=1")},
		{"attack 36 redirect_uri with another path", set("redirect_uri", "https://app.example/other")},
		{"attack 36 redirect_uri http instead of https", set("redirect_uri", "http://app.example/callback")},
		{"attack 36 redirect_uri userinfo trick", set("redirect_uri", "https://app.example@evil.example/callback")},
		{"attack 37 loopback redirect_uri with another path", set("redirect_uri", "http://127.0.0.1:5555/other")},
		{"attack 39 client_id twice", add("client_id", h.docs.url("/other.json"))},
		{"attack 39 redirect_uri twice", add("redirect_uri", testRedirectS)},
		{"E3 redirect_uri missing for a CIMD client", del("redirect_uri")},
		{"E4 client_id missing", del("client_id")},
		{"E4 client_id unknown", set("client_id", "no-such-client")},
		{"E4 client_id over http on a public host", set("client_id", "http://client.example/c.json")},
		{"E4 client_id with a fragment", set("client_id", id+"#x")},
		{"B12 client document not found", set("client_id", h.docs.url("/missing.json"))},
	}
	for _, tc := range errorPages {
		t.Run(tc.name, func(t *testing.T) {
			b := b.in(t)
			q := authParams(id, newPKCE())
			tc.edit(q)
			wantErrorPage(t, b.authorize(q), http.StatusBadRequest)
		})
	}

	redirectErrors := []struct {
		name string
		edit func(url.Values)
		code oauth.ErrorCode
	}{
		{"attack 38 code_challenge missing", del("code_challenge"), oauth.InvalidRequest},
		{"attack 38 code_challenge_method plain", set("code_challenge_method", "plain"), oauth.InvalidRequest},
		{"attack 38 code_challenge_method omitted", del("code_challenge_method"), oauth.InvalidRequest},
		{"attack 38 code_challenge too short", set("code_challenge", "abc"), oauth.InvalidRequest},
		{"attack 38 code_challenge not base64url", set("code_challenge", strings.Repeat("+", 43)), oauth.InvalidRequest},
		{"attack 39 state twice", add("state", "other"), oauth.InvalidRequest},
		{"attack 39 scope twice", add("scope", "write"), oauth.InvalidRequest},
		{"attack 39 code_challenge twice", add("code_challenge", newPKCE().challenge), oauth.InvalidRequest},
		{"attack 39 response_type twice", add("response_type", "code"), oauth.InvalidRequest},
		{"attack 40 response_type token", set("response_type", "token"), oauth.UnsupportedResponseType},
		{"attack 40 response_type code id_token", set("response_type", "code id_token"), oauth.UnsupportedResponseType},
		{"E1 response_type missing", del("response_type"), oauth.InvalidRequest},
		{"E2 code_challenge without a value is omitted", set("code_challenge", ""), oauth.InvalidRequest},
		{"attack 41 resource with a fragment", set("resource", testResource+"#frag"), oauth.InvalidTarget},
		{"attack 41 relative resource", set("resource", "/mcp"), oauth.InvalidTarget},
		{"attack 41 unknown resource", set("resource", "https://unknown.example/mcp"), oauth.InvalidTarget},
		{"attack 41 several resources", add("resource", testResource2), oauth.InvalidTarget},
		{"attack 41 the same resource twice", add("resource", testResource), oauth.InvalidTarget},
		{"C12 scope the resource does not offer", set("scope", "admin"), oauth.InvalidScope},
		{"E6 prompt=none combined with login", set("prompt", "none login"), oauth.InvalidRequest},
		{"response_mode fragment is not supported", set("response_mode", "fragment"), oauth.InvalidRequest},
		{"response_mode form_post is not supported", set("response_mode", "form_post"), oauth.InvalidRequest},
	}
	for _, tc := range redirectErrors {
		t.Run(tc.name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			q := authParams(id, newPKCE())
			tc.edit(q)
			h.wantRedirectError(b.authorize(q), q, tc.code)
		})
	}

	allowed := []struct {
		name string
		edit func(url.Values)
		post bool
	}{
		{"attack 37 loopback redirect_uri on another port is allowed", set("redirect_uri", "http://127.0.0.1:5555/callback"), false},
		{"E2 state without a value is omitted", set("state", ""), false},
		{"E2 resource without a value is omitted", set("resource", ""), false},
		{"E2 unknown parameters are ignored", func(q url.Values) { q["unknown_param"] = []string{"x", "y"} }, false},
		{"E6 prompt=none after consent issues a code", set("prompt", "none"), false},
		{"response_mode=query is the default", set("response_mode", "query"), false},
		{"E1 POST to the authorization endpoint", func(url.Values) {}, true},
	}
	for _, tc := range allowed {
		t.Run(tc.name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			q := authParams(id, newPKCE())
			tc.edit(q)
			var resp reply
			if tc.post {
				resp = b.post("/authorize", q)
			} else {
				resp = b.authorize(q)
			}
			got := h.callback(resp, q)
			if got.Get("code") == "" || q.Get("state") == "" && got.Has("state") {
				t.Errorf("redirect = %v, want a code and the state only if one was sent", got)
			}
		})
	}

	t.Run("attack 42 prompt=none without a session is login_required", func(t *testing.T) {
		h := h.in(t)
		q := authParams(id, newPKCE())
		q.Set("prompt", "none")
		h.wantRedirectError(h.newBrowser().authorize(q), q, oauth.LoginRequired)
	})
	t.Run("attack 42 prompt=none for a client never approved is consent_required", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		other := h.publishClient("/never-approved.json", nil)
		q := authParams(other, newPKCE())
		q.Set("prompt", "none")
		h.wantRedirectError(b.authorize(q), q, oauth.ConsentRequired)
		if _, err := h.db.GetConsent(context.Background(), h.user.ID, other, testResource); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("consent stored without approval: %v", err)
		}
	})
	t.Run("attack 42 prompt=none for more scope than approved is consent_required", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		q := authParams(id, newPKCE())
		q.Set("prompt", "none")
		q.Set("scope", "read write")
		h.wantRedirectError(b.authorize(q), q, oauth.ConsentRequired)
	})
	t.Run("E6 prompt=consent asks again", func(t *testing.T) {
		b := b.in(t)
		q := authParams(id, newPKCE())
		q.Set("prompt", "consent")
		b.consentPage(b.authorize(q))
	})
	t.Run("E6 prompt=login asks to sign in again", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		q := authParams(id, newPKCE())
		q.Set("prompt", "login")
		resp := b.login(b.authorize(q), testPassword)
		if resp = b.follow303(resp, "/consent?"); resp.status != http.StatusSeeOther {
			t.Fatalf("consent page after sign-in: %d", resp.status)
		}
		h.callback(resp, q) // approved before: no second consent
	})
	t.Run("attack 43 consent page cannot be framed", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		cp := b.consentPage(b.authorize(authParams(h.publishClient("/framed.json", nil), newPKCE())))
		wantPageHeaders(t, cp)
	})
	t.Run("attack 43 consent POST without or with a wrong CSRF token", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		q := authParams(h.publishClient("/csrf.json", nil), newPKCE())
		cp := b.consentPage(b.authorize(q))
		form := url.Values{"decision": {"approve"}, "request": {hiddenField(t, cp.body, "request")}}
		wantErrorPage(t, b.post("/consent", form), http.StatusForbidden)
		form.Set("csrf", strings.Repeat("0", 32))
		wantErrorPage(t, b.post("/consent", form), http.StatusForbidden)
		// The request survives a forged POST: the user can still approve.
		if got := h.callback(b.decide(cp, "approve"), q); got.Get("code") == "" {
			t.Errorf("no code after the genuine approval: %v", got)
		}
	})
	t.Run("attack 43 consent token from another session", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		q := authParams(h.publishClient("/cross-session.json", nil), newPKCE())
		cp := b.consentPage(b.authorize(q))
		attacker := h.newBrowser()
		// The attacker has a session of their own (the same account will do).
		attacker.login(attacker.authorize(authParams(id, newPKCE())), testPassword)
		wantErrorPage(t, attacker.decide(cp, "approve"), http.StatusForbidden)
	})
	t.Run("attack 43 login CSRF: a sign-in form posted from another site", func(t *testing.T) {
		h := h.in(t)
		// The attacker opens a sign-in page of their own and makes the
		// victim's browser post it, with the attacker's credentials, from
		// the attacker's site: the browser labels the post cross-site.
		attacker := h.newBrowser()
		lp := attacker.follow(attacker.authorize(authParams(id, newPKCE())), "/login?")
		form := url.Values{"username": {testUser}, "password": {testPassword},
			"request": {hiddenField(t, lp.body, "request")}, "csrf": {hiddenField(t, lp.body, "csrf")}}
		post := func(b *browser, site string) reply {
			req, err := http.NewRequest(http.MethodPost, h.absolute(formAction(t, lp.body)), strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", site)
			return b.do(req)
		}
		victim := h.newBrowser()
		for _, site := range []string{"cross-site", "same-site"} {
			resp := post(victim, site)
			wantErrorPage(t, resp, http.StatusForbidden)
			for _, c := range resp.header.Values("Set-Cookie") {
				if strings.Contains(c, "session") {
					t.Errorf("a forged sign-in (%s) set a session cookie: %s", site, c)
				}
			}
		}
		// Posted from the server's own page, the same form signs in.
		if resp := post(attacker, "same-origin"); resp.status != http.StatusSeeOther {
			t.Errorf("sign-in from the server's own page: %d", resp.status)
		}
	})
	t.Run("attack 43 replayed consent POST", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		q := authParams(h.publishClient("/replay.json", nil), newPKCE())
		cp := b.consentPage(b.authorize(q))
		if got := h.callback(b.decide(cp, "approve"), q); got.Get("code") == "" {
			t.Fatalf("no code: %v", got)
		}
		wantErrorPage(t, b.decide(cp, "approve"), http.StatusBadRequest)
	})
	t.Run("attack 44 no CORS on the authorization endpoint", func(t *testing.T) {
		h := h.in(t)
		pre, err := http.NewRequest(http.MethodOptions, h.url("/authorize"), nil)
		if err != nil {
			t.Fatal(err)
		}
		pre.Header.Set("Origin", "https://evil.example")
		pre.Header.Set("Access-Control-Request-Method", "GET")
		resp := h.newBrowser().do(pre)
		if resp.header.Get("Access-Control-Allow-Origin") != "" || resp.status < 300 {
			t.Errorf("preflight answered %d with Access-Control-Allow-Origin %q", resp.status, resp.header.Get("Access-Control-Allow-Origin"))
		}
		get, err := http.NewRequest(http.MethodGet, h.url("/authorize")+"?"+authParams(id, newPKCE()).Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		get.Header.Set("Origin", "https://evil.example")
		if resp := b.in(t).do(get); resp.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET /authorize allowed origin %q", resp.header.Get("Access-Control-Allow-Origin"))
		}
	})
}

// wantPageHeaders checks the headers every browser-facing page carries
// (RFC 9700 §4.16, RFC 6749 §10.12: no framing; no caching; nosniff).
func wantPageHeaders(t *testing.T, resp reply) {
	t.Helper()
	csp := resp.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q, want frame-ancestors 'none'", csp)
	}
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := resp.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := resp.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("page allows CORS origin %q (RFC 9700 section 2.6)", got)
	}
}

// TestPages checks login, consent, error and account pages: headers (E7),
// 303 after POST (E8), and no CORS (E9).
func TestPages(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	b := h.newBrowser()
	q := authParams(id, newPKCE())
	toLogin := b.authorize(q)
	if toLogin.status != http.StatusSeeOther {
		t.Fatalf("authorize: %d", toLogin.status)
	}
	t.Run("E7 login page", func(t *testing.T) {
		wantPageHeaders(t, b.in(t).get(toLogin.location()))
	})
	toConsent := b.login(toLogin, testPassword)
	t.Run("E8 303 after the login POST", func(t *testing.T) {
		if toConsent.status != http.StatusSeeOther {
			t.Errorf("login POST answered %d, want 303", toConsent.status)
		}
	})
	cp := b.consentPage(toConsent)
	t.Run("E7 consent page", func(t *testing.T) { wantPageHeaders(t, cp) })
	t.Run("E7 consent page form-action allows the redirect URI", func(t *testing.T) {
		if csp := cp.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://127.0.0.1;") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	})
	t.Run("a decision sent twice is refused", func(t *testing.T) {
		resp := b.in(t).post(formAction(t, cp.body), url.Values{"decision": {"approve", "deny"},
			"request": {hiddenField(t, cp.body, "request")}, "csrf": {hiddenField(t, cp.body, "csrf")}})
		wantErrorPage(t, resp, http.StatusBadRequest)
	})
	done := b.decide(cp, "approve")
	t.Run("E8 303 after the consent POST", func(t *testing.T) {
		if done.status != http.StatusSeeOther {
			t.Errorf("consent POST answered %d, want 303", done.status)
		}
		h.in(t).callback(done, q)
	})
	t.Run("E7 error page", func(t *testing.T) {
		resp := b.in(t).get("/authorize?client_id=nope")
		wantErrorPage(t, resp, http.StatusBadRequest)
		wantPageHeaders(t, resp)
	})
	t.Run("HEAD on a page issues nothing", func(t *testing.T) {
		// A remembered consent makes GET /authorize and GET /consent issue
		// a code; the GET patterns also match HEAD.
		for _, path := range []string{"/authorize?" + authParams(id, newPKCE()).Encode(), "/consent?request=x", "/login", "/account"} {
			req, err := http.NewRequest(http.MethodHead, h.srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Jar: b.c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Location") != "" || resp.Header.Get("Allow") != "GET, POST" {
				t.Errorf("HEAD %s: %d, Location %q, Allow %q; want 405, no redirect, Allow GET, POST", path, resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Allow"))
			}
		}
	})
	t.Run("E7 account page", func(t *testing.T) {
		resp := b.in(t).get("/account")
		if resp.status != http.StatusOK {
			t.Fatalf("account: %d", resp.status)
		}
		wantPageHeaders(t, resp)
	})
}

// TestConsent checks what the consent screen shows (CIMD §8.5,
// MCP 2025-11-25 Authorization §Localhost Redirect URI Risks,
// docs/security.md decision 6) and when consent is remembered or asked again
// (MCP Security Best Practices §Confused Deputy Problem, CIMD §8.4).
func TestConsent(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	b := h.newBrowser()
	ctx := context.Background()

	loopbackOnly := h.publishClient("/loopback.json", func(d map[string]any) {
		d["client_name"] = "Famous <b>Editor</b>"
		d["redirect_uris"] = []string{testRedirect}
	})
	t.Run("E5 consent screen contents", func(t *testing.T) {
		b := b.in(t)
		q := authParams(loopbackOnly, newPKCE())
		q.Set("scope", "read write")
		cp := b.consentPage(b.login(b.authorize(q), testPassword))
		for _, want := range []string{
			`id="client-host">127.0.0.1<`,                 // the client_id host first (E5)
			`Famous &lt;b&gt;Editor&lt;/b&gt;`,            // the name, escaped (attack 32)
			`unverified`,                                  // decision 6
			`id="localhost-warning"`,                      // attack 35
			`id="redirect-host">127.0.0.1<`,               // E5: redirect host shown
			`<li>read</li>`, `<li>write</li>`, `Test MCP`, // scopes and resource
			`development client`, // loopback client_id (decision 8)
		} {
			if !strings.Contains(cp.body, want) {
				t.Errorf("consent page lacks %q:\n%s", want, cp.body)
			}
		}
		if _, err := h.db.GetConsent(ctx, h.user.ID, loopbackOnly, testResource); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("E12 consent recorded before approval: %v", err)
		}
	})

	id := h.publishClient("/client.json", nil)
	t.Run("E5 no localhost warning for an https redirect", func(t *testing.T) {
		b := b.in(t)
		q := authParams(id, newPKCE())
		q.Set("redirect_uri", testRedirectS)
		cp := b.consentPage(b.authorize(q))
		if strings.Contains(cp.body, `id="localhost-warning"`) || !strings.Contains(cp.body, `id="redirect-host">app.example<`) {
			t.Errorf("consent page:\n%s", cp.body)
		}
	})
	t.Run("E12 deny records nothing and returns access_denied", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		q := authParams(id, newPKCE())
		h.wantRedirectError(b.decide(b.consentPage(b.authorize(q)), "deny"), q, oauth.AccessDenied)
		if _, err := h.db.GetConsent(ctx, h.user.ID, id, testResource); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("consent recorded after deny: %v", err)
		}
	})
	t.Run("E12 approval is remembered for the same client, resource and scopes", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		b.flow(id, nil)
		q := authParams(id, newPKCE())
		if got := h.callback(b.authorize(q), q); got.Get("code") == "" {
			t.Errorf("asked again: %v", got)
		}
	})
	t.Run("E12 more scope asks again", func(t *testing.T) {
		b := b.in(t)
		q := authParams(id, newPKCE())
		q.Set("scope", "read write")
		b.consentPage(b.authorize(q))
	})
	t.Run("E12 another resource asks again", func(t *testing.T) {
		h2 := newHarness(t, harnessConfig{resources: []Resource{{URL: testResource}, {URL: testResource2}}})
		other := h2.publishClient("/client.json", nil)
		b2 := h2.newBrowser()
		b2.flow(other, nil)
		q := authParams(other, newPKCE())
		q.Set("resource", testResource2)
		b2.consentPage(b2.authorize(q))
	})
	t.Run("D6 a security-relevant document change asks again", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		h.publishClient("/client.json", func(d map[string]any) {
			d["redirect_uris"] = []string{testRedirect, testRedirectS, "https://attacker.example/cb"}
		})
		h.clock.advance(6 * time.Minute) // past the default 5 minute freshness
		cp := b.consentPage(b.authorize(authParams(id, newPKCE())))
		if !strings.Contains(cp.body, `id="changed-warning"`) {
			t.Errorf("no warning that the registration changed:\n%s", cp.body)
		}
		q := authParams(id, newPKCE())
		if got := h.callback(b.decide(b.consentPage(b.authorize(q)), "approve"), q); got.Get("code") == "" {
			t.Errorf("no code after re-consent: %v", got)
		}
	})
	t.Run("D6 a change that is not security-relevant keeps the consent", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		h.publishClient("/client.json", func(d map[string]any) {
			d["redirect_uris"] = []string{testRedirect, testRedirectS, "https://attacker.example/cb"}
			d["contacts"] = []string{"ops@app.example"}
		})
		h.clock.advance(6 * time.Minute)
		q := authParams(id, newPKCE())
		if got := h.callback(b.authorize(q), q); got.Get("code") == "" {
			t.Errorf("asked again: %v", got)
		}
	})
	t.Run("attack 34 redirect_uris changed between authorize and consent", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		c := h.publishClient("/swapped.json", nil)
		q := authParams(c, newPKCE())
		toConsent := b.authorize(q)
		h.publishClient("/swapped.json", func(d map[string]any) { d["redirect_uris"] = []string{"https://attacker.example/cb"} })
		h.clock.advance(6 * time.Minute)
		wantErrorPage(t, b.get(toConsent.location()), http.StatusBadRequest)
	})
}
