package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

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

// ProxyConfig is everything `mcpauth proxy` needs, from flags, environment
// variables and the optional YAML file, validated once at start.
type ProxyConfig struct {
	Listen                string              `yaml:"listen"`
	Upstream              string              `yaml:"upstream"`
	Issuer                string              `yaml:"issuer"`
	ResourceURL           string              `yaml:"resource_url"`
	ResourceName          string              `yaml:"resource_name"`
	Scopes                []string            `yaml:"scopes"`
	Tools                 map[string][]string `yaml:"tools"`
	Introspect            bool                `yaml:"introspect"`
	IntrospectionEndpoint string              `yaml:"introspection_endpoint"`
	ClientID              string              `yaml:"client_id"`
	ClientSecretFile      string              `yaml:"client_secret_file"`
	IdentityHeaders       IdentityHeaders     `yaml:"identity_headers"`
	MaxBodyBytes          int64               `yaml:"max_body_bytes"`
	UpstreamTimeout       duration            `yaml:"upstream_timeout"`
	LogFormat             string              `yaml:"log_format"`
}

// IdentityHeaders names the headers carrying the verified identity upstream.
type IdentityHeaders struct {
	Subject  string `yaml:"subject"`
	ClientID string `yaml:"client_id"`
	Scopes   string `yaml:"scopes"`
}

type proxyFlags struct {
	fs                 *flag.FlagSet
	listen, upstream   *string
	issuer, resource   *string
	introspect         *bool
	introspectEndpoint *string
	clientID, secret   *string
	config, logFormat  *string
	maxBody            *int64
	timeout            *time.Duration
	scopes             stringList
}

func newProxyFlags(stderr io.Writer) *proxyFlags {
	fs := newFlagSet("proxy", proxyUsage, stderr)
	pf := &proxyFlags{fs: fs}
	pf.listen = fs.String("listen", "127.0.0.1:8090", "listen address (env MCPAUTH_PROXY_LISTEN)")
	pf.upstream = fs.String("upstream", "", "URL of the MCP server to protect, e.g. http://127.0.0.1:3001/mcp (env MCPAUTH_PROXY_UPSTREAM)")
	pf.issuer = fs.String("issuer", "", "issuer URL of the authorization server, e.g. http://localhost:8080 (env MCPAUTH_ISSUER)")
	pf.resource = fs.String("resource-url", "", "public URL of the MCP endpoint on this proxy; the token audience (env MCPAUTH_PROXY_RESOURCE_URL; default http://LISTEN/<upstream path> on a loopback address)")
	fs.Var(&pf.scopes, "scope", "scope every request needs, announced in challenges (repeatable; env MCPAUTH_PROXY_SCOPE, space-separated)")
	pf.introspect = fs.Bool("introspect", false, "check tokens with RFC 7662 introspection instead of as JWTs (env MCPAUTH_PROXY_INTROSPECT)")
	pf.introspectEndpoint = fs.String("introspection-endpoint", "", "introspection endpoint; default: from the issuer's metadata (env MCPAUTH_PROXY_INTROSPECTION_ENDPOINT)")
	pf.clientID = fs.String("client-id", "", "client id of this proxy at the introspection endpoint (env MCPAUTH_PROXY_CLIENT_ID)")
	pf.secret = fs.String("client-secret-file", "", "file holding the client secret for introspection (env MCPAUTH_PROXY_CLIENT_SECRET_FILE)")
	pf.config = fs.String("config", "", "YAML configuration file (env MCPAUTH_PROXY_CONFIG)")
	pf.logFormat = fs.String("log-format", "text", "log format: text or json (env MCPAUTH_LOG_FORMAT)")
	pf.maxBody = fs.Int64("max-body", gateway.DefaultMaxBodyBytes, "largest request body in bytes; larger ones get 413 (env MCPAUTH_PROXY_MAX_BODY)")
	pf.timeout = fs.Duration("upstream-timeout", gateway.DefaultUpstreamTimeout, "how long the MCP server may take to start answering (then 504), and then to finish a response that is not an event stream (then the connection is closed) (env MCPAUTH_PROXY_UPSTREAM_TIMEOUT)")
	return pf
}

func runProxy(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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
	logger := newLogger(cfg.LogFormat, stderr)
	opts, err := cfg.gatewayOptions(logger)
	if err != nil {
		return usageError("%v", err)
	}
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
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	// WriteTimeout bounds every answer that is not a stream: the upstream's
	// time to start answering plus 30 s to send it. The gateway lifts it for
	// event streams (SSE responses and long-lived GET streams), which stay
	// open as long as both ends want.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: time.Duration(cfg.UpstreamTimeout) + 30*time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "mcpauth proxy: listening on http://%s, MCP endpoint %s -> %s, issuer %s\n", ln.Addr(), opts.Resource, cfg.Upstream, cfg.Issuer)
	logger.Info("proxy listening", "addr", ln.Addr().String(), "resource", opts.Resource, "upstream", cfg.Upstream, "issuer", cfg.Issuer,
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
	var c ProxyConfig
	if p := cmp.Or(*pf.config, getenv("MCPAUTH_PROXY_CONFIG")); p != "" {
		var err error
		if c, err = loadProxyConfigFile(p); err != nil {
			return c, err
		}
	}
	set := map[string]bool{}
	pf.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// pick returns the flag's value if given, else the environment's, else
	// "" (keep the file's value or the default).
	pick := func(name, env string) string {
		if set[name] {
			return pf.fs.Lookup(name).Value.String()
		}
		return getenv(env)
	}
	str := func(dst *string, name, env string) {
		if v := pick(name, env); v != "" || set[name] {
			*dst = v
		}
		if *dst == "" {
			*dst = pf.fs.Lookup(name).DefValue
		}
	}
	str(&c.Listen, "listen", "MCPAUTH_PROXY_LISTEN")
	str(&c.Upstream, "upstream", "MCPAUTH_PROXY_UPSTREAM")
	str(&c.Issuer, "issuer", "MCPAUTH_ISSUER")
	str(&c.ResourceURL, "resource-url", "MCPAUTH_PROXY_RESOURCE_URL")
	str(&c.IntrospectionEndpoint, "introspection-endpoint", "MCPAUTH_PROXY_INTROSPECTION_ENDPOINT")
	str(&c.ClientID, "client-id", "MCPAUTH_PROXY_CLIENT_ID")
	str(&c.ClientSecretFile, "client-secret-file", "MCPAUTH_PROXY_CLIENT_SECRET_FILE")
	str(&c.LogFormat, "log-format", "MCPAUTH_LOG_FORMAT")
	switch {
	case set["introspect"]:
		c.Introspect = *pf.introspect
	case getenv("MCPAUTH_PROXY_INTROSPECT") != "":
		v, err := parseEnvBool(getenv, "MCPAUTH_PROXY_INTROSPECT")
		if err != nil {
			return c, err
		}
		c.Introspect = v
	}
	if v := pick("max-body", "MCPAUTH_PROXY_MAX_BODY"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return c, fmt.Errorf("max-body %q: want a number of bytes, e.g. 4194304", v)
		}
		c.MaxBodyBytes = n
	} else if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = *pf.maxBody
	}
	if v := pick("upstream-timeout", "MCPAUTH_PROXY_UPSTREAM_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("upstream-timeout %q: want a duration such as 60s or 5m", v)
		}
		c.UpstreamTimeout = duration(d)
	} else if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = duration(*pf.timeout)
	}
	switch {
	case len(pf.scopes) > 0:
		c.Scopes = pf.scopes
	case getenv("MCPAUTH_PROXY_SCOPE") != "":
		c.Scopes = strings.Fields(getenv("MCPAUTH_PROXY_SCOPE"))
	}
	return c, c.validate()
}

// loadProxyConfigFile reads the YAML file; unknown keys are errors naming
// the key.
func loadProxyConfigFile(path string) (ProxyConfig, error) {
	var c ProxyConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("--config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %s", path, explainYAMLError(err, b))
	}
	return c, nil
}

// validate fails fast with a message that names the key and the fix, and
// fills in the default resource URL.
func (c *ProxyConfig) validate() error {
	lhost, lport, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen %q: must be host:port, e.g. 127.0.0.1:8090", c.Listen)
	}
	if c.Upstream == "" {
		return errors.New("upstream: set --upstream (MCPAUTH_PROXY_UPSTREAM) to the URL of the MCP server to protect, e.g. http://127.0.0.1:3001/mcp")
	}
	up, err := url.Parse(c.Upstream)
	if err != nil || up.Host == "" || (up.Scheme != "http" && up.Scheme != "https") || up.User != nil || up.Fragment != "" {
		return fmt.Errorf("upstream %q: must be an absolute http or https URL without user info or fragment, e.g. http://127.0.0.1:3001/mcp", c.Upstream)
	}
	if c.Issuer == "" {
		return errors.New("issuer: set --issuer (MCPAUTH_ISSUER) to the authorization server's issuer URL, e.g. https://auth.example.com")
	}
	if err := checkPublicURL("issuer", c.Issuer); err != nil {
		return err
	}
	if c.ResourceURL == "" {
		if !isLoopbackHostName(lhost) || lport == "0" {
			return fmt.Errorf("resource-url: set --resource-url (MCPAUTH_PROXY_RESOURCE_URL) to the URL clients use to reach this proxy, e.g. https://mcp.example.com%s; it is the token audience", cmp.Or(up.EscapedPath(), "/mcp"))
		}
		c.ResourceURL = "http://" + net.JoinHostPort(lhost, lport) + up.EscapedPath()
	}
	if err := checkPublicURL("resource-url", c.ResourceURL); err != nil {
		return err
	}
	canon, err := oauth.CanonicalResource(c.ResourceURL)
	if err != nil {
		return fmt.Errorf("resource-url %q: %v", c.ResourceURL, err)
	}
	c.ResourceURL = canon
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") {
			return fmt.Errorf("scope %q: a scope is one word without spaces, quotes or backslashes (RFC 6749 §3.3)", s)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Tools)) {
		if name == "" || len(c.Tools[name]) == 0 {
			return fmt.Errorf("tools.%s: list the scopes a call of this tool needs, e.g. tools: {%s: [files:write]}", name, cmp.Or(name, "delete_file"))
		}
		for _, s := range c.Tools[name] {
			if s == "" || strings.ContainsAny(s, " \"\\") {
				return fmt.Errorf("tools.%s: scope %q is not one word (RFC 6749 §3.3)", name, s)
			}
		}
	}
	if c.Introspect {
		if c.ClientID == "" || c.ClientSecretFile == "" {
			return errors.New("introspect: set --client-id and --client-secret-file, the credentials of this proxy at the introspection endpoint (a client with introspect: true in mcpauth serve's config)")
		}
		if c.IntrospectionEndpoint != "" {
			if err := checkPublicURL("introspection-endpoint", c.IntrospectionEndpoint); err != nil {
				return err
			}
		}
	} else if c.ClientID != "" || c.ClientSecretFile != "" || c.IntrospectionEndpoint != "" {
		return errors.New("client-id, client-secret-file and introspection-endpoint are used only with --introspect")
	}
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("max-body %d: must be a positive number of bytes, e.g. 4194304", c.MaxBodyBytes)
	}
	if c.UpstreamTimeout <= 0 {
		return fmt.Errorf("upstream-timeout %s: must be positive, e.g. 60s", time.Duration(c.UpstreamTimeout))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format %q: use text or json", c.LogFormat)
	}
	return nil
}

// checkPublicURL accepts an absolute https URL, or http on a loopback host
// (MCP 2025-11-25 "Communication Security").
func checkPublicURL(key, s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%s %q: must be an absolute URL without query, fragment or user info", key, s)
	case u.Scheme == "http" && !isLoopbackHostName(u.Hostname()):
		return fmt.Errorf("%s %q: http is accepted only on a loopback host; use https://%s", key, s, u.Host)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s %q: must be https", key, s)
	}
	return nil
}

// gatewayOptions builds the verifier and the gateway's options.
func (c *ProxyConfig) gatewayOptions(logger *slog.Logger) (gateway.Options, error) {
	client := &http.Client{Timeout: 10 * time.Second} // the operator's own issuer, not an untrusted URL
	var v resource.TokenVerifier
	if c.Introspect {
		secret, err := os.ReadFile(c.ClientSecretFile)
		if err != nil {
			return gateway.Options{}, fmt.Errorf("client-secret-file: %w", err)
		}
		s := strings.TrimRight(string(secret), "\r\n")
		if s == "" {
			return gateway.Options{}, fmt.Errorf("client-secret-file %q is empty", c.ClientSecretFile)
		}
		v, err = gateway.NewIntrospection(resource.IntrospectionOptions{Endpoint: c.IntrospectionEndpoint, Issuer: c.Issuer,
			Resource: c.ResourceURL, ClientID: c.ClientID, ClientSecret: s, Client: client})
		if err != nil {
			return gateway.Options{}, err
		}
	} else {
		jwt, err := resource.NewJWTVerifier(resource.JWTOptions{Issuer: c.Issuer, Resource: c.ResourceURL, Client: client})
		if err != nil {
			return gateway.Options{}, err
		}
		v = resource.NewCache(jwt, resource.CacheOptions{})
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
	}, nil
}
