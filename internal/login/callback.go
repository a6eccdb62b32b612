// This file runs the authorization code flow of a native app (RFC 8252 §7.3
// loopback redirect, OAuth 2.1 §4.1, §4.1.1, RFC 8707 §2, RFC 9207 §2.4): the
// listener on 127.0.0.1, the authorization request, and the checks of the
// response (state, RFC 9207 iss).
package login

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
)

// Authorization response errors callers may branch on. On either, the
// response's error and error_description are not shown (RFC 9207 §2.4).
var (
	ErrStateMismatch = errors.New("the authorization response has the wrong state")
	ErrIssuerMissing = errors.New("the authorization response has no iss parameter, which the authorization server promised (RFC 9207)")
)

// callbackPath is the path of the loopback redirect URI.
const callbackPath = "/callback"

// listenLoopback listens on 127.0.0.1:port, or on a random port when port is
// 0, or taken and not fixed.
func listenLoopback(port int, fixed bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil && fixed {
		return nil, fmt.Errorf("listen for the redirect on 127.0.0.1:%d (the callback port): %w; free the port or choose another", port, err)
	}
	if err != nil && port != 0 {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("listen for the redirect on 127.0.0.1: %w", err)
	}
	return ln, nil
}

// loopbackPort returns the port of an http://127.0.0.1:PORT redirect URI,
// or 0.
func loopbackPort(redirectURI string) int {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// callbackServer receives the one redirect of an authorization.
type callbackServer struct {
	srv  *http.Server
	once sync.Once
	got  chan url.Values
}

// serveCallback serves the redirect URI on ln until close.
func serveCallback(ln net.Listener) *callbackServer {
	cs := &callbackServer{got: make(chan url.Values, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+callbackPath, cs.handle)
	cs.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	go func() { _ = cs.srv.Serve(ln) }()
	return cs
}

// callbackPage is shown in the browser. It reflects nothing from the request.
const callbackPage = `<!doctype html><html><head><meta charset="utf-8"><title>mcpauth login</title></head>
<body><p>mcpauth received the authorization response. You can close this window and return to the terminal.</p></body></html>
`

func (cs *callbackServer) handle(w http.ResponseWriter, r *http.Request) {
	first := false
	cs.once.Do(func() {
		first = true
		cs.got <- r.URL.Query()
	})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if !first {
		w.WriteHeader(http.StatusConflict)
	}
	_, _ = w.Write([]byte(callbackPage))
}

func (cs *callbackServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = cs.srv.Shutdown(ctx)
}

// verifyCallback checks an authorization response and returns its code: state
// first, then iss per RFC 9207 §2.4 (exact string comparison; absent only when
// the server does not promise it), and only then a reported error, whose text
// is shown sanitised.
func verifyCallback(q url.Values, state, issuer string, issSupported bool) (string, error) {
	if got := q["state"]; len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(state)) != 1 {
		return "", ErrStateMismatch
	}
	if iss, ok := q["iss"]; ok {
		if len(iss) != 1 || iss[0] != issuer {
			return "", fmt.Errorf("%w: the authorization response names issuer %q, want %q (RFC 9207 §2.4)", ErrIssuerMismatch, printable(strings.Join(iss, ",")), issuer)
		}
	} else if issSupported {
		return "", ErrIssuerMissing
	}
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("authorization refused: %w", &oauth.Error{Code: oauth.ErrorCode(printable(e)), Description: printable(q.Get("error_description"))})
	}
	code := q["code"]
	if len(code) != 1 || code[0] == "" {
		return "", errors.New("the authorization response has no code")
	}
	return code[0], nil
}

// authorizationURL builds the authorization request (OAuth 2.1 §4.1.1,
// RFC 8707 §2), keeping any query the endpoint already has (RFC 6749 §3.1).
func authorizationURL(endpoint string, c Client, redirectURI, challenge, state, resource string, scopes []string) (string, error) {
	u, err := checkURL("authorization_endpoint", endpoint)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", c.ID)
	q.Set("redirect_uri", redirectURI)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	q.Set("state", state)
	q.Set("resource", resource)
	q.Del("scope")
	if len(scopes) > 0 {
		q.Set("scope", strings.Join(scopes, " "))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// codeFlow obtains tokens for scopes (nil: no scope parameter) from the
// authorization server of d.
func (a *Authorizer) codeFlow(ctx context.Context, d *discovery, scopes []string) (*Session, error) {
	kind, err := a.clientKind(d)
	if err != nil {
		return nil, err
	}
	port, fixed := a.opts.CallbackPort, a.opts.CallbackPort != 0
	if kind == KindDCR && !fixed {
		if reg, err := a.store.LoadRegistration(d.issuer); err == nil {
			port = loopbackPort(reg.RedirectURI)
		}
	}
	ln, err := listenLoopback(port, fixed)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	redirectURI := "http://" + ln.Addr().String() + callbackPath
	c, err := a.client(ctx, d, kind, redirectURI, scopes)
	if err != nil {
		return nil, err
	}
	s, err := a.authorizeCode(ctx, d, c, ln, redirectURI, scopes)
	if err != nil && kind == KindLoopback {
		return nil, fmt.Errorf("%w\n%s", err, loopbackHint)
	}
	return s, err
}

// authorizeCode runs the authorization code flow with PKCE for client c,
// receiving the redirect on ln.
func (a *Authorizer) authorizeCode(ctx context.Context, d *discovery, c Client, ln net.Listener, redirectURI string, scopes []string) (*Session, error) {
	verifier, state := randomToken(), randomToken()
	authURL, err := authorizationURL(d.as.AuthorizationEndpoint, c, redirectURI, s256(verifier), state, d.resource, scopes)
	if err != nil {
		return nil, err
	}
	cs := serveCallback(ln)
	defer cs.close()

	scopeText := "no scope"
	if len(scopes) > 0 {
		scopeText = "scope " + strings.Join(scopes, " ")
	}
	a.progressf("Authorizing at %s as client %s (%s) for %s, %s.", d.issuer, c.ID, c.Kind, d.resource, scopeText)
	if err := a.opts.OpenBrowser(ctx, authURL); err != nil {
		return nil, fmt.Errorf("open the authorization URL: %w", err)
	}
	timer := time.NewTimer(a.opts.CallbackTimeout)
	defer timer.Stop()
	var q url.Values
	select {
	case q = <-cs.got:
	case <-timer.C:
		return nil, fmt.Errorf("no authorization response at %s within %s", redirectURI, a.opts.CallbackTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	code, err := verifyCallback(q, state, d.issuer, d.as.AuthorizationResponseISSParameterSupported)
	if err != nil {
		return nil, err
	}
	return a.exchangeCode(ctx, d, c, code, verifier, redirectURI, scopes)
}
