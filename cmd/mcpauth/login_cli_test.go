package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/login"
)

// These tests drive `mcpauth login` through run, the CLI entry, with the
// environment injected through its getenv. Every server is on 127.0.0.1, and
// the platform URL openers are replaced by stand-ins (fakeURLOpeners), so no
// test can start a real browser even when the behaviour under test breaks.

// printURLPrefix is what `login --no-browser` (login.PrintURL) writes before
// the authorization URL.
const printURLPrefix = "Open this URL in your browser to authorize:\n\n  "

// fakeURLOpeners puts on PATH, and only them, stand-ins for the URL openers
// login.SystemBrowser starts (xdg-open, open). Each appends the URL it is
// given as a line to the returned file instead of opening a browser. It uses
// t.Setenv: the test must not be parallel.
func fakeURLOpeners(t *testing.T) (opened string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the URL opener stand-ins are shell scripts")
	}
	dir := t.TempDir()
	opened = filepath.Join(dir, "opened.txt")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$1\" >> '%s'\n", opened)
	for _, name := range []string{"xdg-open", "open"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	return opened
}

// printedURLs returns the authorization URLs `login --no-browser` printed.
func printedURLs(stderr string) []string {
	var urls []string
	for _, part := range strings.Split(stderr, printURLPrefix)[1:] {
		if u, _, ok := strings.Cut(part, "\n"); ok {
			urls = append(urls, u)
		}
	}
	return urls
}

// openedURLs returns a function giving the URLs the fakeURLOpeners
// stand-ins were started with so far.
func openedURLs(file string) func(string) []string {
	return func(string) []string {
		b, _ := os.ReadFile(file)
		lines := strings.SplitAfter(string(b), "\n")
		var urls []string
		for _, l := range lines {
			if strings.HasSuffix(l, "\n") {
				urls = append(urls, strings.TrimSuffix(l, "\n"))
			}
		}
		return urls
	}
}

// startLoginServers starts `mcpauth serve` on 127.0.0.1, with issuer
// http://127.0.0.1:PORT, auto-approving as admin, with dynamic registration
// and the extra serveArgs, and an MCP server it protects. It returns the MCP
// URL and the issuer.
func startLoginServers(t *testing.T, serveArgs ...string) (mcpURL, issuer string) {
	t.Helper()
	addr, rsAddr := freeAddr(t), freeAddr(t)
	issuer = "http://" + addr
	startServe(t, nil, append([]string{"--addr", addr, "--issuer", issuer, "--data", t.TempDir(),
		"--dev-allow-loopback", "--dev-auto-approve", "admin", "--enable-dcr",
		"--resource", "http://" + rsAddr + "/mcp=mcp:tools,mcp:identity"}, serveArgs...)...)
	return startMCPServer(t, rsAddr, issuer), issuer
}

// runLoginCLI runs `mcpauth login args...` through run with env as the
// environment. While it runs, it follows every authorization URL that
// urlsOf finds (given login's stderr so far) as a browser would, through
// followAuthURL, and it returns those URLs.
func runLoginCLI(t *testing.T, env map[string]string, urlsOf func(stderr string) []string, issuer string, args ...string) (stdout, stderr string, followed []string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"login"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), out, errOut)
	}()
	for {
		select {
		case err := <-done:
			code = exitCode(err, errOut)
			return out.String(), errOut.String(), followed, code
		case <-time.After(20 * time.Millisecond):
		}
		if urlsOf == nil {
			continue
		}
		for _, u := range urlsOf(errOut.String())[len(followed):] {
			followed = append(followed, u)
			if err := followAuthURL(ctx, issuer, u); err != nil {
				t.Errorf("follow the authorization URL: %v", err)
			}
		}
	}
}

// followAuthURL does what the user's browser does with an authorization URL
// of the auto-approving issuer: it GETs it, requires a redirect to the
// loopback redirect URI (http://127.0.0.1:PORT/callback) and GETs that.
// It contacts 127.0.0.1 only: the URL must be at the (loopback) issuer,
// and login.AutoApprove follows only a redirect to the loopback callback.
func followAuthURL(ctx context.Context, issuer, authURL string) error {
	if !strings.HasPrefix(authURL, issuer+"/") {
		return fmt.Errorf("%q is not at the issuer %s", authURL, issuer)
	}
	return login.AutoApprove()(ctx, authURL) // what --conformance does with an auto-approving server
}

// TestLoginNoBrowser: with --no-browser, login prints the authorization URL
// on stderr and starts no URL opener, and the login completes once someone
// follows the printed URL. The control case shows that without the flag the
// opener stand-in is started (so "not started" above means something).
func TestLoginNoBrowser(t *testing.T) {
	opened := fakeURLOpeners(t)
	mcpURL, issuer := startLoginServers(t)

	t.Run("--no-browser prints the URL", func(t *testing.T) {
		dir := t.TempDir()
		out, errOut, followed, code := runLoginCLI(t, nil, printedURLs, issuer, mcpURL, "--no-browser", "--token-dir", dir, "--timeout", "10s")
		if code != 0 {
			t.Fatalf("login: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if len(followed) != 1 {
			t.Fatalf("printed %d authorization URLs, want 1; stderr:\n%s", len(followed), errOut)
		}
		u, err := url.Parse(followed[0])
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if u.Path != "/authorize" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("client_id") == "" || !strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:") || q.Get("resource") != mcpURL {
			t.Errorf("printed authorization URL %s is not a PKCE authorization request for %s", followed[0], mcpURL)
		}
		if strings.Contains(errOut, "Opening your browser") {
			t.Errorf("--no-browser used the system browser; stderr:\n%s", errOut)
		}
		if _, err := os.Stat(opened); !errors.Is(err, fs.ErrNotExist) {
			b, _ := os.ReadFile(opened)
			t.Errorf("--no-browser started a URL opener (%v): %s", err, b)
		}
		if !strings.Contains(out, "Tools (2):") || !strings.Contains(out, issuer+"\n") {
			t.Errorf("stdout lacks the login summary:\n%s", out)
		}
		s, err := login.FileStore{Dir: dir}.LoadSession(mcpURL)
		if err != nil || s.AccessToken == "" || s.Issuer != issuer {
			t.Errorf("stored session = %+v, %v; want a token from %s", s, err, issuer)
		}
	})

	t.Run("control without --no-browser the URL opener starts", func(t *testing.T) {
		dir := t.TempDir()
		out, errOut, followed, code := runLoginCLI(t, nil, openedURLs(opened), issuer, mcpURL, "--token-dir", dir, "--timeout", "10s")
		if code != 0 {
			t.Fatalf("login: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if len(followed) != 1 || len(printedURLs(errOut)) != 0 || !strings.Contains(errOut, "Opening your browser") {
			t.Errorf("opener started with %d URLs, stderr:\n%s\nwant one URL given to the opener and none printed for --no-browser", len(followed), errOut)
		}
	})
}

// TestLoginConformanceContext: MCP_CONFORMANCE_CONTEXT is read only with
// --conformance. The context names a client pre-registered at the server
// (a static client); without the flag login ignores it and registers
// dynamically, with it login uses that client_id and its secret.
func TestLoginConformanceContext(t *testing.T) {
	fakeURLOpeners(t)
	const clientID, secret = "conformance-client", "conformance-secret-0123456789abcdef0123"
	cfg := writeFile(t, t.TempDir(), "mcpauth.yaml", fmt.Sprintf(
		"clients:\n  - client_id: %s\n    secret: %s\n    redirect_uris: [\"http://127.0.0.1/callback\"]\n", clientID, secret))
	mcpURL, issuer := startLoginServers(t, "--config", cfg)
	confContext := fmt.Sprintf(`{"name":"auth/pre-registration","client_id":%q,"client_secret":%q}`, clientID, secret)

	t.Run("without --conformance the context is ignored", func(t *testing.T) {
		for _, raw := range []string{confContext, "{not JSON"} {
			dir := t.TempDir()
			env := map[string]string{"MCP_CONFORMANCE_CONTEXT": raw}
			out, errOut, followed, code := runLoginCLI(t, env, printedURLs, issuer, mcpURL, "--no-browser", "--token-dir", dir, "--timeout", "10s")
			if code != 0 {
				t.Fatalf("context %s: exit %d\nstdout:\n%s\nstderr:\n%s", raw, code, out, errOut)
			}
			if len(followed) != 1 {
				t.Fatalf("context %s: %d authorization URLs, want 1; stderr:\n%s", raw, len(followed), errOut)
			}
			u, _ := url.Parse(followed[0])
			if got := u.Query().Get("client_id"); got == "" || got == clientID {
				t.Errorf("context %s: authorization request with client_id %q, want a dynamically registered one", raw, got)
			}
			store := login.FileStore{Dir: dir}
			s, err := store.LoadSession(mcpURL)
			if err != nil || s.Client.Kind != login.KindDCR || s.Client.ID == clientID {
				t.Fatalf("context %s: stored session = %+v, %v; want a dcr client", raw, s, err)
			}
			if _, err := store.LoadRegistration(issuer); err != nil {
				t.Errorf("context %s: no dynamic registration stored: %v", raw, err)
			}
		}
	})

	t.Run("with --conformance the pre-registered client is used", func(t *testing.T) {
		dir := t.TempDir()
		env := map[string]string{"MCP_CONFORMANCE_CONTEXT": confContext}
		out, errOut, followed, code := runLoginCLI(t, env, printedURLs, issuer, mcpURL, "--conformance", "--token-dir", dir, "--timeout", "10s")
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if len(followed) != 0 {
			t.Errorf("--conformance printed authorization URLs instead of following them: %q", followed)
		}
		if want := "as client " + clientID + " (preregistered)"; !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
		store := login.FileStore{Dir: dir}
		s, err := store.LoadSession(mcpURL)
		if err != nil || s.AccessToken == "" || s.Client.ID != clientID || s.Client.Secret != secret || s.Client.Kind != login.KindPreregistered {
			t.Fatalf("stored session = %+v, %v; want a token for the pre-registered %s", s, err, clientID)
		}
		if r, err := store.LoadRegistration(issuer); !errors.Is(err, login.ErrNotFound) {
			t.Errorf("a dynamic registration was made (%+v, %v); want the pre-registered client only", r, err)
		}
	})

	t.Run("with --conformance a malformed context is a usage error", func(t *testing.T) {
		env := map[string]string{"MCP_CONFORMANCE_CONTEXT": "{not JSON"}
		_, errOut, followed, code := runLoginCLI(t, env, printedURLs, issuer, mcpURL, "--conformance", "--token-dir", t.TempDir())
		if code != 2 || !strings.Contains(errOut, "MCP_CONFORMANCE_CONTEXT") || len(followed) != 0 {
			t.Errorf("exit %d, stderr %q; want 2 naming MCP_CONFORMANCE_CONTEXT", code, errOut)
		}
	})
}

// TestLoginDefaultTokenDir: without --token-dir (and MCPAUTH_TOKEN_DIR),
// login keeps its tokens and registrations in $XDG_CONFIG_HOME/mcpauth,
// directories 0700 and files 0600, and later runs (--print-token, --logout)
// use them there.
func TestLoginDefaultTokenDir(t *testing.T) {
	switch runtime.GOOS {
	case "windows", "darwin", "ios", "plan9":
		t.Skipf("os.UserConfigDir does not use XDG_CONFIG_HOME on %s", runtime.GOOS)
	}
	fakeURLOpeners(t)
	tmp := t.TempDir()
	xdg, home := filepath.Join(tmp, "xdg"), filepath.Join(tmp, "home")
	t.Setenv("XDG_CONFIG_HOME", xdg)
	t.Setenv("HOME", home) // a wrong fallback lands here, not in the real home
	mcpURL, issuer := startLoginServers(t)

	out, errOut, _, code := runLoginCLI(t, nil, printedURLs, issuer, mcpURL, "--no-browser", "--timeout", "10s")
	if code != 0 {
		t.Fatalf("login: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	root := filepath.Join(xdg, "mcpauth")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.Dir(rel))
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk the default token directory: %v", err)
	}
	if strings.Join(files, " ") != "clients sessions" {
		t.Errorf("files in %s are in %q, want one registration in clients and one session in sessions", root, files)
	}
	s, err := login.FileStore{Dir: root}.LoadSession(mcpURL)
	if err != nil || s.AccessToken == "" {
		t.Fatalf("no session in %s: %+v, %v", root, s, err)
	}
	if _, err := os.Stat(home); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("login wrote under $HOME (%v) although XDG_CONFIG_HOME is set", err)
	}

	// The next run finds the token there: no authorization.
	out, errOut, followed, code := runLoginCLI(t, nil, printedURLs, issuer, mcpURL, "--no-browser", "--print-token")
	if code != 0 || len(followed) != 0 || strings.TrimSpace(out) != s.AccessToken {
		t.Errorf("second login: exit %d, %d authorizations, printed %q, want the stored token; stderr:\n%s", code, len(followed), out, errOut)
	}
	_, errOut, _, code = runLoginCLI(t, nil, nil, issuer, "--logout", mcpURL)
	if code != 0 || !strings.Contains(errOut, "Forgot 1 stored session") {
		t.Errorf("logout: exit %d, stderr %q", code, errOut)
	}
	if _, err := (login.FileStore{Dir: root}).LoadSession(mcpURL); !errors.Is(err, login.ErrNotFound) {
		t.Errorf("session after logout: %v, want ErrNotFound", err)
	}
}

// TestLoginServerNeverAnswers: an MCP server that accepts the request and
// never answers ends `mcpauth login` with an error naming the server, not
// a hang (the exchange is bounded; time spent authorizing is not counted).
func TestLoginServerNeverAnswers(t *testing.T) {
	defer func(d time.Duration) { mcpConversationTimeout = d }(mcpConversationTimeout)
	mcpConversationTimeout = time.Second
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leaving
		<-r.Context().Done()               // accepts the request, never answers
	}))
	defer srv.Close()
	start := time.Now()
	_, errOut, _, code := runLoginCLI(t, nil, nil, "", srv.URL+"/mcp", "--no-browser", "--token-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, srv.URL+"/mcp did not complete") || !strings.Contains(errOut, "stopped answering") {
		t.Errorf("login against a silent server: exit %d, stderr:\n%s\nwant exit 1 naming the server and the timeout", code, errOut)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("login took %v against a 1 s bound", d)
	}
}
