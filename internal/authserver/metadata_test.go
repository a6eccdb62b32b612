package authserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/cimd"
	sqlstore "github.com/mcpauth/mcpauth/internal/store/sql"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// wantMetadata is the RFC 8414 document RFC 8414 §2, CIMD §6 asks for, for h
// with the default resource and no client able to hold a secret.
func wantMetadata(h *harness) oauth.AuthorizationServerMetadata {
	algs := []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}
	return oauth.AuthorizationServerMetadata{
		Issuer:                            h.issuer,
		AuthorizationEndpoint:             h.issuer + "/authorize",
		TokenEndpoint:                     h.issuer + "/token",
		JWKSURI:                           h.issuer + "/jwks",
		ScopesSupported:                   []string{"read", "write"},
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethodsSupported: []string{"none", "private_key_jwt"},
		TokenEndpointAuthSigningAlgValuesSupported:      algs,
		RevocationEndpoint:                              h.issuer + "/revoke",
		RevocationEndpointAuthMethodsSupported:          []string{"none", "private_key_jwt"},
		RevocationEndpointAuthSigningAlgValuesSupported: algs,
		IntrospectionEndpoint:                           h.issuer + "/introspect",
		IntrospectionEndpointAuthMethodsSupported:       []string{"client_secret_basic", "client_secret_post"},
		CodeChallengeMethodsSupported:                   []string{"S256"},
		AuthorizationResponseISSParameterSupported:      true,
		ClientIDMetadataDocumentSupported:               true,
		ProtectedResources:                              []string{testResource},
	}
}

// getMetadata fetches a metadata URL and checks G1: 200, application/json,
// CORS allowed (E9).
func (h *harness) getMetadata(u string) (oauth.AuthorizationServerMetadata, map[string]any) {
	t := h.t
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://web-client.example")
	resp := h.newBrowser().do(req)
	if resp.status != http.StatusOK || !strings.HasPrefix(resp.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: %d %s", u, resp.status, resp.header.Get("Content-Type"))
	}
	if resp.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("E9 GET %s: no CORS", u)
	}
	var m oauth.AuthorizationServerMetadata
	var raw map[string]any
	if err := json.Unmarshal([]byte(resp.body), &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(resp.body), &raw); err != nil {
		t.Fatal(err)
	}
	return m, raw
}

func TestMetadata(t *testing.T) {
	for _, tc := range []struct {
		name       string
		issuerPath string
		absent     []string
	}{
		{"G1 issuer without a path", "", nil},
		{"G1 issuer with a path: path-inserted", "/tenant1", []string{"/.well-known/oauth-authorization-server", "/authorize"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{issuerPath: tc.issuerPath, noStatic: true})
			urls, err := oauth.AuthorizationServerMetadataURLs(h.issuer) // where MCP clients look (RFC 8414 §3.1, MCP 2025-11-25 Authorization §Authorization Server Metadata Discovery)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range urls {
				m, raw := h.getMetadata(u)
				if diff := cmp.Diff(wantMetadata(h), m); diff != "" {
					t.Errorf("G2/G3 %s (-want +got):\n%s", u, diff)
				}
				if _, ok := raw["registration_endpoint"]; ok {
					t.Errorf("G3 registration_endpoint advertised without DCR")
				}
			}
			for _, p := range tc.absent {
				if resp := h.newBrowser().get(h.srv.URL + p); resp.status != http.StatusNotFound {
					t.Errorf("GET %s outside the issuer's path: %d, want 404", p, resp.status)
				}
			}
			// The flow works under the issuer's path.
			id := h.publishClient("/client.json", nil)
			h.newBrowser().flow(id, nil)
		})
	}
}

// TestMetadataSecrets: shared-secret methods are advertised only when a
// client can hold a secret (RFC 8414 §2, CIMD §6).
func TestMetadataSecrets(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	m, _ := h.getMetadata(h.url("/.well-known/oauth-authorization-server"))
	want := []string{"none", "private_key_jwt", "client_secret_basic", "client_secret_post"}
	if diff := cmp.Diff(want, m.TokenEndpointAuthMethodsSupported); diff != "" {
		t.Errorf("G3 token_endpoint_auth_methods_supported with a confidential static client (-want +got):\n%s", diff)
	}
}

// TestCORS: CORS on metadata, JWKS, token and revocation; none on
// introspection and pages (RFC 9700 §2.6).
func TestCORS(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	for _, tc := range []struct {
		method, path string
		cors         bool
	}{
		{http.MethodOptions, "/.well-known/oauth-authorization-server", true},
		{http.MethodGet, "/jwks", true},
		{http.MethodOptions, "/jwks", true},
		{http.MethodOptions, "/token", true},
		{http.MethodOptions, "/revoke", true},
		{http.MethodPost, "/revoke", true},
		{http.MethodOptions, "/introspect", false},
		{http.MethodPost, "/introspect", false},
		{http.MethodGet, "/login?request=x", false},
		{http.MethodGet, "/consent?request=x", false},
		{http.MethodGet, "/account", false},
	} {
		t.Run("E9 "+tc.method+" "+tc.path, func(t *testing.T) {
			h := h.in(t)
			req, err := http.NewRequest(tc.method, h.url(tc.path), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", "https://web-client.example")
			req.Header.Set("Access-Control-Request-Method", "POST")
			resp := h.newBrowser().do(req)
			if got := resp.header.Get("Access-Control-Allow-Origin") == "*"; got != tc.cors {
				t.Errorf("CORS = %v, want %v (status %d)", got, tc.cors, resp.status)
			}
		})
	}
	t.Run("F10 JWKS publishes the signing key", func(t *testing.T) {
		h := h.in(t)
		resp := h.newBrowser().get(h.url("/jwks"))
		var set struct {
			Keys []struct {
				Kid, Kty, Alg string
				D             string `json:"d"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(resp.body), &set); err != nil || len(set.Keys) == 0 {
			t.Fatalf("JWKS %q: %v", resp.body, err)
		}
		for _, k := range set.Keys {
			if k.D != "" || k.Kty != "EC" || k.Kid == "" {
				t.Errorf("JWKS key %+v", k)
			}
		}
	})
}

// TestNew checks option validation (CIMD §7.1, RFC 8414 §3.3).
// bareOptions are Options with a store, resolver and keys, for tests that
// call the Server in-process without fetching or signing anything.
func bareOptions(t *testing.T, issuer string) Options {
	t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	resolver, err := cimd.NewResolver(cimd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return Options{Issuer: issuer, Store: db, Resolver: resolver, Keys: token.NewKeys(db, token.KeyOptions{})}
}

func TestNew(t *testing.T) {
	base := bareOptions(t, "https://as.example")
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		ok   bool
	}{
		{"G2 https issuer", func(*Options) {}, true},
		{"G2 issuer with a path", func(o *Options) { o.Issuer = "https://as.example/tenant1" }, true},
		{"G4 http issuer on loopback (development)", func(o *Options) { o.Issuer = "http://127.0.0.1:8080" }, true},
		{"G4 http issuer on a public host", func(o *Options) { o.Issuer = "http://as.example" }, false},
		{"G2 issuer with a query", func(o *Options) { o.Issuer = "https://as.example?x=1" }, false},
		{"G2 issuer with a fragment", func(o *Options) { o.Issuer = "https://as.example#x" }, false},
		{"G2 issuer path with a pattern wildcard", func(o *Options) { o.Issuer = "https://as.example/{x}" }, false},
		{"G2 issuer path with a dot segment", func(o *Options) { o.Issuer = "https://as.example/a/../b" }, false},
		{"attack 14 static client id starting with https://", func(o *Options) {
			o.StaticClients = []StaticClient{{ClientID: "https://as.example/c.json"}}
		}, false},
		{"attack 14 static client id starting with http://", func(o *Options) {
			o.StaticClients = []StaticClient{{ClientID: "http://as.example/c.json"}}
		}, false},
		{"RFC 7662 introspecting client without a secret", func(o *Options) {
			o.StaticClients = []StaticClient{{ClientID: "rs", Introspect: true}}
		}, false},
		{"E11 resource with a fragment", func(o *Options) { o.Resources = []Resource{{URL: "https://mcp.example/#x"}} }, false},
		{"missing store", func(o *Options) { o.Store = nil }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			_, err := New(o)
			if (err == nil) != tc.ok {
				t.Errorf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestResourceSelection checks RFC 8707 and decision 5 (RFC 8707 §2, §2.2).
func TestResourceSelection(t *testing.T) {
	t.Run("decision 5 several resources", func(t *testing.T) {
		h := newHarness(t, harnessConfig{resources: []Resource{{URL: testResource}, {URL: "https://root.example"}}})
		id := h.publishClient("/client.json", nil)
		b := h.newBrowser()
		q := authParams(id, newPKCE())
		q.Del("resource")
		h.wantRedirectError(b.authorize(q), q, oauth.InvalidTarget)
		tr := b.flow(id, set("resource", "https://ROOT.example/")) // E11: case and a lone slash normalised
		if claims, err := h.keys.VerifyAccessToken(tr.AccessToken, h.clock.now()); err != nil || claims.Audience != "https://root.example" {
			t.Errorf("aud = %q, %v", claims.Audience, err)
		}
	})
	t.Run("decision 5 one resource is the default", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		id := h.publishClient("/client.json", nil)
		tr := h.newBrowser().flow(id, del("resource"))
		if claims, err := h.keys.VerifyAccessToken(tr.AccessToken, h.clock.now()); err != nil || claims.Audience != testResource {
			t.Errorf("aud = %q, %v", claims.Audience, err)
		}
	})
	t.Run("decision 5 no resource configured", func(t *testing.T) {
		h := newHarness(t, harnessConfig{noResources: true})
		id := h.publishClient("/client.json", nil)
		b := h.newBrowser()
		for _, bad := range []string{"", "http://any.example/mcp", "ftp://any.example/mcp"} {
			q := authParams(id, newPKCE())
			q.Set("resource", bad)
			if bad == "" {
				q.Del("resource")
			}
			h.wantRedirectError(b.authorize(q), q, oauth.InvalidTarget)
		}
		p := newPKCE()
		q := authParams(id, p)
		q.Set("resource", "https://any.example/mcp")
		q.Del("scope")
		cb := b.authorizeCode(q)
		form := codeForm(id, cb.Get("code"), p)
		form.Set("resource", "https://any.example/mcp")
		mustTokens(t, h.token(form, nil))
	})
}

// TestSessionCookie checks the session cookie's attributes
// (MCP Security Best Practices §Confused Deputy Problem: __Host- prefix,
// Secure, HttpOnly, SameSite=Lax).
func TestSessionCookie(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		issuer, name string
		secure       bool
	}{
		{"https://as.example", "__Host-mcpauth_session", true},
		{"http://127.0.0.1:8080", "mcpauth_session", false},
	} {
		t.Run("E12 "+tc.issuer, func(t *testing.T) {
			s, err := New(bareOptions(t, tc.issuer))
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			if err := s.startSession(ctx, rec, "user"); err != nil {
				t.Fatal(err)
			}
			cookies := rec.Result().Cookies()
			if len(cookies) != 1 {
				t.Fatalf("cookies: %v", cookies)
			}
			c := cookies[0]
			if c.Name != tc.name || c.Secure != tc.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || len(c.Value) < 43 {
				t.Errorf("cookie %+v", c)
			}
		})
	}
}
