package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/token"
)

// servedInProcess is `mcpauth serve` running in-process on a context of its
// own. Cancelling that context is what SIGTERM does to the real command:
// main wraps run's context in signal.NotifyContext(..., os.Interrupt,
// syscall.SIGTERM).
type servedInProcess struct {
	base, addr string // http://127.0.0.1:PORT and 127.0.0.1:PORT
	out, logs  *syncBuffer
	cancel     context.CancelFunc
	done       chan error

	once sync.Once
	err  error // what run returned, once it has
}

// startServed starts serve with args and waits until it listens. It is
// stopped when the test ends, if it still runs; an error it returns then
// fails the test.
func startServed(t *testing.T, args ...string) *servedInProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &servedInProcess{out: &syncBuffer{}, logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, append([]string{"serve"}, args...), func(string) string { return "" }, strings.NewReader(""), s.out, s.logs)
	}()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("serve returned %v\nstderr:\n%s", err, s.logs)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if base, ok := listenedOn(s.out.String() + s.logs.String()); ok {
			s.base = base
			s.addr = strings.TrimPrefix(s.base, "http://")
			return s
		}
		if s.exited() {
			t.Fatalf("serve exited: %v\nstderr:\n%s", s.err, s.logs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start\nstdout:\n%s\nstderr:\n%s", s.out, s.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop cancels serve's context and returns what run returned.
func (s *servedInProcess) stop() error {
	s.cancel()
	s.once.Do(func() {
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			s.err = errors.New("serve did not return within 30 s of its context being cancelled")
		}
	})
	return s.err
}

// exited reports, without waiting, whether run has returned.
func (s *servedInProcess) exited() bool {
	select {
	case err := <-s.done:
		s.once.Do(func() { s.err = err })
		return true
	default:
		return false
	}
}

// authorizeURL is an authorization request to base for clientID.
func authorizeURL(base, clientID, redirectURI string) string {
	return base + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {clientID},
		"redirect_uri": {redirectURI}, "code_challenge": {strings.Repeat("a", 43)},
		"code_challenge_method": {"S256"}, "state": {"s"}}.Encode()
}

// TestServeGracefulShutdown: when serve's context ends (SIGTERM), it stops
// accepting connections at once, lets a request in flight finish with its
// normal response, and then returns nil.
func TestServeGracefulShutdown(t *testing.T) {
	// The client metadata document is held until the test releases it, so
	// the authorization request is in flight, deterministically, while the
	// server shuts down.
	arrived, release := make(chan struct{}), make(chan struct{})
	var arrivedOnce, releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	docs := map[string]func(w http.ResponseWriter){}
	doc, ca := checkServer(t, docs)
	clientID := doc.URL + "/client.json"
	serveDoc := jsonDoc(`{"client_id":"` + clientID + `","client_name":"Slow","redirect_uris":["http://127.0.0.1/cb"]}`)
	docs["/client.json"] = func(w http.ResponseWriter) {
		arrivedOnce.Do(func() { close(arrived) })
		<-release
		serveDoc(w)
	}
	s := startServed(t, "--addr", freeAddr(t), "--data", filepath.Join(t.TempDir(), "data"), "--dev-allow-loopback",
		"--cimd-ca-file", ca, "--resource", "http://127.0.0.1:9/mcp")
	t.Cleanup(unblock) // runs first: neither serve nor the document server waits for a held fetch

	type result struct {
		status         int
		location, body string
		err            error
	}
	got := make(chan result, 1)
	go func() {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(authorizeURL(s.base, clientID, "http://127.0.0.1:5555/cb"))
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b), err: err}
	}()
	select {
	case <-arrived:
	case r := <-got:
		t.Fatalf("the authorization request ended before its client document was served: %+v", r)
	case <-time.After(30 * time.Second):
		t.Fatal("serve never fetched the client metadata document")
	}

	s.cancel() // SIGTERM
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err != nil {
			break // the listener is closed
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("serve still accepts connections 15 s after its context was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.exited() {
		t.Fatalf("serve returned (%v) while a request was in flight", s.err)
	}

	unblock()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("the request in flight at shutdown failed: %v", r.err)
		}
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?request=") {
			t.Errorf("the request in flight at shutdown got %d Location %q, want its normal 303 to the login page: %s", r.status, r.location, r.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the request in flight at shutdown never got a response")
	}
	if err := s.stop(); err != nil {
		t.Fatalf("serve returned %v after a graceful shutdown, want nil\nstderr:\n%s", err, s.logs)
	}
	if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		c.Close()
		t.Error("a connection was accepted after serve returned")
	}
	if !strings.Contains(s.logs.String(), "shutting down: finishing in-flight requests") {
		t.Errorf("no shutdown log line:\n%s", s.logs)
	}
}

// keyRow is one line of `mcpauth keys list`.
type keyRow struct {
	kid                      string
	active, retire, expireAt time.Time
}

func keysList(t *testing.T, data string) []keyRow {
	t.Helper()
	out, errOut, code := runCmd(t, "keys", "list", "--data", data)
	if code != 0 {
		t.Fatalf("keys list: exit %d %s", code, errOut)
	}
	parse := func(s string) time.Time {
		if s == "-" {
			return time.Time{}
		}
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("keys list: time %q: %v\n%s", s, err, out)
		}
		return v
	}
	var rows []keyRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) != 5 || f[1] != "ES256" {
			t.Fatalf("keys list: unexpected row %q\n%s", line, out)
		}
		rows = append(rows, keyRow{kid: f[0], active: parse(f[2]), retire: parse(f[3]), expireAt: parse(f[4])})
	}
	return rows
}

func findKey(rows []keyRow, kid string) (keyRow, bool) {
	i := slices.IndexFunc(rows, func(r keyRow) bool { return r.kid == kid })
	if i < 0 {
		return keyRow{}, false
	}
	return rows[i], true
}

// jwksKids is the kids of base's JWK Set, in order.
func jwksKids(t *testing.T, base string) []string {
	t.Helper()
	code, body := get(t, base+"/jwks")
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal([]byte(body), &set); code != http.StatusOK || err != nil {
		t.Fatalf("GET %s/jwks: %d %v %s", base, code, err, body)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// TestKeysRotateWithRunningServer: `mcpauth keys rotate` on the SQLite
// store of a running server promotes the next key, which that server
// already published, and publishes a new next key; a server started on the
// rotated store signs with the promoted key and still publishes the old one
// for the tokens it signed. The running server re-reads keys only every
// token.MaintainInterval (a minute), so the test does not wait for that.
func TestKeysRotateWithRunningServer(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	// Keys made an hour ago, as on a server that has run for a while: the
	// next key has been published longer than token.DefaultPublishLead, so
	// the rotation promotes it at once.
	db, err := openStore(t.Context(), "", data)
	if err != nil {
		t.Fatal(err)
	}
	aged := token.NewKeys(db, token.KeyOptions{Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err := aged.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	before := keysList(t, data)
	if len(before) != 2 {
		t.Fatalf("keys list before the rotation: %d keys, want the current and the next one: %+v", len(before), before)
	}
	now := time.Now()
	var cur, next keyRow
	for _, k := range before {
		if k.active.After(now) {
			next = k
		} else {
			cur = k
		}
	}
	if cur.kid == "" || next.kid == "" {
		t.Fatalf("keys list before the rotation: want one current and one next key: %+v", before)
	}

	docs := newDocServer(t)
	addr := freeAddr(t)
	args := []string{"--addr", addr, "--data", data, "--dev-allow-loopback", "--dev-auto-approve", "admin",
		"--cimd-ca-file", docs.ca, "--resource", replicaResource}
	s := startServed(t, args...)
	if got := jwksKids(t, s.base); !slices.Equal(got, []string{cur.kid, next.kid}) {
		t.Fatalf("running server's /jwks = %v, want the current then the next key %v", got, []string{cur.kid, next.kid})
	}
	oc := newOAuthClient(t, docs.client("rotation"))
	old, err := oc.autoFlow(s.base, s.base)
	if err != nil {
		t.Fatal(err)
	}
	if kid := kidOf(old.AccessToken); kid != cur.kid {
		t.Fatalf("signed with %q before the rotation, want the current key %q", kid, cur.kid)
	}

	out, errOut, code := runCmd(t, "keys", "rotate", "--data", data)
	if code != 0 || !strings.Contains(out, "signing now: "+next.kid+"\n") {
		t.Fatalf("keys rotate: exit %d, want %q signing now:\n%s%s", code, next.kid, out, errOut)
	}
	// The message names the promoted key and the retired one, not the new
	// next key the rotation also made.
	if want := regexp.MustCompile(`(?m)^rotated: key ` + regexp.QuoteMeta(next.kid) + ` signs from \S+ \(published before it signs\); ` +
		regexp.QuoteMeta(cur.kid) + ` stays published until its tokens expire$`); !want.MatchString(out) {
		t.Errorf("keys rotate must say that %s replaces %s:\n%s", next.kid, cur.kid, out)
	}
	after := keysList(t, data)
	now = time.Now()
	if len(after) != 3 {
		t.Fatalf("keys list after the rotation: %d keys, want 3 (retired, current, new next): %+v", len(after), after)
	}
	if k, ok := findKey(after, next.kid); !ok || k.active.After(now) || !k.retire.IsZero() {
		t.Errorf("keys list after the rotation: the next key %s must sign now: %+v", next.kid, after)
	}
	if k, ok := findKey(after, cur.kid); !ok || k.retire.IsZero() || k.retire.After(now) || !k.expireAt.After(now) {
		t.Errorf("keys list after the rotation: the old key %s must be retired and still published: %+v", cur.kid, after)
	}
	var newNext keyRow
	for _, k := range after {
		if k.kid != cur.kid && k.kid != next.kid {
			newNext = k
		}
	}
	if newNext.kid == "" || !newNext.active.After(now.Add(token.DefaultPublishLead)) {
		t.Errorf("keys list after the rotation: want a new next key that signs later than %v from now: %+v", token.DefaultPublishLead, after)
	}
	// The running server has not re-read the keys yet (it does every
	// minute), but the key that signs from now on is one it has published
	// since before the rotation.
	if got := jwksKids(t, s.base); !slices.Contains(got, next.kid) || !slices.Contains(got, cur.kid) {
		t.Errorf("running server's /jwks after the rotation = %v, want both %s (signs now) and %s (signed its tokens)", got, next.kid, cur.kid)
	}

	// A restart reads the rotated keys.
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	s2 := startServed(t, args...)
	if got, want := jwksKids(t, s2.base), []string{next.kid, newNext.kid, cur.kid}; !slices.Equal(got, want) {
		t.Errorf("restarted server's /jwks = %v, want current, new next, retired: %v", got, want)
	}
	fresh, err := oc.autoFlow(s2.base, s2.base)
	if err != nil {
		t.Fatal(err)
	}
	if kid := kidOf(fresh.AccessToken); kid != next.kid {
		t.Errorf("restarted server signs with %q, want the promoted key %q", kid, next.kid)
	}
	for name, tok := range map[string]string{"token signed before the rotation": old.AccessToken, "token signed after it": fresh.AccessToken} {
		if err := verifyJWKS(s2.base, tok); err != nil {
			t.Errorf("%s against the restarted server's /jwks: %v", name, err)
		}
	}
}

// TestClientsBlockSurvivesRestart: a block written with `mcpauth clients
// block` to a server's data directory is still listed, with its reason,
// after the server restarts, and the restarted server refuses clients under
// the blocked domain before fetching anything.
func TestClientsBlockSurvivesRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	args := []string{"--addr", addr, "--data", data, "--dev-allow-loopback"}
	s := startServed(t, args...)
	// 127.0.0.1 is blocked too: the restarted server is asked about a
	// loopback client first, so that it would never reach a public host if
	// it had not loaded the blocks.
	for _, b := range [][]string{{"*.example.com", "spam"}, {"127.0.0.1", "loopback guard"}} {
		if out, errOut, code := runCmd(t, "clients", "block", b[0], "--reason", b[1], "--data", data); code != 0 {
			t.Fatalf("clients block %s: exit %d %s%s", b[0], code, out, errOut)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	s = startServed(t, args...)

	out, _, code := runCmd(t, "clients", "list", "--data", data)
	if code != 0 || !regexp.MustCompile(`(?m)^\*\.example\.com\s+\S+\s+spam$`).MatchString(out) {
		t.Fatalf("clients list after the restart: exit %d, want the block *.example.com with reason spam:\n%s", code, out)
	}

	wantBlockedPage := func(clientID, redirectURI, rule string) {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(authorizeURL(s.base, clientID, redirectURI))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, "This request cannot continue") ||
			!strings.Contains(body, "is blocked by this server&#39;s operator (rule &#34;"+rule+"&#34;)") {
			t.Fatalf("authorize %s after the restart: %d Location %q, want the error page saying it is blocked by rule %q:\n%s",
				clientID, resp.StatusCode, resp.Header.Get("Location"), rule, body)
		}
	}
	wantBlockedPage("https://127.0.0.1:9/client.json", "http://127.0.0.1:5555/cb", "127.0.0.1")
	wantBlockedPage("https://app.example.com/client.json", "https://app.example.com/cb", "*.example.com")

	out, _, _ = runCmd(t, "clients", "list", "--data", data)
	if !regexp.MustCompile(`(?m)^https://app\.example\.com/client\.json\s+blocked\s+0\s+\S+\s+\S+\s+client_blocked$`).MatchString(out) {
		t.Errorf("clients list must show the refused client as blocked:\n%s", out)
	}
}

// TestServeConfigFileEverySection starts serve with a YAML file that has
// every section and checks what each one changes.
func TestServeConfigFileEverySection(t *testing.T) {
	docs := newDocServer(t)
	dir := t.TempDir()
	const (
		staticRedirect = "http://127.0.0.1:5555/static-cb"
		accessLife     = 7 * time.Minute
		codeLife       = 2 * time.Minute
		idleLife       = 2 * time.Hour
		absoluteLife   = 48 * time.Hour
		sessionLife    = 3 * time.Hour
	)
	cfg := writeFile(t, dir, "mcpauth.yaml", fmt.Sprintf(`# every section of the configuration file
resources:
  - url: %s
    scopes: [files:read, files:write]
    name: Team Files
trust:
  allow: ["127.0.0.1"]
  deny: [localhost, "*.evil.example"]
  allowlist_only: true
clients:
  - client_id: static-app
    name: Static App
    redirect_uris: [%q]
  - client_id: %s
    secret: %s
    introspect: true
lifetimes:
  access_token: 7m
  code: 2m
  refresh_idle: 2h
  refresh_absolute: 48h
  session: 3h
enable_dcr: true
trusted_proxies: [127.0.0.1, 10.0.0.0/8]
log_format: json
cimd_ca_file: %s
dev_allow_loopback: true
`, replicaResource, staticRedirect, introspector, introspectorSecret, docs.ca))
	data := filepath.Join(dir, "data")
	s := startServed(t, "--addr", freeAddr(t), "--data", data, "--config", cfg)
	adminPassword := adminPassword(t, data)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(u string) (int, string, string) {
		t.Helper()
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(b)
	}

	t.Run("resources and enable_dcr in the metadata", func(t *testing.T) {
		_, body := get(t, s.base+"/.well-known/oauth-authorization-server")
		var md struct {
			Issuer       string   `json:"issuer"`
			Scopes       []string `json:"scopes_supported"`
			Registration string   `json:"registration_endpoint"`
		}
		if err := json.Unmarshal([]byte(body), &md); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(md.Scopes, "files:read") || !slices.Contains(md.Scopes, "files:write") || md.Registration != md.Issuer+"/register" {
			t.Errorf("metadata: scopes_supported %v, registration_endpoint %q; want the configured scopes and %s/register", md.Scopes, md.Registration, md.Issuer)
		}
	})
	t.Run("trust deny and allowlist_only refuse before any fetch", func(t *testing.T) {
		for _, c := range []struct{ clientID, redirect, want string }{
			// A loopback client first: had the trust section been ignored,
			// the fetch would go to 127.0.0.1 and the test stops here.
			{"https://localhost:9/client.json", "http://127.0.0.1:5555/cb", `is blocked by this server&#39;s operator (rule &#34;localhost&#34;)`},
			{"https://app.evil.example/client.json", "https://app.evil.example/cb", `is blocked by this server&#39;s operator (rule &#34;*.evil.example&#34;)`},
			// Resolves to loopback without DNS (RFC 6761): a broken allowlist
			// would fetch from 127.0.0.1:9, where nothing listens.
			{"https://unlisted.localhost:9/client.json", "http://127.0.0.1:5555/cb", `is not on this server&#39;s allowlist`},
		} {
			code, loc, body := fetch(authorizeURL(s.base, c.clientID, c.redirect))
			if code != http.StatusBadRequest || loc != "" || !strings.Contains(body, "This request cannot continue") || !strings.Contains(body, c.want) {
				t.Fatalf("authorize %s: %d Location %q, want the error page saying %q:\n%s", c.clientID, code, loc, c.want, body)
			}
		}
	})
	t.Run("static client with redirect_uris", func(t *testing.T) {
		if code, loc, body := fetch(authorizeURL(s.base, "static-app", staticRedirect)); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?request=") {
			t.Errorf("authorize static-app: %d Location %q, want 303 to the login page: %s", code, loc, body)
		}
		if code, loc, _ := fetch(authorizeURL(s.base, "static-app", "http://127.0.0.1:5555/elsewhere")); code != http.StatusBadRequest || loc != "" {
			t.Errorf("authorize static-app with an unregistered redirect_uri: %d Location %q, want the error page", code, loc)
		}
	})

	// The whole flow for an allowed client: sign in (once with a wrong
	// password through a trusted proxy), consent, code, tokens.
	oc := newOAuthClient(t, docs.client("allowed"))
	verifier, challenge := pkce()
	q := url.Values{"response_type": {"code"}, "client_id": {oc.clientID}, "redirect_uri": {replicaRedirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"st"},
		"resource": {replicaResource}, "scope": {"files:read"}}
	status, loc, body, err := oc.do(http.MethodGet, s.base+"/authorize?"+q.Encode(), nil, "", "")
	if err != nil || status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?request=") {
		t.Fatalf("authorize the allowed client: %d %q %v: %s", status, loc, err, body)
	}
	_, _, loginPage, err := oc.do(http.MethodGet, s.base+loc, nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	postLogin := func(password string, header http.Header) (*http.Response, string) {
		t.Helper()
		form := url.Values{"username": {"admin"}, "password": {password},
			"request": {hidden(loginPage, "request")}, "csrf": {hidden(loginPage, "csrf")}}
		req, err := http.NewRequest(http.MethodPost, s.base+"/login", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := oc.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, page := postLogin("wrong password", http.Header{"X-Forwarded-For": {"203.0.113.9"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("sign-in with a wrong password: %d %s", resp.StatusCode, page)
	}
	resp, page := postLogin(adminPassword, http.Header{})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/consent?request=") {
		t.Fatalf("sign-in: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	t.Run("lifetimes.session is the session cookie's lifetime", func(t *testing.T) {
		i := slices.IndexFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == "mcpauth_session" })
		if i < 0 || resp.Cookies()[i].MaxAge != int(sessionLife/time.Second) {
			t.Errorf("session cookie %v, want Max-Age %d", resp.Header.Values("Set-Cookie"), int(sessionLife/time.Second))
		}
	})
	_, _, consentPage, err := oc.do(http.MethodGet, s.base+resp.Header.Get("Location"), nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("trust allow and the resource name on the consent page", func(t *testing.T) {
		for _, want := range []string{"verified by this server", "<strong>Team Files</strong>", "<li>files:read</li>"} {
			if !strings.Contains(consentPage, want) {
				t.Errorf("consent page lacks %q:\n%s", want, consentPage)
			}
		}
	})
	status, loc, body, err = oc.do(http.MethodPost, s.base+"/consent", url.Values{"decision": {"approve"},
		"request": {hidden(consentPage, "request")}, "csrf": {hidden(consentPage, "csrf")}}, "", "")
	if err != nil || status != http.StatusSeeOther {
		t.Fatalf("approve: %d %v %s", status, err, body)
	}
	issued := time.Now()
	code, err := codeFrom(loc)
	if err != nil {
		t.Fatal(err)
	}
	// The code, the refresh token and its family are stored with the
	// configured lifetimes (SQLite serves several connections at once).
	db, err := openStore(t.Context(), "", data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	near := func(t *testing.T, what string, got, want time.Time) {
		t.Helper()
		if d := got.Sub(want); d < -5*time.Second || d > 5*time.Second {
			t.Errorf("%s = %v, want about %v", what, got, want)
		}
	}
	t.Run("lifetimes.code", func(t *testing.T) {
		c, err := db.GetCode(t.Context(), token.Hash(code))
		if err != nil {
			t.Fatal(err)
		}
		near(t, "code expiry", c.ExpiresAt, issued.Add(codeLife))
	})
	status, ts, err := oc.exchange(s.base, code, verifier)
	if err != nil || status != http.StatusOK {
		t.Fatalf("code exchange: %d %v %+v", status, err, ts)
	}
	t.Run("lifetimes.access_token, refresh_idle, refresh_absolute", func(t *testing.T) {
		var next struct {
			ExpiresIn    int64  `json:"expires_in"`
			RefreshToken string `json:"refresh_token"`
		}
		status, _, body, err := oc.do(http.MethodPost, s.base+"/token", url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {ts.RefreshToken}, "client_id": {oc.clientID}}, "", "")
		refreshed := time.Now()
		if err != nil || status != http.StatusOK || json.Unmarshal([]byte(body), &next) != nil {
			t.Fatalf("refresh: %d %v %s", status, err, body)
		}
		if next.ExpiresIn != int64(accessLife/time.Second) {
			t.Errorf("expires_in = %d, want %d (lifetimes.access_token)", next.ExpiresIn, int64(accessLife/time.Second))
		}
		rt, fam, err := db.GetRefreshToken(t.Context(), token.Hash(next.RefreshToken))
		if err != nil {
			t.Fatal(err)
		}
		near(t, "refresh token expiry", rt.ExpiresAt, refreshed.Add(idleLife))
		near(t, "refresh family expiry", fam.ExpiresAt, issued.Add(absoluteLife))
	})
	t.Run("introspecting client", func(t *testing.T) {
		if active, err := oc.active(s.base, ts.AccessToken); err != nil || !active {
			t.Errorf("introspection of a fresh access token by %s: active %v, %v", introspector, active, err)
		}
		// Without the configured secret, the same client may not.
		status, _, body, err := oc.do(http.MethodPost, s.base+"/introspect", url.Values{"token": {ts.AccessToken}}, introspector, "wrong")
		if err != nil || status != http.StatusUnauthorized {
			t.Errorf("introspection with a wrong secret: %d %v %s", status, err, body)
		}
	})
	t.Run("log_format json and trusted_proxies", func(t *testing.T) {
		var sawRemote bool
		for _, line := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
				t.Fatalf("log line is not a slog JSON record (log_format: json): %q", line)
			}
			if rec["msg"] == "login failed" && rec["remote"] == "203.0.113.9" {
				sawRemote = true
			}
		}
		if !sawRemote {
			t.Errorf("no failed sign-in attributed to X-Forwarded-For 203.0.113.9 sent by the trusted proxy 127.0.0.1:\n%s", s.logs)
		}
	})
}
