package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/internal/login"
	"github.com/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/resource"
)

// startMCPServer runs on addr a Streamable HTTP MCP server protected by
// issuer's tokens, like examples/mcpserver: echo needs mcp:tools, whoami
// also mcp:identity (step-up). It returns the MCP URL.
func startMCPServer(t *testing.T, addr, issuer string) string {
	t.Helper()
	mcpURL := "http://" + addr + "/mcp"
	jwt, err := resource.NewJWTVerifier(resource.JWTOptions{Issuer: issuer, Resource: mcpURL, Client: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if err := resource.HandleMetadata(mux, oauth.ProtectedResourceMetadata{Resource: mcpURL, AuthorizationServers: []string{issuer},
		ScopesSupported: []string{"mcp:tools"}}); err != nil {
		t.Fatal(err)
	}
	newServer := func(*http.Request) *mcp.Server {
		s := mcp.NewServer(&mcp.Implementation{Name: "login-test", Version: "1"}, nil)
		mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo."}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
			Text string `json:"text"`
		}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
		mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Who."}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			info := resource.TokenInfoFromContext(ctx)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "subject " + info.Subject + " scopes " + strings.Join(info.Scopes, " ")}}}, nil, nil
		})
		return s
	}
	mux.Handle("/mcp", resource.RequireBearer(jwt, resource.Options{
		Resource:  mcpURL,
		Scopes:    []string{"mcp:tools"},
		ScopesFor: resource.ToolScopes(map[string][]string{"whoami": {"mcp:identity"}}),
	})(mcp.NewStreamableHTTPHandler(newServer, &mcp.StreamableHTTPOptions{Stateless: true})))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return mcpURL
}

// startServeMetadata runs `mcpauth client serve-metadata` in-process and
// returns the client_id it prints.
func startServeMetadata(t *testing.T, doc map[string]any) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "client.json")
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"client", "serve-metadata", "--file", file, "--addr", "127.0.0.1:0", "--rewrite-client-id"},
			func(string) string { return "" }, strings.NewReader(""), out, errOut)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve-metadata: %v\n%s", err, errOut)
		}
	})
	for range 200 {
		if s := out.String(); strings.HasSuffix(s, "\n") {
			return strings.TrimSpace(s)
		}
		select {
		case err := <-done:
			t.Fatalf("serve-metadata exited: %v\n%s", err, errOut)
		case <-time.After(25 * time.Millisecond):
		}
	}
	t.Fatal("serve-metadata did not start")
	return ""
}

// runLoginCmd runs `mcpauth login` with the browser step done over HTTP
// against the auto-approving server.
func runLoginCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	err := runLoginWith(ctx, args, func(string) string { return "" }, out, errOut, login.AutoApprove())
	code = exitCode(err, errOut)
	return out.String(), errOut.String(), code
}

// TestLoginAgainstServe logs in with `mcpauth login` to an MCP server
// protected by `mcpauth serve --dev-auto-approve`, with a client ID metadata
// document served by `mcpauth client serve-metadata` and with dynamic
// registration: authorization, the step-up of whoami, stored tokens, logout.
func TestLoginAgainstServe(t *testing.T) {
	rsAddr := freeAddr(t)
	base, _ := startServe(t, nil, "--addr", freeAddr(t), "--data", t.TempDir(), "--dev-allow-loopback", "--dev-auto-approve", "admin",
		"--enable-dcr", "--resource", "http://"+rsAddr+"/mcp=mcp:tools,mcp:identity")
	issuer := strings.Replace(base, "127.0.0.1", "localhost", 1)
	mcpURL := startMCPServer(t, rsAddr, issuer)
	clientID := startServeMetadata(t, map[string]any{
		"client_name": "mcpauth login test", "redirect_uris": []string{"http://127.0.0.1/callback"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "token_endpoint_auth_method": "none",
	})

	for _, tt := range []struct {
		name, kind string
		args       []string
	}{
		{"J6 CIMD with serve-metadata", "cimd", []string{"--client-id", clientID}},
		{"J6 DCR without --client-id", "dcr", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{mcpURL, "--token-dir", dir, "--call", "whoami"}, tt.args...)
			out, errOut, code := runLoginCmd(t, args...)
			if code != 0 {
				t.Fatalf("login: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for _, want := range []string{"echo", "whoami", issuer + "\n", "(" + tt.kind + ")", "subject ", "scopes mcp:identity mcp:tools", "scopes      mcp:identity mcp:tools\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if !strings.Contains(errOut, "step-up") || strings.Count(errOut, "Authorizing at") != 2 {
				t.Errorf("want one authorization and one step-up, stderr:\n%s", errOut)
			}

			// A second run uses the stored token: no authorization.
			out, errOut, code = runLoginCmd(t, mcpURL, "--token-dir", dir, "--print-token")
			if code != 0 || strings.Contains(errOut, "Authorizing at") {
				t.Fatalf("second login: exit %d\nstderr:\n%s", code, errOut)
			}
			if tok := strings.TrimSpace(out); strings.Count(tok, ".") != 2 || strings.Contains(tok, "\n") {
				t.Errorf("--print-token printed %q, want one JWT", out)
			}

			files, _ := filepath.Glob(filepath.Join(dir, "sessions", "*.json"))
			if len(files) != 1 {
				t.Fatalf("%d session files, want 1", len(files))
			}
			if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("session file mode %v (%v), want 0600", fi.Mode(), err)
			}
			_, errOut, code = runLoginCmd(t, "--logout", mcpURL, "--token-dir", dir)
			if code != 0 || !strings.Contains(errOut, "Forgot 1 stored session") {
				t.Errorf("logout: exit %d, stderr %q", code, errOut)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "sessions", "*.json")); len(files) != 0 {
				t.Errorf("%d session files after logout", len(files))
			}
		})
	}
}

func TestLoginUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no URL", []string{"login"}, 2, "exactly one MCP server URL"},
		{"J11 http on a public host", []string{"login", "http://mcp.example/mcp", "--token-dir", "x"}, 2, "https"},
		{"J11 javascript URL", []string{"login", "javascript:alert(1)", "--token-dir", "x"}, 2, "https"},
		{"J3 registered client without its issuer", []string{"login", "https://mcp.example/mcp", "--registered-client-id", "c"}, 2, "--registered-issuer"},
		{"bad --arguments", []string{"login", "https://mcp.example/mcp", "--call", "x", "--arguments", "[1]", "--token-dir", "x"}, 2, "JSON object"},
		{"help", []string{"login", "--help"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestConformanceCredentials(t *testing.T) {
	tests := []struct {
		name, raw string
		want      *login.Credentials
		err       bool
	}{
		{"absent", "", nil, false},
		{"pre-registration scenario", `{"name":"auth/pre-registration","client_id":"c","client_secret":"s"}`, &login.Credentials{ClientID: "c", ClientSecret: "s"}, false},
		{"other scenario context", `{"name":"auth/x"}`, nil, false},
		{"not JSON", `{`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := conformanceCredentials(tt.raw)
			if (err != nil) != tt.err || (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("= %+v, %v; want %+v, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}
