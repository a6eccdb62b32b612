// This file is the Authorizer: an http.RoundTripper that authorizes requests
// to an MCP server (MCP 2025-11-25 "Authorization Flow Steps", "Scope
// Challenge Handling", RFC 9728 §5.1, MCP 2025-11-25 Authorization §Scope
// Selection Strategy, OAuth 2.1 §4.1.3, RFC 8707 §2.2).
package login

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
)

// ErrTooManyAuthorizations: the server keeps refusing after
// Options.MaxAuthorizations authorizations (MCP 2025-11-25 Authorization §Scope
// Selection Strategy: limit retries).
var ErrTooManyAuthorizations = errors.New("too many authorizations")

// Defaults of Options.
const (
	DefaultCallbackTimeout   = 5 * time.Minute
	DefaultMaxAuthorizations = 3
	DefaultClientName        = "mcpauth login"
)

// maxAttempts bounds how often one request is sent: once, then after a
// refresh, an authorization and a step-up.
const maxAttempts = 4

// maxReplayBody bounds a request body buffered for replay.
const maxReplayBody = 16 << 20

// refreshSkew: a token expiring within this is refreshed before use.
const refreshSkew = 30 * time.Second

// Options configure an Authorizer. Only MCPURL and OpenBrowser are required.
type Options struct {
	// MCPURL is the MCP server's endpoint URL: https, or http on a loopback
	// host. Tokens are sent to its origin only.
	MCPURL string
	// ClientIDMetadataURL is the client's Client ID Metadata Document URL,
	// used as client_id at authorization servers that advertise
	// client_id_metadata_document_supported
	// (MCP 2025-11-25 Authorization §Client Registration Approaches (2)). Its
	// redirect_uris must allow http://127.0.0.1/callback on any port
	// (RFC 8252 §7.3).
	ClientIDMetadataURL string
	// Registered are pre-registered credentials
	// (MCP 2025-11-25 Authorization §Client Registration Approaches (1)); nil
	// if none.
	Registered *Credentials
	// Scopes, when set, replace the MCP 2025-11-25 Authorization §Scope
	// Selection Strategy selection for the first authorization; step-up still
	// adds challenged scopes.
	Scopes []string
	// ClientName is the client_name of dynamic registrations; zero:
	// DefaultClientName.
	ClientName string
	// Store keeps sessions and registrations; nil keeps them in memory for
	// the Authorizer's lifetime only.
	Store Store
	// OpenBrowser sends the user to the authorization URL, which has passed
	// the MCP Security Best Practices §Server-Side Request Forgery checks:
	// SystemBrowser, PrintURL or AutoApprove. An error aborts the
	// authorization.
	OpenBrowser func(ctx context.Context, authURL string) error
	// Progress receives one line per step for the user; nil: discarded.
	Progress io.Writer
	// Base sends the requests to the MCP server; nil: a transport without
	// proxy.
	Base http.RoundTripper
	// CallbackPort is the port of the loopback redirect listener on
	// 127.0.0.1 (SSH forwarding, firewalls); an error if it is in use. Zero:
	// a random port, or the port of a stored dynamic registration.
	CallbackPort int
	// CallbackTimeout bounds the wait for the redirect; zero:
	// DefaultCallbackTimeout.
	CallbackTimeout time.Duration
	// MaxAuthorizations bounds the authorizations of the Authorizer's
	// lifetime (MCP 2025-11-25 Authorization §Scope Selection Strategy); zero:
	// DefaultMaxAuthorizations.
	MaxAuthorizations int
	// Now is the clock; nil: time.Now.
	Now func() time.Time

	// lookup and dial replace the resolver and dialer of the discovery
	// client in tests.
	lookup lookupFunc
	dial   dialFunc
}

// Authorizer is an http.RoundTripper that adds the MCP server's access
// token to requests for its origin and obtains, refreshes or broadens the
// token when the server answers 401 or 403 insufficient_scope, then replays
// the request. Requests to other origins pass through untouched. It is safe
// for concurrent use; authorizations are serialised, and a request that
// failed with a token another request has already replaced is simply
// replayed with the new one.
type Authorizer struct {
	opts   Options
	mcpURL string   // canonical
	origin *url.URL // scheme and host of mcpURL
	http   *http.Client
	base   http.RoundTripper
	store  Store

	policyMu sync.Mutex
	policy   *addrPolicy

	timeMu    sync.Mutex // guards authSpent and authSince
	authSpent time.Duration
	authSince time.Time // start of the authorization in progress; zero if none

	mu             sync.Mutex // serialises authorization; guards the fields below
	loaded         bool
	sess           *Session
	version        int
	refreshedAt    int // version whose refresh token was last tried
	authorizations int
	err            error
	authErr        error // the authorization that failed: later requests fail with it
}

// NewAuthorizer checks opts and returns an Authorizer. It does no I/O.
func NewAuthorizer(opts Options) (*Authorizer, error) {
	u, err := checkURL("MCP server URL", opts.MCPURL)
	if err != nil {
		return nil, err
	}
	canon, err := oauth.CanonicalResource(opts.MCPURL)
	if err != nil {
		return nil, fmt.Errorf("MCP server URL: %w", err)
	}
	if opts.OpenBrowser == nil {
		return nil, errors.New("login: Options.OpenBrowser is required")
	}
	if opts.Registered != nil && opts.Registered.ClientID == "" {
		return nil, errors.New("login: pre-registered credentials need a client_id")
	}
	if opts.ClientName == "" {
		opts.ClientName = DefaultClientName
	}
	if opts.CallbackTimeout <= 0 {
		opts.CallbackTimeout = DefaultCallbackTimeout
	}
	if opts.MaxAuthorizations <= 0 {
		opts.MaxAuthorizations = DefaultMaxAuthorizations
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.lookup == nil {
		opts.lookup = defaultLookup
	}
	if opts.dial == nil {
		opts.dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	a := &Authorizer{
		opts:        opts,
		mcpURL:      canon,
		origin:      &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)},
		base:        opts.Base,
		store:       opts.Store,
		refreshedAt: -1,
	}
	if a.base == nil {
		a.base = &http.Transport{
			DialContext:            (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    10 * time.Second,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 1 << 20,
		}
	}
	if a.store == nil {
		a.store = &memStore{}
	}
	a.http = newDiscoveryClient(&policyDialer{policy: a.addrPolicy, lookup: opts.lookup, dial: opts.dial})
	return a, nil
}

// AuthorizationTime returns how long the Authorizer has spent obtaining
// tokens so far (discovery, registration, the user in the browser),
// including an authorization in progress. Callers bounding a conversation
// with the MCP server leave this time out: it is the user's.
func (a *Authorizer) AuthorizationTime() time.Duration {
	a.timeMu.Lock()
	defer a.timeMu.Unlock()
	d := a.authSpent
	if !a.authSince.IsZero() {
		d += time.Since(a.authSince)
	}
	return d
}

// MCPURL returns the canonical MCP server URL.
func (a *Authorizer) MCPURL() string { return a.mcpURL }

// Session returns a copy of the current session, or nil before one exists.
func (a *Authorizer) Session() *Session {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sess == nil {
		return nil
	}
	s := *a.sess
	return &s
}

// Err returns why the last authorization failed, or nil. An MCP client
// library may report such failures as a bare transport error; Err has the
// reason to show the user.
func (a *Authorizer) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *Authorizer) now() time.Time {
	if a.opts.Now != nil {
		return a.opts.Now()
	}
	return time.Now()
}

func (a *Authorizer) progressf(format string, args ...any) {
	fmt.Fprintf(a.opts.Progress, format+"\n", args...)
}

// addrPolicy derives the MCP Security Best Practices §Server-Side Request
// Forgery address policy from the MCP server's addresses on first use. A name
// that does not resolve allows public addresses only.
func (a *Authorizer) addrPolicy(ctx context.Context) addrPolicy {
	a.policyMu.Lock()
	defer a.policyMu.Unlock()
	if a.policy == nil {
		host := a.origin.Hostname()
		var addrs []netip.Addr
		if ad, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{ad}
		} else if strings.EqualFold(host, "localhost") {
			addrs = []netip.Addr{netip.IPv6Loopback()}
		} else if addrs, err = a.opts.lookup(ctx, host); err != nil {
			addrs = nil
		}
		p := policyFor(addrs)
		a.policy = &p
	}
	return *a.policy
}

// forMCP reports whether u is on the MCP server's origin.
func (a *Authorizer) forMCP(u *url.URL) bool {
	return u.Scheme == a.origin.Scheme && strings.EqualFold(u.Host, a.origin.Host)
}

// RoundTrip implements http.RoundTripper.
func (a *Authorizer) RoundTrip(req *http.Request) (*http.Response, error) {
	if !a.forMCP(req.URL) {
		return a.base.RoundTrip(req)
	}
	ctx := req.Context()
	getBody, err := replayableBody(req)
	if err != nil {
		return nil, err
	}
	if req.Body != nil {
		defer req.Body.Close() // every attempt sends a copy (http.RoundTripper: always close)
	}
	for attempt := 1; ; attempt++ {
		tok, ver := a.token(ctx)
		r := req.Clone(ctx)
		if getBody != nil {
			if r.Body, err = getBody(); err != nil {
				return nil, err
			}
		}
		r.Header.Del("Authorization")
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := a.base.RoundTrip(r)
		if err != nil || resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			return resp, err
		}
		if attempt == maxAttempts {
			a.mu.Lock()
			a.err = fmt.Errorf("%w: the server still answers HTTP %d after %d attempts", ErrTooManyAuthorizations, resp.StatusCode, attempt)
			a.mu.Unlock()
			return resp, nil
		}
		retry, err := a.recover(ctx, resp, ver)
		if !retry && err == nil {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
	}
}

// replayableBody returns a function giving a fresh copy of req's body, nil
// for a request without one. A body without GetBody is buffered.
func replayableBody(req *http.Request) (func() (io.ReadCloser, error), error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		return req.GetBody, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(b) > maxReplayBody {
		return nil, fmt.Errorf("login: request body larger than %d bytes", maxReplayBody)
	}
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, nil
}

// token returns the access token to send and the session version it
// belongs to: the stored one on first use, refreshed first when it is about
// to expire. "" means no token yet.
func (a *Authorizer) token(ctx context.Context) (string, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.loaded {
		a.loaded = true
		s, err := a.store.LoadSession(a.mcpURL)
		switch {
		case err == nil:
			a.sess = s
		case !errors.Is(err, ErrNotFound):
			a.progressf("Ignoring stored tokens: %v", err)
		}
	}
	if a.sess == nil {
		return "", a.version
	}
	if exp := a.sess.Expiry; !exp.IsZero() && a.now().Add(refreshSkew).After(exp) && a.sess.RefreshToken != "" && a.refreshedAt != a.version {
		a.tryRefresh(ctx)
	}
	return a.sess.AccessToken, a.version
}

// tryRefresh refreshes the current session once per version; a.mu is held.
func (a *Authorizer) tryRefresh(ctx context.Context) bool {
	a.refreshedAt = a.version
	ns, err := a.refresh(ctx, a.sess)
	if err != nil {
		a.progressf("Refreshing the access token failed: %v", err)
		return false
	}
	a.setSession(ns) // a new version, whose refresh token is untried
	return true
}

// setSession makes s current and stores it; a.mu is held.
func (a *Authorizer) setSession(s *Session) {
	a.sess = s
	a.version++
	a.err = nil
	if err := a.store.SaveSession(s); err != nil {
		a.progressf("Could not store the tokens: %v", err)
	}
}

// challenge is the Bearer challenge of a 401 or 403 (RFC 6750 §3, RFC 9728
// §5.1).
type challenge struct {
	errorCode, scope, resourceMetadata string
}

// bearerChallenge returns the first Bearer challenge of h. A malformed
// header counts as none: discovery then uses the well-known locations.
func bearerChallenge(h http.Header) challenge {
	cs, err := oauth.ParseWWWAuthenticate(h)
	if err != nil {
		return challenge{}
	}
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, "Bearer") {
			var ch challenge
			ch.errorCode, _ = c.Param(oauth.ParamError)
			ch.scope, _ = c.Param(oauth.ParamScope)
			ch.resourceMetadata, _ = c.Param(oauth.ParamResourceMetadata)
			return ch
		}
	}
	return challenge{}
}

// recover acts on a 401 or 403 that a request sent with session version
// ver got: it reports whether the request should be sent again, or an error
// that ends it. (false, nil) hands the response to the caller.
func (a *Authorizer) recover(ctx context.Context, resp *http.Response, ver int) (bool, error) {
	ch := bearerChallenge(resp.Header)
	if resp.StatusCode == http.StatusForbidden && oauth.ErrorCode(ch.errorCode) != oauth.InsufficientScope {
		return false, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.version != ver {
		return true, nil // another request already renewed the token
	}
	if resp.StatusCode == http.StatusUnauthorized {
		if a.sess != nil && a.sess.RefreshToken != "" && a.refreshedAt != ver && a.tryRefresh(ctx) {
			return true, nil
		}
		var previous []string
		if a.sess != nil {
			previous = a.sess.Requested
		}
		return a.authorize(ctx, ch, a.opts.Scopes, previous)
	}
	// 403 insufficient_scope: step-up (MCP 2025-11-25 Authorization §Scope
	// Selection Strategy).
	challenged := splitScope(ch.scope)
	if a.sess == nil || len(challenged) == 0 {
		return false, nil
	}
	if subset(challenged, a.sess.Granted) {
		a.err = fmt.Errorf("the server refuses the request although the token has every scope it asks for (%s)", strings.Join(challenged, " "))
		return false, nil
	}
	a.progressf("The server needs scope %q for this request (step-up).", strings.Join(challenged, " "))
	return a.authorize(ctx, ch, nil, a.sess.Requested)
}

// authorize discovers, registers and runs the code flow; a.mu is held.
func (a *Authorizer) authorize(ctx context.Context, ch challenge, override, previous []string) (bool, error) {
	if a.authErr != nil {
		// Running it again would send the user to the browser a second
		// time for the same failure (and hide its reason behind the next).
		return false, a.authErr
	}
	if a.authorizations >= a.opts.MaxAuthorizations {
		a.err = fmt.Errorf("%w: the server still refuses after %d", ErrTooManyAuthorizations, a.authorizations)
		return false, a.err
	}
	a.authorizations++
	a.timeMu.Lock()
	a.authSince = time.Now()
	a.timeMu.Unlock()
	defer func() {
		a.timeMu.Lock()
		a.authSpent += time.Since(a.authSince)
		a.authSince = time.Time{}
		a.timeMu.Unlock()
	}()
	s, err := a.runAuthorization(ctx, ch, override, previous)
	if err != nil {
		a.err, a.authErr = err, err
		return false, err
	}
	a.setSession(s)
	return true, nil
}

func (a *Authorizer) runAuthorization(ctx context.Context, ch challenge, override, previous []string) (*Session, error) {
	if ch.resourceMetadata != "" {
		if _, err := checkURL("resource_metadata", ch.resourceMetadata); err != nil {
			return nil, err
		}
	}
	d, err := a.discover(ctx, ch.resourceMetadata)
	if err != nil {
		return nil, err
	}
	scopes := selectScopes(override, splitScope(ch.scope), d.prm.ScopesSupported, previous)
	return a.codeFlow(ctx, d, scopes)
}

// Forget removes every stored session of the MCP server at mcpURL and
// returns how many there were (`mcpauth login --logout`). Dynamic
// registrations are kept: they belong to the authorization server, not to
// one MCP server.
func Forget(s Store, mcpURL string) (int, error) {
	canon, err := oauth.CanonicalResource(mcpURL)
	if err != nil {
		return 0, fmt.Errorf("MCP server URL: %w", err)
	}
	return s.DeleteSessions(canon)
}

// memStore is the Store of an Authorizer without one.
type memStore struct {
	mu       sync.Mutex
	sessions []Session
	regs     []Registration
}

func (m *memStore) LoadSession(mcpURL string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *Session
	for i := range m.sessions {
		if s := m.sessions[i]; s.MCPURL == mcpURL && (best == nil || s.UpdatedAt.After(best.UpdatedAt)) {
			best = &s
		}
	}
	if best == nil {
		return nil, ErrNotFound
	}
	return best, nil
}

func (m *memStore) SaveSession(s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.sessions {
		if m.sessions[i].MCPURL == s.MCPURL && m.sessions[i].Issuer == s.Issuer {
			m.sessions[i] = *s
			return nil
		}
	}
	m.sessions = append(m.sessions, *s)
	return nil
}

func (m *memStore) DeleteSessions(mcpURL string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.sessions[:0]
	for _, s := range m.sessions {
		if s.MCPURL != mcpURL {
			kept = append(kept, s)
		}
	}
	n := len(m.sessions) - len(kept)
	m.sessions = kept
	return n, nil
}

func (m *memStore) LoadRegistration(issuer string) (*Registration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.regs {
		if r.Issuer == issuer {
			return &r, nil
		}
	}
	return nil, ErrNotFound
}

func (m *memStore) SaveRegistration(r *Registration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.regs {
		if m.regs[i].Issuer == r.Issuer {
			m.regs[i] = *r
			return nil
		}
	}
	m.regs = append(m.regs, *r)
	return nil
}
