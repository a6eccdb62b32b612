package authserver

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/safehttp"
	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
	"go.opentelemetry.io/otel/trace"
)

// Resource is an MCP server this issuer protects: a value clients may send
// as the RFC 8707 §2 resource parameter and the audience of the access
// tokens issued for it (RFC 9068 §3, RFC 8707 §2.2).
type Resource struct {
	URL    string   // canonical URI (oauth.CanonicalResource)
	Scopes []string // scopes it understands; empty means any requested scope is passed through
	Name   string   // shown on the consent page; defaults to the URL's host
}

// StaticClient is a client configured by the operator (RFC 6749 §2;
// CIMD-02 §7.1 pre-registration). Its ID must not start with https:// or
// http://, which are CIMD client IDs. With a SecretHash it
// authenticates with client_secret_basic or client_secret_post (RFC 6749
// §2.3.1); a client that may introspect (RFC 7662 §2.1) must have one.
type StaticClient struct {
	ClientID     string
	Name         string
	RedirectURIs []string
	SecretHash   string   // hex SHA-256 of the client secret; "" for public clients
	GrantTypes   []string // default authorization_code, refresh_token
	Scope        string   // allowed scopes, space-separated; "" means any
	Introspect   bool     // may call /introspect (resource servers)
}

// Lifetimes of what the server issues. Zero fields take the defaults; Code
// is capped at 10 minutes (OAuth 2.1 §4.1.2).
type Lifetimes struct {
	AccessToken     time.Duration // default 10 min (MCP 2025-11-25 Authorization §Token Theft)
	Code            time.Duration // default 5 min, at most 10 (OAuth 2.1 §4.1.2, RFC 9207 §2)
	RefreshIdle     time.Duration // default 14 days
	RefreshAbsolute time.Duration // default 90 days
	Session         time.Duration // browser login session, default 12 h
	AuthRequest     time.Duration // login+consent must finish within, default 10 min
}

// WithDefaults fills every zero lifetime with its default and caps Code at
// 10 minutes.
func (l Lifetimes) WithDefaults() Lifetimes {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.AccessToken, 10*time.Minute)
	def(&l.Code, 5*time.Minute)
	def(&l.RefreshIdle, 14*24*time.Hour)
	def(&l.RefreshAbsolute, 90*24*time.Hour)
	def(&l.Session, 12*time.Hour)
	def(&l.AuthRequest, 10*time.Minute)
	if l.Code > 10*time.Minute {
		l.Code = 10 * time.Minute
	}
	return l
}

// Options are the server's dependencies and settings. Store, Resolver and
// Keys are required; every other zero value is documented.
type Options struct {
	// Issuer is the RFC 8414 §2 issuer identifier: https, or http on a
	// loopback host (development), without query or fragment. Every
	// endpoint is served under its path; the metadata is served at the
	// path-inserted well-known URLs (RFC 8414 §3, §3.1).
	Issuer string
	// Resources are the MCP servers tokens may be issued for. Empty means
	// any https resource a client names is accepted
	// (RFC 8707 §2).
	Resources     []Resource
	StaticClients []StaticClient
	// EnableDCR serves RFC 7591 registration at /register (RFC 7591 §3,
	// MCP 2025-11-25 Authorization §Dynamic Client Registration).
	EnableDCR      bool
	DevAutoApprove string // user name: skip login and consent (development only)
	// TrustedProxies are the load balancers and reverse proxies in front of
	// the server: a request from one of them is attributed, for rate limits
	// and logs, to the address its X-Forwarded-For names (the rightmost
	// address that is not itself a trusted proxy).
	TrustedProxies []netip.Prefix
	Lifetimes      Lifetimes

	Store    store.Store
	Resolver *cimd.Resolver
	Keys     *token.Keys
	Fetch    *safehttp.Client // jwks_uri fetches; nil means a default safehttp client
	// LogoFetch fetches client logos (CIMD §8.8, §9.2); give it MaxBodyBytes 64
	// KiB. nil means a default safehttp client with that cap.
	LogoFetch *safehttp.Client
	Logger    *slog.Logger     // nil discards logs
	Now       func() time.Time // nil means time.Now
	Observer  Observer         // metrics; nil is off
	// TracerProvider gives the tracer of the server's spans (traces.go);
	// nil is off.
	TracerProvider trace.TracerProvider
}

// Server is the authorization server, an http.Handler; routes.go lists its
// endpoints. Create it with New. It is safe for concurrent use, and keeps no
// state another replica needs: several Servers may share one store.
type Server struct {
	issuer    string
	base      string // the issuer's path without a trailing slash: every route is under it
	secure    bool   // https issuer: __Host- cookies with Secure
	resources map[string]Resource
	resOrder  []string
	static    map[string]StaticClient
	enableDCR bool
	autoUser  string
	life      Lifetimes
	store     store.Store
	resolver  *cimd.Resolver
	keys      *token.Keys
	fetch     *safehttp.Client
	logoFetch *safehttp.Client
	log       *slog.Logger
	now       func() time.Time
	obs       Observer
	tracer    trace.Tracer // nil: no spans
	handler   http.Handler
	pages     map[string]*template.Template
	jwksCache jwksCache
	seen      seenLog
	logos     logoCache
	codes     codeCache
	proxies   []netip.Prefix

	dcr dcrLimits // registration budgets (RFC 7591 §5); a field so tests can lower them
}

// New validates opts and returns a Server, or an error naming the option
// to fix.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Resolver == nil || opts.Keys == nil {
		return nil, errors.New("authserver: Store, Resolver and Keys are required")
	}
	iu, err := url.Parse(opts.Issuer)
	if err != nil || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" || iu.User != nil {
		return nil, fmt.Errorf("issuer %q: must be an absolute URL without query or fragment (RFC 8414 §2)", opts.Issuer)
	}
	if iu.Scheme != "https" && !(iu.Scheme == "http" && isLoopbackHost(iu.Hostname())) {
		return nil, fmt.Errorf("issuer %q: must be https (http is accepted only on a loopback host, for development)", opts.Issuer)
	}
	base := strings.TrimSuffix(iu.EscapedPath(), "/")
	if !validBasePath(base) {
		return nil, fmt.Errorf("issuer %q: the path may hold only letters, digits, \"-\", \".\", \"_\", \"~\" and single slashes, e.g. https://as.example/tenant1", opts.Issuer)
	}
	s := &Server{
		issuer:    strings.TrimSuffix(opts.Issuer, "/"),
		base:      base,
		secure:    iu.Scheme == "https",
		resources: map[string]Resource{},
		static:    map[string]StaticClient{},
		enableDCR: opts.EnableDCR,
		autoUser:  opts.DevAutoApprove,
		proxies:   slices.Clone(opts.TrustedProxies),
		life:      opts.Lifetimes.WithDefaults(),
		store:     opts.Store,
		resolver:  opts.Resolver,
		keys:      opts.Keys,
		fetch:     opts.Fetch,
		logoFetch: opts.LogoFetch,
		log:       opts.Logger,
		now:       opts.Now,
		obs:       opts.Observer,

		dcr: defaultDCRLimits(),
	}
	if opts.TracerProvider != nil {
		s.tracer = opts.TracerProvider.Tracer(tracerName)
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.fetch == nil {
		if s.fetch, err = safehttp.New(safehttp.Options{Logger: s.log}); err != nil {
			return nil, err
		}
	}
	if s.logoFetch == nil {
		if s.logoFetch, err = safehttp.New(safehttp.Options{MaxBodyBytes: logoMaxBytes, Logger: s.log}); err != nil {
			return nil, err
		}
	}
	for _, r := range opts.Resources {
		canon, err := oauth.CanonicalResource(r.URL)
		if err != nil {
			return nil, fmt.Errorf("resource %q: %w", r.URL, err)
		}
		r.URL = canon
		if r.Name == "" {
			if u, err := url.Parse(canon); err == nil {
				r.Name = u.Host + u.Path
			}
		}
		s.resources[canon] = r
		s.resOrder = append(s.resOrder, canon)
	}
	for _, c := range opts.StaticClients {
		if c.ClientID == "" || strings.HasPrefix(c.ClientID, "https://") || strings.HasPrefix(c.ClientID, "http://") {
			return nil, fmt.Errorf("static client %q: ids must be non-empty and must not start with https:// or http:// (those are CIMD client ids, CIMD section 7.1)", c.ClientID)
		}
		if c.Introspect && c.SecretHash == "" {
			return nil, fmt.Errorf("static client %q: introspect needs a client secret (RFC 7662 §2.1 requires client authentication)", c.ClientID)
		}
		if len(c.GrantTypes) == 0 {
			c.GrantTypes = []string{"authorization_code", "refresh_token"}
		}
		s.static[c.ClientID] = c
	}
	if s.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.issuer }

// validBasePath reports whether p ("" or "/a/b") is safe to use in ServeMux
// patterns and in redirects: no empty, dot or wildcard segments.
func validBasePath(p string) bool {
	if p == "" {
		return true
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." || strings.IndexFunc(seg, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~')
		}) >= 0 {
			return false
		}
	}
	return p[0] == '/'
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "127.0.0.1" || h == "::1" || strings.HasPrefix(h, "127.")
}

// randomID returns n random bytes, base64url encoded.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
