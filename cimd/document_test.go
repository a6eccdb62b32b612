package cimd

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testClientID = "https://app.example/client.json"

// mustClientID parses s with the development exception on, so tests can use
// loopback client IDs too.
func mustClientID(t testing.TB, s string) ClientID {
	t.Helper()
	id, err := parseClientID(s, true)
	if err != nil {
		t.Fatalf("parseClientID(%q): %v", s, err)
	}
	return id
}

// testKey is a public EC P-256 key.
func testKey() map[string]any {
	return map[string]any{
		"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
		"x": "tmzN7wq2PMj1TYq6lUNZQ4hkV5sgzGjN7JmiLCBmaUA",
		"y": "n2nIp9iwVzsz2BRhu69ivkY_Et24oILQhZ1SosgPbLk",
	}
}

// withKey returns testKey with extra members.
func withKey(extra map[string]any) map[string]any {
	k := testKey()
	for n, v := range extra {
		k[n] = v
	}
	return k
}

// absent deletes a member in testDoc.
type absent struct{}

// testDoc returns a minimal valid document for testClientID with members
// set (or, for absent{}, deleted) by set.
func testDoc(t testing.TB, set map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"client_id":     testClientID,
		"client_name":   "Example App",
		"redirect_uris": []string{"https://app.example/callback"},
	}
	for k, v := range set {
		if _, ok := v.(absent); ok {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reasonsIn lists the reasons of every problem in err.
func reasonsIn(err error) []Reason {
	var e *Error
	if !errors.As(err, &e) {
		return nil
	}
	var out []Reason
	for _, p := range e.Problems {
		out = append(out, p.Reason)
	}
	return out
}

func warningCodes(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

// loadFixture reads testdata/clients/name and its client_id.
func loadFixture(t testing.TB, name string) ([]byte, ClientID) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "clients", name))
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	id, err := ParseClientID(head.ClientID)
	if err != nil {
		t.Fatalf("%s: client_id: %v", name, err)
	}
	return data, id
}

func TestFixturesOfRealClients(t *testing.T) {
	tests := []struct {
		file     string
		name     string
		check    func(t *testing.T, d *Document)
		warnings []string
	}{
		{
			file: "claude-code.json",
			name: "E3 claude-code port-less loopback redirects match any port",
			check: func(t *testing.T, d *Document) {
				want := &Document{
					ClientID:                "https://claude.ai/oauth/claude-code-client-metadata",
					ClientName:              "Claude Code",
					ClientURI:               "https://claude.ai",
					RedirectURIs:            []string{"http://localhost/callback", "http://127.0.0.1/callback"},
					GrantTypes:              []string{"authorization_code", "refresh_token"},
					ResponseTypes:           []string{"code"},
					TokenEndpointAuthMethod: "none",
				}
				if diff := cmp.Diff(want, d); diff != "" {
					t.Errorf("document (-want +got):\n%s", diff)
				}
				for uri, want := range map[string]bool{
					"http://localhost:54321/callback":  true,
					"http://127.0.0.1:54321/callback":  true,
					"http://localhost/callback":        true,
					"http://[::1]:54321/callback":      false,
					"http://localhost:54321/other":     false,
					"https://localhost:54321/callback": false,
				} {
					if got := d.AllowsRedirectURI(uri); got != want {
						t.Errorf("AllowsRedirectURI(%q) = %v, want %v", uri, got, want)
					}
				}
				if !d.LocalhostOnlyRedirects() {
					t.Errorf("LocalhostOnlyRedirects() = false")
				}
			},
			warnings: []string{WarnLocalhostOnly},
		},
		{
			file: "claude-desktop.json",
			name: "decision 1 claude-desktop client_credentials filtered",
			check: func(t *testing.T, d *Document) {
				if diff := cmp.Diff([]string{"authorization_code", "refresh_token"}, d.GrantTypes); diff != "" {
					t.Errorf("GrantTypes (-want +got):\n%s", diff)
				}
				if d.TokenEndpointAuthMethod != "none" || d.LogoURI == "" || d.Scope != "openid profile email offline_access" {
					t.Errorf("document %+v", d)
				}
				if !d.AllowsRedirectURI("https://claude.ai/api/mcp/auth_callback") || d.AllowsRedirectURI("https://claude.ai/api/mcp/auth_callback/") {
					t.Errorf("https redirect URI not matched exactly")
				}
			},
			warnings: []string{WarnGrantTypeFiltered},
		},
		{
			file: "chatgpt.json",
			name: "decision 1 chatgpt methods list without keys means none",
			check: func(t *testing.T, d *Document) {
				if d.TokenEndpointAuthMethod != "none" || d.JWKS != nil || d.JWKSURI != "" {
					t.Errorf("method %q jwks %v jwks_uri %q, want none without keys", d.TokenEndpointAuthMethod, d.JWKS, d.JWKSURI)
				}
			},
		},
		{
			file: "chatgpt-jwks-uri.json",
			name: "decision 1 chatgpt with jwks_uri prefers private_key_jwt",
			check: func(t *testing.T, d *Document) {
				if d.TokenEndpointAuthMethod != "private_key_jwt" || d.JWKSURI == "" || d.TokenEndpointAuthSigningAlg != "RS256" {
					t.Errorf("method %q jwks_uri %q alg %q", d.TokenEndpointAuthMethod, d.JWKSURI, d.TokenEndpointAuthSigningAlg)
				}
			},
		},
		{
			file: "vscode.json",
			name: "E3 vscode fixed loopback port and https redirect",
			check: func(t *testing.T, d *Document) {
				for uri, want := range map[string]bool{
					"http://127.0.0.1:33418":       true,
					"http://127.0.0.1:5000":        true,
					"http://127.0.0.1:5000/":       true,
					"http://127.0.0.1:5000/x":      false,
					"https://vscode.dev/redirect":  true,
					"https://vscode.dev/redirect/": false,
					"http://vscode.dev/redirect":   false,
				} {
					if got := d.AllowsRedirectURI(uri); got != want {
						t.Errorf("AllowsRedirectURI(%q) = %v, want %v", uri, got, want)
					}
				}
				if d.ApplicationType != "native" || d.LocalhostOnlyRedirects() || d.TokenEndpointAuthMethod != "none" {
					t.Errorf("document %+v", d)
				}
			},
		},
		{
			file: "private-key-jwt.json",
			name: "C7 private_key_jwt with inline public jwks",
			check: func(t *testing.T, d *Document) {
				if d.TokenEndpointAuthMethod != "private_key_jwt" || d.JWKS == nil || len(d.JWKS.Keys) != 1 {
					t.Fatalf("method %q jwks %v", d.TokenEndpointAuthMethod, d.JWKS)
				}
				k := d.JWKS.Keys[0]
				if k.Kty != "EC" || k.Kid != "2026-09" || k.Alg != "ES256" || k.Use != "sig" || !json.Valid(k.Raw) {
					t.Errorf("key %+v", k)
				}
				if d.SoftwareID != "example-agent" || d.SoftwareVersion != "2.1.0" || len(d.Contacts) != 1 {
					t.Errorf("software and contacts %+v", d)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, id := loadFixture(t, tt.file)
			d, warnings, err := ParseDocument(data, id)
			if err != nil {
				t.Fatalf("ParseDocument(%s) = %v", tt.file, err)
			}
			tt.check(t, d)
			if diff := cmp.Diff(tt.warnings, warningCodes(warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDocumentC1Syntax(t *testing.T) {
	valid := string(testDoc(t, nil))
	inner := strings.TrimPrefix(strings.TrimSuffix(valid, "}"), "{")
	tests := []struct {
		name  string
		in    string
		want  Reason
		field string
	}{
		{"attack 23 html", "<html><body>hi</body></html>", ReasonInvalidJSON, ""},
		{"attack 23 truncated", valid[:len(valid)/2], ReasonInvalidJSON, ""},
		{"attack 23 missing closing brace", valid[:len(valid)-1], ReasonInvalidJSON, ""},
		{"attack 23 BOM", "\xef\xbb\xbf" + valid, ReasonInvalidJSON, ""},
		{"attack 23 trailing garbage", valid + "x", ReasonInvalidJSON, ""},
		{"attack 23 trailing second object", valid + "{}", ReasonInvalidJSON, ""},
		{"attack 23 trailing comma", "{" + inner + ",}", ReasonInvalidJSON, ""},
		{"attack 23 single quotes", "{'client_id':'x'}", ReasonInvalidJSON, ""},
		{"attack 23 invalid UTF-8", strings.Replace(valid, "Example", "Ex\xffample", 1), ReasonInvalidJSON, ""},
		{"attack 23 empty body", "", ReasonInvalidJSON, ""},
		{"attack 23 whitespace body", " \n", ReasonInvalidJSON, ""},
		{"attack 23 array", "[]", ReasonNotJSONObject, ""},
		{"attack 23 array of the document", "[" + valid + "]", ReasonNotJSONObject, ""},
		{"attack 23 string", `"string"`, ReasonNotJSONObject, ""},
		{"attack 23 null", "null", ReasonNotJSONObject, ""},
		{"attack 23 number", "42", ReasonNotJSONObject, ""},
		{"attack 23 boolean", "true", ReasonNotJSONObject, ""},
		{"attack 24 duplicate client_id", `{"client_id":"https://evil.example/c","client_id":"` + testClientID + `",` + inner[strings.Index(inner, `"client_name"`):] + "}", ReasonDuplicateKey, "client_id"},
		{"attack 24 duplicate via escape", `{"client\u005fid":"https://evil.example/c",` + inner + "}", ReasonDuplicateKey, "client_id"},
		{"attack 24 duplicate redirect_uris", "{" + inner + `,"redirect_uris":["https://evil.example/cb"]}`, ReasonDuplicateKey, "redirect_uris"},
		{"attack 24 duplicate inside a jwks key", "{" + inner + `,"jwks":{"keys":[{"kty":"EC"},{"kty":"EC","x":"a","x":"b"}]}}`, ReasonDuplicateKey, "jwks.keys[1].x"},
		{"attack 24 duplicate deep in an unknown member", "{" + inner + `,"ext":[1,[{"a":{"b":1,"b":2}}]]}`, ReasonDuplicateKey, "ext[1][0].a.b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _, err := ParseDocument([]byte(tt.in), mustClientID(t, testClientID))
			if err == nil {
				t.Fatalf("accepted %+v", d)
			}
			wantRef := refDocument
			if tt.want == ReasonDuplicateKey {
				wantRef = refJSONNames
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.want || e.Ref != wantRef {
				t.Fatalf("got %v (%v), want %s with ref %q", reasonOf(err), err, tt.want, wantRef)
			}
			if e.Problems[0].Field != tt.field {
				t.Errorf("field = %q, want %q", e.Problems[0].Field, tt.field)
			}
		})
	}
}

func TestParseDocumentReportsAllDuplicates(t *testing.T) {
	in := `{"a":1,"a":2,"b":{"c":1,"c":2},"client_id":"x"}`
	_, _, err := ParseDocument([]byte(in), mustClientID(t, testClientID))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v", err)
	}
	var fields []string
	for _, p := range e.Problems {
		fields = append(fields, p.Field)
	}
	if diff := cmp.Diff([]string{"a", "b.c"}, fields); diff != "" {
		t.Errorf("C1 duplicate fields (-want +got):\n%s", diff)
	}
}

func TestParseDocumentRejects(t *testing.T) {
	privateJWKS := func(member string) map[string]any {
		return map[string]any{"keys": []any{withKey(map[string]any{member: "c2VjcmV0"})}}
	}
	pkj := func(extra map[string]any) map[string]any {
		m := map[string]any{"token_endpoint_auth_method": "private_key_jwt"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		id    string // default testClientID
		set   map[string]any
		want  []Reason
		field string // of the first problem, when set
	}{
		{name: "attack 25 missing client_id", set: map[string]any{"client_id": absent{}}, want: []Reason{ReasonClientIDMissing}},
		{name: "attack 25 null client_id", set: map[string]any{"client_id": nil}, want: []Reason{ReasonClientIDMissing}},
		{name: "attack 25 numeric client_id", set: map[string]any{"client_id": 123}, want: []Reason{ReasonFieldType}, field: "client_id"},
		{name: "attack 25 array client_id", set: map[string]any{"client_id": []string{testClientID}}, want: []Reason{ReasonFieldType}},
		{name: "attack 25 other host", set: map[string]any{"client_id": "https://evil.example/client.json"}, want: []Reason{ReasonClientIDMismatch}},
		{name: "attack 25 trailing slash added", set: map[string]any{"client_id": testClientID + "/"}, want: []Reason{ReasonClientIDMismatch}},
		{name: "attack 25 different case", set: map[string]any{"client_id": "https://APP.example/client.json"}, want: []Reason{ReasonClientIDMismatch}},
		{name: "attack 25 port 443 added", set: map[string]any{"client_id": "https://app.example:443/client.json"}, want: []Reason{ReasonClientIDMismatch}},
		{name: "attack 25 query re-ordered", id: "https://app.example/client.json?a=1&b=2", set: map[string]any{"client_id": "https://app.example/client.json?b=2&a=1"}, want: []Reason{ReasonClientIDMismatch}},
		{name: "attack 25 impersonated client", set: map[string]any{"client_id": "https://claude.ai/oauth/claude-code-client-metadata"}, want: []Reason{ReasonClientIDMismatch}},
		{name: "attack 25 empty client_id", set: map[string]any{"client_id": ""}, want: []Reason{ReasonClientIDMismatch}},
		{name: "attack 26 client_secret", set: map[string]any{"client_secret": "x"}, want: []Reason{ReasonClientSecret}, field: "client_secret"},
		{name: "attack 26 empty client_secret", set: map[string]any{"client_secret": ""}, want: []Reason{ReasonClientSecret}},
		{name: "attack 26 null client_secret", set: map[string]any{"client_secret": nil}, want: []Reason{ReasonClientSecret}},
		{name: "attack 26 client_secret_expires_at", set: map[string]any{"client_secret_expires_at": 0}, want: []Reason{ReasonClientSecret}, field: "client_secret_expires_at"},
		{name: "attack 27 client_secret_basic", set: map[string]any{"token_endpoint_auth_method": "client_secret_basic"}, want: []Reason{ReasonAuthMethod}},
		{name: "attack 27 client_secret_post", set: map[string]any{"token_endpoint_auth_method": "client_secret_post"}, want: []Reason{ReasonAuthMethod}},
		{name: "attack 27 client_secret_jwt", set: map[string]any{"token_endpoint_auth_method": "client_secret_jwt"}, want: []Reason{ReasonAuthMethod}},
		{name: "attack 27 unknown method", set: map[string]any{"token_endpoint_auth_method": "foo"}, want: []Reason{ReasonAuthMethod}},
		{name: "attack 27 tls_client_auth", set: map[string]any{"token_endpoint_auth_method": "tls_client_auth"}, want: []Reason{ReasonAuthMethod}},
		{name: "attack 27 empty method", set: map[string]any{"token_endpoint_auth_method": ""}, want: []Reason{ReasonAuthMethod}},
		{name: "attack 27 shared secret with a list offering none", set: map[string]any{"token_endpoint_auth_method": "client_secret_basic", "token_endpoint_auth_methods_supported": []string{"none"}}, want: []Reason{ReasonAuthMethod}},
		{name: "attack 27 numeric method", set: map[string]any{"token_endpoint_auth_method": 1}, want: []Reason{ReasonFieldType}},
		{name: "decision 1 list with only shared secrets", set: map[string]any{"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"}}, want: []Reason{ReasonAuthMethod}, field: "token_endpoint_auth_methods_supported"},
		{name: "decision 1 empty list", set: map[string]any{"token_endpoint_auth_methods_supported": []string{}}, want: []Reason{ReasonAuthMethod}},
		{name: "decision 1 list not an array", set: map[string]any{"token_endpoint_auth_methods_supported": "none"}, want: []Reason{ReasonFieldType}},
		{name: "decision 1 list with only private_key_jwt and no keys", set: map[string]any{"token_endpoint_auth_methods_supported": []string{"private_key_jwt"}}, want: []Reason{ReasonJWKS}},
		{name: "attack 28 private_key_jwt without keys", set: pkj(nil), want: []Reason{ReasonJWKS}, field: "jwks"},
		{name: "attack 28 private_key_jwt with both jwks and jwks_uri", set: pkj(map[string]any{"jwks": map[string]any{"keys": []any{testKey()}}, "jwks_uri": "https://app.example/jwks.json"}), want: []Reason{ReasonJWKS}},
		{name: "attack 28 private_key_jwt with empty keys", set: pkj(map[string]any{"jwks": map[string]any{"keys": []any{}}}), want: []Reason{ReasonJWKS}, field: "jwks.keys"},
		{name: "attack 28 private key d", set: pkj(map[string]any{"jwks": privateJWKS("d")}), want: []Reason{ReasonPrivateKey}, field: "jwks.keys[0].d"},
		{name: "attack 28 private key p", set: map[string]any{"jwks": privateJWKS("p")}, want: []Reason{ReasonPrivateKey}},
		{name: "attack 28 private key q", set: map[string]any{"jwks": privateJWKS("q")}, want: []Reason{ReasonPrivateKey}},
		{name: "attack 28 private key dp", set: map[string]any{"jwks": privateJWKS("dp")}, want: []Reason{ReasonPrivateKey}},
		{name: "attack 28 private key dq", set: map[string]any{"jwks": privateJWKS("dq")}, want: []Reason{ReasonPrivateKey}},
		{name: "attack 28 private key qi", set: map[string]any{"jwks": privateJWKS("qi")}, want: []Reason{ReasonPrivateKey}},
		{name: "attack 28 private key oth", set: map[string]any{"jwks": privateJWKS("oth")}, want: []Reason{ReasonPrivateKey}},
		{name: "attack 28 private key with method none", set: map[string]any{"token_endpoint_auth_method": "none", "jwks": privateJWKS("d")}, want: []Reason{ReasonPrivateKey}},
		{name: "attack 28 symmetric key", set: pkj(map[string]any{"jwks": map[string]any{"keys": []any{map[string]any{"kty": "oct", "k": "c2VjcmV0"}}}}), want: []Reason{ReasonPrivateKey}, field: "jwks.keys[0].k"},
		{name: "attack 28 symmetric key without k", set: map[string]any{"jwks": map[string]any{"keys": []any{map[string]any{"kty": "oct"}}}}, want: []Reason{ReasonPrivateKey}, field: "jwks.keys[0].kty"},
		{name: "attack 28 second key private", set: map[string]any{"jwks": map[string]any{"keys": []any{testKey(), withKey(map[string]any{"d": "x"})}}}, want: []Reason{ReasonPrivateKey}, field: "jwks.keys[1].d"},
		{name: "attack 28 jwks_uri over http", set: pkj(map[string]any{"jwks_uri": "http://app.example/jwks.json"}), want: []Reason{ReasonJWKS}, field: "jwks_uri"},
		{name: "attack 28 jwks_uri relative", set: pkj(map[string]any{"jwks_uri": "/jwks.json"}), want: []Reason{ReasonJWKS}},
		{name: "attack 28 jwks_uri with userinfo", set: pkj(map[string]any{"jwks_uri": "https://u@app.example/jwks.json"}), want: []Reason{ReasonJWKS}},
		{name: "attack 28 jwks_uri with fragment", set: pkj(map[string]any{"jwks_uri": "https://app.example/jwks.json#k"}), want: []Reason{ReasonJWKS}},
		{name: "C7 jwks not an object", set: map[string]any{"jwks": []any{testKey()}}, want: []Reason{ReasonFieldType}, field: "jwks"},
		{name: "C7 jwks without keys", set: map[string]any{"jwks": map[string]any{"k": []any{}}}, want: []Reason{ReasonFieldType}, field: "jwks.keys"},
		{name: "C7 jwks keys case-sensitive", set: map[string]any{"jwks": map[string]any{"KEYS": []any{testKey()}}}, want: []Reason{ReasonFieldType}},
		{name: "C7 key not an object", set: map[string]any{"jwks": map[string]any{"keys": []any{"k"}}}, want: []Reason{ReasonFieldType}, field: "jwks.keys[0]"},
		{name: "C7 key without kty", set: map[string]any{"jwks": map[string]any{"keys": []any{map[string]any{"kid": "a"}}}}, want: []Reason{ReasonJWKS}, field: "jwks.keys[0].kty"},
		{name: "C7 key with numeric kid", set: map[string]any{"jwks": map[string]any{"keys": []any{withKey(map[string]any{"kid": 7})}}}, want: []Reason{ReasonFieldType}},
		{name: "C7 signing alg none", set: pkj(map[string]any{"jwks": map[string]any{"keys": []any{testKey()}}, "token_endpoint_auth_signing_alg": "none"}), want: []Reason{ReasonSigningAlg}},
		{name: "C7 signing alg HS256", set: pkj(map[string]any{"jwks": map[string]any{"keys": []any{testKey()}}, "token_endpoint_auth_signing_alg": "HS256"}), want: []Reason{ReasonSigningAlg}},
		{name: "C7 signing alg lowercase hs512", set: map[string]any{"token_endpoint_auth_signing_alg": "hs512"}, want: []Reason{ReasonSigningAlg}},
		{name: "C7 signing alg empty", set: map[string]any{"token_endpoint_auth_signing_alg": ""}, want: []Reason{ReasonSigningAlg}},
		{name: "attack 29 redirect_uris missing", set: map[string]any{"redirect_uris": absent{}}, want: []Reason{ReasonRedirectURIs}},
		{name: "attack 29 redirect_uris null", set: map[string]any{"redirect_uris": nil}, want: []Reason{ReasonRedirectURIs}},
		{name: "attack 29 redirect_uris empty", set: map[string]any{"redirect_uris": []string{}}, want: []Reason{ReasonRedirectURIs}},
		{name: "attack 29 redirect_uris a string", set: map[string]any{"redirect_uris": "https://app.example/cb"}, want: []Reason{ReasonFieldType}, field: "redirect_uris"},
		{name: "attack 29 redirect_uris an object", set: map[string]any{"redirect_uris": map[string]any{}}, want: []Reason{ReasonFieldType}},
		{name: "attack 29 non-string entry", set: map[string]any{"redirect_uris": []any{"https://app.example/cb", 1}}, want: []Reason{ReasonFieldType}, field: "redirect_uris[1]"},
		{name: "attack 29 null entry", set: map[string]any{"redirect_uris": []any{nil}}, want: []Reason{ReasonFieldType}},
		{name: "attack 30 fragment", set: map[string]any{"redirect_uris": []string{"https://app.example/cb#x"}}, want: []Reason{ReasonRedirectURI}, field: "redirect_uris[0]"},
		{name: "attack 30 empty fragment", set: map[string]any{"redirect_uris": []string{"https://app.example/cb#"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 relative", set: map[string]any{"redirect_uris": []string{"/callback"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 scheme-relative", set: map[string]any{"redirect_uris": []string{"//app.example/callback"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 javascript", set: map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 data", set: map[string]any{"redirect_uris": []string{"data:text/html,<script>alert(1)</script>"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 file", set: map[string]any{"redirect_uris": []string{"file:///etc/passwd"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 vbscript", set: map[string]any{"redirect_uris": []string{"vbscript:msgbox(1)"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 uppercase javascript", set: map[string]any{"redirect_uris": []string{"JavaScript:alert(1)"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 http on a public host", set: map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 http on another loopback address", set: map[string]any{"redirect_uris": []string{"http://127.0.0.2/cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 http on a private address", set: map[string]any{"redirect_uris": []string{"http://192.168.1.10/cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 http localhost lookalike", set: map[string]any{"redirect_uris": []string{"http://localhost.evil.example/cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 wildcard host", set: map[string]any{"redirect_uris": []string{"https://*.example.com/cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 wildcard path", set: map[string]any{"redirect_uris": []string{"https://app.example/*"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 empty string", set: map[string]any{"redirect_uris": []string{""}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 private-use scheme without a dot", set: map[string]any{"redirect_uris": []string{"myapp:/callback"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 uppercase scheme", set: map[string]any{"redirect_uris": []string{"HTTPS://app.example/cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 userinfo trick", set: map[string]any{"redirect_uris": []string{"https://good.example@evil.example/cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 https without host", set: map[string]any{"redirect_uris": []string{"https:///cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 opaque https", set: map[string]any{"redirect_uris": []string{"https:app.example/cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 whitespace", set: map[string]any{"redirect_uris": []string{"https://app.example/c b"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 backslash", set: map[string]any{"redirect_uris": []string{"https://app.example\\@evil.example/cb"}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 overlong", set: map[string]any{"redirect_uris": []string{"https://app.example/" + strings.Repeat("a", MaxClientIDLength)}}, want: []Reason{ReasonRedirectURI}},
		{name: "attack 30 every bad entry reported", set: map[string]any{"redirect_uris": []string{"https://app.example/ok", "javascript:x", "http://evil.example/"}}, want: []Reason{ReasonRedirectURI, ReasonRedirectURI}, field: "redirect_uris[1]"},
		{name: "attack 31 implicit", set: map[string]any{"grant_types": []string{"authorization_code", "implicit"}}, want: []Reason{ReasonGrantType}},
		{name: "attack 31 password", set: map[string]any{"grant_types": []string{"password", "authorization_code"}}, want: []Reason{ReasonGrantType}},
		{name: "attack 31 response type token", set: map[string]any{"response_types": []string{"code", "token"}}, want: []Reason{ReasonResponseType}},
		{name: "attack 31 response type id_token", set: map[string]any{"response_types": []string{"id_token"}}, want: []Reason{ReasonResponseType}},
		{name: "attack 31 hybrid response type", set: map[string]any{"response_types": []string{"code id_token"}}, want: []Reason{ReasonResponseType}},
		{name: "C10 empty response_types", set: map[string]any{"response_types": []string{}}, want: []Reason{ReasonResponseType}},
		{name: "C10 grant_types without authorization_code", set: map[string]any{"grant_types": []string{"refresh_token"}}, want: []Reason{ReasonGrantType}},
		{name: "C10 empty grant_types", set: map[string]any{"grant_types": []string{}}, want: []Reason{ReasonGrantType}},
		{name: "C10 only filtered grant types", set: map[string]any{"grant_types": []string{"client_credentials"}}, want: []Reason{ReasonGrantType}},
		{name: "C10 grant_types a string", set: map[string]any{"grant_types": "authorization_code"}, want: []Reason{ReasonFieldType}, field: "grant_types"},
		{name: "C15 unknown application_type", set: map[string]any{"application_type": "desktop"}, want: []Reason{ReasonApplicationType}},
		{name: "C15 application_type case-sensitive", set: map[string]any{"application_type": "Native"}, want: []Reason{ReasonApplicationType}},
		{name: "C1 client_name not a string", set: map[string]any{"client_name": 5}, want: []Reason{ReasonFieldType}, field: "client_name"},
		{name: "C1 scope not a string", set: map[string]any{"scope": []string{"a", "b"}}, want: []Reason{ReasonFieldType}, field: "scope"},
		{name: "C1 logo_uri not a string", set: map[string]any{"logo_uri": false}, want: []Reason{ReasonFieldType}, field: "logo_uri"},
		{name: "C1 contacts not an array", set: map[string]any{"contacts": "a@app.example"}, want: []Reason{ReasonFieldType}, field: "contacts"},
		{name: "C1 software_id not a string", set: map[string]any{"software_id": 1}, want: []Reason{ReasonFieldType}},
		{name: "C1 jwks_uri not a string", set: map[string]any{"jwks_uri": map[string]any{}}, want: []Reason{ReasonFieldType}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := testClientID
			if tt.id != "" {
				id = tt.id
			}
			set := map[string]any{"client_id": id}
			for k, v := range tt.set {
				set[k] = v
			}
			d, _, err := ParseDocument(testDoc(t, set), mustClientID(t, id))
			if err == nil {
				t.Fatalf("accepted %+v", d)
			}
			if d != nil {
				t.Errorf("rejected document returned non-nil %+v", d)
			}
			if diff := cmp.Diff(tt.want, reasonsIn(err)); diff != "" {
				t.Fatalf("reasons (-want +got):\n%s\nerror: %v", diff, err)
			}
			var e *Error
			errors.As(err, &e)
			for _, p := range e.Problems {
				if p.Ref == "" || p.Message == "" || p.Field == "" {
					t.Errorf("incomplete problem %+v", p)
				}
			}
			if tt.field != "" && e.Problems[0].Field != tt.field {
				t.Errorf("field = %q, want %q", e.Problems[0].Field, tt.field)
			}
		})
	}
}

func TestParseDocumentReportsEveryProblem(t *testing.T) {
	data := testDoc(t, map[string]any{
		"client_id":                  "https://evil.example/client.json",
		"client_secret":              "s",
		"redirect_uris":              []string{"javascript:alert(1)", "https://app.example/cb#f"},
		"token_endpoint_auth_method": "client_secret_basic",
		"jwks":                       map[string]any{"keys": []any{withKey(map[string]any{"d": "x"})}},
		"grant_types":                []string{"authorization_code", "password"},
		"response_types":             []string{"token"},
		"application_type":           "desktop",
		"scope":                      7,
	})
	_, _, err := ParseDocument(data, mustClientID(t, testClientID))
	want := []Reason{
		ReasonClientIDMismatch, ReasonClientSecret, ReasonRedirectURI, ReasonRedirectURI, ReasonPrivateKey,
		ReasonAuthMethod, ReasonGrantType, ReasonResponseType, ReasonFieldType, ReasonApplicationType,
	}
	if diff := cmp.Diff(want, reasonsIn(err)); diff != "" {
		t.Errorf("C1-C15 every problem (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(err.Error(), "(and 9 more problems)") {
		t.Errorf("Error() = %q", err)
	}
}

func TestParseDocumentDecisions(t *testing.T) {
	keys := map[string]any{"keys": []any{testKey()}}
	tests := []struct {
		name     string
		set      map[string]any
		check    func(t *testing.T, d *Document)
		warnings []string
	}{
		{
			name:  "C5 omitted method means none",
			check: func(t *testing.T, d *Document) { wantEq(t, "method", d.TokenEndpointAuthMethod, "none") },
		},
		{
			name:  "C5 explicit none",
			set:   map[string]any{"token_endpoint_auth_method": "none"},
			check: func(t *testing.T, d *Document) { wantEq(t, "method", d.TokenEndpointAuthMethod, "none") },
		},
		{
			name:  "decision 1 list skips shared secrets",
			set:   map[string]any{"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"}},
			check: func(t *testing.T, d *Document) { wantEq(t, "method", d.TokenEndpointAuthMethod, "none") },
		},
		{
			name:  "decision 1 list skips unknown methods",
			set:   map[string]any{"token_endpoint_auth_methods_supported": []string{"tls_client_auth", "none"}},
			check: func(t *testing.T, d *Document) { wantEq(t, "method", d.TokenEndpointAuthMethod, "none") },
		},
		{
			name:  "decision 1 private_key_jwt listed first but no keys means none",
			set:   map[string]any{"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "none"}},
			check: func(t *testing.T, d *Document) { wantEq(t, "method", d.TokenEndpointAuthMethod, "none") },
		},
		{
			name:  "decision 1 keys present prefer private_key_jwt",
			set:   map[string]any{"token_endpoint_auth_methods_supported": []string{"none", "private_key_jwt"}, "jwks": keys},
			check: func(t *testing.T, d *Document) { wantEq(t, "method", d.TokenEndpointAuthMethod, "private_key_jwt") },
		},
		{
			name:  "decision 1 jwks_uri present prefer private_key_jwt",
			set:   map[string]any{"token_endpoint_auth_methods_supported": []string{"private_key_jwt"}, "jwks_uri": "https://app.example/jwks.json"},
			check: func(t *testing.T, d *Document) { wantEq(t, "method", d.TokenEndpointAuthMethod, "private_key_jwt") },
		},
		{
			name:  "decision 1 single private_key_jwt with list but no keys falls back to none",
			set:   map[string]any{"token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_methods_supported": []string{"none", "private_key_jwt"}},
			check: func(t *testing.T, d *Document) { wantEq(t, "method", d.TokenEndpointAuthMethod, "none") },
		},
		{
			name:  "decision 1 empty keys do not count as keys",
			set:   map[string]any{"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "none"}, "jwks": map[string]any{"keys": []any{}}},
			check: func(t *testing.T, d *Document) { wantEq(t, "method", d.TokenEndpointAuthMethod, "none") },
		},
		{
			name: "C7 private_key_jwt with jwks",
			set:  map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": keys, "token_endpoint_auth_signing_alg": "ES256"},
			check: func(t *testing.T, d *Document) {
				wantEq(t, "method", d.TokenEndpointAuthMethod, "private_key_jwt")
				wantEq(t, "alg", d.TokenEndpointAuthSigningAlg, "ES256")
				wantEq(t, "kid", d.JWKS.Keys[0].Kid, "k1")
			},
		},
		{
			name:  "C7 public keys allowed for a public client",
			set:   map[string]any{"jwks": keys},
			check: func(t *testing.T, d *Document) { wantEq(t, "keys", len(d.JWKS.Keys), 1) },
		},
		{
			name: "C10 defaults",
			check: func(t *testing.T, d *Document) {
				wantEq(t, "grant_types", d.GrantTypes, []string{"authorization_code"})
				wantEq(t, "response_types", d.ResponseTypes, []string{"code"})
			},
		},
		{
			name: "C10 refresh_token only when declared",
			set:  map[string]any{"grant_types": []string{"authorization_code"}},
			check: func(t *testing.T, d *Document) {
				wantEq(t, "grant_types", d.GrantTypes, []string{"authorization_code"})
			},
		},
		{
			name: "C10 refresh_token kept when declared, duplicates folded",
			set:  map[string]any{"grant_types": []string{"refresh_token", "authorization_code", "refresh_token"}},
			check: func(t *testing.T, d *Document) {
				wantEq(t, "grant_types", d.GrantTypes, []string{"refresh_token", "authorization_code"})
			},
		},
		{
			name: "decision 1 unusable grant types filtered",
			set: map[string]any{"grant_types": []string{"authorization_code", "client_credentials",
				"urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"}},
			check: func(t *testing.T, d *Document) {
				wantEq(t, "grant_types", d.GrantTypes, []string{"authorization_code"})
			},
			warnings: []string{WarnGrantTypeFiltered, WarnGrantTypeFiltered, WarnGrantTypeFiltered},
		},
		{
			name:  "C10 duplicate code response type folded",
			set:   map[string]any{"response_types": []string{"code", "code"}},
			check: func(t *testing.T, d *Document) { wantEq(t, "response_types", d.ResponseTypes, []string{"code"}) },
		},
		{
			name: "C11 unknown members ignored",
			set: map[string]any{"dpop_bound_access_tokens": true, "x-extra": map[string]any{"nested": []any{1, "two"}},
				"CLIENT_SECRET": "not the same member", "Client_ID": "https://evil.example/c"},
			check: func(t *testing.T, d *Document) { wantEq(t, "client_id", d.ClientID, testClientID) },
		},
		{
			name:  "C12 scope kept as published",
			set:   map[string]any{"scope": "mcp:tools  mcp:resources"},
			check: func(t *testing.T, d *Document) { wantEq(t, "scope", d.Scope, "mcp:tools  mcp:resources") },
		},
		{
			name: "C13 https display URIs kept",
			set: map[string]any{"client_uri": "https://app.example/", "logo_uri": "https://cdn.app.example/logo.png",
				"tos_uri": "https://app.example/tos", "policy_uri": "https://app.example/privacy"},
			check: func(t *testing.T, d *Document) {
				wantEq(t, "uris", []string{d.ClientURI, d.LogoURI, d.TOSURI, d.PolicyURI},
					[]string{"https://app.example/", "https://cdn.app.example/logo.png", "https://app.example/tos", "https://app.example/privacy"})
			},
		},
		{
			name: "attack 33 unsafe display URIs dropped",
			set: map[string]any{"logo_uri": "http://169.254.169.254/latest/meta-data/", "client_uri": "javascript:alert(1)",
				"tos_uri": "data:text/html,hi", "policy_uri": "file:///etc/passwd"},
			check: func(t *testing.T, d *Document) {
				wantEq(t, "uris", []string{d.ClientURI, d.LogoURI, d.TOSURI, d.PolicyURI}, []string{"", "", "", ""})
			},
			warnings: []string{WarnURIDropped, WarnURIDropped, WarnURIDropped, WarnURIDropped},
		},
		{
			name:     "attack 33 relative and empty logo dropped",
			set:      map[string]any{"logo_uri": "/logo.png", "client_uri": ""},
			check:    func(t *testing.T, d *Document) { wantEq(t, "logo", d.LogoURI, "") },
			warnings: []string{WarnURIDropped, WarnURIDropped},
		},
		{
			name:  "C14 software_statement ignored whatever its type",
			set:   map[string]any{"software_statement": 42},
			check: func(t *testing.T, d *Document) { wantEq(t, "client_id", d.ClientID, testClientID) },
		},
		{
			name:  "C15 native",
			set:   map[string]any{"application_type": "native"},
			check: func(t *testing.T, d *Document) { wantEq(t, "application_type", d.ApplicationType, "native") },
		},
		{
			name:  "C15 web",
			set:   map[string]any{"application_type": "web"},
			check: func(t *testing.T, d *Document) { wantEq(t, "application_type", d.ApplicationType, "web") },
		},
		{
			name: "C1 null optional members count as absent",
			set: map[string]any{"logo_uri": nil, "scope": nil, "grant_types": nil, "token_endpoint_auth_method": nil,
				"jwks": nil, "contacts": nil, "application_type": nil},
			check: func(t *testing.T, d *Document) {
				wantEq(t, "method", d.TokenEndpointAuthMethod, "none")
				wantEq(t, "grant_types", d.GrantTypes, []string{"authorization_code"})
			},
		},
		{
			name:  "C1 empty contacts stored as nil",
			set:   map[string]any{"contacts": []string{}},
			check: func(t *testing.T, d *Document) { wantEq(t, "contacts", d.Contacts, []string(nil)) },
		},
		{
			name: "C8 accepted redirect URI forms",
			set: map[string]any{"redirect_uris": []string{
				"https://app.example/cb", "https://app.example:8443/cb?x=1", "http://127.0.0.1:8080/cb",
				"http://[::1]/cb", "http://localhost:3000/callback", "https://localhost/cb",
				"com.example.app:/oauth2redirect", "com.example.app://callback",
			}},
			check: func(t *testing.T, d *Document) { wantEq(t, "redirect count", len(d.RedirectURIs), 8) },
		},
		{
			name:     "C3 missing client_name is a warning",
			set:      map[string]any{"client_name": absent{}},
			check:    func(t *testing.T, d *Document) { wantEq(t, "display", d.DisplayName("app.example"), "app.example") },
			warnings: []string{WarnMissingClientName},
		},
		{
			name:     "C3 blank client_name is a warning",
			set:      map[string]any{"client_name": " \u200b "},
			check:    func(t *testing.T, d *Document) { wantEq(t, "display", d.DisplayName("app.example"), "app.example") },
			warnings: []string{WarnMissingClientName},
		},
		{
			name:     "attack 32 sanitized client_name warns",
			set:      map[string]any{"client_name": "Good\u202eApp"},
			check:    func(t *testing.T, d *Document) { wantEq(t, "raw name kept", d.ClientName, "Good\u202eApp") },
			warnings: []string{WarnClientNameSanitized},
		},
		{
			name:     "E5 localhost-only redirects warn",
			set:      map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb", "http://[::1]/cb"}},
			check:    func(t *testing.T, d *Document) { wantEq(t, "localhost only", d.LocalhostOnlyRedirects(), true) },
			warnings: []string{WarnLocalhostOnly},
		},
		{
			name:  "E5 mixed redirects do not warn",
			set:   map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb", "com.example.app:/cb"}},
			check: func(t *testing.T, d *Document) { wantEq(t, "localhost only", d.LocalhostOnlyRedirects(), false) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, warnings, err := ParseDocument(testDoc(t, tt.set), mustClientID(t, testClientID))
			if err != nil {
				t.Fatalf("ParseDocument = %v", err)
			}
			tt.check(t, d)
			if diff := cmp.Diff(tt.warnings, warningCodes(warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			for _, w := range warnings {
				if w.Ref == "" || w.Message == "" {
					t.Errorf("incomplete warning %+v", w)
				}
			}
		})
	}
}

func wantEq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func TestParseDocumentQueryClientID(t *testing.T) {
	// attack 7: a client_id with a query is accepted only when the document
	// repeats it byte for byte.
	id := "https://app.example/client.json?tenant=a&v=2"
	d, _, err := ParseDocument(testDoc(t, map[string]any{"client_id": id}), mustClientID(t, id))
	if err != nil || d.ClientID != id {
		t.Fatalf("attack 7 query client_id: %v", err)
	}
	_, _, err = ParseDocument(testDoc(t, map[string]any{"client_id": "https://app.example/client.json"}), mustClientID(t, id))
	if reasonOf(err) != ReasonClientIDMismatch {
		t.Errorf("attack 7 document without the query: %v", err)
	}
}

func TestDisplayName(t *testing.T) {
	long := strings.Repeat("A", 10*1024)
	tests := []struct {
		name, in, want string
	}{
		{"attack 32 plain", "Claude Code", "Claude Code"},
		{"attack 32 markup kept as text for escaping", "<script>alert(1)</script>", "<script>alert(1)</script>"},
		{"attack 32 10 kB truncated", long, strings.Repeat("A", 63) + "…"},
		{"attack 32 exactly 64 runes kept", strings.Repeat("é", 64), strings.Repeat("é", 64)},
		{"attack 32 65 runes cut", strings.Repeat("é", 65), strings.Repeat("é", 63) + "…"},
		{"attack 32 cut drops trailing space", strings.Repeat("a", 62) + " bcdef", strings.Repeat("a", 62) + "…"},
		{"attack 32 RTL override removed", "Good\u202eelgooG", "GoodelgooG"},
		{"attack 32 bidi isolates removed", "\u2066Bank\u2069\u2067x\u2068", "Bankx"},
		{"attack 32 zero-width removed", "Cl\u200bau\u200cde\u200d\u2060\ufeff", "Claude"},
		{"attack 32 soft hyphen removed", "Pay\u00adPal", "PayPal"},
		{"attack 32 Hangul filler removed", "Claude\u3164Code", "ClaudeCode"},
		{"attack 32 control characters removed", "A\x00B\x1bC\x7f", "ABC"},
		{"attack 32 newlines and tabs become one space", "Claude\n\n\tCode\r\n", "Claude Code"},
		{"attack 32 unicode spaces collapsed", "Claude\u00a0\u2003\u2028Code", "Claude Code"},
		{"attack 32 trimmed", "   Claude   ", "Claude"},
		{"attack 32 combining marks limited", "Z\u0301\u0302\u0303\u0304\u0305\u0306", "Z\u0301\u0302\u0303"},
		{"attack 32 leading combining mark dropped", "\u0301Z", "Z"},
		{"attack 32 private use removed", "Apple\ue000", "Apple"},
		{"attack 32 lookalike kept, host shown beside", "Сlaude", "Сlaude"},
		{"C3 empty falls back to host", "", "app.example"},
		{"C3 only invisible falls back to host", "\u200b\u202e\u00ad", "app.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Document{ClientName: tt.in}
			got := d.DisplayName("app.example")
			if got != tt.want {
				t.Errorf("DisplayName(%q) = %q, want %q", truncate(tt.in, 80), got, tt.want)
			}
			if n := len([]rune(got)); n > MaxDisplayNameRunes {
				t.Errorf("DisplayName has %d runes", n)
			}
		})
	}
}

func TestFingerprintAndChangedFields(t *testing.T) {
	id := mustClientID(t, testClientID)
	parse := func(set map[string]any) *Document {
		t.Helper()
		d, _, err := ParseDocument(testDoc(t, set), id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	key2 := withKey(map[string]any{"kid": "k2"})
	base := map[string]any{
		"redirect_uris":              []string{"https://app.example/a", "https://app.example/b"},
		"token_endpoint_auth_method": "private_key_jwt",
		"jwks":                       map[string]any{"keys": []any{testKey(), key2}},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"scope":                      "read write",
		"logo_uri":                   "https://app.example/logo.png",
	}
	with := func(changes map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range changes {
			m[k] = v
		}
		return m
	}
	old := parse(base)
	tests := []struct {
		name    string
		changes map[string]any
		want    []string
	}{
		{"D6 identical", nil, nil},
		{"D6 redirect order ignored", map[string]any{"redirect_uris": []string{"https://app.example/b", "https://app.example/a"}}, nil},
		{"D6 key order ignored", map[string]any{"jwks": map[string]any{"keys": []any{key2, testKey()}}}, nil},
		{"D6 scope order ignored", map[string]any{"scope": "write  read"}, nil},
		{"D6 grant order ignored", map[string]any{"grant_types": []string{"refresh_token", "authorization_code"}}, nil},
		{"D6 non-security member ignored", map[string]any{"client_uri": "https://app.example/", "contacts": []string{"a@app.example"}}, nil},
		{"attack 34 redirect swapped to attacker", map[string]any{"redirect_uris": []string{"https://app.example/a", "https://evil.example/b"}}, []string{"redirect_uris"}},
		{"attack 34 downgrade to none", map[string]any{"token_endpoint_auth_method": "none", "jwks": absent{}}, []string{"token_endpoint_auth_method", "jwks"}},
		{"attack 34 key removed", map[string]any{"jwks": map[string]any{"keys": []any{testKey()}}}, []string{"jwks"}},
		{"attack 34 key material changed", map[string]any{"jwks": map[string]any{"keys": []any{testKey(), withKey(map[string]any{"kid": "k2", "x": "AAAA"})}}}, []string{"jwks"}},
		{"attack 34 keys moved to jwks_uri", map[string]any{"jwks": absent{}, "jwks_uri": "https://app.example/jwks.json"}, []string{"jwks", "jwks_uri"}},
		{"attack 34 refresh dropped", map[string]any{"grant_types": []string{"authorization_code"}}, []string{"grant_types"}},
		{"attack 34 scope widened", map[string]any{"scope": "read write admin"}, []string{"scope"}},
		{"attack 34 name changed", map[string]any{"client_name": "Other App"}, []string{"client_name"}},
		{"attack 34 logo changed", map[string]any{"logo_uri": "https://evil.example/logo.png"}, []string{"logo_uri"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nd := parse(with(tt.changes))
			got := changedFields(old, nd)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("changedFields (-want +got):\n%s", diff)
			}
			if same := old.Fingerprint() == nd.Fingerprint(); same != (len(tt.want) == 0) {
				t.Errorf("fingerprints equal = %v, but changedFields = %v", same, got)
			}
		})
	}
	fp := old.Fingerprint()
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Errorf("D6 Fingerprint() = %q, want 64 hex digits", fp)
	}
	all := []string{"redirect_uris", "token_endpoint_auth_method", "jwks", "grant_types", "scope", "client_name", "logo_uri"}
	if diff := cmp.Diff(all, changedFields(nil, old)); diff != "" {
		t.Errorf("D6 changedFields(nil, doc) (-want +got):\n%s", diff)
	}
	if got := changedFields(nil, nil); got != nil {
		t.Errorf("changedFields(nil, nil) = %v", got)
	}
}

func TestFingerprintIgnoresFormatting(t *testing.T) {
	data, id := loadFixture(t, "private-key-jwt.json")
	a, _, err := ParseDocument(data, id)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(v)
	b, _, err := ParseDocument(compact, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint() != b.Fingerprint() {
		t.Errorf("D6 re-formatted document changed the fingerprint")
	}
}

func TestDocumentSize(t *testing.T) {
	small, _, err := ParseDocument(testDoc(t, nil), mustClientID(t, testClientID))
	if err != nil {
		t.Fatal(err)
	}
	data, id := loadFixture(t, "private-key-jwt.json")
	big, _, err := ParseDocument(data, id)
	if err != nil {
		t.Fatal(err)
	}
	if small.size() <= 0 || big.size() <= small.size() || big.size() < len(data)/2 {
		t.Errorf("D1 Size: small %d, big %d for %d bytes of JSON", small.size(), big.size(), len(data))
	}
}

func TestDocumentJSONRoundTrip(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "clients", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run("C1 "+filepath.Base(f), func(t *testing.T) {
			data, id := loadFixture(t, filepath.Base(f))
			d, _, err := ParseDocument(data, id)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, d, id)
		})
	}
}

func TestJWKUnmarshal(t *testing.T) {
	var k JWK
	if err := json.Unmarshal([]byte(`{ "kty": "EC", "kid": "a", "Kid": "b" }`), &k); err != nil {
		t.Fatal(err)
	}
	want := JWK{Raw: json.RawMessage(`{"Kid":"b","kid":"a","kty":"EC"}`), Kty: "EC", Kid: "a"}
	if diff := cmp.Diff(want, k); diff != "" {
		t.Errorf("C6 JWK (-want +got):\n%s", diff)
	}
	// Escaped and unescaped forms of one key are the same Raw, so a
	// marshalled Document round-trips.
	var a, b JWK
	if err := json.Unmarshal([]byte(`{"kty":"EC","kid":"<a&b>","n":1.50}`), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`{"n":1.50,"kid":"\u003ca\u0026b\u003e","kty":"EC"}`), &b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" || a.Kid != "<a&b>" {
		t.Errorf("C6 JWK encodings differ (-a +b):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"kty": 1}`), &k); err == nil {
		t.Errorf("numeric kty accepted")
	}
	if b, _ := json.Marshal(JWK{}); string(b) != "null" {
		t.Errorf("empty JWK marshals as %s", b)
	}
}

func TestDocumentAllowsRedirectURIAttacks(t *testing.T) {
	d, _, err := ParseDocument(testDoc(t, map[string]any{"redirect_uris": []string{
		"https://app.example/cb", "http://127.0.0.1/callback", "com.example.app:/cb",
	}}), mustClientID(t, testClientID))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, uri string
		want      bool
	}{
		{"C8 exact https", "https://app.example/cb", true},
		{"C8 exact private-use", "com.example.app:/cb", true},
		{"attack 35 attacker port on loopback is allowed (consent warns)", "http://127.0.0.1:31337/callback", true},
		{"attack 36 trailing slash", "https://app.example/cb/", false},
		{"attack 36 case", "https://APP.example/cb", false},
		{"attack 36 extra query", "https://app.example/cb?x=1", false},
		{"attack 36 other path", "https://app.example/other", false},
		{"attack 36 http instead of https", "http://app.example/cb", false},
		{"attack 36 userinfo trick", "https://app.example@evil.example/cb", false},
		{"attack 37 loopback other path", "http://127.0.0.1:5555/other", false},
		{"attack 37 loopback other host", "http://localhost:5555/callback", false},
		{"E3 empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.AllowsRedirectURI(tt.uri); got != tt.want {
				t.Errorf("AllowsRedirectURI(%q) = %v, want %v", tt.uri, got, tt.want)
			}
		})
	}
}

// checkRoundTrip checks that marshalling d yields a document that
// ParseDocument accepts as the same Document with the same fingerprint.
func checkRoundTrip(t *testing.T, d *Document, id ClientID) {
	t.Helper()
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := ParseDocument(out, id)
	if err != nil {
		t.Fatalf("marshalled document rejected: %v\n%s", err, out)
	}
	if diff := cmp.Diff(d, again, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("marshalled document differs (-first +second):\n%s", diff)
	}
	if d.Fingerprint() != again.Fingerprint() || changedFields(d, again) != nil {
		t.Fatalf("fingerprint changed across a round trip")
	}
}

// fuzzClientID picks the client_id to validate a fuzzed document against:
// its own client_id when that parses, so that accepted documents are
// reachable, else a fixed one.
func fuzzClientID(data []byte) ClientID {
	var head map[string]json.RawMessage
	var s string
	if json.Unmarshal(data, &head) == nil && json.Unmarshal(head["client_id"], &s) == nil {
		if id, err := parseClientID(s, true); err == nil {
			return id
		}
	}
	id, _ := ParseClientID(testClientID)
	return id
}

func FuzzDocument(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "clients", "*.json"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id := fuzzClientID(data)
		d, warnings, err := ParseDocument(data, id)
		if err != nil {
			var e *Error
			if d != nil || !errors.As(err, &e) || len(e.Problems) == 0 || e.Reason != e.Problems[0].Reason {
				t.Fatalf("malformed rejection: doc %v, err %#v", d, err)
			}
			for _, p := range e.Problems {
				if p.Reason == "" || p.Ref == "" || p.Message == "" {
					t.Fatalf("incomplete problem %+v", p)
				}
			}
			return
		}
		// Accepted documents re-validate identically, and so does their
		// marshalled form.
		d2, warnings2, err := ParseDocument(data, id)
		if err != nil {
			t.Fatalf("second parse rejected: %v", err)
		}
		if diff := cmp.Diff(d, d2); diff != "" || !slices.Equal(warningCodes(warnings), warningCodes(warnings2)) {
			t.Fatalf("second parse differs:\n%s", diff)
		}
		checkRoundTrip(t, d, id)
		// Invariants of every accepted document.
		if d.ClientID != id.String() || len(d.RedirectURIs) == 0 || !slices.Contains(d.GrantTypes, "authorization_code") ||
			!slices.Equal(d.ResponseTypes, []string{"code"}) {
			t.Fatalf("accepted document breaks C2/C3/C10: %+v", d)
		}
		if m := d.TokenEndpointAuthMethod; m != "none" && m != "private_key_jwt" {
			t.Fatalf("accepted auth method %q", m)
		}
		for _, u := range d.RedirectURIs {
			if !d.AllowsRedirectURI(u) || strings.ContainsAny(u, "#*") {
				t.Fatalf("redirect URI %q breaks C8", u)
			}
		}
		if name := d.DisplayName(id.Host()); len([]rune(name)) > MaxDisplayNameRunes && name != id.Host() {
			t.Fatalf("display name too long: %q", name)
		}
		if d.size() <= 0 {
			t.Fatalf("Size() = %d", d.size())
		}
	})
}

func BenchmarkParseDocument(b *testing.B) {
	data, id := loadFixture(b, "private-key-jwt.json")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseDocument(data, id); err != nil {
			b.Fatal(err)
		}
	}
}
