package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/authserver"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// Config is everything `mcpauth serve` needs, from flags, MCPAUTH_*
// environment variables and the optional YAML file, in that order of
// precedence. The single-valued settings are rows of serveSettings, which
// names each one's flag, variable and YAML key; the YAML tags here are the
// file's structured sections. It is validated once, at start (CONVENTIONS 13).
type Config struct {
	Addr                  string           `yaml:"-"`
	Issuer                string           `yaml:"-"`
	Data                  string           `yaml:"-"`
	Store                 string           `yaml:"-"`
	StoreMaxConns         int              `yaml:"-"`
	StoreStatementTimeout time.Duration    `yaml:"-"`
	LogFormat             string           `yaml:"-"`
	MetricsAddr           string           `yaml:"-"`
	LogLevel              string           `yaml:"-"`
	DevAllowLoopback      bool             `yaml:"-"`
	DevAutoApprove        string           `yaml:"-"`
	CIMDCAFile            string           `yaml:"-"`
	KeyEncryptionKeyFile  string           `yaml:"-"`
	EnableDCR             bool             `yaml:"-"`
	TrustedProxies        []string         `yaml:"-"`
	Resources             []ResourceConfig `yaml:"resources"`
	Trust                 TrustConfig      `yaml:"trust"`
	Clients               []ClientConfig   `yaml:"clients"`
	Lifetimes             LifetimesConfig  `yaml:"-"`
}

// serveFlags is serve's flag set and configuration table.
type serveFlags = commandFlags[Config]

// newServeFlags registers the serve flags; resolveConfig reads them with
// their environment and file fallbacks.
func newServeFlags(stderr io.Writer) *serveFlags {
	return newCommandFlags("serve", serveUsage, "MCPAUTH_CONFIG", stderr, serveSettings)
}

// serveSettings is the table of serve's settings, bound to c.
func serveSettings(c *Config) []setting {
	l := &c.Lifetimes
	return []setting{
		{flag: "addr", env: "MCPAUTH_ADDR", key: "addr", def: "127.0.0.1:8080", help: "listen address",
			set: checkedText(&c.Addr, hostPort("127.0.0.1:8080"))},
		{flag: "issuer", env: "MCPAUTH_ISSUER", key: "issuer", help: "issuer URL; https, or http on a loopback host; default http://localhost:PORT",
			set: checkedText(&c.Issuer, issuerProblem)},
		{flag: "data", env: "MCPAUTH_DATA", key: "data", def: "./mcpauth-data", help: "data directory: SQLite database",
			set: text(&c.Data)},
		{flag: "store", env: "MCPAUTH_STORE", key: "store", help: "database: a postgres:// URL for replicas sharing one PostgreSQL; empty means SQLite in --data",
			set: text(&c.Store)},
		{flag: "store-max-conns", env: "MCPAUTH_STORE_MAX_CONNS", key: "store_max_conns", help: "PostgreSQL: `connections` per replica; default the URL's pool_max_conns, else 16",
			set: whole(&c.StoreMaxConns, 1, 1000, "write a number of connections from 1 to 1000")},
		{flag: "store-statement-timeout", env: "MCPAUTH_STORE_STATEMENT_TIMEOUT", help: "PostgreSQL: statement timeout, a `duration`; default the URL's statement_timeout, else 5s",
			set: positiveDuration(&c.StoreStatementTimeout, "5s", 0, "")},
		{flag: "log-format", env: "MCPAUTH_LOG_FORMAT", key: "log_format", def: "text", help: "log format: text or json",
			set: oneOf(&c.LogFormat, "text", "json")},
		{flag: "metrics-addr", env: "MCPAUTH_METRICS_ADDR", key: "metrics_addr", help: "serve Prometheus metrics at /metrics on this listen `address`, e.g. 127.0.0.1:9090; off when empty",
			set: checkedText(&c.MetricsAddr, hostPort("127.0.0.1:9090"))},
		logLevelRow(&c.LogLevel),
		{flag: "dev-allow-loopback", env: "MCPAUTH_DEV_ALLOW_LOOPBACK", key: "dev_allow_loopback", boolean: true,
			help: "development only: accept and fetch CIMD client_ids on loopback hosts; needs a loopback --addr", set: boolean(&c.DevAllowLoopback)},
		{flag: "dev-auto-approve", env: "MCPAUTH_DEV_AUTO_APPROVE", key: "dev_auto_approve", help: "development only, with --dev-allow-loopback: skip login and consent as `USER`",
			set: text(&c.DevAutoApprove)},
		{flag: "cimd-ca-file", env: "MCPAUTH_CIMD_CA_FILE", key: "cimd_ca_file", help: "PEM bundle of extra CAs trusted for client metadata hosts",
			set: text(&c.CIMDCAFile)},
		{flag: "key-encryption-key-file", env: "MCPAUTH_KEY_ENCRYPTION_KEY_FILE", key: "key_encryption_key_file",
			help: "`FILE` of 32 random bytes (raw or base64, mode 0600) that encrypts the signing keys at rest with AES-256-GCM",
			set:  text(&c.KeyEncryptionKeyFile)},
		{flag: "enable-dcr", env: "MCPAUTH_ENABLE_DCR", key: "enable_dcr", boolean: true, help: "enable RFC 7591 dynamic client registration (deprecated fallback)",
			set: boolean(&c.EnableDCR)},
		{flag: "trusted-proxy", env: "MCPAUTH_TRUSTED_PROXIES", key: "trusted_proxies", list: ", \t\n",
			help: "a load balancer or reverse proxy (IP or CIDR) whose X-Forwarded-For names the client for rate limits",
			set:  items(&c.TrustedProxies, func(v string) error { _, err := proxyPrefix(v); return err })},
		// Added to the file's resources: a mapping there can also give a name.
		{flag: "resource", env: "MCPAUTH_RESOURCE", list: " \t\n", help: "an MCP server this issuer protects, URL or URL=scope1,scope2; added to the file's resources",
			set: func(v string) error {
				rc, err := parseResource(v)
				if err == nil {
					c.Resources = append(c.Resources, rc)
				}
				return err
			}},
		{key: "lifetimes.access_token", set: positiveDuration(&l.AccessToken, "10m", maxAccessLifetime, "access tokens are short-lived; refresh tokens keep the session going")},
		{key: "lifetimes.code", set: positiveDuration(&l.Code, "60s", maxCodeLifetime, "authorization codes are short-lived, RFC 6749 §4.1.2")},
		{key: "lifetimes.refresh_idle", set: positiveDuration(&l.RefreshIdle, "336h", 0, "")},
		{key: "lifetimes.refresh_absolute", set: positiveDuration(&l.RefreshAbsolute, "2160h", 0, "")},
		{key: "lifetimes.session", set: positiveDuration(&l.Session, "12h", 0, "")},
	}
}

// ResourceConfig is one protected MCP server.
type ResourceConfig struct {
	URL    string   `yaml:"url"`
	Scopes []string `yaml:"scopes"`
	Name   string   `yaml:"name"`
}

// TrustConfig is the CIMD trust policy (cimd.PolicyConfig).
type TrustConfig struct {
	Allow         []string `yaml:"allow"`
	Deny          []string `yaml:"deny"`
	AllowlistOnly bool     `yaml:"allowlist_only"`
	// LoopbackClients accepts loopback development clients
	// (http://localhost client_ids, cimd.LoopbackClient); nil means true.
	LoopbackClients *bool `yaml:"loopback_clients"`
}

// loopbackClients reports whether trust.loopback_clients is on (the default).
func (t TrustConfig) loopbackClients() bool { return t.LoopbackClients == nil || *t.LoopbackClients }

// ClientConfig is a statically configured client, e.g. a resource server
// allowed to introspect.
type ClientConfig struct {
	ClientID     string   `yaml:"client_id"`
	Name         string   `yaml:"name"`
	RedirectURIs []string `yaml:"redirect_uris"`
	Secret       string   `yaml:"secret"`
	GrantTypes   []string `yaml:"grant_types"`
	Scope        string   `yaml:"scope"`
	Introspect   bool     `yaml:"introspect"`
}

// LifetimesConfig overrides issued lifetimes (Go durations: "10m", "336h"),
// the YAML section lifetimes.
type LifetimesConfig struct {
	AccessToken     duration
	Code            duration
	RefreshIdle     duration
	RefreshAbsolute duration
	Session         duration
}

// duration is a time.Duration set from the configuration.
type duration time.Duration

// yamlKeys lists the YAML keys of a config struct, in field order.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if k, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}

// configSections are the config's Go types by name, with where they sit in
// the file, for messages about unknown keys.
var configSections = map[string]struct {
	t     reflect.Type
	where string
}{
	"ResourceConfig":  {reflect.TypeFor[ResourceConfig](), "in resources"},
	"TrustConfig":     {reflect.TypeFor[TrustConfig](), "in trust"},
	"ClientConfig":    {reflect.TypeFor[ClientConfig](), "in clients"},
	"IdentityHeaders": {reflect.TypeFor[IdentityHeaders](), "in identity_headers"},
}

var unknownField = regexp.MustCompile(`^(line \d+): field (\S+) not found in type main\.(\w+)$`)

// explainYAMLError rewrites the decoder's messages so that each names the
// key it is about: an unknown key with where it is and the keys that exist
// there, a value of the wrong type with its key and what to write.
func explainYAMLError(err error, src []byte) string {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = slices.Clone(te.Errors)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(src, &root) // the decoder parsed it already
	for i, m := range msgs {
		if g := unknownField.FindStringSubmatch(m); g != nil {
			if sec, ok := configSections[g[3]]; ok {
				msgs[i] = fmt.Sprintf("%s: unknown key %q %s; the keys there are %s", g[1], g[2], sec.where, strings.Join(yamlKeys(sec.t), ", "))
				continue
			}
		}
		g := atLine.FindStringSubmatch(m)
		if g == nil {
			continue
		}
		line, _ := strconv.Atoi(g[1])
		key := keyAtLine(&root, line, "")
		if key == "" || strings.HasPrefix(g[2], key) {
			continue
		}
		rest := g[2]
		if w := wrongType.FindStringSubmatch(rest); w != nil {
			rest = fmt.Sprintf("%q is not %s", w[1], typeWanted(w[2]))
		}
		msgs[i] = fmt.Sprintf("line %d: %s: %s", line, key, rest)
	}
	return strings.Join(msgs, "; ")
}

var (
	atLine    = regexp.MustCompile(`^line (\d+): (.*)$`)
	wrongType = regexp.MustCompile("^cannot unmarshal !!\\w+ `(.*)` into (.+)$")
)

// typeWanted says in words what a value of Go type t is written as.
func typeWanted(t string) string {
	switch {
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "[]"):
		return "a list such as [a, b]"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "main."):
		return "a mapping of keys"
	}
	return "a " + t
}

// keyAtLine returns the dotted path (clients[0].secret) of the innermost
// key on line or whose value starts there, or "".
func keyAtLine(n *yaml.Node, line int, path string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if k := keyAtLine(c, line, path); k != "" {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if inner := keyAtLine(v, line, p); inner != "" {
				return inner
			}
			if k.Line == line || v.Line == line {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if inner := keyAtLine(c, line, p); inner != "" {
				return inner
			}
			if c.Line == line {
				return p
			}
		}
	}
	return ""
}

// resolveConfig merges defaults < config file < environment < flags.
func resolveConfig(sf *serveFlags, getenv func(string) string) (Config, error) {
	c, err := sf.resolve(getenv)
	if err != nil {
		return c, err
	}
	if c.Issuer == "" {
		c.Issuer = defaultIssuer(c.Addr)
	}
	return c, c.validate()
}

// defaultIssuer is http://localhost:PORT for a loopback address.
func defaultIssuer(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return ""
	}
	return "http://localhost:" + port
}

// parseResource reads a --resource value, URL[=scope1,scope2].
func parseResource(v string) (ResourceConfig, error) {
	u, scopes, _ := strings.Cut(v, "=")
	rc := ResourceConfig{URL: u}
	for _, s := range strings.Split(scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			rc.Scopes = append(rc.Scopes, s)
		}
	}
	if _, err := oauth.CanonicalResource(u); err != nil {
		return rc, fmt.Errorf("%v; write the MCP server URL, optionally followed by =scope1,scope2", err)
	}
	return rc, nil
}

// hostPort checks a listen address; example is one that works.
func hostPort(example string) func(string) error {
	return func(v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("must be host:port, e.g. %s", example)
		}
		return nil
	}
}

// issuerProblem says what is wrong with an issuer URL, or nil: it is a
// public URL (publicURLProblem) without a trailing slash.
func issuerProblem(v string) error {
	if err := publicURLProblem(v); err != nil {
		return err
	}
	if strings.HasSuffix(v, "/") {
		return fmt.Errorf("remove the trailing slash (write %s); clients compare the issuer exactly (RFC 8414 §3.3), so it must be written the way the metadata publishes it",
			strings.TrimRight(v, "/"))
	}
	return nil
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// trustedProxies parses trusted_proxies: addresses or CIDR prefixes.
func (c *Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range c.TrustedProxies {
		p, err := proxyPrefix(v)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies %q: %w", v, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// proxyPrefix reads a trusted proxy: an address or a CIDR prefix.
func proxyPrefix(v string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		a, aerr := netip.ParseAddr(v)
		if aerr != nil {
			return p, errors.New("not an IP address or CIDR prefix; write e.g. 10.0.0.0/8 or 192.0.2.7")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return p.Masked(), nil
}

// validate fails fast with a message that names the key and the fix. The
// table checked each setting's own value; what is left are the rules
// between settings and the file's structured sections.
func (c *Config) validate() error {
	if c.Issuer == "" {
		return fmt.Errorf("issuer: set --issuer (MCPAUTH_ISSUER) to the public URL of this server, e.g. https://auth.example.com")
	}
	if err := c.Lifetimes.validate(); err != nil {
		return err
	}
	if c.DevAllowLoopback && !isLoopbackAddr(c.Addr) {
		return fmt.Errorf("dev-allow-loopback: only accepted when --addr is a loopback address (got %q); it must never run in production (CIMD section 8.6)", c.Addr)
	}
	if c.DevAutoApprove != "" && !c.DevAllowLoopback {
		return fmt.Errorf("dev-auto-approve: only accepted together with --dev-allow-loopback (automated tests on one machine)")
	}
	for i, r := range c.Resources {
		if _, err := oauth.CanonicalResource(r.URL); err != nil {
			return fmt.Errorf("resources[%d].url %q: %v", i, r.URL, err)
		}
	}
	if _, err := cimd.NewPolicy(cimd.PolicyConfig{Allow: c.Trust.Allow, Deny: c.Trust.Deny}); err != nil {
		return fmt.Errorf("trust: %v", err)
	}
	for i, cl := range c.Clients {
		if cl.ClientID == "" || strings.HasPrefix(cl.ClientID, "https://") || strings.HasPrefix(cl.ClientID, "http://") {
			return fmt.Errorf("clients[%d].client_id %q: required, and must not start with https:// or http:// (those are CIMD client ids)", i, cl.ClientID)
		}
		if cl.Introspect && cl.Secret == "" {
			return fmt.Errorf("clients[%d] (%s): introspect: true needs a secret, so that only this resource server can introspect", i, cl.ClientID)
		}
		if len(cl.RedirectURIs) == 0 && !cl.Introspect {
			return fmt.Errorf("clients[%d] (%s): list redirect_uris, or set introspect: true for a resource server", i, cl.ClientID)
		}
	}
	return nil
}

// Upper bounds of configurable lifetimes.
const (
	maxCodeLifetime   = 10 * time.Minute // RFC 6749 §4.1.2: codes live at most 10 minutes
	maxAccessLifetime = 30 * time.Minute // access tokens stay short-lived
)

// validate checks the lifetimes against each other (the table bounds each
// one).
func (l LifetimesConfig) validate() error {
	// Compared as they take effect, defaults included (14 days idle, 90
	// days absolute): an idle lifetime past the absolute one means nothing.
	eff := authserver.Lifetimes{RefreshIdle: time.Duration(l.RefreshIdle), RefreshAbsolute: time.Duration(l.RefreshAbsolute)}.WithDefaults()
	if eff.RefreshIdle > eff.RefreshAbsolute {
		return fmt.Errorf("lifetimes.refresh_idle %v is longer than lifetimes.refresh_absolute %v (defaults included): make refresh_idle the shorter one",
			eff.RefreshIdle, eff.RefreshAbsolute)
	}
	return nil
}

func isLoopbackHostName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) authResources() []authserver.Resource {
	var out []authserver.Resource
	for _, r := range c.Resources {
		out = append(out, authserver.Resource{URL: r.URL, Scopes: r.Scopes, Name: r.Name})
	}
	return out
}

func (c *Config) staticClients() []authserver.StaticClient {
	var out []authserver.StaticClient
	for _, cl := range c.Clients {
		sc := authserver.StaticClient{ClientID: cl.ClientID, Name: cl.Name, RedirectURIs: cl.RedirectURIs,
			GrantTypes: cl.GrantTypes, Scope: cl.Scope, Introspect: cl.Introspect}
		if cl.Secret != "" {
			sc.SecretHash = token.Hash(cl.Secret)
		}
		out = append(out, sc)
	}
	return out
}

func (c *Config) lifetimes() authserver.Lifetimes {
	l := c.Lifetimes
	return authserver.Lifetimes{AccessToken: time.Duration(l.AccessToken), Code: time.Duration(l.Code),
		RefreshIdle: time.Duration(l.RefreshIdle), RefreshAbsolute: time.Duration(l.RefreshAbsolute), Session: time.Duration(l.Session)}
}
