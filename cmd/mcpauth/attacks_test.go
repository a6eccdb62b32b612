package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAttacksAgainstServe runs docs/security.md attacks 36-54 against a running
// `mcpauth serve` over HTTP, as a browser and as clients would: the real
// listener, configuration, login and consent forms, client documents
// fetched from loopback (--dev-allow-loopback). internal/authserver's
// tests cover each case exhaustively with a controllable clock; this test
// proves the assembled server behaves the same.
func TestAttacksAgainstServe(t *testing.T) {
	a := newAttackServer(t)
	pub := a.client("/public.json", nil)
	other := a.client("/other.json", nil)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkjwt := a.client("/pkjwt.json", map[string]any{"token_endpoint_auth_method": "private_key_jwt",
		"jwks": map[string]any{"keys": []any{publicJWK(key)}}})

	user := a.newBrowser()
	user.authorizeCode(pub, nil) // signs in and approves pub for read

	t.Run("attack 36 redirect_uri not registered: error page, no redirect", func(t *testing.T) {
		for _, ru := range []string{"https://app.example/callback/", "https://App.example/callback",
			"https://app.example/callback?x=1", "http://app.example/callback", "https://app.example@evil.example/callback"} {
			wantErrorPageAt(t, user.get(a.authorizeURL(pub, set("redirect_uri", ru))), http.StatusBadRequest)
		}
	})
	t.Run("attack 37 loopback redirect: another path refused, another port allowed", func(t *testing.T) {
		wantErrorPageAt(t, user.get(a.authorizeURL(pub, set("redirect_uri", "http://127.0.0.1:5555/other"))), http.StatusBadRequest)
		if code := user.authorizeCode(pub, set("redirect_uri", "http://127.0.0.1:6666/callback")); code.Get("code") == "" {
			t.Errorf("loopback redirect on another port: no code: %v", code)
		}
	})
	redirectErrors := []struct {
		name string
		edit func(url.Values)
		code string
	}{
		{"attack 38 code_challenge missing", del("code_challenge"), "invalid_request"},
		{"attack 38 code_challenge_method plain", set("code_challenge_method", "plain"), "invalid_request"},
		{"attack 38 code_challenge too short", set("code_challenge", "abc"), "invalid_request"},
		{"attack 39 state twice", add("state", "other"), "invalid_request"},
		{"attack 40 response_type token", set("response_type", "token"), "unsupported_response_type"},
		{"attack 40 response_type code id_token", set("response_type", "code id_token"), "unsupported_response_type"},
		{"attack 41 resource with a fragment", set("resource", "https://mcp.example.com/mcp#x"), "invalid_target"},
		{"attack 41 unknown resource", set("resource", "https://unknown.example/mcp"), "invalid_target"},
	}
	for _, tc := range redirectErrors {
		t.Run(tc.name, func(t *testing.T) {
			got := user.redirectParams(t, user.get(a.authorizeURL(pub, tc.edit)))
			if got.Get("error") != tc.code || got.Has("code") || got.Get("iss") != a.issuer {
				t.Errorf("redirect %v, want error %s, no code, iss %s", got, tc.code, a.issuer)
			}
		})
	}
	t.Run("attack 39 client_id twice: error page", func(t *testing.T) {
		wantErrorPageAt(t, user.get(a.authorizeURL(pub, add("client_id", other))), http.StatusBadRequest)
	})
	t.Run("attack 42 prompt=none never approved: no silent code", func(t *testing.T) {
		stranger := a.newBrowser()
		got := stranger.redirectParams(t, stranger.get(a.authorizeURL(pub, set("prompt", "none"))))
		if got.Get("error") != "login_required" || got.Has("code") {
			t.Errorf("prompt=none without a session: %v, want login_required", got)
		}
		got = user.redirectParams(t, user.get(a.authorizeURL(other, set("prompt", "none"))))
		if got.Get("error") != "consent_required" || got.Has("code") {
			t.Errorf("prompt=none for a client never approved: %v, want consent_required", got)
		}
	})
	t.Run("attack 43 consent page framing, CSRF, replay; login CSRF", func(t *testing.T) {
		cp := user.follow(t, user.get(a.authorizeURL(other, nil)))
		if csp := cp.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("consent page CSP %q: framing allowed", csp)
		}
		form := url.Values{"decision": {"approve"}, "request": {field(t, cp.body, "request")}}
		wantErrorPageAt(t, user.post(a.base+"/consent", form), http.StatusForbidden)
		form.Set("csrf", field(t, cp.body, "csrf"))
		if got := user.redirectParams(t, user.post(a.base+"/consent", form)); got.Get("code") == "" {
			t.Fatalf("genuine approval: %v", got)
		}
		if resp := user.post(a.base+"/consent", form); resp.status == http.StatusSeeOther && strings.Contains(resp.location, "code=") {
			t.Errorf("replayed consent POST issued another code: %s", resp.location)
		}
		// Login CSRF: the attacker's sign-in form posted from the attacker's
		// site by the victim's browser, which labels the post cross-site.
		attacker := a.newBrowser()
		lp := attacker.follow(t, attacker.get(a.authorizeURL(pub, nil)))
		form = url.Values{"username": {"admin"}, "password": {a.password},
			"request": {field(t, lp.body, "request")}, "csrf": {field(t, lp.body, "csrf")}}
		req, _ := http.NewRequest(http.MethodPost, a.base+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		wantErrorPageAt(t, a.newBrowser().do(req), http.StatusForbidden)
	})
	t.Run("attack 44 no CORS on /authorize", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, a.authorizeURL(pub, nil), nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp := user.do(req)
		if v := resp.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("preflight on /authorize allowed origin %q", v)
		}
		if v := user.get(a.authorizeURL(pub, nil)).header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("/authorize answered with Access-Control-Allow-Origin %q", v)
		}
	})

	t.Run("attack 45 code used twice: fails, and the first tokens are revoked", func(t *testing.T) {
		c, v := user.code(t, pub)
		first := a.token(t, codeForm(pub, c, v))
		if first.status != 200 {
			t.Fatalf("first redemption: %d %s", first.status, first.body)
		}
		a.wantTokenError(t, a.token(t, codeForm(pub, c, v)), "invalid_grant")
		if a.introspect(t, first.AccessToken) {
			t.Errorf("access token of a replayed code still active")
		}
		a.wantTokenError(t, a.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}, "client_id": {pub}}), "invalid_grant")
	})
	t.Run("attack 46 wrong, missing or malformed code_verifier", func(t *testing.T) {
		c, v := user.code(t, pub)
		for _, bad := range []string{strings.Repeat("a", 43), "", "short", strings.Repeat("a", 129)} {
			f := codeForm(pub, c, bad)
			if bad == "" {
				f.Del("code_verifier")
			}
			resp := a.token(t, f)
			if resp.Error != "invalid_grant" && resp.Error != "invalid_request" {
				t.Errorf("verifier %q: %d %s, want invalid_grant or invalid_request", bad, resp.status, resp.body)
			}
		}
		if resp := a.token(t, codeForm(pub, c, v)); resp.status != 200 {
			t.Errorf("the right verifier after failed attempts: %d %s (a failed attempt must not consume the code)", resp.status, resp.body)
		}
	})
	t.Run("attack 47 code of client A redeemed by client B", func(t *testing.T) {
		c, v := user.code(t, pub)
		a.wantTokenError(t, a.token(t, codeForm(other, c, v)), "invalid_grant")
	})
	t.Run("attack 48 expired code", func(t *testing.T) {
		c, v := user.code(t, pub)
		time.Sleep(attackCodeLifetime + 500*time.Millisecond) // the server runs with a 1 s code lifetime
		a.wantTokenError(t, a.token(t, codeForm(pub, c, v)), "invalid_grant")
	})
	t.Run("attack 49 redirect_uri differs at the token endpoint", func(t *testing.T) {
		c, v := user.code(t, pub)
		f := codeForm(pub, c, v)
		f.Set("redirect_uri", "https://app.example/callback")
		a.wantTokenError(t, a.token(t, f), "invalid_grant")
	})
	t.Run("attack 50 resource differs at the token endpoint", func(t *testing.T) {
		c, v := user.code(t, pub)
		f := codeForm(pub, c, v)
		f.Set("resource", "https://other.example/mcp")
		a.wantTokenError(t, a.token(t, f), "invalid_target")
	})
	t.Run("attack 51 public CIMD client sends a secret", func(t *testing.T) {
		c, v := user.code(t, pub)
		f := codeForm(pub, c, v)
		f.Set("client_secret", "guess")
		a.wantTokenError(t, a.token(t, f), "invalid_client")
	})
	t.Run("attack 52 bad private_key_jwt assertions", func(t *testing.T) {
		user.authorizeCode(pkjwt, nil) // approve once
		good := func() map[string]any {
			return map[string]any{"iss": pkjwt, "sub": pkjwt, "aud": a.issuer, "jti": randomJTI(),
				"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}
		}
		withCode := func(assertion string) url.Values {
			c, v := user.code(t, pkjwt)
			f := codeForm(pkjwt, c, v)
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			f.Set("client_assertion", assertion)
			return f
		}
		wrongAud, expired, wrongIss := good(), good(), good()
		wrongAud["aud"] = "https://other.example"
		expired["exp"] = time.Now().Add(-time.Hour).Unix()
		wrongIss["iss"] = other
		otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for name, assertion := range map[string]string{
			"alg none":      unsignedJWT(good()),
			"wrong aud":     signES256(t, key, wrongAud),
			"expired":       signES256(t, key, expired),
			"iss not sub":   signES256(t, key, wrongIss),
			"another key":   signES256(t, otherKey, good()),
			"not a JWT":     "garbage",
			"HS256 forgery": signHS256(good(), []byte(publicJWK(key)["x"].(string))),
		} {
			t.Run(name, func(t *testing.T) { a.wantTokenError(t, a.token(t, withCode(assertion)), "invalid_client") })
		}
		claims := good()
		ok := signES256(t, key, claims)
		if resp := a.token(t, withCode(ok)); resp.status != 200 {
			t.Fatalf("a valid assertion: %d %s", resp.status, resp.body)
		}
		a.wantTokenError(t, a.token(t, withCode(ok)), "invalid_client") // jti replayed
	})
	t.Run("attack 53 rotated refresh token replayed; broader scope", func(t *testing.T) {
		c, v := user.code(t, pub)
		first := a.token(t, codeForm(pub, c, v))
		refresh := func(rt string, scope string) tokenAnswer {
			f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {pub}}
			if scope != "" {
				f.Set("scope", scope)
			}
			return a.token(t, f)
		}
		a.wantTokenError(t, refresh(first.RefreshToken, "read write"), "invalid_scope")
		second := refresh(first.RefreshToken, "")
		if second.status != 200 || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
			t.Fatalf("rotation: %d %s", second.status, second.body)
		}
		a.wantTokenError(t, refresh(first.RefreshToken, ""), "invalid_grant")  // replay
		a.wantTokenError(t, refresh(second.RefreshToken, ""), "invalid_grant") // the family is gone
		if a.introspect(t, second.AccessToken) {
			t.Errorf("access token of a replayed family still active")
		}
	})
	t.Run("attack 54 JSON body, password and implicit grants", func(t *testing.T) {
		c, v := user.code(t, pub)
		body, _ := json.Marshal(map[string]string{"grant_type": "authorization_code", "code": c, "code_verifier": v, "client_id": pub})
		req, _ := http.NewRequest(http.MethodPost, a.base+"/token", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		a.wantTokenError(t, a.send(t, req), "unsupported_grant_type")
		a.wantTokenError(t, a.token(t, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {a.password}, "client_id": {pub}}), "unsupported_grant_type")
		a.wantTokenError(t, a.token(t, url.Values{"grant_type": {"implicit"}, "client_id": {pub}}), "unsupported_grant_type")
		if resp := a.token(t, codeForm(pub, c, v)); resp.status != 200 {
			t.Errorf("the code after the refused JSON request: %d %s", resp.status, resp.body)
		}
	})
}

// attackCodeLifetime is the code lifetime of the attack server, short so
// that attack 48 needs no 10-minute wait.
const attackCodeLifetime = time.Second

const (
	attackResource = "https://mcp.example.com/mcp"
	attackRedirect = "http://127.0.0.1:5555/callback"
	attackRSSecret = "rs-attack-secret-1234567890123456789"
)

type attackServer struct {
	t        *testing.T
	base     string // the server's URL
	issuer   string
	password string      // of user admin
	logs     *syncBuffer // the server's stderr
	docs     *httptest.Server
	bodies   map[string][]byte // client documents by path; written before the server reads them
	// verifiers is the PKCE verifier of each challenge sent.
	verifiers map[string]string
}

// newAttackServer starts serve with the attack configuration and the extra
// serve arguments.
func newAttackServer(t *testing.T, extra ...string) *attackServer {
	return newAttackServerWith(t, extra...)
}

// newAttackServerWith is newAttackServer with extra serve flags.
func newAttackServerWith(t *testing.T, extra ...string) *attackServer {
	return newAttackServerEnv(t, nil, extra...)
}

// newAttackServerEnv is newAttackServer with an environment and extra
// serve flags.
func newAttackServerEnv(t *testing.T, env map[string]string, extra ...string) *attackServer {
	a := &attackServer{t: t, bodies: map[string][]byte{}, verifiers: map[string]string{}}
	a.docs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := a.bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(a.docs.Close)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "attacks.yaml", fmt.Sprintf(
		"lifetimes:\n  code: %s\nclients:\n  - client_id: rs\n    secret: %s\n    introspect: true\n", attackCodeLifetime, attackRSSecret))
	base, out, logs := startServeLogs(t, env, append([]string{"--addr", freeAddr(t), "--data", dir + "/data", "--config", cfg,
		"--dev-allow-loopback", "--resource", attackResource + "=read,write"}, extra...)...)
	a.base, a.issuer, a.password, a.logs = base, base, adminPassword(t, dir+"/data"), logs
	if iss, ok := bannerWord(out.String()+logs.String(), "issuer "); ok {
		a.issuer = iss
	}
	return a
}

// client publishes a public client document (plus extra members) and
// returns its client_id. Documents must be published before first use.
func (a *attackServer) client(path string, extra map[string]any) string {
	id := a.docs.URL + path
	doc := map[string]any{"client_id": id, "client_name": "Attack test " + path,
		"redirect_uris": []string{"http://127.0.0.1/callback", "https://app.example/callback"},
		"grant_types":   []string{"authorization_code", "refresh_token"}, "token_endpoint_auth_method": "none"}
	for k, v := range extra {
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		a.t.Fatal(err)
	}
	a.bodies[path] = b
	return id
}

// Edits of authorization parameters.
func set(k, v string) func(url.Values) { return func(q url.Values) { q.Set(k, v) } }
func add(k, v string) func(url.Values) { return func(q url.Values) { q.Add(k, v) } }
func del(k string) func(url.Values)    { return func(q url.Values) { q.Del(k) } }

func (a *attackServer) authorizeURL(clientID string, edit func(url.Values)) string {
	vb := make([]byte, 32)
	_, _ = rand.Read(vb)
	verifier := base64.RawURLEncoding.EncodeToString(vb)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	a.verifiers[challenge] = verifier
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {attackRedirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"st-" + verifier[:8]},
		"scope": {"read"}, "resource": {attackResource}}
	if edit != nil {
		edit(q)
	}
	return a.base + "/authorize?" + q.Encode()
}

func codeForm(clientID, code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"client_id": {clientID}, "redirect_uri": {attackRedirect}}
}

// browserReply is one response seen by an attack browser.
type browserReply struct {
	status   int
	header   http.Header
	location string
	body     string
}

type attackBrowser struct {
	a *attackServer
	c *http.Client
}

func (a *attackServer) newBrowser() *attackBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		a.t.Fatal(err)
	}
	return &attackBrowser{a: a, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *attackBrowser) do(req *http.Request) browserReply {
	resp, err := b.c.Do(req)
	if err != nil {
		b.a.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return browserReply{status: resp.StatusCode, header: resp.Header, location: resp.Header.Get("Location"), body: string(body)}
}

func (b *attackBrowser) get(u string) browserReply {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.a.t.Fatal(err)
	}
	return b.do(req)
}

func (b *attackBrowser) post(u string, form url.Values) browserReply {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// follow follows a 303 within the server (to the login or consent page).
func (b *attackBrowser) follow(t *testing.T, r browserReply) browserReply {
	t.Helper()
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/") && !strings.HasPrefix(r.location, b.a.base) {
		t.Fatalf("want a 303 to a page of the server, got %d %q: %s", r.status, r.location, r.body)
	}
	u := r.location
	if strings.HasPrefix(u, "/") {
		u = b.a.base + u
	}
	return b.get(u)
}

// redirectParams checks that r is a 303 to the registered redirect URI and
// returns its query.
func (b *attackBrowser) redirectParams(t *testing.T, r browserReply) url.Values {
	t.Helper()
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "http://127.0.0.1:") {
		t.Fatalf("want a 303 to the client's redirect URI, got %d %q: %s", r.status, r.location, r.body)
	}
	u, err := url.Parse(r.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// authorizeCode signs in and approves as needed and returns the final
// redirect's parameters.
func (b *attackBrowser) authorizeCode(clientID string, edit func(url.Values)) url.Values {
	t := b.a.t
	t.Helper()
	r := b.get(b.a.authorizeURL(clientID, edit))
	if r.status == http.StatusSeeOther && strings.Contains(r.location, "/login?") {
		lp := b.follow(t, r)
		r = b.post(b.a.base+"/login", url.Values{"username": {"admin"}, "password": {b.a.password},
			"request": {field(t, lp.body, "request")}, "csrf": {field(t, lp.body, "csrf")}})
	}
	if r.status == http.StatusSeeOther && strings.Contains(r.location, "/consent?") {
		if r = b.follow(t, r); r.status == http.StatusOK {
			r = b.post(b.a.base+"/consent", url.Values{"decision": {"approve"},
				"request": {field(t, r.body, "request")}, "csrf": {field(t, r.body, "csrf")}})
		}
	}
	return b.redirectParams(t, r)
}

// code gets a fresh code for clientID (already approved) and its verifier.
func (b *attackBrowser) code(t *testing.T, clientID string) (code, verifier string) {
	t.Helper()
	var challenge string
	q := b.authorizeCode(clientID, func(q url.Values) { challenge = q.Get("code_challenge") })
	if q.Get("code") == "" || q.Get("iss") != b.a.issuer {
		t.Fatalf("no code or wrong iss: %v", q)
	}
	return q.Get("code"), b.a.verifiers[challenge]
}

func field(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no hidden field %q in page:\n%s", name, body)
	}
	return m[1]
}

func wantErrorPageAt(t *testing.T, r browserReply, status int) {
	t.Helper()
	if r.status != status || r.location != "" || !strings.Contains(r.body, "This request cannot continue") {
		t.Errorf("got %d Location %q, want the error page with %d and no redirect: %.300s", r.status, r.location, status, r.body)
	}
}

// tokenAnswer is a token endpoint response.
type tokenAnswer struct {
	status       int
	body         string
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

func (a *attackServer) send(t *testing.T, req *http.Request) tokenAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	ta := tokenAnswer{status: resp.StatusCode, body: string(b)}
	if err := json.Unmarshal(b, &ta); err != nil {
		t.Fatalf("token endpoint answered %d with non-JSON: %s", resp.StatusCode, b)
	}
	return ta
}

func (a *attackServer) token(t *testing.T, form url.Values) tokenAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.send(t, req)
}

func (a *attackServer) wantTokenError(t *testing.T, ta tokenAnswer, code string) {
	t.Helper()
	if ta.Error != code || ta.AccessToken != "" || ta.Description == "" {
		t.Errorf("token endpoint: %d %s, want error %s with a description and no token", ta.status, ta.body, code)
	}
}

func (a *attackServer) introspect(t *testing.T, tok string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.base+"/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rs", attackRSSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("introspect: %d %v", resp.StatusCode, err)
	}
	return r.Active
}

// JWT helpers for client assertions (RFC 7523).

func publicJWK(k *ecdsa.PrivateKey) map[string]any {
	b := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.FillBytes(make([]byte, 32))) }
	return map[string]any{"kty": "EC", "crv": "P-256", "x": b(k.X), "y": b(k.Y), "kid": "k1", "alg": "ES256", "use": "sig"}
}

func jwtPart(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func unsignedJWT(claims map[string]any) string {
	return jwtPart(map[string]any{"alg": "none", "typ": "JWT"}) + "." + jwtPart(claims) + "."
}

func signES256(t *testing.T, k *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	input := jwtPart(map[string]any{"alg": "ES256", "typ": "JWT", "kid": "k1"}) + "." + jwtPart(claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// signHS256 is the key-confusion forgery: HMAC keyed with public material.
func signHS256(claims map[string]any, secret []byte) string {
	input := jwtPart(map[string]any{"alg": "HS256", "typ": "JWT", "kid": "k1"}) + "." + jwtPart(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
