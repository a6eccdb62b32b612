package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/oauth"
)

// issuer is a test authorization server on loopback: RFC 8414 metadata and
// the JWKS of one ES256 key, which mint uses to issue access tokens.
type issuer struct {
	srv    *httptest.Server
	signer jose.Signer
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "test-key"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{signer: signer}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+oauth.WellKnownAuthorizationServer, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(oauth.AuthorizationServerMetadata{Issuer: is.srv.URL, JWKSURI: is.srv.URL + "/jwks", ResponseTypesSupported: []string{"code"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "test-key", Use: "sig", Algorithm: "ES256"}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// mint issues a token for audience with the given scopes.
func (is *issuer) mint(t *testing.T, audience, scope string) string {
	t.Helper()
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": is.srv.URL, "sub": "alice", "aud": audience, "client_id": "https://client.example.com/cimd.json",
		"scope": scope, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "t-" + scope,
	})
	obj, err := is.signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// startServer runs the example on a free loopback port and returns its MCP
// URL; the server stops when the test ends, and run must then return nil.
func startServer(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run returned %v after shutdown", err)
		}
	})
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "MCP URL: "); ok {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return u
		}
	}
	t.Fatalf("run printed no MCP URL: %v", <-done)
	return ""
}

// bearerTransport adds a fixed access token to every request, as an MCP
// client does after authorization.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func connect(t *testing.T, mcpURL, token string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, nil)
	session, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:   mcpURL,
		HTTPClient: &http.Client{Transport: bearerTransport{token}, Timeout: 10 * time.Second},
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = session.Close() })
	return session
}

func TestGoSDKClientAgainstExampleServer(t *testing.T) {
	is := newIssuer(t)
	mcpURL := startServer(t, "--issuer", is.srv.URL)
	ctx := context.Background()

	t.Run("H8 base scope lists tools and calls echo", func(t *testing.T) {
		s := connect(t, mcpURL, is.mint(t, mcpURL, ScopeTools))
		tools, err := s.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range tools.Tools {
			names = append(names, tool.Name)
		}
		if diff := cmp.Diff([]string{"echo", "whoami"}, names); diff != "" {
			t.Fatalf("tools (-want +got):\n%s", diff)
		}
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Content[0].(*mcp.TextContent).Text; got != "hello" {
			t.Fatalf("echo returned %q", got)
		}
	})
	t.Run("attack 59 H6 whoami without its scope is refused with a step-up", func(t *testing.T) {
		s := connect(t, mcpURL, is.mint(t, mcpURL, ScopeTools))
		_, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
		if err == nil || !strings.Contains(err.Error(), "Forbidden") {
			t.Fatalf("CallTool(whoami) err = %v, want the HTTP 403 Forbidden", err)
		}
	})
	t.Run("H6 whoami after step-up returns the token's identity", func(t *testing.T) {
		s := connect(t, mcpURL, is.mint(t, mcpURL, ScopeTools+" "+ScopeIdentity))
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError {
			t.Fatalf("whoami failed: %+v", res.Content)
		}
		b, _ := json.Marshal(res.StructuredContent)
		var got Identity
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want := Identity{Subject: "alice", ClientID: "https://client.example.com/cimd.json", Scopes: []string{ScopeTools, ScopeIdentity}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("whoami (-want +got):\n%s", diff)
		}
	})
	t.Run("attack 57 H8 token for another MCP server cannot connect", func(t *testing.T) {
		client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, nil)
		_, err := client.Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint:   mcpURL,
			HTTPClient: &http.Client{Transport: bearerTransport{is.mint(t, "http://127.0.0.1:1/mcp", ScopeTools)}, Timeout: 10 * time.Second},
		}, nil)
		if err == nil {
			t.Fatal("connected with a token for another audience")
		}
	})
}

func TestExampleServerHTTP(t *testing.T) {
	is := newIssuer(t)
	mcpURL := startServer(t, "--issuer", is.srv.URL)
	origin := strings.TrimSuffix(mcpURL, "/mcp")
	prmURL := origin + "/.well-known/oauth-protected-resource/mcp"

	t.Run("attack 55 H5 401 points at the metadata", func(t *testing.T) {
		resp, err := (&http.Client{}).Post(mcpURL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := `Bearer scope="mcp:tools", resource_metadata="` + prmURL + `"`
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
			t.Fatalf("status %d, WWW-Authenticate %q; want 401 and %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
		}
	})
	t.Run("attack 59 H6 403 lists every scope whoami needs", func(t *testing.T) {
		req, _ := http.NewRequest("POST", mcpURL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`))
		req.Header.Set("Authorization", "Bearer "+is.mint(t, mcpURL, ScopeTools))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cs, err := oauth.ParseWWWAuthenticate(resp.Header)
		if err != nil || len(cs) != 1 {
			t.Fatalf("challenge %q: %v", resp.Header.Get("WWW-Authenticate"), err)
		}
		scope, _ := cs[0].Param("scope")
		code, _ := cs[0].Param("error")
		md, _ := cs[0].Param("resource_metadata")
		if resp.StatusCode != 403 || code != "insufficient_scope" || scope != "mcp:tools mcp:identity" || md != prmURL {
			t.Fatalf("status %d, challenge %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
	for _, u := range []string{prmURL, origin + "/.well-known/oauth-protected-resource"} {
		t.Run("attack 61 H4 metadata resource equals the MCP URL at "+strings.TrimPrefix(u, origin), func(t *testing.T) {
			resp, err := (&http.Client{}).Get(u)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var md oauth.ProtectedResourceMetadata
			if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
				t.Fatal(err)
			}
			if md.Resource != mcpURL {
				t.Fatalf("metadata resource %q != MCP URL %q", md.Resource, mcpURL)
			}
			if diff := cmp.Diff([]string{is.srv.URL}, md.AuthorizationServers); diff != "" {
				t.Fatalf("authorization_servers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"H10 resource url with a fragment", []string{"--addr", "127.0.0.1:0", "--resource-url", "http://127.0.0.1/mcp#x"}, "fragment"},
		{"H1 issuer with a query", []string{"--addr", "127.0.0.1:0", "--issuer", "http://localhost:8080?x=1"}, "query"},
		{"unknown flag", []string{"--nope"}, "not defined"},
		{"stray argument", []string{"--addr", "127.0.0.1:0", "extra"}, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	t.Run("H4 --resource-url sets the printed MCP URL", func(t *testing.T) {
		got := startServer(t, "--resource-url", "HTTPS://MCP.Example.COM/tools/mcp")
		if got != "https://mcp.example.com/tools/mcp" {
			t.Fatalf("MCP URL = %q", got)
		}
	})
}
