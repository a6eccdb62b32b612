package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/internal/accesslog"
	"github.com/mcpauth/mcpauth/internal/gateway"
	"github.com/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/resource"
)

const proxyUsage = `Usage: mcpauth proxy --upstream URL --issuer URL [flags]

Protects an existing Streamable HTTP MCP server with OAuth, without changing
it: serves the protected-resource metadata, answers 401/403 challenges,
verifies access tokens (JWT with the issuer's keys, or --introspect), and
forwards accepted requests to --upstream with the caller's identity in
X-MCPAuth-Subject, X-MCPAuth-Client-ID and X-MCPAuth-Scopes, never the token.

  mcpauth proxy --listen 127.0.0.1:8090 --upstream http://127.0.0.1:3001/mcp \
    --issuer http://localhost:8080 --scope mcp:tools

Flags win over MCPAUTH_PROXY_* environment variables (MCPAUTH_ISSUER and
MCPAUTH_LOG_FORMAT are shared with serve), which win over --config, a YAML
file that also holds per-tool scopes (tools:) and identity header names.`

// defaultIntrospectCache is --introspect-cache's default: how long the
// proxy reuses an active introspection result, and so how late it notices
// a revocation or a block (RFC 7662 §4 leaves the trade-off to the resource
// server).
const defaultIntrospectCache = 5 * time.Second

// ProxyConfig is everything `mcpauth proxy` needs, from flags, environment
// variables and the optional YAML file, validated once at start. The
// single-valued settings and scopes are rows of proxySettings; the YAML tags
// here are the file's structured sections.
type ProxyConfig struct {
	Listen                string              `yaml:"-"`
	Upstream              string              `yaml:"-"`
	Issuer                string              `yaml:"-"`
	ResourceURL           string              `yaml:"-"`
	ResourceName          string              `yaml:"resource_name"`
	Scopes                []string            `yaml:"-"`
	Tools                 map[string][]string `yaml:"tools"`
	Introspect            bool                `yaml:"-"`
	IntrospectionEndpoint string              `yaml:"-"`
	ClientID              string              `yaml:"-"`
	ClientSecretFile      string              `yaml:"-"`
	IntrospectCache       duration            `yaml:"-"`
	IdentityHeaders       IdentityHeaders     `yaml:"identity_headers"`
	MaxBodyBytes          int64               `yaml:"-"`
	UpstreamTimeout       duration            `yaml:"-"`
	LogFormat             string              `yaml:"-"`
	MetricsAddr           string              `yaml:"-"`
	LogLevel              string              `yaml:"-"`
}

// IdentityHeaders names the headers carrying the verified identity upstream.
type IdentityHeaders struct {
	Subject  string `yaml:"subject"`
	ClientID string `yaml:"client_id"`
	Scopes   string `yaml:"scopes"`
}

// proxyFlags is the proxy's flag set and configuration table.
type proxyFlags = commandFlags[ProxyConfig]

// newProxyFlags registers the proxy flags; resolveProxyConfig reads them
// with their environment and file fallbacks.
func newProxyFlags(stderr io.Writer) *proxyFlags {
	return newCommandFlags("proxy", proxyUsage, "MCPAUTH_PROXY_CONFIG", stderr, proxySettings)
}

// proxySettings is the table of the proxy's settings, bound to c.
func proxySettings(c *ProxyConfig) []setting {
	return []setting{
		{flag: "listen", env: "MCPAUTH_PROXY_LISTEN", key: "listen", def: "127.0.0.1:8090", help: "listen address",
			set: checkedText(&c.Listen, hostPort("127.0.0.1:8090"))},
		{flag: "upstream", env: "MCPAUTH_PROXY_UPSTREAM", key: "upstream", help: "URL of the MCP server to protect, e.g. http://127.0.0.1:3001/mcp",
			set: checkedText(&c.Upstream, upstreamProblem)},
		{flag: "issuer", env: "MCPAUTH_ISSUER", key: "issuer", help: "issuer URL of the authorization server, e.g. http://localhost:8080",
			set: checkedText(&c.Issuer, publicURLProblem)},
		{flag: "resource-url", env: "MCPAUTH_PROXY_RESOURCE_URL", key: "resource_url",
			help: "public URL of the MCP endpoint on this proxy; the token audience; default http://LISTEN/<upstream path> on a loopback address",
			set: func(v string) error {
				canon, err := resourceURL(v)
				if err == nil {
					c.ResourceURL = canon
				}
				return err
			}},
		{flag: "scope", env: "MCPAUTH_PROXY_SCOPE", key: "scopes", list: " \t\n", help: "scope every request needs, announced in challenges",
			set: items(&c.Scopes, scopeProblem)},
		{flag: "introspect", env: "MCPAUTH_PROXY_INTROSPECT", key: "introspect", boolean: true, help: "check tokens with RFC 7662 introspection instead of as JWTs",
			set: boolean(&c.Introspect)},
		{flag: "introspection-endpoint", env: "MCPAUTH_PROXY_INTROSPECTION_ENDPOINT", key: "introspection_endpoint", help: "introspection endpoint; default: from the issuer's metadata",
			set: checkedText(&c.IntrospectionEndpoint, publicURLProblem)},
		{flag: "client-id", env: "MCPAUTH_PROXY_CLIENT_ID", key: "client_id", help: "client id of this proxy at the introspection endpoint",
			set: text(&c.ClientID)},
		{flag: "client-secret-file", env: "MCPAUTH_PROXY_CLIENT_SECRET_FILE", key: "client_secret_file", help: "file holding the client secret for introspection",
			set: text(&c.ClientSecretFile)},
		{flag: "introspect-cache", env: "MCPAUTH_PROXY_INTROSPECT_CACHE", key: "introspect_cache", def: defaultIntrospectCache.String(),
			help: "how long (a `duration`) an active introspection result is reused; it bounds how late a revoked token or a blocked client is refused; 0 asks on every request",
			set: func(v string) error {
				d, err := time.ParseDuration(strings.TrimSpace(v))
				if err != nil || d < 0 {
					return errors.New("write a duration such as 5s, or 0 to introspect every request")
				}
				c.IntrospectCache = duration(d)
				return nil
			}},
		{flag: "log-format", env: "MCPAUTH_LOG_FORMAT", key: "log_format", def: "text", help: "log format: text or json",
			set: oneOf(&c.LogFormat, "text", "json")},
		{flag: "metrics-addr", env: "MCPAUTH_PROXY_METRICS_ADDR", key: "metrics_addr", help: "serve Prometheus metrics at /metrics on this listen `address`, e.g. 127.0.0.1:9091; off when empty",
			set: checkedText(&c.MetricsAddr, hostPort("127.0.0.1:9091"))},
		logLevelRow(&c.LogLevel),
		{flag: "max-body", env: "MCPAUTH_PROXY_MAX_BODY", key: "max_body_bytes", def: strconv.Itoa(gateway.DefaultMaxBodyBytes),
			help: "largest request body in `bytes`; larger ones get 413",
			set:  whole(&c.MaxBodyBytes, 1, math.MaxInt64, "write a positive number of bytes, e.g. 4194304")},
		{flag: "upstream-timeout", env: "MCPAUTH_PROXY_UPSTREAM_TIMEOUT", key: "upstream_timeout", def: gateway.DefaultUpstreamTimeout.String(),
			help: "how long (a `duration`) the MCP server may take to start answering (then 504), and then to finish a response that is not an event stream (then the connection is closed)",
			set:  positiveDuration(&c.UpstreamTimeout, "60s or 5m", 0, "")},
	}
}

func runProxy(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	pf := newProxyFlags(stderr)
	if err := parseFlags(pf.fs, args, stdout); err != nil {
		return err
	}
	if pf.fs.NArg() > 0 {
		return usageError("proxy takes no arguments, got %q", pf.fs.Args())
	}
	cfg, err := resolveProxyConfig(pf, getenv)
	if err != nil {
		return usageError("%v", err)
	}
	logger := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	defer func() { err = logExit(err, logger, cfg.LogFormat) }()
	opts, checks, err := cfg.gatewayOptions(logger)
	if err != nil {
		return usageError("%v", err)
	}
	var stopTracing func()
	hooks, stopMetrics, err := startMetrics(cfg.MetricsAddr, logger)
	if err != nil {
		return err
	}
	defer stopMetrics()
	opts.Observer = hooks.gateway
	if opts.TracerProvider, stopTracing, err = startTracing(ctx, getenv, "mcpauth-proxy", logger); err != nil {
		return err
	}
	defer stopTracing()
	gw, err := gateway.New(opts)
	if err != nil {
		return usageError("%v", err)
	}
	if u, _ := url.Parse(cfg.Upstream); !isLoopbackHostName(u.Hostname()) {
		logger.Warn("the upstream trusts the identity headers the proxy sends: make it reachable only through this proxy", "upstream", cfg.Upstream)
	}

	mux := http.NewServeMux()
	mux.Handle("/", gw)
	if ru, _ := url.Parse(opts.Resource); ru.Path != "/healthz" {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	}
	if ru, _ := url.Parse(opts.Resource); ru.Path != "/readyz" {
		mux.Handle("GET /readyz", readyHandler(logger, append([]readyCheck{upstreamReachable(cfg.Upstream)}, checks...)...))
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	// WriteTimeout bounds every answer that is not a stream: the upstream's
	// time to start answering plus 30 s to send it. The gateway lifts it for
	// event streams (SSE responses and long-lived GET streams), which stay
	// open as long as both ends want.
	srv := &http.Server{Handler: accesslog.Handler(logger, mux), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: time.Duration(cfg.UpstreamTimeout) + 30*time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	announce(stdout, logger, cfg.LogFormat, "mcpauth proxy",
		fmt.Sprintf("listening on http://%s, MCP endpoint %s -> %s, issuer %s", ln.Addr(), opts.Resource, cfg.Upstream, cfg.Issuer),
		"addr", ln.Addr().String(), "resource", opts.Resource, "upstream", cfg.Upstream, "issuer", cfg.Issuer,
		"verify", map[bool]string{false: "jwt", true: "introspection"}[cfg.Introspect])

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests; open streams are closed after 10s")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // long-lived streams do not end by themselves
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// resolveProxyConfig merges defaults < config file < environment < flags,
// then validates.
func resolveProxyConfig(pf *proxyFlags, getenv func(string) string) (ProxyConfig, error) {
	c, err := pf.resolve(getenv)
	if err != nil {
		return c, err
	}
	return c, c.validate()
}

// validate fails fast with a message that names the key and the fix, and
// fills in the default resource URL. The table checked each setting's own
// value; what is left are the rules between settings and the file's
// structured sections.
func (c *ProxyConfig) validate() error {
	lhost, lport, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen %q: must be host:port, e.g. 127.0.0.1:8090", c.Listen)
	}
	if c.Upstream == "" {
		return errors.New("upstream: set --upstream (MCPAUTH_PROXY_UPSTREAM) to the URL of the MCP server to protect, e.g. http://127.0.0.1:3001/mcp")
	}
	if c.Issuer == "" {
		return errors.New("issuer: set --issuer (MCPAUTH_ISSUER) to the authorization server's issuer URL, e.g. https://auth.example.com")
	}
	if c.ResourceURL == "" {
		up, _ := url.Parse(c.Upstream) // checked by the table
		if !isLoopbackHostName(lhost) || lport == "0" {
			return fmt.Errorf("resource-url: set --resource-url (MCPAUTH_PROXY_RESOURCE_URL) to the URL clients use to reach this proxy, e.g. https://mcp.example.com%s; it is the token audience", cmp.Or(up.EscapedPath(), "/mcp"))
		}
		if c.ResourceURL, err = resourceURL("http://" + net.JoinHostPort(lhost, lport) + up.EscapedPath()); err != nil {
			return fmt.Errorf("resource-url: the default from --listen and --upstream: %w", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Tools)) {
		if name == "" || len(c.Tools[name]) == 0 {
			return fmt.Errorf("tools.%s: list the scopes a call of this tool needs, e.g. tools: {%s: [files:write]}", name, cmp.Or(name, "delete_file"))
		}
		for _, s := range c.Tools[name] {
			if scopeProblem(s) != nil {
				return fmt.Errorf("tools.%s: scope %q is not one word (RFC 6749 §3.3)", name, s)
			}
		}
	}
	if c.Introspect {
		if c.ClientID == "" || c.ClientSecretFile == "" {
			return errors.New("introspect: set --client-id and --client-secret-file, the credentials of this proxy at the introspection endpoint (a client with introspect: true in mcpauth serve's config)")
		}
	} else if c.ClientID != "" || c.ClientSecretFile != "" || c.IntrospectionEndpoint != "" {
		return errors.New("client-id, client-secret-file and introspection-endpoint are used only with --introspect")
	}
	return nil
}

// upstreamProblem says what is wrong with an upstream URL, or nil.
func upstreamProblem(v string) error {
	up, err := url.Parse(v)
	if err != nil || up.Host == "" || (up.Scheme != "http" && up.Scheme != "https") || up.User != nil || up.Fragment != "" {
		return errors.New("must be an absolute http or https URL without user info or fragment, e.g. http://127.0.0.1:3001/mcp")
	}
	return nil
}

// resourceURL checks the proxy's public MCP URL and returns it canonical
// (RFC 8707 §2).
func resourceURL(v string) (string, error) {
	if err := publicURLProblem(v); err != nil {
		return "", err
	}
	return oauth.CanonicalResource(v)
}

// scopeProblem says what is wrong with a scope, or nil.
func scopeProblem(s string) error {
	if s == "" || strings.ContainsAny(s, " \"\\") {
		return errors.New("a scope is one word without spaces, quotes or backslashes (RFC 6749 §3.3)")
	}
	return nil
}

// publicURLProblem accepts an absolute https URL, or http on a loopback
// host (MCP 2025-11-25 "Communication Security").
func publicURLProblem(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return errors.New("must be an absolute URL without query, fragment or user info")
	case u.Scheme == "http" && !isLoopbackHostName(u.Hostname()):
		return fmt.Errorf("http is accepted only on a loopback host; use https://%s", u.Host)
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be https")
	}
	return nil
}

// gatewayOptions builds the verifier and the gateway's options, and the
// readiness check of the issuer's keys (none with introspection).
func (c *ProxyConfig) gatewayOptions(logger *slog.Logger) (gateway.Options, []readyCheck, error) {
	client := &http.Client{Timeout: 10 * time.Second} // the operator's own issuer, not an untrusted URL
	var v resource.TokenVerifier
	var checks []readyCheck
	if c.Introspect {
		secret, err := os.ReadFile(c.ClientSecretFile)
		if err != nil {
			return gateway.Options{}, nil, fmt.Errorf("client-secret-file: %w", err)
		}
		s := strings.TrimRight(string(secret), "\r\n")
		if s == "" {
			return gateway.Options{}, nil, fmt.Errorf("client-secret-file %q is empty", c.ClientSecretFile)
		}
		ttl := time.Duration(c.IntrospectCache)
		if ttl == 0 {
			ttl = -1 // IntrospectionOptions: negative disables the cache
		}
		v, err = gateway.NewIntrospection(resource.IntrospectionOptions{Endpoint: c.IntrospectionEndpoint, Issuer: c.Issuer,
			Resource: c.ResourceURL, ClientID: c.ClientID, ClientSecret: s, Client: client, CacheTTL: ttl})
		if err != nil {
			return gateway.Options{}, nil, err
		}
	} else {
		jwt, err := resource.NewJWTVerifier(resource.JWTOptions{Issuer: c.Issuer, Resource: c.ResourceURL, Client: client})
		if err != nil {
			return gateway.Options{}, nil, err
		}
		v = resource.NewCache(jwt, resource.CacheOptions{})
		checks = append(checks, readyCheck{reason: "issuer keys not loaded", check: jwt.LoadKeys})
	}
	return gateway.Options{
		Upstream:             c.Upstream,
		Resource:             c.ResourceURL,
		AuthorizationServers: []string{c.Issuer},
		ResourceName:         c.ResourceName,
		Scopes:               c.Scopes,
		ToolScopes:           c.Tools,
		Verifier:             v,
		IdentityHeaders:      gateway.IdentityHeaders(c.IdentityHeaders),
		MaxBodyBytes:         c.MaxBodyBytes,
		UpstreamTimeout:      time.Duration(c.UpstreamTimeout),
		Logger:               logger,
	}, checks, nil
}
