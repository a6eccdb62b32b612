package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAuthorizationRequest checks the request of OAuth 2.1 §4.1.1, RFC 8707 §2
// and the token request of OAuth 2.1 §4.1.3, RFC 8707 §2.2 from one
// authorization.
func TestAuthorizationRequest(t *testing.T) {
	as := newFakeAS(t, nil)
	rs := newFakeRS(t, as, func(rs *fakeRS) { rs.required = []string{"mcp:tools"}; rs.scopeInHeader = true })
	a := newTestAuthorizer(t, rs, nil)
	if status, err := call(t, a, rs.mcpURL(), "tools/list"); err != nil || status != http.StatusOK {
		t.Fatalf("call: status %d, err %v", status, err)
	}
	_, auth, tok, _, _ := as.snapshot()
	q := auth[0]
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("J8 parameters", func(t *testing.T) {
		for k, want := range map[string]string{"response_type": "code", "code_challenge_method": "S256", "scope": "mcp:tools",
			"resource": rs.mcpURL(), "client_id": "dcr-1"} {
			if got := q.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if len(q.Get("code_challenge")) != 43 || len(q.Get("state")) != 43 {
			t.Errorf("code_challenge %q, state %q: want 43 base64url characters each", q.Get("code_challenge"), q.Get("state"))
		}
	})
	t.Run("J8 loopback redirect on 127.0.0.1 and a random port", func(t *testing.T) {
		if redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" || redirect.Port() == "" || redirect.Path != "/callback" {
			t.Errorf("redirect_uri = %q", redirect)
		}
	})
	t.Run("J10 token request", func(t *testing.T) {
		f := tok[0]
		for k, want := range map[string]string{"grant_type": "authorization_code", "resource": rs.mcpURL(), "client_id": "dcr-1",
			"redirect_uri": q.Get("redirect_uri")} {
			if got := f.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if s256(f.Get("code_verifier")) != q.Get("code_challenge") {
			t.Error("code_verifier does not match code_challenge")
		}
	})
	t.Run("J10 bearer on the MCP request", func(t *testing.T) {
		_, bearers := rs.snapshot()
		if diff := cmp.Diff([]string{"", "Bearer at-3"}, bearers); diff != "" {
			t.Errorf("Authorization headers (-want +got):\n%s", diff)
		}
	})
}

// TestRegistration checks the MCP 2025-11-25 Authorization §Client Registration
// Approaches order and client authentication.
func TestRegistration(t *testing.T) {
	tests := []struct {
		name       string
		as         func(*fakeAS)
		opts       func(*Options)
		wantClient string
		wantRegs   int
		wantBasic  string // Basic user at the token endpoint
		wantSecret string // client_secret in the token request body
	}{
		{name: "J6 DCR as a public client", wantClient: "dcr-1", wantRegs: 1},
		{name: "J6 CIMD before DCR", as: func(as *fakeAS) { as.cimd = true },
			opts:       func(o *Options) { o.ClientIDMetadataURL = "https://client.example/client.json" },
			wantClient: "https://client.example/client.json"},
		{name: "J6 DCR when the server does not support CIMD", opts: func(o *Options) { o.ClientIDMetadataURL = "https://client.example/client.json" },
			wantClient: "dcr-1", wantRegs: 1},
		{name: "J6 pre-registered before CIMD", as: func(as *fakeAS) { as.cimd = true; as.authMethods = []string{AuthSecretBasic} },
			opts: func(o *Options) {
				o.ClientIDMetadataURL = "https://client.example/client.json"
				o.Registered = &Credentials{ClientID: "pre", ClientSecret: "s3cret"}
			},
			wantClient: "pre", wantBasic: "pre"},
		{name: "J6 pre-registered with client_secret_post", as: func(as *fakeAS) { as.authMethods = []string{AuthSecretPost} },
			opts:       func(o *Options) { o.Registered = &Credentials{ClientID: "pre", ClientSecret: "s3cret"} },
			wantClient: "pre", wantSecret: "s3cret"},
		{name: "J3 pre-registered credentials of another issuer are not sent", opts: func(o *Options) {
			o.Registered = &Credentials{Issuer: "https://other.example", ClientID: "pre", ClientSecret: "s3cret"}
		}, wantClient: "dcr-1", wantRegs: 1},
		{name: "J6 DCR with client_secret_basic when the server requires it", as: func(as *fakeAS) { as.authMethods = []string{AuthSecretBasic} },
			wantClient: "dcr-1", wantRegs: 1, wantBasic: "dcr-1"},
		{name: "J6 DCR with client_secret_post when the server requires it", as: func(as *fakeAS) { as.authMethods = []string{AuthSecretPost} },
			wantClient: "dcr-1", wantRegs: 1, wantSecret: "secret-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.as)
			rs := newFakeRS(t, as, nil)
			a := newTestAuthorizer(t, rs, tt.opts)
			if status, err := call(t, a, rs.mcpURL(), "tools/list"); err != nil || status != http.StatusOK {
				t.Fatalf("call: status %d, err %v (%v)", status, err, a.Err())
			}
			_, auth, tok, regs, basic := as.snapshot()
			if got := auth[0].Get("client_id"); got != tt.wantClient {
				t.Errorf("client_id = %q, want %q", got, tt.wantClient)
			}
			if len(regs) != tt.wantRegs {
				t.Errorf("%d registrations, want %d", len(regs), tt.wantRegs)
			}
			if got := basicUser(basic[0]); got != tt.wantBasic {
				t.Errorf("Basic user = %q, want %q", got, tt.wantBasic)
			}
			if got := tok[0].Get("client_secret"); got != tt.wantSecret {
				t.Errorf("client_secret in the body = %q, want %q", got, tt.wantSecret)
			}
			if tt.wantBasic != "" && tok[0].Has("client_id") {
				t.Error("client_id sent in the body with Basic authentication")
			}
		})
	}
}

// TestDCRRegistrationReused checks that a second login to the same issuer
// reuses the stored registration and its redirect port (RFC 9728 §7.6).
func TestDCRRegistrationReused(t *testing.T) {
	as := newFakeAS(t, nil)
	rs := newFakeRS(t, as, nil)
	store := FileStore{Dir: t.TempDir()}
	for i := range 2 {
		a := newTestAuthorizer(t, rs, func(o *Options) { o.Store = store })
		if _, err := Forget(store, rs.mcpURL()); err != nil {
			t.Fatal(err)
		}
		if status, err := call(t, a, rs.mcpURL(), "tools/list"); err != nil || status != http.StatusOK {
			t.Fatalf("login %d: status %d, err %v (%v)", i, status, err, a.Err())
		}
	}
	_, auth, _, regs, _ := as.snapshot()
	if len(regs) != 1 || len(auth) != 2 {
		t.Fatalf("%d registrations and %d authorizations, want 1 and 2", len(regs), len(auth))
	}
	if auth[0].Get("redirect_uri") != auth[1].Get("redirect_uri") || auth[1].Get("client_id") != "dcr-1" {
		t.Errorf("second login used %q at %q", auth[1].Get("client_id"), auth[1].Get("redirect_uri"))
	}
}

// TestCallbackChecks covers RFC 9207 §2.4: state, RFC 9207 iss, and how errors
// of an unverified response are (not) shown.
func TestCallbackChecks(t *testing.T) {
	tests := []struct {
		name    string
		as      func(*fakeAS)
		wantErr error
		wantMsg string
		ok      bool
	}{
		{name: "J9 state mismatch", as: func(as *fakeAS) { as.wrongState = true; as.errorParam = "access_denied" }, wantErr: ErrStateMismatch},
		{name: "J9 iss mismatch", as: func(as *fakeAS) { as.issParam = "https://attacker.example"; as.errorParam = "access_denied" }, wantErr: ErrIssuerMismatch},
		{name: "J9 iss absent although advertised", as: func(as *fakeAS) { as.issSupported = true }, wantErr: ErrIssuerMissing},
		{name: "J9 iss present and equal", as: func(as *fakeAS) { as.issSupported = true; as.issParam = "right" }, ok: true},
		{name: "J9 iss present though not advertised, equal", as: func(as *fakeAS) { as.issParam = "right" }, ok: true},
		{name: "J9 iss absent and not advertised", ok: true},
		{name: "J9 error shown sanitised once state and iss check out", as: func(as *fakeAS) { as.errorParam = "access_denied" },
			wantMsg: "authorization refused: access_denied: evil [31mdescription"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.as)
			rs := newFakeRS(t, as, nil)
			a := newTestAuthorizer(t, rs, nil)
			status, err := call(t, a, rs.mcpURL(), "tools/list")
			if tt.ok {
				if err != nil || status != http.StatusOK {
					t.Fatalf("status %d, err %v (%v)", status, err, a.Err())
				}
				return
			}
			if err == nil {
				t.Fatal("call succeeded")
			}
			if tt.wantErr != nil {
				if !errors.Is(a.Err(), tt.wantErr) {
					t.Errorf("Err() = %v, want %v", a.Err(), tt.wantErr)
				}
				if strings.Contains(a.Err().Error(), "access_denied") || strings.Contains(a.Err().Error(), "description") {
					t.Errorf("Err() = %v shows the unverified error", a.Err())
				}
			}
			if tt.wantMsg != "" && a.Err().Error() != tt.wantMsg {
				t.Errorf("Err() = %q, want %q", a.Err(), tt.wantMsg)
			}
			if _, _, tok, _, _ := as.snapshot(); len(tok) != 0 {
				t.Errorf("%d token requests after a refused response", len(tok))
			}
		})
	}
}

// TestScopes covers MCP 2025-11-25 Authorization §Scope Selection Strategy:
// selection, step-up and the retry limit.
func TestScopes(t *testing.T) {
	tests := []struct {
		name      string
		as        func(*fakeAS)
		rs        func(*fakeRS)
		opts      func(*Options)
		method    string
		wantAuth  []string // the scope parameter of each authorization request ("-" = absent)
		wantOK    bool
		wantError error
	}{
		{name: "J7 scope from the challenge", rs: func(rs *fakeRS) {
			rs.required, rs.scopeInHeader, rs.scopesSupported = []string{"mcp:basic"}, true, []string{"mcp:basic", "mcp:other"}
		}, wantAuth: []string{"mcp:basic"}, wantOK: true},
		{name: "J7 every scope of scopes_supported", rs: func(rs *fakeRS) {
			rs.required, rs.scopesSupported = []string{"a", "b", "c"}, []string{"a", "b", "c"}
		}, wantAuth: []string{"a b c"}, wantOK: true},
		{name: "J7 scope omitted when undefined", wantAuth: []string{"-"}, wantOK: true},
		{name: "J7 --scope overrides", opts: func(o *Options) { o.Scopes = []string{"x", "y"} },
			rs: func(rs *fakeRS) { rs.scopesSupported = []string{"a"} }, wantAuth: []string{"x y"}, wantOK: true},
		{name: "J7 step-up with the union of scopes", method: "tools/call", rs: func(rs *fakeRS) {
			rs.required, rs.scopeInHeader, rs.toolScopes = []string{"mcp:basic"}, true, []string{"mcp:write"}
		}, wantAuth: []string{"mcp:basic", "mcp:basic mcp:write"}, wantOK: true},
		{name: "J7 no step-up when the token already has the challenged scope", method: "tools/call", rs: func(rs *fakeRS) {
			rs.required, rs.scopeInHeader, rs.always403 = []string{"mcp:admin"}, true, true
		}, wantAuth: []string{"mcp:admin"}},
		{name: "J7 retry limit when the server never grants enough", method: "tools/call",
			as:       func(as *fakeAS) { as.grant = func([]string) []string { return []string{"nothing"} } },
			rs:       func(rs *fakeRS) { rs.required, rs.scopeInHeader = []string{"mcp:admin"}, true },
			wantAuth: []string{"mcp:admin", "mcp:admin", "mcp:admin"}, wantError: ErrTooManyAuthorizations},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.as)
			rs := newFakeRS(t, as, tt.rs)
			a := newTestAuthorizer(t, rs, tt.opts)
			method := tt.method
			if method == "" {
				method = "tools/list"
			}
			status, err := call(t, a, rs.mcpURL(), method)
			if got := err == nil && status == http.StatusOK; got != tt.wantOK {
				t.Errorf("status %d, err %v (%v); want success %v", status, err, a.Err(), tt.wantOK)
			}
			if tt.wantError != nil && !errors.Is(a.Err(), tt.wantError) {
				t.Errorf("Err() = %v, want %v", a.Err(), tt.wantError)
			}
			_, auth, _, _, _ := as.snapshot()
			var got []string
			for _, q := range auth {
				if !q.Has("scope") {
					got = append(got, "-")
				} else {
					got = append(got, q.Get("scope"))
				}
			}
			if diff := cmp.Diff(tt.wantAuth, got); diff != "" {
				t.Errorf("authorization scopes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRefresh covers refreshing: before expiry, after a 401, and a failing
// refresh that falls back to a new authorization.
func TestRefresh(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int64
		revoke    bool // forget the access token at the server before the second call
		breakRT   bool // forget the refresh token too
		wantAuth  int
		wantGrant []string
	}{
		{name: "refresh before expiry", expiresIn: 60, wantAuth: 1, wantGrant: []string{"authorization_code", "refresh_token"}},
		{name: "refresh after a 401 invalid_token", expiresIn: 3600, revoke: true, wantAuth: 1,
			wantGrant: []string{"authorization_code", "refresh_token"}},
		{name: "authorize again when the refresh fails", expiresIn: 3600, revoke: true, breakRT: true, wantAuth: 2,
			wantGrant: []string{"authorization_code", "refresh_token", "authorization_code"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, func(as *fakeAS) { as.refreshTokens = true; as.expiresIn = tt.expiresIn })
			rs := newFakeRS(t, as, nil)
			store := FileStore{Dir: t.TempDir()}
			a := newTestAuthorizer(t, rs, func(o *Options) { o.Store = store })
			if status, err := call(t, a, rs.mcpURL(), "tools/list"); err != nil || status != http.StatusOK {
				t.Fatalf("first call: status %d, err %v", status, err)
			}
			as.mu.Lock()
			if tt.revoke {
				clear(as.tokens)
			}
			if tt.breakRT {
				clear(as.refresh)
			}
			as.mu.Unlock()
			// A new Authorizer (a new `mcpauth login` run) starts from the
			// store; its clock is a minute on, so a 60 s token is expiring.
			b := newTestAuthorizer(t, rs, func(o *Options) {
				o.Store = store
				o.Now = func() time.Time { return time.Now().Add(time.Minute) }
			})
			if status, err := call(t, b, rs.mcpURL(), "tools/list"); err != nil || status != http.StatusOK {
				t.Fatalf("second call: status %d, err %v (%v)", status, err, b.Err())
			}
			_, auth, tok, _, _ := as.snapshot()
			var grants []string
			for _, f := range tok {
				grants = append(grants, f.Get("grant_type"))
			}
			if diff := cmp.Diff(tt.wantGrant, grants); diff != "" {
				t.Errorf("grants (-want +got):\n%s", diff)
			}
			if len(auth) != tt.wantAuth {
				t.Errorf("%d authorizations, want %d", len(auth), tt.wantAuth)
			}
			for _, f := range tok {
				if f.Get("grant_type") == "refresh_token" && f.Get("resource") != rs.mcpURL() {
					t.Errorf("refresh without resource: %v", f)
				}
			}
		})
	}
}

// TestTokenOnlyToTheMCPOrigin checks that a request to another origin never
// carries the token.
func TestTokenOnlyToTheMCPOrigin(t *testing.T) {
	as := newFakeAS(t, nil)
	rs := newFakeRS(t, as, nil)
	other := newFakeRS(t, as, nil)
	a := newTestAuthorizer(t, rs, nil)
	if status, err := call(t, a, rs.mcpURL(), "tools/list"); err != nil || status != http.StatusOK {
		t.Fatalf("status %d, err %v", status, err)
	}
	if status, err := call(t, a, other.mcpURL(), "tools/list"); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("other origin: status %d, err %v; want the 401 handed back", status, err)
	}
	if _, bearers := other.snapshot(); bearers[0] != "" {
		t.Errorf("the other origin got %q", bearers[0])
	}
}

// TestConcurrentRequestsAuthorizeOnce checks that requests failing together
// share one authorization.
func TestConcurrentRequestsAuthorizeOnce(t *testing.T) {
	as := newFakeAS(t, nil)
	rs := newFakeRS(t, as, nil)
	a := newTestAuthorizer(t, rs, nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if status, err := call(t, a, rs.mcpURL(), "tools/list"); err != nil || status != http.StatusOK {
				t.Errorf("status %d, err %v", status, err)
			}
		})
	}
	wg.Wait()
	if _, auth, _, _, _ := as.snapshot(); len(auth) != 1 {
		t.Errorf("%d authorizations, want 1", len(auth))
	}
}

// TestFileStore checks modes, replacement per (MCP URL, issuer) and
// Forget.
func TestFileStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mcpauth")
	st := FileStore{Dir: dir}
	now := time.Now()
	sessions := []*Session{
		{MCPURL: "https://a.example/mcp", Issuer: "https://as1.example", AccessToken: "1", UpdatedAt: now},
		{MCPURL: "https://a.example/mcp", Issuer: "https://as2.example", AccessToken: "2", UpdatedAt: now.Add(time.Second)},
		{MCPURL: "https://b.example/mcp", Issuer: "https://as1.example", AccessToken: "3", UpdatedAt: now},
		{MCPURL: "https://a.example/mcp", Issuer: "https://as1.example", AccessToken: "4", UpdatedAt: now.Add(-time.Second)},
	}
	for _, s := range sessions {
		if err := st.SaveSession(s); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("modes 0700 and 0600", func(t *testing.T) {
		for _, d := range []string{dir, filepath.Join(dir, "sessions")} {
			if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v %v, want 0700", d, fi.Mode(), err)
			}
		}
		files, _ := filepath.Glob(filepath.Join(dir, "sessions", "*"))
		if len(files) != 3 {
			t.Errorf("%d files, want 3 (one per MCP URL and issuer)", len(files))
		}
		for _, f := range files {
			if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v %v, want 0600", f, fi.Mode(), err)
			}
		}
	})
	t.Run("latest session of the MCP URL", func(t *testing.T) {
		s, err := st.LoadSession("https://a.example/mcp")
		if err != nil || s.AccessToken != "2" {
			t.Errorf("LoadSession = %+v, %v; want token 2", s, err)
		}
	})
	t.Run("logout forgets one MCP URL", func(t *testing.T) {
		n, err := Forget(st, "HTTPS://A.example/mcp")
		if err != nil || n != 2 {
			t.Fatalf("Forget = %d, %v; want 2", n, err)
		}
		if _, err := st.LoadSession("https://a.example/mcp"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after logout: %v", err)
		}
		if s, err := st.LoadSession("https://b.example/mcp"); err != nil || s.AccessToken != "3" {
			t.Errorf("other server: %+v, %v", s, err)
		}
	})
	t.Run("registrations per issuer", func(t *testing.T) {
		if _, err := st.LoadRegistration("https://as1.example"); !errors.Is(err, ErrNotFound) {
			t.Errorf("empty: %v", err)
		}
		r := &Registration{Issuer: "https://as1.example", RedirectURI: "http://127.0.0.1:5/callback", Client: Client{ID: "c"}}
		if err := st.SaveRegistration(r); err != nil {
			t.Fatal(err)
		}
		got, err := st.LoadRegistration("https://as1.example")
		if err != nil || got.Client.ID != "c" {
			t.Errorf("LoadRegistration = %+v, %v", got, err)
		}
		if _, err := st.LoadRegistration("https://as2.example"); !errors.Is(err, ErrNotFound) {
			t.Errorf("other issuer: %v", err)
		}
	})
}

func TestBrowserCommand(t *testing.T) {
	u := "https://as.example/authorize?a=1&b=2"
	for goos, want := range map[string][]string{
		"linux":   {"xdg-open", u},
		"darwin":  {"open", u},
		"windows": {"rundll32", "url.dll,FileProtocolHandler", u},
		"plan9":   {""},
	} {
		t.Run(goos, func(t *testing.T) {
			name, args := browserCommand(goos, u)
			if diff := cmp.Diff(want, append([]string{name}, args...)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestFailedAuthorizationNotRepeated (MCP 2025-11-25 Authorization §Scope
// Selection Strategy, RFC 9207 §2.4): once an authorization failed, later
// requests through the Authorizer fail with the same error; the user is not
// sent to the browser again (the MCP SDK sends a second request when the first
// fails).
func TestFailedAuthorizationNotRepeated(t *testing.T) {
	as := newFakeAS(t, func(as *fakeAS) { as.issParam = "https://attacker.example"; as.errorParam = "access_denied" })
	rs := newFakeRS(t, as, nil)
	var opened int
	a := newTestAuthorizer(t, rs, func(o *Options) {
		auto := o.OpenBrowser
		o.OpenBrowser = func(ctx context.Context, u string) error { opened++; return auto(ctx, u) }
	})
	for i := range 2 {
		if _, err := call(t, a, rs.mcpURL(), "tools/list"); err == nil {
			t.Fatalf("request %d succeeded", i)
		}
	}
	if opened != 1 || !errors.Is(a.Err(), ErrIssuerMismatch) {
		t.Errorf("browser opened %d times, Err() = %v; want once, and the issuer mismatch", opened, a.Err())
	}
}
