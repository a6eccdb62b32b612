package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// commandTable is one command's configuration table for the tests below:
// a fresh table over a fresh configuration for each call.
type commandTable struct {
	name string
	make func() (t *table, resolve func(getenv func(string) string) (any, error))
}

func commandTables() []commandTable {
	return []commandTable{
		{"serve", func() (*table, func(func(string) string) (any, error)) {
			sf := newServeFlags(io.Discard)
			return sf.table, func(getenv func(string) string) (any, error) { return sf.resolve(getenv) }
		}},
		{"proxy", func() (*table, func(func(string) string) (any, error)) {
			pf := newProxyFlags(io.Discard)
			return pf.table, func(getenv func(string) string) (any, error) { return pf.resolve(getenv) }
		}},
	}
}

// settingSamples are three valid values of every setting, by YAML key or,
// for a setting without one, by flag: the flag's, the environment's and
// the file's. Neighbours differ, and the file's differs from the default,
// so that every layer that wins shows.
var settingSamples = map[string][3]string{
	// serve
	"addr": {"127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"}, "metrics_addr": {"127.0.0.1:1004", "127.0.0.1:1005", "127.0.0.1:1006"}, "issuer": {"https://a.example", "https://b.example", "https://c.example"},
	"data": {"/d1", "/d2", "/d3"}, "store": {"postgres://a/x", "postgres://b/x", "postgres://c/x"}, "store_max_conns": {"1", "2", "3"},
	"store-statement-timeout": {"1s", "2s", "3s"}, "log_format": {"json", "text", "json"}, "log_level": {"debug", "warn", "error"}, "dev_allow_loopback": {"true", "false", "true"},
	"dev_auto_approve": {"a", "b", "c"}, "cimd_ca_file": {"/a.pem", "/b.pem", "/c.pem"}, "key_encryption_key_file": {"/a.kek", "/b.kek", "/c.kek"}, "enable_dcr": {"true", "off", "yes"},
	"trusted_proxies": {"10.0.0.1", "10.0.0.0/8", "192.0.2.7"}, "resource": {"https://a.example/mcp", "https://b.example/mcp=x", "-"},
	"lifetimes.access_token": {"-", "-", "5m"}, "lifetimes.code": {"-", "-", "1m"}, "lifetimes.refresh_idle": {"-", "-", "24h"},
	"lifetimes.refresh_absolute": {"-", "-", "48h"}, "lifetimes.session": {"-", "-", "1h"},
	// proxy
	"listen": {"127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"}, "upstream": {"http://127.0.0.1:1/a", "http://127.0.0.1:1/b", "http://127.0.0.1:1/c"},
	"resource_url": {"https://a.example/mcp", "https://b.example/mcp", "https://c.example/mcp"}, "scopes": {"a", "b", "c"},
	"introspect": {"on", "off", "1"}, "introspection_endpoint": {"https://a.example/i", "https://b.example/i", "https://c.example/i"},
	"client_id": {"a", "b", "c"}, "client_secret_file": {"/a", "/b", "/c"}, "max_body_bytes": {"1", "2", "3"}, "upstream_timeout": {"1s", "2s", "3s"}, "introspect_cache": {"1s", "2s", "3s"},
}

// yamlOf is a file that sets key to v ("lifetimes.code" is a section).
func yamlOf(key, v string, list bool) string {
	val := fmt.Sprintf("%q", v)
	if list {
		val = "[" + val + "]"
	}
	if section, sub, ok := strings.Cut(key, "."); ok {
		return fmt.Sprintf("%s:\n  %s: %s\n", section, sub, val)
	}
	return fmt.Sprintf("%s: %s\n", key, val)
}

// TestSettingsPrecedence: for every row of every table, the flag wins over
// the environment, which wins over the file, which wins over the default.
// Each result is compared with the configuration that layer gives alone.
func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	for _, ct := range commandTables() {
		tab, _ := ct.make()
		for i, r := range tab.rows {
			name := r.key
			if name == "" {
				name = r.flag
			}
			t.Run(ct.name+"/"+name, func(t *testing.T) {
				s, ok := settingSamples[name]
				if !ok {
					t.Fatalf("no samples for %s: add them to settingSamples", name)
				}
				file := filepath.Join(dir, fmt.Sprintf("%s-%d.yaml", ct.name, i))
				if err := os.WriteFile(file, []byte(yamlOf(r.key, s[2], r.list != "")), 0o600); r.key != "" && err != nil {
					t.Fatal(err)
				}
				// layers: 1 flag, 2 environment, 4 file.
				resolveWith := func(layers int) any {
					t.Helper()
					tab, resolve := ct.make()
					var args []string
					env := map[string]string{}
					if layers&1 != 0 {
						args = append(args, "--"+r.flag+"="+s[0])
					}
					if layers&2 != 0 {
						env[r.env] = s[1]
					}
					if layers&4 != 0 {
						env[tab.config.env] = file
					}
					if err := tab.fs.Parse(args); err != nil {
						t.Fatal(err)
					}
					got, err := resolve(func(k string) string { return env[k] })
					if err != nil {
						t.Fatalf("layers %03b: %v", layers, err)
					}
					return got
				}
				var have []int // the layers this setting has, highest first
				for bit, present := range []bool{r.flag != "", r.env != "", r.key != ""} {
					if present {
						have = append(have, 1<<bit)
					}
				}
				if len(have) == 0 {
					t.Fatal("a setting with no flag, variable or key")
				}
				for i, l := range have {
					// l together with every layer below it: l wins...
					mask := 0
					for _, lower := range have[i:] {
						mask |= lower
					}
					alone := resolveWith(l)
					if diff := cmp.Diff(alone, resolveWith(mask)); diff != "" {
						t.Errorf("layers %03b: layer %03b must win (-alone +together):\n%s", mask, l, diff)
					}
					// ...and it shows: without it the result differs.
					if cmp.Equal(alone, resolveWith(mask&^l)) {
						t.Errorf("layers %03b without %03b give the same: the samples do not show the precedence", mask, l)
					}
				}
			})
		}
	}
}

// TestSettingErrorsNameTheirSource: a bad value reads the same whether it
// came from the flag, the environment or the file, naming where it came
// from.
func TestSettingErrorsNameTheirSource(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		command, flag, env, key string
		list                    bool
		bad, fix                string
	}{
		{"serve", "store-max-conns", "MCPAUTH_STORE_MAX_CONNS", "store_max_conns", false, "0", "write a number of connections from 1 to 1000"},
		{"serve", "store-max-conns", "MCPAUTH_STORE_MAX_CONNS", "store_max_conns", false, "many", "write a number of connections from 1 to 1000"},
		{"serve", "log-format", "MCPAUTH_LOG_FORMAT", "log_format", false, "xml", "use text or json"},
		{"serve", "log-level", "MCPAUTH_LOG_LEVEL", "log_level", false, "verbose", "use debug, info, warn or error"},
		{"proxy", "log-level", "MCPAUTH_LOG_LEVEL", "log_level", false, "trace", "use debug, info, warn or error"},
		{"serve", "enable-dcr", "MCPAUTH_ENABLE_DCR", "enable_dcr", false, "maybe", "use true or false"},
		{"serve", "dev-allow-loopback", "MCPAUTH_DEV_ALLOW_LOOPBACK", "dev_allow_loopback", false, "sometimes", "use true or false"},
		{"serve", "addr", "MCPAUTH_ADDR", "addr", false, "8080", "must be host:port, e.g. 127.0.0.1:8080"},
		{"serve", "issuer", "MCPAUTH_ISSUER", "issuer", false, "http://auth.example.com", "http is accepted only on a loopback host; use https://auth.example.com"},
		{"serve", "trusted-proxy", "MCPAUTH_TRUSTED_PROXIES", "trusted_proxies", true, "10.0.0.0/33", "not an IP address or CIDR prefix; write e.g. 10.0.0.0/8 or 192.0.2.7"},
		{"proxy", "max-body", "MCPAUTH_PROXY_MAX_BODY", "max_body_bytes", false, "-1", "write a positive number of bytes, e.g. 4194304"},
		{"proxy", "upstream-timeout", "MCPAUTH_PROXY_UPSTREAM_TIMEOUT", "upstream_timeout", false, "soon", "write a positive duration such as 60s or 5m"},
		{"proxy", "introspect", "MCPAUTH_PROXY_INTROSPECT", "introspect", false, "perhaps", "use true or false"},
		{"proxy", "scope", "MCPAUTH_PROXY_SCOPE", "scopes", true, `a"b`, "a scope is one word without spaces, quotes or backslashes (RFC 6749 §3.3)"},
		{"proxy", "upstream", "MCPAUTH_PROXY_UPSTREAM", "upstream", false, "ftp://x/mcp", "must be an absolute http or https URL without user info or fragment, e.g. http://127.0.0.1:3001/mcp"},
	} {
		t.Run(tc.command+"/"+tc.flag+"="+tc.bad, func(t *testing.T) {
			file := filepath.Join(dir, tc.flag+".yaml")
			if err := os.WriteFile(file, []byte(yamlOf(tc.key, tc.bad, tc.list)), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, src := range []struct {
				args []string
				env  map[string]string
				want string
			}{
				{[]string{"--" + tc.flag + "=" + tc.bad}, nil, fmt.Sprintf("--%s %q: %s", tc.flag, tc.bad, tc.fix)},
				{nil, map[string]string{tc.env: tc.bad}, fmt.Sprintf("%s %q: %s", tc.env, tc.bad, tc.fix)},
				{[]string{"--config", file}, nil, fmt.Sprintf("config %s: line 1: %s %q: %s", file, tc.key, tc.bad, tc.fix)},
			} {
				for _, ct := range commandTables() {
					if ct.name != tc.command {
						continue
					}
					tab, resolve := ct.make()
					if err := tab.fs.Parse(src.args); err != nil {
						t.Fatal(err)
					}
					_, err := resolve(func(k string) string { return src.env[k] })
					if err == nil || err.Error() != src.want {
						t.Errorf("%v %v: error %v\nwant %s", src.args, src.env, err, src.want)
					}
				}
			}
		})
	}
}

// TestSettingsHelp: every flag's help names its environment variable and
// YAML key, so that the three names of a setting are found together.
func TestSettingsHelp(t *testing.T) {
	for _, ct := range commandTables() {
		tab, _ := ct.make()
		var b strings.Builder
		tab.fs.SetOutput(&b)
		tab.fs.PrintDefaults()
		for _, r := range append(tab.rows, tab.config) {
			if r.flag == "" {
				continue
			}
			if !strings.Contains(b.String(), "-"+r.flag+" ") && !strings.Contains(b.String(), "-"+r.flag+"\n") {
				t.Errorf("%s --help lacks -%s", ct.name, r.flag)
			}
			var want []string
			if r.env != "" {
				want = append(want, "env "+r.env)
			}
			if r.key != "" {
				want = append(want, "YAML "+r.key)
			}
			for _, w := range want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("%s --help lacks %q:\n%s", ct.name, w, b.String())
				}
			}
		}
	}
}
