package authserver

// The test harness: a real SQLite store, real signing keys, a cimd.Resolver
// fetching client metadata documents from a loopback TLS server, and the
// Server under httptest, driven over HTTP like a browser and an MCP client
// would (OAuth 2.1 §4.1, §4.1.3, RFC 8414 §2). Every request goes to 127.0.0.1.

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/safehttp"
	"github.com/mcpauth/mcpauth/internal/store"
	sqlstore "github.com/mcpauth/mcpauth/internal/store/sql"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// Fixed values of the harness.
const (
	testResource   = "https://mcp.example/mcp"
	testResource2  = "https://other.example/mcp"
	testUser       = "alice"
	testPassword   = "correct horse battery staple"
	testRedirect   = "http://127.0.0.1/callback"
	testRedirectS  = "https://app.example/callback"
	testRSClient   = "resource-server"
	testRSSecret   = "rs-secret-0123456789"
	testStaticID   = "static-app"
	testStaticPass = "static-secret-0123456789"
)

// clock is the settable time source shared by the store callers, the keys,
// the resolver and the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// published is one resource on the document server.
type published struct {
	body        []byte
	contentType string
	header      map[string]string
}

// docServer is a loopback TLS server that publishes client metadata
// documents, JWK sets and logos by path.
type docServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	docs    map[string]published
	fetches map[string]int
}

func newDocServer(t *testing.T) *docServer {
	t.Helper()
	d := &docServer{docs: map[string]published{}, fetches: map[string]int{}}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		p, ok := d.docs[r.URL.Path]
		d.fetches[r.URL.Path]++
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", p.contentType)
		for k, v := range p.header {
			w.Header().Set(k, v)
		}
		_, _ = w.Write(p.body)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *docServer) url(path string) string { return d.srv.URL + path }

func (d *docServer) publish(path, contentType string, body []byte, header map[string]string) {
	d.mu.Lock()
	d.docs[path] = published{body: body, contentType: contentType, header: header}
	d.mu.Unlock()
}

func (d *docServer) fetchCount(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fetches[path]
}

func (d *docServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(d.srv.Certificate())
	return p
}

// newTestFetcher is a safehttp client for jwks_uri or logo fetches:
// loopback allowed, trusting only the document server's certificate.
func newTestFetcher(d *docServer, maxBytes int64) (*safehttp.Client, error) {
	return safehttp.New(safehttp.Options{AllowLoopback: true, RootCAs: d.pool(), MaxBodyBytes: maxBytes})
}

// harnessConfig varies the server under test. The zero value is one
// protected resource with scopes read and write, a resource server allowed
// to introspect, a confidential static client, no DCR.
type harnessConfig struct {
	issuerPath  string     // e.g. "/tenant1"
	resources   []Resource // nil means testResource with scopes read, write
	noResources bool       // no resource configured at all
	noStatic    bool       // none of the default static clients
	static      []StaticClient
	dcr         bool
	lifetimes   Lifetimes
	policy      cimd.PolicyConfig
	limits      cimd.Limits
	// noLoopbackClients refuses http://localhost client_ids (cimd.Options.LoopbackClients).
	noLoopbackClients bool
	// noDevLoopback turns off the development exception that accepts CIMD
	// client_ids on loopback hosts (cimd.Options.AllowLoopback).
	noDevLoopback bool
}

type harness struct {
	t        *testing.T
	clock    *clock
	db       *sqlstore.DB
	keys     *token.Keys
	resolver *cimd.Resolver
	docs     *docServer
	as       *Server
	srv      *httptest.Server
	issuer   string
	user     store.User
}

func newHarness(t *testing.T, cfg harnessConfig) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, clock: &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}}
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	h.db = db
	h.keys = token.NewKeys(db, token.KeyOptions{Now: h.clock.now, PublishLead: -1})
	if err := h.keys.Load(ctx); err != nil {
		t.Fatalf("load keys: %v", err)
	}
	h.docs = newDocServer(t)
	policy, err := cimd.NewPolicy(cfg.policy)
	if err != nil {
		t.Fatal(err)
	}
	h.resolver, err = cimd.NewResolver(cimd.Options{Policy: policy, AllowLoopback: !cfg.noDevLoopback, RootCAs: h.docs.pool(),
		Now: h.clock.now, Limits: cfg.limits, LoopbackClients: !cfg.noLoopbackClients})
	if err != nil {
		t.Fatal(err)
	}
	fetch, err := newTestFetcher(h.docs, 0)
	if err != nil {
		t.Fatal(err)
	}
	logoFetch, err := newTestFetcher(h.docs, logoMaxBytes)
	if err != nil {
		t.Fatal(err)
	}

	h.srv = httptest.NewUnstartedServer(nil)
	h.issuer = "http://" + h.srv.Listener.Addr().String() + cfg.issuerPath
	resources := cfg.resources
	if resources == nil && !cfg.noResources {
		resources = []Resource{{URL: testResource, Scopes: []string{"read", "write"}, Name: "Test MCP"}}
	}
	var static []StaticClient
	if !cfg.noStatic {
		static = []StaticClient{
			{ClientID: testRSClient, Name: "Resource server", SecretHash: token.Hash(testRSSecret), Introspect: true},
			{ClientID: testStaticID, Name: "Static app", SecretHash: token.Hash(testStaticPass), RedirectURIs: []string{testRedirectS}},
		}
	}
	static = append(static, cfg.static...)
	h.as, err = New(Options{Issuer: h.issuer, Resources: resources, StaticClients: static, EnableDCR: cfg.dcr,
		Lifetimes: cfg.lifetimes, Store: db, Resolver: h.resolver, Keys: h.keys, Fetch: fetch, LogoFetch: logoFetch, Now: h.clock.now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.srv.Config.Handler = h.as
	h.srv.Start()
	t.Cleanup(h.srv.Close)

	h.user = store.User{ID: "user-alice", Name: testUser, PasswordHash: HashPassword(testPassword), CreatedAt: h.clock.now()}
	if err := db.CreateUser(ctx, h.user); err != nil {
		t.Fatal(err)
	}
	return h
}

// in returns the harness for use in subtest t: helpers report to t.
func (h *harness) in(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// in returns the browser, with its cookies, for use in subtest t.
func (b *browser) in(t *testing.T) *browser { return &browser{h: b.h.in(t), c: b.c} }

// url returns the absolute URL of an endpoint path under the issuer.
func (h *harness) url(path string) string { return h.issuer + path }

// clientDoc is a valid public client document for id: loopback and https
// redirect URIs, refresh tokens declared.
func clientDoc(id string) map[string]any {
	return map[string]any{
		"client_id":     id,
		"client_name":   "Test App",
		"redirect_uris": []string{testRedirect, testRedirectS},
		"grant_types":   []string{"authorization_code", "refresh_token"},
	}
}

// publishClient publishes a client metadata document at path, built by
// clientDoc and then changed by edit, and returns its client_id.
func (h *harness) publishClient(path string, edit func(doc map[string]any)) string {
	h.t.Helper()
	id := h.docs.url(path)
	doc := clientDoc(id)
	if edit != nil {
		edit(doc)
	}
	h.publishJSON(path, doc, nil)
	return id
}

func (h *harness) publishJSON(path string, v any, header map[string]string) {
	h.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		h.t.Fatal(err)
	}
	h.docs.publish(path, "application/json", b, header)
}

// pkce is an RFC 7636 verifier and its S256 challenge.
type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := randomID(32) // 43 characters of [A-Za-z0-9-_]
	sum := sha256.Sum256([]byte(v))
	return pkce{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// authParams is a valid authorization request for clientID (OAuth 2.1 §4.1.1,
// RFC 8707 §2).
func authParams(clientID string, p pkce) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {testRedirect},
		"code_challenge":        {p.challenge},
		"code_challenge_method": {"S256"},
		"state":                 {"st-" + randomID(6)},
		"resource":              {testResource},
		"scope":                 {"read"},
	}
}

// browser is a user agent with a cookie jar that does not follow redirects.
type browser struct {
	h *harness
	c *http.Client
}

func (h *harness) newBrowser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &browser{h: h, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   string
}

func (p reply) location() string { return p.header.Get("Location") }

func (b *browser) do(req *http.Request) reply {
	b.h.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// get fetches target: a path under the issuer, or an absolute URL.
func (b *browser) get(target string) reply {
	b.h.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = b.h.absolute(target)
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(target string, form url.Values) reply {
	b.h.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = b.h.absolute(target)
	}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// absolute resolves a Location or form action (an absolute path on the
// server) against the server's origin.
func (h *harness) absolute(p string) string { return h.srv.URL + p }

func (b *browser) authorize(q url.Values) reply {
	b.h.t.Helper()
	return b.get(b.h.url("/authorize") + "?" + q.Encode())
}

// hiddenField scrapes a hidden form field from a page.
func hiddenField(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no hidden field %q in page:\n%s", name, body)
	}
	return m[1]
}

// formAction scrapes the action of the first form of a page.
func formAction(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`<form method="post" action="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form in page:\n%s", body)
	}
	return m[1]
}

// follow follows a 303 to one of our pages (marker is e.g. "/login?")
// and returns the page, which must be 200.
func (b *browser) follow(resp reply, marker string) reply {
	t := b.h.t
	t.Helper()
	p := b.follow303(resp, marker)
	if p.status != http.StatusOK {
		t.Fatalf("%s: %d %s", resp.location(), p.status, p.body)
	}
	return p
}

// follow303 follows a 303 to one of our pages (marker is e.g. "/consent?")
// and returns the answer, whatever it is.
func (b *browser) follow303(resp reply, marker string) reply {
	t := b.h.t
	t.Helper()
	if resp.status != http.StatusSeeOther || !strings.Contains(resp.location(), marker) {
		t.Fatalf("want 303 to %s, got %d %q: %s", marker, resp.status, resp.location(), resp.body)
	}
	return b.get(resp.location())
}

// login follows a 303 to the login page and signs in (form fields
// username, password, request, csrf). It returns the response to the POST.
func (b *browser) login(toLogin reply, password string) reply {
	t := b.h.t
	t.Helper()
	lp := b.follow(toLogin, "/login?")
	return b.post(formAction(t, lp.body), url.Values{"username": {testUser}, "password": {password},
		"request": {hiddenField(t, lp.body, "request")}, "csrf": {hiddenField(t, lp.body, "csrf")}})
}

// consentPage follows a 303 to the consent page and returns it.
func (b *browser) consentPage(toConsent reply) reply {
	b.h.t.Helper()
	return b.follow(toConsent, "/consent?")
}

// decide posts a decision on a consent page.
func (b *browser) decide(cp reply, decision string) reply {
	t := b.h.t
	t.Helper()
	return b.post(formAction(t, cp.body), url.Values{"decision": {decision},
		"request": {hiddenField(t, cp.body, "request")}, "csrf": {hiddenField(t, cp.body, "csrf")}})
}

// authorizeCode runs the whole front-channel flow for q: it signs in and
// approves when asked, and returns the parameters of the final redirect to
// the client, after checking it is a 303 to the redirect URI carrying the
// request's state and our iss (RFC 9700 §4.12, OAuth 2.1 §4.1.2, RFC 9207 §2,
// RFC 6749 §4.1.2).
func (b *browser) authorizeCode(q url.Values) url.Values {
	t := b.h.t
	t.Helper()
	resp := b.authorize(q)
	if resp.status == http.StatusSeeOther && strings.Contains(resp.location(), "/login?") {
		resp = b.login(resp, testPassword)
	}
	if resp.status == http.StatusSeeOther && strings.Contains(resp.location(), "/consent?") {
		// The consent page redirects straight to the client when the user
		// approved before (MCP Security Best Practices §Confused Deputy
		// Problem).
		if resp = b.get(resp.location()); resp.status == http.StatusOK {
			resp = b.decide(resp, "approve")
		}
	}
	return b.h.callback(resp, q)
}

// callback checks that resp redirects to q's redirect URI with state and
// iss, and returns the redirect's query parameters.
func (h *harness) callback(resp reply, q url.Values) url.Values {
	t := h.t
	t.Helper()
	if resp.status != http.StatusSeeOther {
		t.Fatalf("want 303 to the client, got %d %q: %s", resp.status, resp.location(), resp.body)
	}
	u, err := url.Parse(resp.location())
	if err != nil {
		t.Fatal(err)
	}
	got := u.Query()
	if base := u.Scheme + "://" + u.Host + u.Path; base != q.Get("redirect_uri") {
		t.Fatalf("redirected to %q, want %q", resp.location(), q.Get("redirect_uri"))
	}
	if got.Get("state") != q.Get("state") {
		t.Errorf("state = %q, want %q (RFC 6749 section 4.1.2)", got.Get("state"), q.Get("state"))
	}
	if got.Get("iss") != h.issuer {
		t.Errorf("iss = %q, want %q (OAuth 2.1 section 4.1.2, RFC 9207 section 2)", got.Get("iss"), h.issuer)
	}
	return got
}

// tokenResult is a token endpoint response, success or error.
type tokenResult struct {
	Status           int         `json:"-"`
	Header           http.Header `json:"-"`
	AccessToken      string      `json:"access_token"`
	TokenType        string      `json:"token_type"`
	ExpiresIn        int64       `json:"expires_in"`
	RefreshToken     string      `json:"refresh_token"`
	Scope            string      `json:"scope"`
	Error            string      `json:"error"`
	ErrorDescription string      `json:"error_description"`
}

// postForm sends a back-channel form request (token, revoke, introspect)
// and decodes a JSON answer into out, if any. edit may change the request
// (Basic auth, headers).
func (h *harness) postForm(path string, form url.Values, out any, edit func(*http.Request)) (int, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url(path), strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if edit != nil {
		edit(req)
	}
	return h.send(req, out)
}

// send sends a back-channel request and decodes a JSON answer into out, if any.
func (h *harness) send(req *http.Request, out any) (int, http.Header) {
	h.t.Helper()
	path := req.URL.Path
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if out != nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, out); err != nil {
			h.t.Fatalf("POST %s: %d, body is not JSON: %v: %s", path, resp.StatusCode, err, body)
		}
	}
	return resp.StatusCode, resp.Header
}

func (h *harness) token(form url.Values, edit func(*http.Request)) tokenResult {
	h.t.Helper()
	var tr tokenResult
	tr.Status, tr.Header = h.postForm("/token", form, &tr, edit)
	return tr
}

// redeem exchanges a code (OAuth 2.1 §4.1.3, RFC 8707 §2.2).
func (h *harness) redeem(clientID, code string, p pkce) tokenResult {
	h.t.Helper()
	return h.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.verifier},
		"client_id": {clientID}, "redirect_uri": {testRedirect}, "resource": {testResource}}, nil)
}

func (h *harness) refresh(clientID, rt string) tokenResult {
	h.t.Helper()
	return h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}, nil)
}

// mustTokens checks a successful token response.
func mustTokens(t *testing.T, tr tokenResult) tokenResult {
	t.Helper()
	if tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token request failed: %d %s: %s", tr.Status, tr.Error, tr.ErrorDescription)
	}
	return tr
}

// wantError checks an OAuth error response.
func wantError(t *testing.T, tr tokenResult, status int, code oauth.ErrorCode) {
	t.Helper()
	if tr.Status != status || tr.Error != string(code) {
		t.Errorf("got %d %q (%s), want %d %q", tr.Status, tr.Error, tr.ErrorDescription, status, code)
	}
	if tr.AccessToken != "" {
		t.Errorf("an error response carried an access token")
	}
}

// flow runs authorization and code exchange for clientID with the
// default parameters as edited by edit, and returns the tokens.
func (b *browser) flow(clientID string, edit func(q url.Values)) tokenResult {
	t := b.h.t
	t.Helper()
	p := newPKCE()
	q := authParams(clientID, p)
	if edit != nil {
		edit(q)
	}
	cb := b.authorizeCode(q)
	form := codeForm(clientID, cb.Get("code"), p)
	form["resource"] = q["resource"] // as requested, or absent
	form.Set("redirect_uri", q.Get("redirect_uri"))
	return mustTokens(t, b.h.token(form, nil))
}

// introspection of a token by the resource server (RFC 7662).
func (h *harness) introspect(tok string) introspection {
	h.t.Helper()
	var out introspection
	status, _ := h.postForm("/introspect", url.Values{"token": {tok}}, &out, func(r *http.Request) {
		r.SetBasicAuth(testRSClient, testRSSecret)
	})
	if status != http.StatusOK {
		h.t.Fatalf("introspect: status %d", status)
	}
	return out
}

// TestHarnessFlow is the happy path end to end: metadata, authorize, login,
// consent, code, token, refresh, introspection (OAuth 2.1 §4.1, §4.1.3,
// RFC 8414 §2).
func TestHarnessFlow(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	id := h.publishClient("/client.json", nil)
	b := h.newBrowser()
	tr := b.flow(id, nil)
	if tr.TokenType != "Bearer" || tr.RefreshToken == "" || tr.Scope != "read" || tr.ExpiresIn != 600 {
		t.Errorf("token response = %+v", tr)
	}
	claims, err := h.keys.VerifyAccessToken(tr.AccessToken, h.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	if claims.Audience != testResource || claims.Issuer != h.issuer || claims.ClientID != id || claims.Subject != h.user.ID {
		t.Errorf("claims = %+v (RFC 9068 section 2)", claims)
	}
	if in := h.introspect(tr.AccessToken); !in.Active || in.Aud != testResource || in.ClientID != id {
		t.Errorf("introspection = %+v", in)
	}
	next := mustTokens(t, h.refresh(id, tr.RefreshToken))
	if next.RefreshToken == "" || next.RefreshToken == tr.RefreshToken {
		t.Errorf("refresh token not rotated (OAuth 2.1 section 4.3.1, RFC 9700 section 4.14.2)")
	}
}
