package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/resource"
)

// testIssuer is an authorization server on loopback: RFC 8414 metadata, a
// JWKS with one ES256 key, and RFC 9068 access tokens minted on demand.
type testIssuer struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+oauth.WellKnownAuthorizationServer, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(oauth.AuthorizationServerMetadata{
			Issuer: is.srv.URL, AuthorizationEndpoint: is.srv.URL + "/authorize", TokenEndpoint: is.srv.URL + "/token",
			JWKSURI: is.srv.URL + "/jwks", ResponseTypesSupported: []string{"code"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		b64 := base64.RawURLEncoding
		x, y := make([]byte, 32), make([]byte, 32)
		key.X.FillBytes(x)
		key.Y.FillBytes(y)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": b64.EncodeToString(x), "y": b64.EncodeToString(y),
		}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// token mints an access token for aud with the given subject and scopes.
func (is *testIssuer) token(t testing.TB, aud, sub string, scopes ...string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": is.srv.URL, "aud": aud, "sub": sub, "client_id": "https://client.example/cimd.json",
		"scope": strings.Join(scopes, " "), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text(),
	}
	return is.sign(t, claims)
}

func (is *testIssuer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	b64 := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "at+jwt", "kid": "k1"})
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString(hdr) + "." + b64.EncodeToString(body)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, is.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64.EncodeToString(sig)
}

// verifier is the JWT verifier of a gateway protecting res, behind a cache.
func (is *testIssuer) verifier(t testing.TB, res string) resource.TokenVerifier {
	t.Helper()
	v, err := resource.NewJWTVerifier(resource.JWTOptions{Issuer: is.srv.URL, Resource: res, Client: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return resource.NewCache(v, resource.CacheOptions{})
}

// seen is what the upstream received.
type seen struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   string
}

// upstream is an MCP server stand-in on loopback that records requests and
// answers with handle (by default a JSON-RPC result echoing the body).
type upstream struct {
	srv    *httptest.Server
	mu     sync.Mutex
	seen   []seen
	handle http.HandlerFunc
}

func newUpstream(t testing.TB, handle http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{handle: handle}
	if u.handle == nil {
		u.handle = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
		}
	}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)})
		u.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		u.handle(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.seen...)
}

// harness is a gateway on loopback in front of an upstream, with an issuer.
type harness struct {
	is       *testIssuer
	up       *upstream
	gw       *httptest.Server
	resource string
}

// newHarness starts the issuer, the gateway and the upstream. The gateway
// listens first so that its URL (the resource) is known to opts; edit may
// change opts, and server the gateway's http.Server before it starts.
func newHarness(t testing.TB, handle http.HandlerFunc, edit func(*Options), server ...func(*http.Server)) *harness {
	t.Helper()
	h := &harness{is: newTestIssuer(t), up: newUpstream(t, handle)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.resource = "http://" + ln.Addr().String() + "/mcp"
	opts := Options{
		Upstream:             h.up.srv.URL + "/upstream/mcp",
		Resource:             h.resource,
		AuthorizationServers: []string{h.is.srv.URL},
		Scopes:               []string{"mcp:tools"},
		ToolScopes:           map[string][]string{"delete_file": {"files:write"}},
		Verifier:             h.is.verifier(t, h.resource),
	}
	if edit != nil {
		edit(&opts)
	}
	g, err := New(opts)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	h.gw = httptest.NewUnstartedServer(g)
	h.gw.Listener.Close()
	h.gw.Listener = ln
	for _, f := range server {
		f(h.gw.Config)
	}
	h.gw.Start()
	t.Cleanup(h.gw.Close)
	return h
}

// tokenFor mints a token for this gateway's resource.
func (h *harness) tokenFor(t testing.TB, sub string, scopes ...string) string {
	return h.is.token(t, h.resource, sub, scopes...)
}

// do sends a request to the gateway and returns the response with its body
// read.
func do(t testing.TB, method, url, token string, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = append(req.Header[k], v) // keys as given, not canonicalised
	}
	resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

const toolsList = `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`

func toolCall(id int, name string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": map[string]any{"name": name, "arguments": map[string]any{}}})
	return string(b)
}

// logBuffer collects a logger's output; it is safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
