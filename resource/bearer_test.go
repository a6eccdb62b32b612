package resource

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/oauth"
)

const testPRM = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

func TestRequireBearerAttacks(t *testing.T) {
	is := newTestIssuer(t)
	key := newES256Key(t, "k1")
	otherKey := newES256Key(t, "k1") // same kid, not published
	is.publish(key)
	opts := Options{
		Resource: testResource,
		Scopes:   []string{"mcp"},
		ScopesFor: func(r *http.Request) []string {
			if r.URL.Path == "/mcp/admin" {
				return []string{"admin"}
			}
			return nil
		},
	}
	jv := is.verifier(t, nil)
	var lastErr error
	mw := RequireBearer(TokenVerifierFunc(func(ctx context.Context, tok string) (*TokenInfo, error) {
		info, err := jv.VerifyToken(ctx, tok)
		lastErr = err
		return info, err
	}), opts)

	with := func(mod func(c map[string]any)) map[string]any {
		c := is.claims("mcp")
		mod(c)
		return c
	}
	valid := key.mint(t, is.claims("mcp"), nil)
	tampered := func() string {
		parts := strings.Split(valid, ".")
		c := is.claims("mcp admin")
		b, _ := json.Marshal(c)
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(parts, ".")
	}()
	pub, _ := json.Marshal(jose.JSONWebKey{Key: key.priv.Public()})
	hsSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pub}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	hmacWithPublicKey := signPayload(t, hsSigner, is.claims("mcp"))

	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	const noToken = `Bearer scope="mcp", resource_metadata="` + testPRM + `"`
	const invalid = `Bearer error="invalid_token", error_description="the access token is invalid", scope="mcp", resource_metadata="` + testPRM + `"`
	const expired = `Bearer error="invalid_token", error_description="the access token expired", scope="mcp", resource_metadata="` + testPRM + `"`

	tests := []struct {
		name          string
		method, path  string
		body          string
		setup         func(*http.Request)
		wantStatus    int
		wantChallenge string
		wantError     string // error member of the JSON body; "" means no JSON error
		wantReason    string // substring of the verifier's error, when it ran
	}{
		{name: "attack 55 H5 no token", wantStatus: 401, wantChallenge: noToken},
		{name: "attack 55 H5 other auth scheme", setup: func(r *http.Request) { r.SetBasicAuth("u", "p") }, wantStatus: 401, wantChallenge: noToken},
		{name: "attack 56 H8 token in query", path: "/mcp?access_token=" + valid, wantStatus: 401, wantChallenge: noToken},
		{name: "attack 56 H8 token in form body", method: "POST", body: "access_token=" + valid,
			setup: func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, wantStatus: 401, wantChallenge: noToken},
		{name: "attack 57 H8 audience another MCP server", setup: bearer(key.mint(t, with(func(c map[string]any) { c["aud"] = "https://other.example.com/mcp" }), nil)),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `does not include`},
		{name: "attack 57 H8 audience the AS itself", setup: bearer(key.mint(t, with(func(c map[string]any) { c["aud"] = is.URL() }), nil)),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `does not include`},
		{name: "attack 57 H8 audience a path prefix", setup: bearer(key.mint(t, with(func(c map[string]any) { c["aud"] = "https://mcp.example.com" }), nil)),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `does not include`},
		{name: "attack 57 H8 no audience", setup: bearer(key.mint(t, with(func(c map[string]any) { delete(c, "aud") }), nil)),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `does not include`},
		{name: "attack 58 H8 unknown issuer", setup: bearer(key.mint(t, with(func(c map[string]any) { c["iss"] = "https://evil.example" }), nil)),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `not the trusted issuer`},
		{name: "attack 58 H8 alg none", setup: bearer(unsignedToken(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": "k1"}, is.claims("mcp"), "")),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `alg "none" is not allowed`},
		{name: "attack 58 H8 HS256 keyed with the public key", setup: bearer(hmacWithPublicKey),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `alg "HS256" is not allowed`},
		{name: "attack 58 H8 tampered payload", setup: bearer(tampered), wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `bad signature`},
		{name: "attack 58 H8 signed by an unpublished key with a known kid", setup: bearer(otherKey.mint(t, is.claims("mcp"), nil)),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `bad signature`},
		{name: "attack 58 H8 expired", setup: bearer(key.mint(t, with(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), nil)),
			wantStatus: 401, wantChallenge: expired, wantError: "invalid_token", wantReason: `expired`},
		{name: "attack 58 H8 not yet valid", setup: bearer(key.mint(t, with(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), nil)),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `not valid before`},
		{name: "attack 58 H8 no exp", setup: bearer(key.mint(t, with(func(c map[string]any) { delete(c, "exp") }), nil)),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `no exp`},
		{name: "attack 58 RFC 9068 typ JWT refused", setup: bearer(key.mint(t, is.claims("mcp"), map[string]any{"typ": "JWT"})),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `typ "JWT"`},
		{name: "attack 58 RFC 9068 typ missing refused", setup: bearer(key.mint(t, is.claims("mcp"), map[string]any{"typ": nil})),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `typ ""`},
		{name: "attack 58 crit header refused", setup: bearer(key.mint(t, is.claims("mcp"), map[string]any{"crit": []string{"exp"}})),
			wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token", wantReason: `crit`},
		{name: "attack 59 H6 token without the base scope", setup: bearer(key.mint(t, is.claims("other"), nil)),
			wantStatus: 403, wantError: "insufficient_scope",
			wantChallenge: `Bearer error="insufficient_scope", error_description="this operation needs scope mcp", scope="mcp", resource_metadata="` + testPRM + `"`},
		{name: "attack 59 H6 per-route scope lists every needed scope", path: "/mcp/admin", setup: bearer(valid),
			wantStatus: 403, wantError: "insufficient_scope",
			wantChallenge: `Bearer error="insufficient_scope", error_description="this operation needs scope mcp admin", scope="mcp admin", resource_metadata="` + testPRM + `"`},
		{name: "H5 malformed token", setup: func(r *http.Request) { r.Header.Set("Authorization", "Bearer a b") }, wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token"},
		{name: "H5 empty token", setup: func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token"},
		{name: "H5 overlong token", setup: bearer(strings.Repeat("a", MaxTokenLength+1)), wantStatus: 401, wantChallenge: invalid, wantError: "invalid_token"},
		{name: "H7 two Authorization fields", setup: func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+valid)
			r.Header.Add("Authorization", "Bearer "+valid)
		}, wantStatus: 400, wantError: "invalid_request",
			wantChallenge: `Bearer error="invalid_request", error_description="send exactly one Authorization header", scope="mcp", resource_metadata="` + testPRM + `"`},
		{name: "H8 valid token", setup: bearer(valid), wantStatus: 204},
		{name: "H8 scheme is case-insensitive", setup: func(r *http.Request) { r.Header.Set("Authorization", "bEaReR "+valid) }, wantStatus: 204},
		{name: "H8 per-route scope granted", path: "/mcp/admin", setup: bearer(key.mint(t, is.claims("admin mcp"), nil)), wantStatus: 204},
		{name: "H10 audience in another case with a trailing slash", setup: bearer(key.mint(t, with(func(c map[string]any) { c["aud"] = "HTTPS://MCP.Example.COM/mcp" }), nil)), wantStatus: 204},
		{name: "H8 audience array", setup: bearer(key.mint(t, with(func(c map[string]any) { c["aud"] = []string{"https://other.example.com", testResource} }), nil)), wantStatus: 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path := orDefault(tt.method, "GET"), orDefault(tt.path, "/mcp")
			r := httptest.NewRequest(method, "https://mcp.example.com"+path, strings.NewReader(tt.body))
			if tt.setup != nil {
				tt.setup(r)
			}
			h := &okHandler{}
			w := httptest.NewRecorder()
			lastErr = nil
			mw(h).ServeHTTP(w, r)
			if tt.wantReason != "" && (lastErr == nil || !strings.Contains(lastErr.Error(), tt.wantReason)) {
				t.Fatalf("verifier error = %v, want one mentioning %q", lastErr, tt.wantReason)
			}
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Fatalf("WWW-Authenticate =\n  %s\nwant\n  %s", got, tt.wantChallenge)
			}
			if tt.wantStatus < 300 {
				if h.calls != 1 || h.info == nil || h.info.Subject != "user-1" {
					t.Fatalf("handler calls = %d, info = %+v; want one call with the token info", h.calls, h.info)
				}
				return
			}
			if h.calls != 0 {
				t.Fatal("handler ran for a rejected request")
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control = %q, want no-store", cc)
			}
			var body oauth.Error
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if string(body.Code) != tt.wantError {
				t.Fatalf("body error = %q, want %q (body %s)", body.Code, tt.wantError, w.Body)
			}
			cs, err := oauth.ParseWWWAuthenticate(w.Header())
			if err != nil || len(cs) != 1 {
				t.Fatalf("challenge does not parse: %v", err)
			}
			if md, _ := cs[0].Param(oauth.ParamResourceMetadata); md != testPRM {
				t.Fatalf("resource_metadata = %q, want %q", md, testPRM)
			}
		})
	}
}

// TestRequireBearerNoPassthrough is attack 60
// (MCP 2025-11-25 Authorization §Access Token Privilege Restriction): a handler
// behind RequireBearer that proxies the request upstream cannot forward the
// client's token, because the request it gets has no Authorization header.
func TestRequireBearerNoPassthrough(t *testing.T) {
	var upstreamAuth []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamAuth = r.Header.Values("Authorization")
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)

	is := newTestIssuer(t)
	key := newES256Key(t, "k1")
	is.publish(key)
	mw := RequireBearer(is.verifier(t, nil), Options{Resource: testResource})
	srv := httptest.NewServer(mw(httputil.NewSingleHostReverseProxy(target)))
	defer srv.Close()

	t.Run("attack 60 H9 token never forwarded upstream", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+key.mint(t, is.claims(""), nil))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200", resp.StatusCode)
		}
		if len(upstreamAuth) != 0 {
			t.Fatalf("upstream received Authorization %q", upstreamAuth)
		}
		if req.Header.Get("Authorization") == "" {
			t.Fatal("the caller's request lost its header: RequireBearer must copy, not mutate")
		}
	})
}

func TestRequireBearerVerifierFailures(t *testing.T) {
	tests := []struct {
		name       string
		v          TokenVerifier
		opts       Options
		wantStatus int
		wantAuth   bool
	}{
		{"H7 verifier unavailable gives 503 without a challenge", TokenVerifierFunc(func(context.Context, string) (*TokenInfo, error) {
			return nil, errors.New("issuer down")
		}), Options{Resource: testResource}, 503, false},
		{"H8 verifier returning nil info is not trusted", TokenVerifierFunc(func(context.Context, string) (*TokenInfo, error) {
			return nil, nil
		}), Options{Resource: testResource}, 503, false},
		{"H8 expired info from a custom verifier is refused", TokenVerifierFunc(func(context.Context, string) (*TokenInfo, error) {
			return &TokenInfo{Expiry: time.Unix(1000, 0)}, nil
		}), Options{Resource: testResource}, 401, true},
		{"H6 scope hierarchy honoured", TokenVerifierFunc(func(context.Context, string) (*TokenInfo, error) {
			return &TokenInfo{Scopes: []string{"files"}}, nil
		}), Options{Resource: testResource, Scopes: []string{"files:read"}, ScopeSatisfies: func(granted []string, req string) bool {
			return slices.ContainsFunc(granted, func(g string) bool { return g == req || strings.HasPrefix(req, g+":") })
		}}, 204, false},
		{"H6 exact scope match by default", TokenVerifierFunc(func(context.Context, string) (*TokenInfo, error) {
			return &TokenInfo{Scopes: []string{"files"}}, nil
		}), Options{Resource: testResource, Scopes: []string{"files:read"}}, 403, true},
		{"H5 metadata URL override", TokenVerifierFunc(func(context.Context, string) (*TokenInfo, error) {
			return nil, ErrInvalidToken
		}), Options{ResourceMetadataURL: "https://elsewhere.example/prm"}, 401, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://mcp.example.com/mcp", nil)
			r.Header.Set("Authorization", "Bearer tok")
			w := httptest.NewRecorder()
			RequireBearer(tt.v, tt.opts)(&okHandler{}).ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("WWW-Authenticate") != ""; got != tt.wantAuth {
				t.Fatalf("WWW-Authenticate present = %v, want %v", got, tt.wantAuth)
			}
			if tt.wantStatus == 503 && w.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if tt.opts.ResourceMetadataURL != "" && !strings.Contains(w.Header().Get("WWW-Authenticate"), tt.opts.ResourceMetadataURL) {
				t.Fatalf("challenge %q lacks the configured metadata URL", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestRequireBearerPanicsOnBadConfig(t *testing.T) {
	tests := []struct {
		name string
		v    TokenVerifier
		opts Options
	}{
		{"H5 no resource", TokenVerifierFunc(nil), Options{}},
		{"H10 resource not absolute", TokenVerifierFunc(nil), Options{Resource: "/mcp"}},
		{"H5 nil verifier", nil, Options{Resource: testResource}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("RequireBearer did not panic")
				}
			}()
			RequireBearer(tt.v, tt.opts)
		})
	}
}

func TestRequireScopesInHandler(t *testing.T) {
	info := &TokenInfo{Scopes: []string{"a", "b"}}
	tests := []struct {
		name    string
		ctx     context.Context
		scopes  []string
		wantErr error
	}{
		{"H6 granted", ContextWithTokenInfo(context.Background(), info), []string{"a", "b"}, nil},
		{"H6 missing scope", ContextWithTokenInfo(context.Background(), info), []string{"a", "c"}, &ScopeError{Required: []string{"a", "c"}, Missing: []string{"c"}}},
		{"H8 no token in context", context.Background(), []string{"a"}, ErrNoToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RequireScopes(tt.ctx, tt.scopes...)
			if diff := cmp.Diff(tt.wantErr, err, cmp.Comparer(func(a, b error) bool {
				var sa, sb *ScopeError
				if errors.As(a, &sa) && errors.As(b, &sb) {
					return cmp.Equal(sa, sb)
				}
				return errors.Is(a, b)
			})); diff != "" {
				t.Fatalf("RequireScopes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func TestIsB64Token(t *testing.T) {
	const valid = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
	t.Run("H8 b64token alphabet", func(t *testing.T) {
		for c := range 256 {
			want := strings.IndexByte(valid, byte(c)) >= 0
			if got := isB64Token("a" + string([]byte{byte(c)}) + "b"); got != want {
				t.Fatalf("isB64Token with byte %#x = %v, want %v", c, got, want)
			}
		}
	})
	for tok, want := range map[string]bool{"abc": true, "abc==": true, "a=b": false, "=": false, "": false, "ab c": false} {
		t.Run(fmt.Sprintf("H8 b64token %q", tok), func(t *testing.T) {
			if got := isB64Token(tok); got != want {
				t.Fatalf("isB64Token(%q) = %v, want %v", tok, got, want)
			}
		})
	}
}
