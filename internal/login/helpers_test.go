package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
)

// fakeAS is an authorization server on loopback that approves every
// authorization request at once (with an immediate redirect) and records
// what clients send. Its knobs break it in the ways the tests need.
type fakeAS struct {
	srv *httptest.Server

	mu sync.Mutex
	// configuration, set before the first request
	issuerPath    string              // "" or e.g. "/tenant1"
	metadataAt    string              // path serving the metadata; "" = RFC 8414 path-inserted
	issuerEdit    func(string) string // changes the issuer value of the metadata
	pkce          []string            // code_challenge_methods_supported
	issSupported  bool
	issParam      string // "": none; "right"; anything else is sent as is
	wrongState    bool
	errorParam    string // sent with a correct state instead of a code
	cimd          bool
	dcr           bool
	authMethods   []string
	refreshTokens bool
	expiresIn     int64
	grant         func(requested []string) []string
	// recordings
	paths         []string
	authRequests  []url.Values
	tokenRequests []url.Values
	basicAuth     []string
	registrations []registrationRequest
	codes         map[string]codeGrant
	tokens        map[string][]string // access token -> scopes
	refresh       map[string][]string // refresh token -> scopes
	n             int
}

type codeGrant struct {
	challenge, clientID, redirectURI, resource string
	scopes                                     []string
}

func newFakeAS(t testing.TB, configure func(*fakeAS)) *fakeAS {
	t.Helper()
	as := &fakeAS{pkce: []string{"S256"}, dcr: true, authMethods: []string{"none"}, expiresIn: 3600,
		codes: map[string]codeGrant{}, tokens: map[string][]string{}, refresh: map[string][]string{}}
	if configure != nil {
		configure(as)
	}
	as.srv = httptest.NewServer(http.HandlerFunc(as.serve))
	t.Cleanup(as.srv.Close)
	return as
}

func (as *fakeAS) issuer() string { return as.srv.URL + as.issuerPath }

func (as *fakeAS) metadataPath() string {
	if as.metadataAt != "" {
		return as.metadataAt
	}
	return oauth.WellKnownAuthorizationServer + as.issuerPath
}

func (as *fakeAS) serve(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.paths = append(as.paths, r.URL.Path)
	p := strings.TrimPrefix(r.URL.Path, as.issuerPath)
	switch {
	case r.URL.Path == as.metadataPath():
		iss := as.issuer()
		if as.issuerEdit != nil {
			iss = as.issuerEdit(iss)
		}
		md := oauth.AuthorizationServerMetadata{
			Issuer:                                     iss,
			AuthorizationEndpoint:                      as.issuer() + "/authorize",
			TokenEndpoint:                              as.issuer() + "/token",
			ResponseTypesSupported:                     []string{"code"},
			CodeChallengeMethodsSupported:              as.pkce,
			TokenEndpointAuthMethodsSupported:          as.authMethods,
			AuthorizationResponseISSParameterSupported: as.issSupported,
			ClientIDMetadataDocumentSupported:          as.cimd,
		}
		if as.dcr {
			md.RegistrationEndpoint = as.issuer() + "/register"
		}
		respondJSON(w, http.StatusOK, md)
	case p == "/authorize" && strings.HasPrefix(r.URL.Path, as.issuerPath):
		as.authorize(w, r)
	case p == "/token" && r.Method == http.MethodPost:
		as.token(w, r)
	case p == "/register" && r.Method == http.MethodPost && as.dcr:
		var rr registrationRequest
		if err := json.NewDecoder(r.Body).Decode(&rr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		as.registrations = append(as.registrations, rr)
		as.n++
		resp := map[string]any{"client_id": fmt.Sprintf("dcr-%d", as.n), "redirect_uris": rr.RedirectURIs,
			"token_endpoint_auth_method": rr.TokenEndpointAuthMethod}
		if rr.TokenEndpointAuthMethod != AuthNone {
			resp["client_secret"] = fmt.Sprintf("secret-%d", as.n)
		}
		respondJSON(w, http.StatusCreated, resp)
	default:
		http.NotFound(w, r)
	}
}

func (as *fakeAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	as.authRequests = append(as.authRequests, q)
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	as.n++
	code := fmt.Sprintf("code-%d", as.n)
	scopes := splitScope(q.Get("scope"))
	if as.grant != nil {
		scopes = as.grant(scopes)
	}
	as.codes[code] = codeGrant{challenge: q.Get("code_challenge"), clientID: q.Get("client_id"),
		redirectURI: q.Get("redirect_uri"), resource: q.Get("resource"), scopes: scopes}
	rq := redirect.Query()
	state := q.Get("state")
	if as.wrongState {
		state = "forged"
	}
	rq.Set("state", state)
	if as.errorParam != "" {
		rq.Set("error", as.errorParam)
		rq.Set("error_description", "evil \x1b[31mdescription")
	} else {
		rq.Set("code", code)
	}
	switch as.issParam {
	case "":
	case "right":
		rq.Set("iss", as.issuer())
	default:
		rq.Set("iss", as.issParam)
	}
	redirect.RawQuery = rq.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (as *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f := r.PostForm
	as.tokenRequests = append(as.tokenRequests, f)
	as.basicAuth = append(as.basicAuth, r.Header.Get("Authorization"))
	var scopes []string
	switch f.Get("grant_type") {
	case "authorization_code":
		g, ok := as.codes[f.Get("code")]
		delete(as.codes, f.Get("code"))
		if !ok || s256(f.Get("code_verifier")) != g.challenge || f.Get("redirect_uri") != g.redirectURI || f.Get("resource") != g.resource {
			respondJSON(w, http.StatusBadRequest, oauth.Error{Code: oauth.InvalidGrant, Description: "bad code, verifier, redirect_uri or resource"})
			return
		}
		scopes = g.scopes
	case "refresh_token":
		s, ok := as.refresh[f.Get("refresh_token")]
		delete(as.refresh, f.Get("refresh_token"))
		if !ok {
			respondJSON(w, http.StatusBadRequest, oauth.Error{Code: oauth.InvalidGrant, Description: "unknown refresh token"})
			return
		}
		scopes = s
	default:
		respondJSON(w, http.StatusBadRequest, oauth.Error{Code: oauth.UnsupportedGrantType})
		return
	}
	as.n++
	tok := fmt.Sprintf("at-%d", as.n)
	as.tokens[tok] = scopes
	resp := map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": as.expiresIn, "scope": strings.Join(scopes, " ")}
	if as.refreshTokens {
		rt := fmt.Sprintf("rt-%d", as.n)
		as.refresh[rt] = scopes
		resp["refresh_token"] = rt
	}
	respondJSON(w, http.StatusOK, resp)
}

func (as *fakeAS) scopesOf(tok string) ([]string, bool) {
	as.mu.Lock()
	defer as.mu.Unlock()
	s, ok := as.tokens[tok]
	return s, ok
}

// snapshot returns copies of the recordings.
func (as *fakeAS) snapshot() (paths []string, auth, token []url.Values, regs []registrationRequest, basic []string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	return append([]string(nil), as.paths...), append([]url.Values(nil), as.authRequests...),
		append([]url.Values(nil), as.tokenRequests...), append([]registrationRequest(nil), as.registrations...),
		append([]string(nil), as.basicAuth...)
}

func respondJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fakeRS is an MCP server on loopback protected by fakeAS tokens. Every
// request needs the scopes in required; a JSON-RPC "tools/call" also needs
// those in toolScopes (403 insufficient_scope, step-up).
type fakeRS struct {
	srv *httptest.Server
	as  *fakeAS

	prmAt           string // "path" (default), "root", "custom", "none"
	inHeader        bool   // resource_metadata in the challenge
	scopeInHeader   bool
	required        []string
	toolScopes      []string
	scopesSupported []string
	prmResource     string // overrides the PRM's resource
	always403       bool   // answer every authorized request 403 insufficient_scope

	mu       sync.Mutex
	paths    []string
	bearers  []string
	requests int
}

func newFakeRS(t testing.TB, as *fakeAS, configure func(*fakeRS)) *fakeRS {
	t.Helper()
	rs := &fakeRS{as: as, prmAt: "path", inHeader: true}
	if configure != nil {
		configure(rs)
	}
	rs.srv = httptest.NewServer(http.HandlerFunc(rs.serve))
	t.Cleanup(rs.srv.Close)
	return rs
}

func (rs *fakeRS) mcpURL() string { return rs.srv.URL + "/mcp" }

func (rs *fakeRS) prmPath() string {
	switch rs.prmAt {
	case "root":
		return oauth.WellKnownProtectedResource
	case "custom":
		return "/custom/prm.json"
	case "none":
		return "/nowhere"
	}
	return oauth.WellKnownProtectedResource + "/mcp"
}

func (rs *fakeRS) serve(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	rs.paths = append(rs.paths, r.URL.Path)
	rs.mu.Unlock()
	switch {
	case r.URL.Path == rs.prmPath() && rs.prmAt != "none":
		res := rs.mcpURL()
		if rs.prmAt == "root" {
			res = rs.srv.URL
		}
		if rs.prmResource != "" {
			res = rs.prmResource
		}
		respondJSON(w, http.StatusOK, oauth.ProtectedResourceMetadata{Resource: res,
			AuthorizationServers: []string{rs.as.issuer()}, ScopesSupported: rs.scopesSupported})
	case r.URL.Path == "/mcp" && r.Method == http.MethodPost:
		rs.mcp(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (rs *fakeRS) challenge(errCode oauth.ErrorCode, scopes []string) string {
	c := oauth.Challenge{Scheme: "Bearer"}
	if errCode != "" {
		c.Params = append(c.Params, oauth.AuthParam{Name: "error", Value: string(errCode)})
	}
	if len(scopes) > 0 && (rs.scopeInHeader || errCode == oauth.InsufficientScope) {
		c.Params = append(c.Params, oauth.AuthParam{Name: "scope", Value: strings.Join(scopes, " ")})
	}
	if rs.inHeader {
		c.Params = append(c.Params, oauth.AuthParam{Name: "resource_metadata", Value: rs.srv.URL + rs.prmPath()})
	}
	if len(c.Params) == 0 {
		return "Bearer"
	}
	return c.String()
}

func (rs *fakeRS) mcp(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Method string `json:"method"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &msg)
	rs.mu.Lock()
	rs.requests++
	rs.bearers = append(rs.bearers, r.Header.Get("Authorization"))
	rs.mu.Unlock()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", rs.challenge("", rs.required))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	have, ok := rs.as.scopesOf(tok)
	if !ok {
		w.Header().Set("WWW-Authenticate", rs.challenge(oauth.InvalidToken, rs.required))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	need := rs.required
	if msg.Method == "tools/call" {
		need = union(need, rs.toolScopes)
	}
	if rs.always403 || !subset(need, have) {
		w.Header().Set("WWW-Authenticate", rs.challenge(oauth.InsufficientScope, need))
		w.WriteHeader(http.StatusForbidden)
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{"ok": true, "method": msg.Method, "body": string(body)})
}

func (rs *fakeRS) snapshot() (paths, bearers []string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.paths...), append([]string(nil), rs.bearers...)
}

// newPRMServer is an MCP server whose 401 names its PRM, which md gives.
func newPRMServer(t *testing.T, md func() oauth.ProtectedResourceMetadata) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == oauth.WellKnownProtectedResource+"/mcp" {
			respondJSON(w, http.StatusOK, md())
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+srv.URL+oauth.WellKnownProtectedResource+`/mcp"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// newTestAuthorizer returns an Authorizer for rs that approves through
// AutoApprove, keeps its store in memory unless one is given, and writes
// progress to the test log.
func newTestAuthorizer(t *testing.T, rs *fakeRS, configure func(*Options)) *Authorizer {
	t.Helper()
	opts := Options{MCPURL: rs.mcpURL(), OpenBrowser: AutoApprove(), Progress: testWriter{t}, CallbackTimeout: 10 * time.Second}
	if configure != nil {
		configure(&opts)
	}
	a, err := NewAuthorizer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// call posts one JSON-RPC request through a and returns the status.
func call(t *testing.T, a *Authorizer, url, method string) (int, error) {
	t.Helper()
	c := &http.Client{Transport: a, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url,
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"`+method+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && !strings.Contains(string(body), `"method":"`+method+`"`) {
		t.Errorf("the server saw another body: %s", body)
	}
	return resp.StatusCode, nil
}

func basicUser(h string) string {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
	if err != nil {
		return ""
	}
	u, _, _ := strings.Cut(string(b), ":")
	return u
}
