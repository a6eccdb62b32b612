// This file sends the user to the authorization URL (RFC 8252 §4: the
// system browser, never an embedded view), or, for automated runs, follows
// an auto-approving server's redirect without a browser.
package login

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"time"
)

// browserCommand returns the program and arguments that open u in the
// default browser on goos, or "" when there is none.
func browserCommand(goos, u string) (string, []string) {
	switch goos {
	case "darwin":
		return "open", []string{u}
	case "windows":
		return "rundll32", []string{"url.dll,FileProtocolHandler", u}
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly", "solaris", "illumos":
		return "xdg-open", []string{u}
	}
	return "", nil
}

// SystemBrowser returns an opener for Options.OpenBrowser that prints the
// URL to w and starts the platform's URL opener (open on macOS, xdg-open on
// Linux and the BSDs, rundll32 on Windows) without waiting for it. A browser
// that cannot be started is not an error: the user opens the printed URL.
// The URL passed the MCP Security Best Practices §Server-Side Request Forgery
// checks before it gets here, and it is passed as one argument, never through a
// shell.
func SystemBrowser(w io.Writer) func(ctx context.Context, u string) error {
	return func(ctx context.Context, u string) error {
		fmt.Fprintf(w, "Opening your browser. If it does not open, visit this URL:\n\n  %s\n\n", u)
		name, args := browserCommand(runtime.GOOS, u)
		if name == "" {
			return nil
		}
		cmd := exec.Command(name, args...)
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(w, "Could not start %s: %v\n", name, err)
			return nil
		}
		go func() { _ = cmd.Wait() }()
		return nil
	}
}

// PrintURL returns an opener that only prints the URL to w, for
// `mcpauth login --no-browser`.
func PrintURL(w io.Writer) func(ctx context.Context, u string) error {
	return func(ctx context.Context, u string) error {
		fmt.Fprintf(w, "Open this URL in your browser to authorize:\n\n  %s\n\n", u)
		return nil
	}
}

// AutoApprove returns an opener for automated runs against an authorization
// server that answers the authorization request at once with a redirect
// (mcpauth serve --dev-auto-approve, the MCP conformance suite's servers):
// it GETs the URL without following redirects, requires the Location to be
// the loopback redirect URI (http://127.0.0.1:PORT/callback), and GETs that,
// delivering the response to the listener as a browser would. A server that
// shows a page instead is an error.
func AutoApprove() func(ctx context.Context, u string) error {
	client := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func(ctx context.Context, u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp, nil
	}
	return func(ctx context.Context, u string) error {
		if _, err := checkURL("authorization URL", u); err != nil {
			return err
		}
		resp, err := get(ctx, u)
		if err != nil {
			return err
		}
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return fmt.Errorf("GET %q: HTTP %d, not a redirect; this authorization server needs a person (run without --conformance)", u, resp.StatusCode)
		}
		loc, err := resp.Location()
		if err != nil {
			return fmt.Errorf("GET %q: %w", u, err)
		}
		if loc.Scheme != "http" || loc.Hostname() != "127.0.0.1" || loc.Path != callbackPath {
			return fmt.Errorf("GET %q: redirected to %q, not to the loopback redirect URI", u, printable(loc.String()))
		}
		resp, err = get(ctx, loc.String())
		if err != nil {
			return fmt.Errorf("deliver the authorization response: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("deliver the authorization response: HTTP %d", resp.StatusCode)
		}
		return nil
	}
}
