package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/authserver"
)

// syncBuffer is a goroutine-safe writer for a server's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServe runs `mcpauth serve` in-process until the test ends and
// returns its base URL and stdout.
func startServe(t *testing.T, env map[string]string, args ...string) (string, *syncBuffer) {
	t.Helper()
	base, out, _ := startServeLogs(t, env, args...)
	return base, out
}

// startServeLogs is startServe that also returns the server's stderr (logs).
func startServeLogs(t *testing.T, env map[string]string, args ...string) (string, *syncBuffer, *syncBuffer) {
	t.Helper()
	return startServeWith(t, env, defaultServeIntervals(), args...)
}

// startServeWith is startServeLogs with the periods of serve's background
// work.
func startServeWith(t *testing.T, env map[string]string, iv serveIntervals, args ...string) (string, *syncBuffer, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runServeWith(ctx, args, func(k string) string { return env[k] }, out, errOut, iv)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v\nstderr:\n%s", err, errOut.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	for range 200 {
		if base, ok := listenedOn(out.String() + errOut.String()); ok {
			return base, out, errOut
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\nstderr:\n%s", err, errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start\nstdout:\n%s\nstderr:\n%s", out, errOut)
	return "", nil, nil
}

// adminPassword reads the password of user admin that a first start with
// stdout not a terminal wrote to the data directory.
func adminPassword(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "initial-admin-password"))
	if err != nil {
		t.Fatalf("initial admin password: %v", err)
	}
	pw := strings.TrimSuffix(string(b), "\n")
	if len(pw) < 20 || strings.ContainsAny(pw, " \n") {
		t.Fatalf("initial admin password %q: want one line of at least 20 characters", pw)
	}
	return pw
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeZeroConfigFirstStart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	base, out, logs := startServeLogs(t, nil, "--addr", addr, "--data", data)
	// stdout is not a terminal here: the password is in a file, the log
	// names the file and says how to add users.
	pw := adminPassword(t, data)
	if strings.Contains(out.String(), pw) || strings.Contains(logs.String(), pw) {
		t.Errorf("the admin password must not be printed when stdout is not a terminal:\nstdout:\n%s\nstderr:\n%s", out, logs)
	}
	if path := filepath.Join(data, "initial-admin-password"); !strings.Contains(logs.String(), path) || !strings.Contains(logs.String(), "mcpauth users add") {
		t.Errorf("the log must name %s and say how to add users:\n%s", path, logs)
	}
	if want := "issuer http://localhost:" + strings.Split(addr, ":")[1]; !strings.Contains(out.String(), want) {
		t.Errorf("default issuer: want %q in %q", want, out)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/.well-known/oauth-authorization-server": `"client_id_metadata_document_supported":true`, "/jwks": `"kty":"EC"`} {
		code, body := get(t, base+path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	for name, mode := range map[string]os.FileMode{"": 0o700, "mcpauth.db": 0o600, "initial-admin-password": 0o600} {
		fi, err := os.Stat(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s/%s mode %v, want %v", data, name, fi.Mode().Perm(), mode)
		}
	}
}

func TestServeRejectsBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("trust:\n  alow: [x.example]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badRule := filepath.Join(dir, "rule.yaml")
	if err := os.WriteFile(badRule, []byte("trust:\n  deny: [\"https://x.example\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yamlFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	loop := []string{"--addr", "127.0.0.1:0", "--dev-allow-loopback", "--issuer", "http://localhost:8080"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"G4 http issuer on a public host", []string{"--issuer", "http://auth.example.com"}, nil, "issuer"},
		{"issuer with query", []string{"--issuer", "https://auth.example.com/?x=1"}, nil, "issuer"},
		{"B5 dev loopback needs a loopback addr", []string{"--addr", "0.0.0.0:0", "--dev-allow-loopback", "--issuer", "https://a.example"}, nil, "dev-allow-loopback"},
		{"auto approve needs dev loopback", []string{"--dev-auto-approve", "alice"}, nil, "dev-auto-approve"},
		{"bad resource", []string{"--resource", "not a url"}, nil, "--resource"},
		{"unknown YAML key is named", []string{"--config", badYAML}, nil, "alow"},
		{"bad trust rule is named", []string{"--config", badRule}, nil, "deny rule"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "log-format"},
		{"bad pool size", []string{"--store-max-conns", "-1"}, nil, "store-max-conns"},
		{"bad statement timeout", []string{"--store-statement-timeout", "-5s"}, nil, "store-statement-timeout"},
		{"bad trusted proxy", []string{"--trusted-proxy", "10.0.0.0/33"}, nil, `--trusted-proxy "10.0.0.0/33": not an IP address or CIDR prefix`},
		{"unknown YAML key lists the keys there", []string{"--config", badYAML}, nil, `unknown key "alow" in trust; the keys there are allow, deny, allowlist_only, loopback_clients`},
		{"unknown top-level YAML key", []string{"--config", yamlFile("top.yaml", "isuer: https://a.example\n")}, nil, `unknown key "isuer" at the top level`},
		{"bad lifetime names its key", []string{"--config", yamlFile("life.yaml", "lifetimes:\n  access_token: banana\n")}, nil, `lifetimes.access_token "banana": write a positive duration`},
		{"unknown lifetime is named", []string{"--config", yamlFile("life2.yaml", "lifetimes:\n  acess_token: 5m\n")}, nil, "lifetimes.acess_token is not a setting; use access_token, code"},
		{"F1 code lifetime over 10 minutes", []string{"--config", yamlFile("life3.yaml", "lifetimes:\n  code: 1h\n")}, nil, `line 2: lifetimes.code "1h": at most 10m0s`},
		{"F9 access token lifetime over 30 minutes", []string{"--config", yamlFile("life4.yaml", "lifetimes:\n  access_token: 24h\n")}, nil, `line 2: lifetimes.access_token "24h": at most 30m0s`},
		{"refresh idle longer than absolute", []string{"--config", yamlFile("life5.yaml", "lifetimes:\n  refresh_idle: 48h\n  refresh_absolute: 24h\n")}, nil, "make refresh_idle the shorter one"},
		{"refresh absolute shorter than the default idle", []string{"--config", yamlFile("life6.yaml", "lifetimes:\n  refresh_absolute: 100h\n")}, nil, "lifetimes.refresh_idle 336h0m0s is longer than lifetimes.refresh_absolute 100h0m0s"},
		{"boolean key of the wrong type is named", []string{"--config", yamlFile("bool.yaml", "enable_dcr: maybe\n")}, nil, `line 1: enable_dcr "maybe": use true or false`},
		{"list key of the wrong type is named", []string{"--config", yamlFile("list.yaml", "trust:\n  allow: 7\n")}, nil, `line 2: trust.allow: "7" is not a list such as [a, b]`},
		{"nested key of the wrong type is named", []string{"--config", yamlFile("nested.yaml", "clients:\n  - client_id: rs\n    introspect: sometimes\n")}, nil, `line 3: clients[0].introspect: "sometimes" is not true or false`},
		{"lifetime set twice", []string{"--config", yamlFile("life7.yaml", "lifetimes:\n  code: 5m\n  code: 6m\n")}, nil, "lifetimes.code is set twice"},
		{"G2 issuer with a trailing slash", []string{"--issuer", "https://auth.example.com/tenant1/"}, nil, "write https://auth.example.com/tenant1"},
		{"boolean environment value that is neither", nil, map[string]string{"MCPAUTH_ENABLE_DCR": "maybe", "MCPAUTH_ISSUER": "https://a.example"}, `MCPAUTH_ENABLE_DCR "maybe": use true or false`},
		{"dev loopback environment value that is neither", nil, map[string]string{"MCPAUTH_DEV_ALLOW_LOOPBACK": "sometimes"}, `MCPAUTH_DEV_ALLOW_LOOPBACK "sometimes"`},
		{"auto approve of a user that does not exist", append(slices.Clone(loop), "--dev-auto-approve", "nosuchuser"), nil, `dev-auto-approve "nosuchuser": no such user`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", filepath.Join(dir, "d")}, tt.args...)
			var out, errb bytes.Buffer
			err := run(context.Background(), args, func(k string) string { return tt.env[k] }, strings.NewReader(""), &out, &errb)
			code, errOut := exitCode(err, &errb), errb.String()
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 naming %q", code, errOut, tt.want)
			}
		})
	}
}

func TestServeEnvironmentFallbacks(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	base, out := startServe(t, map[string]string{"MCPAUTH_ADDR": addr, "MCPAUTH_DATA": data,
		"MCPAUTH_ISSUER": "https://auth.example.com", "MCPAUTH_RESOURCE": "https://mcp.example.com/mcp=files:read"})
	if !strings.Contains(out.String(), "issuer https://auth.example.com") {
		t.Errorf("MCPAUTH_ISSUER ignored: %s", out)
	}
	_, body := get(t, base+"/.well-known/oauth-authorization-server")
	if !strings.Contains(body, `"issuer":"https://auth.example.com"`) || !strings.Contains(body, `"files:read"`) {
		t.Errorf("metadata: %s", body)
	}
}

// TestServeEnvironmentSettings: every serve setting has its MCPAUTH_*
// fallback (the config file, DCR, logs, development mode, several resources
// separated by any spaces).
func TestServeEnvironmentSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "env.yaml", "clients:\n  - client_id: rs-env\n    secret: rs-env-secret-12345678901234567890\n    introspect: true\n")
	base, _, logs := startServeLogs(t, map[string]string{
		"MCPAUTH_ADDR": freeAddr(t), "MCPAUTH_DATA": filepath.Join(dir, "data"), "MCPAUTH_CONFIG": cfg,
		"MCPAUTH_ENABLE_DCR": "true", "MCPAUTH_LOG_FORMAT": "json", "MCPAUTH_DEV_ALLOW_LOOPBACK": "1",
		"MCPAUTH_DEV_AUTO_APPROVE": "admin",
		// Several resources, separated by any run of spaces.
		"MCPAUTH_RESOURCE": "https://a.example.com/mcp=a:read   https://b.example.com/mcp=b:write",
	})
	_, body := get(t, base+"/.well-known/oauth-authorization-server")
	for _, want := range []string{`"registration_endpoint":`, `"a:read"`, `"b:write"`} {
		if !strings.Contains(body, want) {
			t.Errorf("metadata lacks %s (MCPAUTH_ENABLE_DCR, MCPAUTH_RESOURCE): %s", want, body)
		}
	}
	// MCPAUTH_CONFIG: the static client from the file may introspect.
	req, _ := http.NewRequest(http.MethodPost, base+"/introspect", strings.NewReader("token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rs-env", "rs-env-secret-12345678901234567890")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(got), `"active":false`) {
		t.Errorf("introspection by the client of MCPAUTH_CONFIG = %d %s, want 200 inactive", resp.StatusCode, got)
	}
	// MCPAUTH_LOG_FORMAT=json and the development-mode warnings.
	var sawAuto bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON (MCPAUTH_LOG_FORMAT=json): %q", line)
		}
		if rec["msg"] == "development mode: login and consent are skipped" && rec["user"] == "admin" {
			sawAuto = true
		}
	}
	if !sawAuto {
		t.Errorf("no auto-approve warning for MCPAUTH_DEV_AUTO_APPROVE=admin in logs:\n%s", logs)
	}
}

func TestUsersCommands(t *testing.T) {
	data := t.TempDir()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"users", "add", "alice", "--password-stdin", "--data", data}, func(string) string { return "" }, strings.NewReader("correct horse battery\n"), &out, &errOut)
	if err != nil {
		t.Fatalf("users add: %v %s", err, errOut.String())
	}
	o, _, code := runCmd(t, "users", "list", "--data", data)
	if code != 0 || !strings.Contains(o, "alice") {
		t.Errorf("users list: %d %s", code, o)
	}
	if _, e, code := runCmd(t, "users", "add", "bob", "--data", data); code != 2 || !strings.Contains(e, "--password-stdin") {
		t.Errorf("users add without --password-stdin: %d %s", code, e)
	}
	if _, _, code := runCmd(t, "users", "remove", "alice", "--data", data); code != 0 {
		t.Errorf("users remove: %d", code)
	}
	if _, e, code := runCmd(t, "users", "remove", "alice", "--data", data); code != 1 || !strings.Contains(e, "no user") {
		t.Errorf("users remove twice: %d %s", code, e)
	}
}

// TestClientsBlockReachesRunningServer: a block written by the CLI stops a
// running server's authorizations for that client within 5 seconds.
func TestClientsBlockReachesRunningServer(t *testing.T) {
	docs := map[string]func(w http.ResponseWriter){}
	doc, ca := checkServer(t, docs)
	clientID := doc.URL + "/client.json"
	docs["/client.json"] = jsonDoc(`{"client_id":"`+clientID+`","client_name":"Blockable","redirect_uris":["http://127.0.0.1/cb"]}`, "Cache-Control", "max-age=3600")
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	base, _ := startServe(t, nil, "--addr", addr, "--data", data, "--dev-allow-loopback", "--cimd-ca-file", ca,
		"--resource", "http://127.0.0.1:9/mcp")
	authorize := base + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {clientID},
		"redirect_uri": {"http://127.0.0.1:5555/cb"}, "code_challenge": {strings.Repeat("a", 43)},
		"code_challenge_method": {"S256"}, "state": {"s"}}.Encode()
	if code, body := get(t, authorize); code != http.StatusSeeOther {
		t.Fatalf("authorize before the block: %d %s", code, body)
	}
	o, e, code := runCmd(t, "clients", "block", "127.0.0.1", "--reason", "abuse", "--data", data)
	if code != 0 {
		t.Fatalf("clients block: %d %s %s", code, o, e)
	}
	// Both token modes get their bound: JWTs live until they expire (the
	// default access-token lifetime), introspection sees the block after
	// the reload and the proxy's cache time.
	for _, want := range []string{"within 4s", "as JWTs", "until they expire", "10m0s unless configured", "for at most 9s", "--introspect-cache, default 5s"} {
		if !strings.Contains(o, want) {
			t.Errorf("clients block output lacks %q:\n%s", want, o)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := get(t, authorize)
		if code == http.StatusBadRequest && strings.Contains(body, "blocked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the block did not reach the running server within 5 s: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	o, _, _ = runCmd(t, "clients", "list", "--data", data)
	sc := bufio.NewScanner(strings.NewReader(o))
	var row, blockRow string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), clientID) {
			row = sc.Text()
		}
		if strings.HasPrefix(sc.Text(), "127.0.0.1 ") {
			blockRow = sc.Text()
		}
	}
	if !strings.Contains(row, "blocked") || !strings.Contains(blockRow, "abuse") {
		t.Errorf("clients list must show the client as blocked and the block with its reason:\n%s", o)
	}
	if _, _, code := runCmd(t, "clients", "unblock", "127.0.0.1", "--data", data); code != 0 {
		t.Errorf("unblock: exit %d", code)
	}
	if _, e, code := runCmd(t, "clients", "block", "not a rule!", "--data", data); code != 2 {
		t.Errorf("malformed block rule: exit %d %s", code, e)
	}
}

func TestServeJSONLogs(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	base, _, logs := startServeLogs(t, nil, "--addr", freeAddr(t), "--data", data, "--log-format", "json")
	if pw := adminPassword(t, data); strings.Contains(logs.String(), pw) {
		t.Errorf("the admin password is in the JSON log:\n%s", logs)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("no log lines")
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Errorf("--log-format json: not a slog JSON record: %q", l)
		}
	}
}

func TestTrustedProxiesSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("trusted_proxies: [192.0.2.7, 10.0.0.0/8]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"config file", []string{"--config", file}, nil, []string{"192.0.2.7/32", "10.0.0.0/8"}},
		{"environment over file", []string{"--config", file}, map[string]string{"MCPAUTH_TRUSTED_PROXIES": "172.16.0.0/12, ::1"}, []string{"172.16.0.0/12", "::1/128"}},
		{"flags over environment", []string{"--trusted-proxy", "10.1.0.0/16", "--trusted-proxy", "10.2.3.4"}, map[string]string{"MCPAUTH_TRUSTED_PROXIES": "172.16.0.0/12"}, []string{"10.1.0.0/16", "10.2.3.4/32"}},
		{"none", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sf := newServeFlags(io.Discard)
			if err := sf.fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			c, err := resolveConfig(sf, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatalf("resolveConfig: %v", err)
			}
			ps, err := c.trustedProxies()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("trusted proxies = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestServePortInUseLeavesNothingBehind: serve binds before it creates the
// data directory, the database, the keys and the admin user.
func TestServePortInUseLeavesNothingBehind(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "data")
	var out, errOut bytes.Buffer
	err = runServe(context.Background(), []string{"--addr", ln.Addr().String(), "--data", data}, func(string) string { return "" }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "cannot listen on "+ln.Addr().String()) || !strings.Contains(err.Error(), "--addr") {
		t.Errorf("serve on a port in use: err %v, want one naming the address and --addr", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data directory %s: stat err %v, want it not created", data, err)
	}
	if strings.Contains(out.String(), "created user admin") {
		t.Errorf("admin created although serve could not listen:\n%s", out.String())
	}
}

// TestFirstUserPassword: the first start shows admin's password on stdout
// when that is a terminal, else writes it to <data>/initial-admin-password
// (mode 0600) and logs the path; never the password into the log.
func TestFirstUserPassword(t *testing.T) {
	for _, tc := range []struct {
		name     string
		terminal bool
	}{{"terminal", true}, {"not a terminal", false}} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			db, err := openStore(t.Context(), "", data)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var out, logs bytes.Buffer
			to := adminPasswordTo{terminal: tc.terminal, stdout: &out, dataDir: data, logger: newLogger("json", "info", &logs)}
			if err := ensureAdmin(t.Context(), db, to); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(data, "initial-admin-password")
			var pw string
			if tc.terminal {
				m := regexp.MustCompile(`created user admin with password (\S+)`).FindStringSubmatch(out.String())
				if m == nil {
					t.Fatalf("no password on the terminal:\n%s", out.String())
				}
				pw = m[1]
				if _, err := os.Stat(file); !os.IsNotExist(err) {
					t.Errorf("%s written although stdout is a terminal (stat: %v)", file, err)
				}
			} else {
				pw = adminPassword(t, data)
				if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v, mode %v; want mode 0600", file, err, fi.Mode().Perm())
				}
				if out.Len() != 0 {
					t.Errorf("stdout, not a terminal: %q, want nothing", out.String())
				}
				var rec struct{ Path string }
				if err := json.Unmarshal(logs.Bytes(), &rec); err != nil || rec.Path != file {
					t.Errorf("log %q: want one JSON record with path %s (%v)", logs.String(), file, err)
				}
			}
			if strings.Contains(logs.String(), pw) {
				t.Errorf("the password is in the log: %s", logs.String())
			}
			u, err := db.GetUserByName(t.Context(), "admin")
			if err != nil || !authserver.VerifyPassword(u.PasswordHash, pw) {
				t.Errorf("admin does not sign in with the password shown (%v)", err)
			}
			// A second start neither creates admin again nor shows anything.
			out.Reset()
			logs.Reset()
			if err := ensureAdmin(t.Context(), db, to); err != nil || out.Len() != 0 || logs.Len() != 0 {
				t.Errorf("second start: err %v, stdout %q, log %q; want nothing", err, out.String(), logs.String())
			}
		})
	}
}

// TestIsTerminal: a pipe, a regular file, /dev/null (a character device,
// but no terminal) and a buffer are not terminals; a pseudo-terminal is.
func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	regular, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	type terminalCase struct {
		name string
		w    io.Writer
		want bool
	}
	cases := []terminalCase{{"pipe", w, false}, {"/dev/null", devNull, false}, {"regular file", regular, false}, {"buffer", &bytes.Buffer{}, false}}
	if runtime.GOOS == "linux" {
		ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		cases = append(cases, terminalCase{"pseudo-terminal", ptmx, true})
	}
	for _, tc := range cases {
		if got := isTerminal(tc.w); got != tc.want {
			t.Errorf("isTerminal(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
