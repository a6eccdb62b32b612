package gateway

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/resource"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of Options and of the upstream transport.
const (
	// DefaultMaxBodyBytes caps a request body (4 MiB): JSON-RPC messages
	// are small, and the gateway holds a body in memory while it checks
	// the tool scopes and forwards it.
	DefaultMaxBodyBytes = 4 << 20
	// DefaultUpstreamTimeout is how long the upstream may take from the
	// moment the request is sent (dial, TLS and request included) until
	// its response headers arrive, and then again for a body that is not
	// an event stream to arrive whole. An established stream has no limit.
	DefaultUpstreamTimeout = 60 * time.Second
	// DefaultDialTimeout and DefaultTLSHandshakeTimeout bound connecting to
	// the upstream.
	DefaultDialTimeout         = 5 * time.Second
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// DefaultSessionIdleTimeout is how long an unused session binding is
	// kept; DefaultMaxSessions bounds how many are kept.
	DefaultSessionIdleTimeout = 24 * time.Hour
	DefaultMaxSessions        = 100_000
)

// The identity header names used when IdentityHeaders leaves one empty.
const (
	DefaultSubjectHeader  = "X-MCPAuth-Subject"
	DefaultClientIDHeader = "X-MCPAuth-Client-ID"
	DefaultScopesHeader   = "X-MCPAuth-Scopes"
)

// IdentityHeaders names the request headers in which the gateway tells the
// upstream who called: the token's subject (sub), client (client_id) and
// granted scopes (space-separated). An empty name means the default. A
// header is omitted when the token says nothing for it.
type IdentityHeaders struct {
	Subject  string
	ClientID string
	Scopes   string
}

// Options configures New. Upstream, Resource, AuthorizationServers and
// Verifier are required; every other field has a usable zero value.
type Options struct {
	// Upstream is the URL of the protected MCP endpoint, such as
	// "http://127.0.0.1:3001/mcp". Requests go to exactly this URL (the
	// client's query string is appended); the client's path is not.
	Upstream string
	// Resource is the public URL of the MCP endpoint on this gateway, the
	// one clients use, such as "https://mcp.example.com/mcp": the resource
	// of the protected-resource metadata and the audience tokens must carry
	// (RFC 9728 §3.3, OAuth 2.1 §5.2, RFC 8707 §2,
	// MCP 2025-11-25 Authorization §Canonical Server URI). It must be in
	// canonical form (oauth.CanonicalResource). The gateway serves the MCP
	// endpoint at its path.
	Resource string
	// AuthorizationServers lists the issuers clients may get tokens from,
	// published in the metadata (RFC 9728 §2,
	// MCP 2025-11-25 Authorization §Authorization Server Location).
	AuthorizationServers []string
	// ResourceName is the metadata's human-readable resource_name.
	ResourceName string
	// Scopes are needed for every request and announced in 401 challenges
	// and as the metadata's scopes_supported (RFC 9728 §2, §5.1, RFC 6750 §3).
	Scopes []string
	// ToolScopes maps an MCP tool name to further scopes a tools/call for
	// it needs (resource.ToolScopes; RFC 6750 §3.1,
	// MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors).
	ToolScopes map[string][]string
	// Verifier checks bearer tokens; wrap it in a resource.Cache so that a
	// token is verified once, not on every request.
	Verifier resource.TokenVerifier
	// IdentityHeaders names the headers carrying the verified identity.
	IdentityHeaders IdentityHeaders
	// MaxBodyBytes caps a request body; a larger one gets 413. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// UpstreamTimeout bounds the wait for the upstream's response headers,
	// measured from when the gateway starts forwarding; then it answers
	// 504. It bounds a response body that is not an event stream too,
	// measured from the headers: a body that has not arrived whole by then
	// is cut off and the connection to the client closed (its status has
	// been sent, so no 504 can follow). An event stream
	// (text/event-stream) has no limit once its headers arrive. Zero means
	// DefaultUpstreamTimeout.
	UpstreamTimeout time.Duration
	// Transport sends requests upstream. Zero means a net/http Transport
	// tuned for one upstream (see newTransport).
	Transport http.RoundTripper
	// SessionIdleTimeout and MaxSessions bound the session bindings kept
	// in memory. Zero means DefaultSessionIdleTimeout and
	// DefaultMaxSessions. A session unused for longer, or pushed out when
	// the table is full, gets 404 and the client starts a new one (MCP
	// 2025-11-25 "Session Management").
	SessionIdleTimeout time.Duration
	MaxSessions        int
	// Logger receives upstream failures (level Error) and the reasons
	// requests were refused (level Debug). Tokens are never logged. Zero
	// means no logging.
	Logger *slog.Logger
	// Now is the clock for session bindings. Zero means time.Now.
	Now func() time.Time
	// Observer receives metrics events. Zero means none.
	Observer Observer
	// TracerProvider gives the tracer of a span per request to the MCP
	// endpoint (traces.go), whose W3C traceparent goes upstream. Zero
	// means no spans, and the client's traceparent goes upstream as is.
	TracerProvider trace.TracerProvider
}

// Gateway is the http.Handler of the whole gateway origin: metadata, the
// protected MCP endpoint, 404 elsewhere. It is safe for concurrent use.
type Gateway struct {
	upstream   *url.URL
	path       string // the MCP endpoint's path on this origin
	maxBody    int64
	timeout    time.Duration
	names      [3]string // subject, client id, scopes
	strip      []string  // header names removed from every forwarded request
	sessions   *sessions
	log        *slog.Logger
	mux        *http.ServeMux // metadata and 404
	protected  http.Handler   // RequireBearer in front of forward
	toolScopes func(*http.Request) []string
	proxy      *httputil.ReverseProxy
	obs        Observer
	tracer     trace.Tracer // nil: no spans
}

// New checks opts and returns a Gateway. It does no I/O.
func New(opts Options) (*Gateway, error) {
	up, err := url.Parse(opts.Upstream)
	if err != nil || up.Host == "" || (up.Scheme != "http" && up.Scheme != "https") || up.User != nil || up.Fragment != "" {
		return nil, fmt.Errorf("upstream %q: must be an absolute http or https URL without user info or fragment, e.g. http://127.0.0.1:3001/mcp", opts.Upstream)
	}
	if opts.Verifier == nil {
		return nil, errors.New("gateway: Options.Verifier is required")
	}
	canon, err := oauth.CanonicalResource(opts.Resource)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	if canon != opts.Resource {
		return nil, fmt.Errorf("resource %q is not in canonical form; use %q", opts.Resource, canon)
	}
	ru, err := url.Parse(canon)
	if err != nil {
		return nil, fmt.Errorf("resource %q: %w", canon, err)
	}
	names, err := identityNames(opts.IdentityHeaders)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		upstream: up,
		path:     cmp.Or(ru.Path, "/"),
		maxBody:  cmp.Or(opts.MaxBodyBytes, DefaultMaxBodyBytes),
		timeout:  cmp.Or(opts.UpstreamTimeout, DefaultUpstreamTimeout),
		names:    names,
		strip:    stripNames(names),
		log:      opts.Logger,
		mux:      http.NewServeMux(),
		obs:      opts.Observer,
	}
	if g.maxBody < 0 || g.timeout < 0 {
		return nil, errors.New("gateway: MaxBodyBytes and UpstreamTimeout must not be negative")
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if opts.TracerProvider != nil {
		g.tracer = opts.TracerProvider.Tracer(tracerName)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	g.sessions = newSessions(cmp.Or(opts.SessionIdleTimeout, DefaultSessionIdleTimeout), cmp.Or(opts.MaxSessions, DefaultMaxSessions), now)

	if err := resource.HandleMetadata(g.mux, oauth.ProtectedResourceMetadata{
		Resource:             canon,
		AuthorizationServers: opts.AuthorizationServers,
		ScopesSupported:      opts.Scopes,
		ResourceName:         opts.ResourceName,
	}); err != nil {
		return nil, err
	}
	if len(opts.ToolScopes) > 0 {
		g.toolScopes = resource.ToolScopes(opts.ToolScopes)
	}
	g.protected = resource.RequireBearer(opts.Verifier, resource.Options{
		Resource: canon, Scopes: slices.Clone(opts.Scopes), ScopesFor: g.scopesFor, Logger: opts.Logger,
	})(http.HandlerFunc(g.forward))

	transport := opts.Transport
	if transport == nil {
		transport = newTransport(g.timeout)
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:   g.rewrite,
		Transport: transport,
		// FlushInterval 0: the reverse proxy flushes every write of an
		// event stream (text/event-stream) and of a response of unknown
		// length at once anyway (httputil.ReverseProxy.flushInterval), so
		// streams pass through unbuffered, while a JSON answer of known
		// length goes out in one write.
		FlushInterval:  0,
		BufferPool:     newBufferPool(),
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.upstreamError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return g, nil
}

// Limits of the transport New builds when Options.Transport is nil.
const (
	// maxIdleUpstreamConns is how many idle keep-alive connections to the
	// upstream are kept. Over HTTP/1.1 every request in flight holds a
	// connection of its own; net/http's default of 2 idle connections per
	// host would make a busy gateway dial and close connections all the
	// time. 256 covers several hundred concurrent clients.
	maxIdleUpstreamConns = 256
	// upstreamIdleTimeout closes idle connections after 90 s, as
	// http.DefaultTransport does.
	upstreamIdleTimeout = 90 * time.Second
	// maxUpstreamHeaderBytes caps an upstream answer's header section
	// (net/http's default is 10 MiB).
	maxUpstreamHeaderBytes = 1 << 20
)

// newTransport returns the transport a Gateway uses by default, net/http's
// own, tuned for one upstream:
//
//   - connect in DefaultDialTimeout, TLS handshake in
//     DefaultTLSHandshakeTimeout, response headers within headerTimeout of
//     the request being written (the gateway's own timer, armed earlier,
//     normally ends the wait first);
//   - maxIdleUpstreamConns idle keep-alive connections, all of them for
//     the upstream, closed after upstreamIdleTimeout; no limit on
//     connections in use (MaxConnsPerHost), since long-lived event streams
//     each hold one and a limit would queue requests behind them;
//   - header sections of at most maxUpstreamHeaderBytes;
//   - no proxy from the environment (the upstream is the operator's own
//     server; Proxy stays nil, as before);
//   - bodies passed through as they are (no transparent gzip, which would
//     hold back stream events);
//   - no Expect: 100-continue (rewrite removes it: the body is read
//     already, there is nothing to wait for);
//   - HTTP/2 when an https:// upstream offers it (ForceAttemptHTTP2, as
//     http.DefaultTransport): a custom dialer would otherwise turn it off,
//     and over TLS one multiplexed connection saves a handshake per
//     concurrent request. An http:// upstream is spoken to in HTTP/1.1.
func newTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:    DefaultTLSHandshakeTimeout,
		ResponseHeaderTimeout:  headerTimeout,
		ExpectContinueTimeout:  0,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleUpstreamConns,
		MaxIdleConnsPerHost:    maxIdleUpstreamConns,
		IdleConnTimeout:        upstreamIdleTimeout,
		MaxResponseHeaderBytes: maxUpstreamHeaderBytes,
	}
}

// ServeHTTP routes the MCP endpoint through the bearer check to the
// upstream and everything else to the metadata (or 404).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path != g.path:
		g.mux.ServeHTTP(w, r)
	case g.obs != nil || g.tracer != nil:
		g.serveObserved(w, r)
	default:
		g.serveMCP(w, r)
	}
}

// serveMCP serves a request to the MCP endpoint.
func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		// Streamable HTTP uses only these; anything else would reach the
		// upstream without the tool scope rules, which read POST bodies.
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, codeInvalidRequest, "the MCP endpoint takes POST, GET and DELETE (MCP Streamable HTTP)", nil)
		return
	}
	if r.URL.Query().Has("access_token") {
		// The token would reach the upstream and its logs in the URL.
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request"`)
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "send the access token in the Authorization header, never in the URL (RFC 6750 section 2.3, MCP authorization)", nil)
		return
	}
	if r.Method != http.MethodPost && r.ContentLength != 0 {
		// A body on GET or DELETE (Content-Length above 0, or chunked:
		// -1) means nothing in Streamable HTTP, and the tool scope rules
		// read only POST bodies: a tools/call in it must not reach the
		// upstream unchecked.
		writeError(w, http.StatusBadRequest, codeInvalidRequest,
			"a GET or DELETE request to the MCP endpoint must not have a body (MCP Streamable HTTP); send JSON-RPC messages with POST", []byte(unknownID))
		return
	}
	if r.ContentLength > g.maxBody {
		g.tooLarge(w, r)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, g.maxBody)
	}
	g.protected.ServeHTTP(w, r)
}

// scopesFor runs inside RequireBearer once the token is verified: it reads
// the whole body (up to the limit) and returns the scopes the called tools
// need. A body too large or unreadable needs no scopes here: forward finds
// the read error in r.Body and answers 413 or 400, which tells the client
// what is wrong better than a step-up would.
func (g *Gateway) scopesFor(r *http.Request) []string {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		r.Body = io.NopCloser(errReader{err})
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if g.toolScopes == nil {
		return nil
	}
	if r.Method == http.MethodPost && !json.Valid(body) {
		// The tool rules cannot be read from it: a parse error says what
		// is wrong, where a step-up would ask for every tool's scopes.
		r.Body = io.NopCloser(errReader{errNotJSON})
		return nil
	}
	return g.toolScopes(r)
}

// errNotJSON marks a POST body that is not JSON when tool rules apply.
var errNotJSON = errors.New("request body is not JSON")

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// tooLarge answers 413. The body was not read whole, so its id is unknown:
// a JSON body gets a JSON-RPC error with id null.
func (g *Gateway) tooLarge(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		body = []byte(unknownID)
	}
	writeError(w, http.StatusRequestEntityTooLarge, codeInvalidRequest,
		fmt.Sprintf("the request body is larger than this gateway's limit of %d bytes", g.maxBody), body)
}

// identityNames fills in defaults and checks the operator's header names.
func identityNames(h IdentityHeaders) ([3]string, error) {
	names := [3]string{cmp.Or(h.Subject, DefaultSubjectHeader), cmp.Or(h.ClientID, DefaultClientIDHeader), cmp.Or(h.Scopes, DefaultScopesHeader)}
	for i, n := range names {
		if !isToken(n) {
			return names, fmt.Errorf("identity header %q: not a valid header name (RFC 9110 §5.1); use letters, digits and '-', e.g. X-MCPAuth-Subject", n)
		}
		if reserved(n) {
			return names, fmt.Errorf("identity header %q: the gateway or the MCP protocol uses that header; choose another name, e.g. X-MCPAuth-Subject", n)
		}
		for _, m := range names[:i] {
			if sameHeaderName(n, m) {
				return names, fmt.Errorf("identity headers %q and %q: must differ", m, n)
			}
		}
		names[i] = http.CanonicalHeaderKey(n)
	}
	return names, nil
}

// stripNames is every header name a client may not send upstream: the
// configured identity headers and the default ones (so that renaming them
// never lets a client speak for an upstream still reading the defaults),
// the hop-by-hop headers, and the client's credentials and expectations.
func stripNames(names [3]string) []string {
	out := names[:]
	for _, d := range []string{DefaultSubjectHeader, DefaultClientIDHeader, DefaultScopesHeader} {
		if !slices.ContainsFunc(out, func(n string) bool { return sameHeaderName(n, d) }) {
			out = append(out, d)
		}
	}
	return append(out,
		// Hop-by-hop (RFC 9110 §7.6.1; RFC 9112 §9.6 for Keep-Alive and
		// Proxy-Connection, which older clients still send).
		"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		// RequireBearer removed Authorization already; the token must
		// never reach the upstream, so it goes here too. Cookies are not
		// forwarded (package doc). The body is read already: an Expect
		// has nothing left to wait for.
		"Authorization", "Cookie", "Expect")
}

// reserved reports whether name is a header the gateway or MCP relies on.
func reserved(name string) bool {
	for _, r := range []string{"Authorization", "Cookie", "Host", "Content-Length", "Content-Type", "Transfer-Encoding",
		"Connection", "Upgrade", "Te", "Trailer", "Accept", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-Id",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Proxy-Authorization", "Origin"} {
		if sameHeaderName(name, r) {
			return true
		}
	}
	return false
}

// sameHeaderName compares header names without regard to ASCII case and
// with '_' equal to '-', the way CGI-style upstreams (HTTP_X_MCPAUTH_...)
// see them.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if fold(a[i]) != fold(b[i]) {
			return false
		}
	}
	return true
}

func fold(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// bufferPool recycles the 32 KiB copy buffers of the reverse proxy.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(s []byte) { b.p.Put(&s) }
