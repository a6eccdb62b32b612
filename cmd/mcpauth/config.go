package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
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
// precedence. It is validated once, at start (CONVENTIONS 13).
type Config struct {
	Addr                  string           `yaml:"addr"`
	Issuer                string           `yaml:"issuer"`
	Data                  string           `yaml:"data"`
	Store                 string           `yaml:"store"`
	StoreMaxConns         int              `yaml:"store_max_conns"`
	StoreStatementTimeout time.Duration    `yaml:"-"`
	LogFormat             string           `yaml:"log_format"`
	DevAllowLoopback      bool             `yaml:"dev_allow_loopback"`
	DevAutoApprove        string           `yaml:"dev_auto_approve"`
	CIMDCAFile            string           `yaml:"cimd_ca_file"`
	EnableDCR             bool             `yaml:"enable_dcr"`
	TrustedProxies        []string         `yaml:"trusted_proxies"`
	Resources             []ResourceConfig `yaml:"resources"`
	Trust                 TrustConfig      `yaml:"trust"`
	Clients               []ClientConfig   `yaml:"clients"`
	Lifetimes             LifetimesConfig  `yaml:"lifetimes"`
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
}

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

// LifetimesConfig overrides issued lifetimes (Go durations: "10m", "336h").
type LifetimesConfig struct {
	AccessToken     duration `yaml:"access_token"`
	Code            duration `yaml:"code"`
	RefreshIdle     duration `yaml:"refresh_idle"`
	RefreshAbsolute duration `yaml:"refresh_absolute"`
	Session         duration `yaml:"session"`
}

type duration time.Duration

// UnmarshalYAML reads a Go duration ("30s", "10m"); lifetimes name their
// key themselves (LifetimesConfig.UnmarshalYAML).
func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v <= 0 {
		return fmt.Errorf("line %d: %q is not a positive duration such as 30s or 10m", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// UnmarshalYAML reads the lifetimes mapping, naming the key of a value that
// is not a positive duration.
func (l *LifetimesConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: lifetimes: write a mapping such as access_token: 10m", n.Line)
	}
	keys := map[string]*duration{"access_token": &l.AccessToken, "code": &l.Code, "refresh_idle": &l.RefreshIdle,
		"refresh_absolute": &l.RefreshAbsolute, "session": &l.Session}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return fmt.Errorf("line %d: lifetimes.%s is set twice; keep one", k.Line, k.Value)
		}
		seen[k.Value] = true
		dst, ok := keys[k.Value]
		if !ok {
			return fmt.Errorf("line %d: lifetimes.%s is not a setting; use %s", k.Line, k.Value, strings.Join(yamlKeys(reflect.TypeFor[LifetimesConfig]()), ", "))
		}
		d, err := time.ParseDuration(v.Value)
		if v.Kind != yaml.ScalarNode || err != nil || d <= 0 {
			return fmt.Errorf("line %d: lifetimes.%s %q: write a positive duration such as 10m or 336h", v.Line, k.Value, v.Value)
		}
		*dst = duration(d)
	}
	return nil
}

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
	"Config":          {reflect.TypeFor[Config](), "at the top level"},
	"ResourceConfig":  {reflect.TypeFor[ResourceConfig](), "in resources"},
	"TrustConfig":     {reflect.TypeFor[TrustConfig](), "in trust"},
	"ClientConfig":    {reflect.TypeFor[ClientConfig](), "in clients"},
	"ProxyConfig":     {reflect.TypeFor[ProxyConfig](), "at the top level"},
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

// loadConfigFile reads a YAML config; unknown keys are errors naming the key.
func loadConfigFile(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("--config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty config
		return c, fmt.Errorf("config %s: %s", path, explainYAMLError(err, b))
	}
	return c, nil
}

// serveFlags registers the serve flags with their environment fallbacks.
type serveFlags struct {
	fs            *flag.FlagSet
	addr          *string
	issuer        *string
	data          *string
	config        *string
	store         *string
	storeMaxConns *int
	storeTimeout  *time.Duration
	logFormat     *string
	devLoop       *bool
	devAuto       *string
	caFile        *string
	dcr           *bool
	resources     stringList
	proxies       stringList
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// resolveConfig merges defaults < config file < environment < flags.
func resolveConfig(sf *serveFlags, getenv func(string) string) (Config, error) {
	var c Config
	if *sf.config != "" {
		var err error
		if c, err = loadConfigFile(*sf.config); err != nil {
			return c, err
		}
	} else if p := getenv("MCPAUTH_CONFIG"); p != "" {
		var err error
		if c, err = loadConfigFile(p); err != nil {
			return c, err
		}
	}
	set := map[string]bool{}
	sf.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	str := func(dst *string, name, env, def string, flagVal string) {
		switch {
		case set[name]:
			*dst = flagVal
		case getenv(env) != "":
			*dst = getenv(env)
		case *dst == "":
			*dst = def
		}
	}
	var envErr error
	boolean := func(dst *bool, name, env string, flagVal bool) {
		switch {
		case set[name]:
			*dst = flagVal
		case getenv(env) != "":
			v, err := parseEnvBool(getenv, env)
			if err != nil && envErr == nil {
				envErr = err
			}
			*dst = v
		}
	}
	str(&c.Addr, "addr", "MCPAUTH_ADDR", "127.0.0.1:8080", *sf.addr)
	str(&c.Data, "data", "MCPAUTH_DATA", "./mcpauth-data", *sf.data)
	str(&c.Store, "store", "MCPAUTH_STORE", "", *sf.store)
	switch {
	case set["store-max-conns"]:
		c.StoreMaxConns = *sf.storeMaxConns
	case getenv("MCPAUTH_STORE_MAX_CONNS") != "":
		n, err := strconv.Atoi(getenv("MCPAUTH_STORE_MAX_CONNS"))
		if err != nil || n < 1 {
			return c, fmt.Errorf("MCPAUTH_STORE_MAX_CONNS %q: a positive number of connections", getenv("MCPAUTH_STORE_MAX_CONNS"))
		}
		c.StoreMaxConns = n
	}
	switch {
	case set["store-statement-timeout"]:
		c.StoreStatementTimeout = *sf.storeTimeout
	case getenv("MCPAUTH_STORE_STATEMENT_TIMEOUT") != "":
		d, err := time.ParseDuration(getenv("MCPAUTH_STORE_STATEMENT_TIMEOUT"))
		if err != nil || d <= 0 {
			return c, fmt.Errorf("MCPAUTH_STORE_STATEMENT_TIMEOUT %q: a positive duration such as 5s", getenv("MCPAUTH_STORE_STATEMENT_TIMEOUT"))
		}
		c.StoreStatementTimeout = d
	}
	if c.StoreMaxConns < 0 || c.StoreMaxConns > 1000 {
		return c, fmt.Errorf("store-max-conns %d: between 1 and 1000", c.StoreMaxConns)
	}
	if c.StoreStatementTimeout < 0 {
		return c, fmt.Errorf("store-statement-timeout %v: must be positive", c.StoreStatementTimeout)
	}
	str(&c.LogFormat, "log-format", "MCPAUTH_LOG_FORMAT", "text", *sf.logFormat)
	str(&c.DevAutoApprove, "dev-auto-approve", "MCPAUTH_DEV_AUTO_APPROVE", "", *sf.devAuto)
	str(&c.CIMDCAFile, "cimd-ca-file", "MCPAUTH_CIMD_CA_FILE", "", *sf.caFile)
	boolean(&c.DevAllowLoopback, "dev-allow-loopback", "MCPAUTH_DEV_ALLOW_LOOPBACK", *sf.devLoop)
	boolean(&c.EnableDCR, "enable-dcr", "MCPAUTH_ENABLE_DCR", *sf.dcr)
	if envErr != nil {
		return c, envErr
	}
	defIssuer := ""
	if c.Issuer == "" {
		defIssuer = defaultIssuer(c.Addr)
	}
	str(&c.Issuer, "issuer", "MCPAUTH_ISSUER", defIssuer, *sf.issuer)
	switch {
	case len(sf.proxies) > 0:
		c.TrustedProxies = sf.proxies
	case getenv("MCPAUTH_TRUSTED_PROXIES") != "":
		c.TrustedProxies = strings.Fields(strings.ReplaceAll(getenv("MCPAUTH_TRUSTED_PROXIES"), ",", " "))
	}
	res := []string(sf.resources)
	if len(res) == 0 && getenv("MCPAUTH_RESOURCE") != "" {
		res = strings.Fields(getenv("MCPAUTH_RESOURCE"))
	}
	for _, r := range res {
		rc, err := parseResourceFlag(r)
		if err != nil {
			return c, err
		}
		c.Resources = append(c.Resources, rc)
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

// parseResourceFlag reads --resource URL[=scope1,scope2].
func parseResourceFlag(v string) (ResourceConfig, error) {
	u, scopes, _ := strings.Cut(v, "=")
	rc := ResourceConfig{URL: u}
	for _, s := range strings.Split(scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			rc.Scopes = append(rc.Scopes, s)
		}
	}
	if _, err := oauth.CanonicalResource(u); err != nil {
		return rc, fmt.Errorf("--resource %q: %v; write the MCP server URL, optionally followed by =scope1,scope2", v, err)
	}
	return rc, nil
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
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("trusted_proxies %q: not an IP address or CIDR prefix; write e.g. 10.0.0.0/8 or 192.0.2.7", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// validate fails fast with a message that names the key and the fix.
func (c *Config) validate() error {
	if _, err := c.trustedProxies(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr %q: must be host:port, e.g. 127.0.0.1:8080", c.Addr)
	}
	if c.Issuer == "" {
		return fmt.Errorf("issuer: set --issuer (MCPAUTH_ISSUER) to the public URL of this server, e.g. https://auth.example.com")
	}
	iu, err := url.Parse(c.Issuer)
	switch {
	case err != nil || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" || iu.User != nil:
		return fmt.Errorf("issuer %q: must be an absolute URL without query, fragment or user info", c.Issuer)
	case iu.Scheme == "http" && !isLoopbackHostName(iu.Hostname()):
		return fmt.Errorf("issuer %q: an http issuer is accepted only on a loopback host; use https:// for %s", c.Issuer, iu.Hostname())
	case iu.Scheme != "http" && iu.Scheme != "https":
		return fmt.Errorf("issuer %q: must be https", c.Issuer)
	case strings.HasSuffix(iu.Path, "/"):
		return fmt.Errorf("issuer %q: remove the trailing slash (write %s); clients compare the issuer exactly (RFC 8414 §3.3), so it must be written the way the metadata publishes it",
			c.Issuer, strings.TrimRight(c.Issuer, "/"))
	}
	if err := c.Lifetimes.validate(); err != nil {
		return err
	}
	if c.DevAllowLoopback && !isLoopbackAddr(c.Addr) {
		return fmt.Errorf("dev-allow-loopback: only accepted when --addr is a loopback address (got %q); it must never run in production (SPEC B5)", c.Addr)
	}
	if c.DevAutoApprove != "" && !c.DevAllowLoopback {
		return fmt.Errorf("dev-auto-approve: only accepted together with --dev-allow-loopback (automated tests on one machine)")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format %q: use text or json", c.LogFormat)
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
	maxCodeLifetime   = 10 * time.Minute // SPEC F1: codes live at most 10 minutes
	maxAccessLifetime = 30 * time.Minute // SPEC F9: access tokens stay short-lived
)

// validate checks the lifetimes against the bounds the specifications set.
func (l LifetimesConfig) validate() error {
	switch {
	case time.Duration(l.Code) > maxCodeLifetime:
		return fmt.Errorf("lifetimes.code %v: at most %v (authorization codes are short-lived, SPEC F1)", time.Duration(l.Code), maxCodeLifetime)
	case time.Duration(l.AccessToken) > maxAccessLifetime:
		return fmt.Errorf("lifetimes.access_token %v: at most %v (SPEC F9: access tokens are short-lived; refresh tokens keep the session going)",
			time.Duration(l.AccessToken), maxAccessLifetime)
	}
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
