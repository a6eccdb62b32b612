package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/oauth"
)

func TestProxyConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(file, []byte(`
listen: 127.0.0.1:9000
upstream: http://127.0.0.1:3001/file
issuer: https://auth.example.com
scopes: [from-file]
tools:
  delete_file: [files:write]
identity_headers:
  subject: X-User
upstream_timeout: 2m
`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := ProxyConfig{Listen: "127.0.0.1:8090", Upstream: "http://127.0.0.1:3001/mcp", Issuer: "http://localhost:8080",
		ResourceURL: "http://127.0.0.1:8090/mcp", LogFormat: "text", LogLevel: "info", MaxBodyBytes: 4 << 20, UpstreamTimeout: duration(time.Minute),
		IntrospectCache: duration(5 * time.Second)}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want func(c *ProxyConfig)
	}{
		{"defaults: resource on the listen address with the upstream's path", []string{"--upstream", "http://127.0.0.1:3001/mcp", "--issuer", "http://localhost:8080"}, nil,
			func(c *ProxyConfig) {}},
		{"environment fallbacks", nil, map[string]string{"MCPAUTH_PROXY_UPSTREAM": "http://127.0.0.1:3001/mcp", "MCPAUTH_ISSUER": "http://localhost:8080",
			"MCPAUTH_PROXY_SCOPE": "a b", "MCPAUTH_PROXY_LISTEN": "127.0.0.1:7000", "MCPAUTH_PROXY_MAX_BODY": "1024", "MCPAUTH_PROXY_UPSTREAM_TIMEOUT": "5s"},
			func(c *ProxyConfig) {
				c.Scopes = []string{"a", "b"}
				c.Listen, c.ResourceURL = "127.0.0.1:7000", "http://127.0.0.1:7000/mcp"
				c.MaxBodyBytes, c.UpstreamTimeout = 1024, duration(5*time.Second)
			}},
		{"flags win over the environment", []string{"--upstream", "http://127.0.0.1:3001/mcp", "--issuer", "http://localhost:8080", "--scope", "x", "--scope", "y"},
			map[string]string{"MCPAUTH_ISSUER": "https://ignored.example", "MCPAUTH_PROXY_SCOPE": "ignored"},
			func(c *ProxyConfig) { c.Scopes = []string{"x", "y"} }},
		{"H10 resource URL canonicalised", []string{"--upstream", "http://127.0.0.1:3001/mcp", "--issuer", "http://localhost:8080", "--resource-url", "HTTPS://MCP.Example.com/mcp"}, nil,
			func(c *ProxyConfig) { c.ResourceURL = "https://mcp.example.com/mcp" }},
		{"config file, with the environment over it", []string{"--config", file}, map[string]string{"MCPAUTH_PROXY_UPSTREAM": "http://127.0.0.1:3001/env"},
			func(c *ProxyConfig) {
				c.Listen, c.Upstream, c.Issuer = "127.0.0.1:9000", "http://127.0.0.1:3001/env", "https://auth.example.com"
				c.ResourceURL = "http://127.0.0.1:9000/env"
				c.Scopes = []string{"from-file"}
				c.Tools = map[string][]string{"delete_file": {"files:write"}}
				c.IdentityHeaders.Subject = "X-User"
				c.UpstreamTimeout = duration(2 * time.Minute)
			}},
		{"introspection", []string{"--upstream", "http://127.0.0.1:3001/mcp", "--issuer", "http://localhost:8080", "--introspect", "--client-id", "gw", "--client-secret-file", file}, nil,
			func(c *ProxyConfig) { c.Introspect, c.ClientID, c.ClientSecretFile = true, "gw", file }},
		{"introspection cache time", []string{"--upstream", "http://127.0.0.1:3001/mcp", "--issuer", "http://localhost:8080", "--introspect-cache", "0"},
			nil, func(c *ProxyConfig) { c.IntrospectCache = 0 }},
		{"introspection cache time from the environment", []string{"--upstream", "http://127.0.0.1:3001/mcp", "--issuer", "http://localhost:8080"},
			map[string]string{"MCPAUTH_PROXY_INTROSPECT_CACHE": "2s"}, func(c *ProxyConfig) { c.IntrospectCache = duration(2 * time.Second) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pf := newProxyFlags(io.Discard)
			if err := pf.fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := resolveProxyConfig(pf, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			want := base
			tc.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestProxyConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("upstrem: http://127.0.0.1:3001/mcp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := []string{"--upstream", "http://127.0.0.1:3001/mcp", "--issuer", "http://localhost:8080"}
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no upstream", []string{"--issuer", "http://localhost:8080"}, "upstream: set --upstream"},
		{"no issuer", []string{"--upstream", "http://127.0.0.1:3001/mcp"}, "issuer: set --issuer"},
		{"upstream not http", append(ok, "--upstream", "ftp://127.0.0.1/mcp"), "upstream \"ftp://"},
		{"http issuer off loopback", append(ok, "--issuer", "http://auth.example.com"), "use https://auth.example.com"},
		{"H10 http resource off loopback", append(ok, "--resource-url", "http://mcp.example.com/mcp"), "resource-url"},
		{"resource needed on a public listen address", append(ok, "--listen", "0.0.0.0:8090"), "resource-url: set --resource-url"},
		{"scope with a space", append(ok, "--scope", "a b"), "scope \"a b\""},
		{"introspect without credentials", append(ok, "--introspect"), "--client-id and --client-secret-file"},
		{"client id without introspect", append(ok, "--client-id", "x"), "only with --introspect"},
		{"body limit", append(ok, "--max-body", "0"), `--max-body "0": write a positive number of bytes`},
		{"unknown key in the config file", append(ok, "--config", bad), `unknown key "upstrem" at the top level; the keys there are listen, upstream`},
		{"identity header reserved", append(ok, "--config", writeFile(t, dir, "id.yaml", "identity_headers: {subject: Authorization}\n")), "identity header \"Authorization\""},
		{"tool without scopes", append(ok, "--config", writeFile(t, dir, "tools.yaml", "tools: {delete_file: []}\n")), "tools.delete_file"},
		{"duration of the wrong form is named", append(ok, "--config", writeFile(t, dir, "dur.yaml", "upstream_timeout: soon\n")), `line 1: upstream_timeout "soon": write a positive duration`},
		{"positional argument", append(ok, "extra"), "no arguments"},
		{"negative introspection cache", append(ok, "--introspect-cache", "-1s"), `--introspect-cache "-1s": write a duration such as 5s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCmd(t, append([]string{"proxy"}, tc.args...)...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// introspectingIssuer is an authorization server stand-in on loopback: its
// metadata, and an introspection endpoint for client gw (secret s3cret)
// that finds good active (for alice, client https://client.example/c.json,
// scope mcp:tools, audience resourceURL) and any other token inactive.
func introspectingIssuer(t *testing.T, resourceURL, good string) *httptest.Server {
	var as *httptest.Server
	as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case oauth.WellKnownAuthorizationServer:
			_ = json.NewEncoder(w).Encode(oauth.AuthorizationServerMetadata{Issuer: as.URL, AuthorizationEndpoint: as.URL + "/authorize",
				TokenEndpoint: as.URL + "/token", IntrospectionEndpoint: as.URL + "/introspect"})
		case "/introspect":
			if id, secret, _ := r.BasicAuth(); id != "gw" || secret != "s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"active": r.PostFormValue("token") == good, "iss": as.URL, "sub": "alice",
				"client_id": "https://client.example/c.json", "scope": "mcp:tools", "aud": resourceURL, "exp": time.Now().Add(time.Hour).Unix()})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(as.Close)
	return as
}

// TestProxyRun runs `mcpauth proxy` in-process with introspection against a
// loopback authorization server stand-in and a loopback upstream.
func TestProxyRun(t *testing.T) {
	addr := freeAddr(t)
	resourceURL := "http://" + addr + "/mcp"
	as := introspectingIssuer(t, resourceURL, "good")
	var mu sync.Mutex
	var upstreamSaw []http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamSaw = append(upstreamSaw, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()

	args := []string{"proxy", "--listen", addr, "--upstream", up.URL + "/mcp", "--issuer", as.URL, "--scope", "mcp:tools",
		"--introspect", "--client-id", "gw", "--client-secret-file", writeFile(t, t.TempDir(), "secret", "s3cret\n")}
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), out, errOut) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("proxy returned %v\nstderr:\n%s", err, errOut)
			}
		case <-time.After(20 * time.Second):
			t.Error("proxy did not shut down")
		}
	}()
	waitFor(t, out, "listening on ", done, errOut)

	post := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", resourceURL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-MCPAuth-Subject", "admin")
		resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("H5 401 without a token, H2 metadata, health", func(t *testing.T) {
		if code, _ := get(t, resourceURL); code != 401 {
			t.Errorf("GET without token: %d", code)
		}
		code, body := get(t, "http://"+addr+"/.well-known/oauth-protected-resource/mcp")
		if code != 200 || !strings.Contains(body, `"resource":"`+resourceURL+`"`) || !strings.Contains(body, `"authorization_servers":["`+as.URL+`"]`) {
			t.Errorf("metadata: %d %s", code, body)
		}
		if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
			t.Errorf("healthz: %d", code)
		}
	})
	t.Run("H8 introspection: inactive token 401", func(t *testing.T) {
		if code := post("bad"); code != 401 {
			t.Errorf("status %d", code)
		}
	})
	t.Run("H9 introspection: active token forwarded as identity, not as a token", func(t *testing.T) {
		if code := post("good"); code != 200 {
			t.Fatalf("status %d", code)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(upstreamSaw) != 1 {
			t.Fatalf("upstream got %d requests", len(upstreamSaw))
		}
		h := upstreamSaw[0]
		got := map[string]string{"Authorization": h.Get("Authorization"), "X-Mcpauth-Subject": h.Get("X-Mcpauth-Subject"),
			"X-Mcpauth-Client-Id": h.Get("X-Mcpauth-Client-Id"), "X-Mcpauth-Scopes": h.Get("X-Mcpauth-Scopes")}
		want := map[string]string{"Authorization": "", "X-Mcpauth-Subject": "alice", "X-Mcpauth-Client-Id": "https://client.example/c.json", "X-Mcpauth-Scopes": "mcp:tools"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("upstream headers (-want +got):\n%s", diff)
		}
	})
}

// waitFor waits until out contains s, or fails when the command exits.
func waitFor(t *testing.T, out *syncBuffer, s string, done chan error, errOut *syncBuffer) {
	t.Helper()
	for range 200 {
		if strings.Contains(out.String(), s) {
			return
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("command exited: %v\nstderr:\n%s", err, errOut)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no %q in output\nstdout:\n%s\nstderr:\n%s", s, out, errOut)
}

// TestEnvBooleansAreStrict: a boolean environment variable that is neither
// true nor false stops the command with a message naming it.
func TestEnvBooleansAreStrict(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
	}{
		{[]string{"proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:3001/mcp", "--issuer", "http://localhost:8080"}, "MCPAUTH_PROXY_INTROSPECT"},
		// Loopback only, and a port nothing listens on: a regression that
		// read the variable leniently would fail fast, never reach a host.
		{[]string{"client", "check", "http://127.0.0.1:1/c.json"}, "MCPAUTH_DEV_ALLOW_LOOPBACK"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			// A proxy that started anyway is stopped by the deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errb bytes.Buffer
			err := run(ctx, tc.args, func(k string) string {
				if k == tc.env {
					return "perhaps"
				}
				return ""
			}, strings.NewReader(""), &out, &errb)
			if code := exitCode(err, &errb); code != 2 || !strings.Contains(errb.String(), tc.env+` "perhaps": use true or false`) {
				t.Errorf("exit %d, stderr %q; want 2 naming %s", code, errb.String(), tc.env)
			}
		})
	}
}

// TestEnvBooleanFlagWins: the flag is read before the environment, so a
// bad variable does not matter when the flag is given.
func TestEnvBooleanFlagWins(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"client", "check", "--dev-allow-loopback=false", "http://127.0.0.1:1/c.json"},
		func(k string) string {
			if k == "MCPAUTH_DEV_ALLOW_LOOPBACK" {
				return "perhaps"
			}
			return ""
		}, strings.NewReader(""), &out, &errb)
	// Loopback not allowed: the check refuses the client_id without a fetch (exit 1).
	if code := exitCode(err, &errb); code != 1 || strings.Contains(errb.String(), "perhaps") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 (refused), the variable ignored", code, out.String(), errb.String())
	}
}

// TestProxyIntrospectCache: --introspect-cache is how long the proxy reuses
// an active introspection result; 0 introspects every request.
func TestProxyIntrospectCache(t *testing.T) {
	secret := writeFile(t, t.TempDir(), "secret", "s3cret\n")
	const resourceURL = "http://127.0.0.1:8090/mcp"
	for _, tc := range []struct {
		cache time.Duration
		calls int32 // for three requests with one token
	}{
		{defaultIntrospectCache, 1},
		{0, 3},
	} {
		var calls atomic.Int32
		as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "iss": "http://localhost:8080", "sub": "alice", "client_id": "c", "aud": resourceURL,
				"exp": time.Now().Add(time.Hour).Unix()})
		}))
		c := ProxyConfig{Issuer: "http://localhost:8080", ResourceURL: resourceURL, Introspect: true, IntrospectionEndpoint: as.URL,
			ClientID: "gw", ClientSecretFile: secret, IntrospectCache: duration(tc.cache)}
		opts, _, err := c.gatewayOptions(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := opts.Verifier.VerifyToken(t.Context(), "tok"); err != nil {
				t.Fatalf("cache %v: VerifyToken: %v", tc.cache, err)
			}
		}
		if got := calls.Load(); got != tc.calls {
			t.Errorf("--introspect-cache %v: %d introspection calls for three requests, want %d", tc.cache, got, tc.calls)
		}
		as.Close()
	}
}
