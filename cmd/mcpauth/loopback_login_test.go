package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/login"
)

// startServeNoDCR starts `mcpauth serve` (auto-approving as admin, without
// dynamic registration, so login has no registration endpoint) with the
// extra serveArgs, and an MCP server it protects. It returns the MCP URL and
// the issuer.
func startServeNoDCR(t *testing.T, serveArgs ...string) (mcpURL, issuer string) {
	t.Helper()
	addr, rsAddr := freeAddr(t), freeAddr(t)
	issuer = "http://" + addr
	startServe(t, nil, append([]string{"--addr", addr, "--issuer", issuer, "--data", t.TempDir(),
		"--dev-allow-loopback", "--dev-auto-approve", "admin",
		"--resource", "http://" + rsAddr + "/mcp=mcp:tools,mcp:identity"}, serveArgs...)...)
	return startMCPServer(t, rsAddr, issuer), issuer
}

// TestLoginLoopbackClient: with no --client-id at a server without dynamic
// registration, login uses a loopback development client
// (http://localhost?redirect_uri=...&scope=...) and calls a tool; with
// trust.loopback_clients: false the server refuses it and login says in one
// line what to pass instead.
func TestLoginLoopbackClient(t *testing.T) {
	t.Run("accepted by default", func(t *testing.T) {
		mcpURL, issuer := startServeNoDCR(t)
		dir := t.TempDir()
		out, errOut, followed, code := runLoginCLI(t, nil, printedURLs, issuer, mcpURL, "--no-browser", "--token-dir", dir,
			"--timeout", "10s", "--call", "echo", "--arguments", `{"text":"hello loopback"}`)
		if code != 0 {
			t.Fatalf("login: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if !strings.Contains(out, "hello loopback") {
			t.Errorf("stdout lacks the tool result:\n%s", out)
		}
		u, err := url.Parse(followed[0])
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		id, err := url.Parse(q.Get("client_id"))
		if err != nil || id.Scheme != "http" || id.Host != "localhost" || id.Path != "" {
			t.Fatalf("client_id = %q, want http://localhost?...", q.Get("client_id"))
		}
		if got := id.Query(); got.Get("redirect_uri") != q.Get("redirect_uri") || got.Get("scope") != q.Get("scope") || got.Get("scope") == "" {
			t.Errorf("client_id query %v does not repeat redirect_uri %q and scope %q", got, q.Get("redirect_uri"), q.Get("scope"))
		}
		s, err := login.FileStore{Dir: dir}.LoadSession(mcpURL)
		if err != nil || s.Client.Kind != login.KindLoopback || s.Client.ID != q.Get("client_id") {
			t.Errorf("stored session client = %+v, %v", s.Client, err)
		}
	})

	t.Run("refused with trust.loopback_clients false", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "mcpauth.yaml")
		if err := os.WriteFile(cfg, []byte("trust:\n  loopback_clients: false\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mcpURL, issuer := startServeNoDCR(t, "--config", cfg)
		var page string
		visit := func(stderr string) []string {
			urls := printedURLs(stderr)
			if len(urls) > 0 && page == "" {
				page = visitRefused(t, urls[0])
			}
			return nil // followed by visit, as the user's browser would
		}
		out, errOut, _, code := runLoginCLI(t, nil, visit, issuer, mcpURL, "--no-browser", "--token-dir", t.TempDir(), "--timeout", "1s")
		if code != 1 {
			t.Fatalf("login: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if !strings.Contains(page, "does not accept loopback development clients") {
			t.Errorf("the authorization page does not say why:\n%s", page)
		}
		var hints int
		for _, l := range strings.Split(errOut, "\n") {
			if strings.Contains(l, "pass --client-id with the URL of your client metadata document, or pre-registered credentials with --registered-client-id and --registered-issuer") {
				hints++
			}
		}
		if hints != 1 {
			t.Errorf("stderr has %d one-line hints, want 1:\n%s", hints, errOut)
		}
	})
}

// visitRefused GETs the authorization URL as a browser would and returns the
// page, which must be an error page, not a redirect.
func visitRefused(t *testing.T, authURL string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Errorf("GET the authorization URL: %v", err)
		return "-"
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Errorf("read the authorization page: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("authorization URL answered %d, want 400 and an error page", resp.StatusCode)
	}
	return string(b)
}

// TestLoginCallbackPort: --callback-port N makes the redirect listener bind
// 127.0.0.1:N, and a port in use is a clear error.
func TestLoginCallbackPort(t *testing.T) {
	mcpURL, issuer := startServeNoDCR(t)
	t.Run("binds the port", func(t *testing.T) {
		_, port := freePort(t)
		out, errOut, followed, code := runLoginCLI(t, nil, printedURLs, issuer, mcpURL, "--no-browser", "--token-dir", t.TempDir(),
			"--timeout", "10s", "--callback-port", port)
		if code != 0 {
			t.Fatalf("login: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		u, err := url.Parse(followed[0])
		if err != nil {
			t.Fatal(err)
		}
		if got, want := u.Query().Get("redirect_uri"), "http://127.0.0.1:"+port+"/callback"; got != want {
			t.Errorf("redirect_uri = %q, want %q", got, want)
		}
	})
	t.Run("a port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		out, errOut, followed, code := runLoginCLI(t, nil, printedURLs, issuer, mcpURL, "--no-browser", "--token-dir", t.TempDir(),
			"--timeout", "10s", "--callback-port", port)
		if code != 1 || len(followed) != 0 || !strings.Contains(errOut, "listen for the redirect on 127.0.0.1:"+port+" (the callback port)") {
			t.Errorf("login: exit %d, %d URLs; want exit 1 and a clear error\nstdout:\n%s\nstderr:\n%s", code, len(followed), out, errOut)
		}
	})
	t.Run("out of range", func(t *testing.T) {
		_, errOut, _, code := runLoginCLI(t, nil, nil, issuer, mcpURL, "--callback-port", "70000")
		if code != 2 || !strings.Contains(errOut, "--callback-port must be a port number") {
			t.Errorf("login: exit %d, stderr:\n%s", code, errOut)
		}
	})
}
