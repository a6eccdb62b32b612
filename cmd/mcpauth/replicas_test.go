package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sqlstore "github.com/mcpauth/mcpauth/internal/store/sql"
	"github.com/mcpauth/mcpauth/internal/token"
)

// Fixtures of the replica tests.
const (
	replicaRedirect    = "http://127.0.0.1:5555/cb"
	replicaResource    = "http://127.0.0.1:9/mcp"
	introspector       = "rs"
	introspectorSecret = "rs-secret-for-replica-tests"
)

// openPostgres opens the PostgreSQL store on a fresh schema; it is closed
// when the test ends.
func openPostgres(t *testing.T) *sqlstore.DB {
	t.Helper()
	return openPostgresAt(t, postgresURL(t))
}

func openPostgresAt(t *testing.T, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// docServer serves a client metadata document for every /NAME.json over
// https on loopback and counts the requests per path.
type docServer struct {
	url, ca string
	mu      sync.Mutex
	fetches map[string]int
}

func newDocServer(t testing.TB) *docServer {
	t.Helper()
	d := &docServer{fetches: map[string]int{}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".json") {
			http.NotFound(w, r)
			return
		}
		d.mu.Lock()
		d.fetches[r.URL.Path]++
		d.mu.Unlock()
		time.Sleep(50 * time.Millisecond) // a fetch takes a moment: a burst overlaps it
		body, _ := json.Marshal(map[string]any{"client_id": d.url + r.URL.Path, "client_name": "Replica test",
			"redirect_uris": []string{replicaRedirect}, "grant_types": []string{"authorization_code", "refresh_token"}})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	d.url = srv.URL
	d.ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(d.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// client is the client_id of the document named name.
func (d *docServer) client(name string) string { return d.url + "/" + name + ".json" }

// count is how often the document named name was fetched.
func (d *docServer) count(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fetches["/"+name+".json"]
}

// serveArgs are the flags every replica of a test cluster gets: one issuer
// (the address a load balancer would have), loopback clients trusted
// through the document server's CA, a resource, and a resource server
// allowed to introspect.
func serveArgs(t *testing.T, issuer string, docs *docServer) []string {
	cfg := writeFile(t, t.TempDir(), "mcpauth.yaml", fmt.Sprintf("clients:\n  - client_id: %s\n    secret: %s\n    introspect: true\n",
		introspector, introspectorSecret))
	return []string{"--issuer", issuer, "--dev-allow-loopback", "--cimd-ca-file", docs.ca, "--resource", replicaResource, "--config", cfg}
}

// cluster is several in-process `mcpauth serve` replicas sharing one store.
type cluster struct {
	issuer   string
	bases    []string
	password string // of user admin, created by the first replica
}

// startCluster starts n replicas, one after the other, each on its own
// address with the same store and issuer.
func startCluster(t *testing.T, n int, docs *docServer, store string, extra ...string) *cluster {
	t.Helper()
	return startClusterWith(t, n, docs, store, defaultServeIntervals(), extra...)
}

// startClusterWith is startCluster with the periods of the replicas'
// background work.
func startClusterWith(t *testing.T, n int, docs *docServer, store string, iv serveIntervals, extra ...string) *cluster {
	t.Helper()
	_, port := freePort(t)
	c := &cluster{issuer: "http://localhost:" + port}
	args := append(serveArgs(t, c.issuer, docs), extra...)
	data := filepath.Join(t.TempDir(), "data") // only for the first replica's initial-admin-password
	args = append(args, "--store", store, "--data", data)
	for range n {
		base, _, _ := startServeWith(t, nil, iv, append([]string{"--addr", freeAddr(t)}, args...)...)
		c.bases = append(c.bases, base)
	}
	c.password = adminPassword(t, data)
	return c
}

// tokenSet is an RFC 6749 §5.1 response.
type tokenSet struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

// oauthClient is a browser and an MCP client in one: a cookie jar for the
// login session (cookies are per host, so one session reaches every
// replica on 127.0.0.1), no redirects followed.
type oauthClient struct {
	clientID string
	http     *http.Client
}

func newOAuthClient(t *testing.T, clientID string) *oauthClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &oauthClient{clientID: clientID, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// pkce returns a code_verifier and its S256 code_challenge.
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// do sends a request and returns the status, the Location header and the body.
func (c *oauthClient) do(method, u string, form url.Values, user, pass string) (int, string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return 0, "", "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b), err
}

// authorize starts an authorization at base and returns the Location it
// redirects to and the code_verifier.
func (c *oauthClient) authorize(base string) (string, string, error) {
	verifier, challenge := pkce()
	q := url.Values{"response_type": {"code"}, "client_id": {c.clientID}, "redirect_uri": {replicaRedirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"st"}, "resource": {replicaResource}}
	status, loc, body, err := c.do(http.MethodGet, base+"/authorize?"+q.Encode(), nil, "", "")
	if err == nil && status != http.StatusSeeOther {
		err = fmt.Errorf("authorize at %s: status %d: %.300s", base, status, body)
	}
	return loc, verifier, err
}

// codeFrom returns the code of a redirect to the client.
func codeFrom(loc string) (string, error) {
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, replicaRedirect) || u.Query().Get("code") == "" {
		return "", fmt.Errorf("want a redirect to the client with a code, got %q", loc)
	}
	return u.Query().Get("code"), nil
}

// token posts a token request to base and decodes the answer.
func (c *oauthClient) token(base string, form url.Values) (int, tokenSet, error) {
	form.Set("client_id", c.clientID)
	status, _, body, err := c.do(http.MethodPost, base+"/token", form, "", "")
	var ts tokenSet
	if err == nil {
		if jerr := json.Unmarshal([]byte(body), &ts); jerr != nil {
			err = fmt.Errorf("token response %d is not JSON: %.200s", status, body)
		}
	}
	return status, ts, err
}

func (c *oauthClient) exchange(base, code, verifier string) (int, tokenSet, error) {
	return c.token(base, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {replicaRedirect}, "code_verifier": {verifier}, "resource": {replicaResource}})
}

func (c *oauthClient) refresh(base, rt string) (int, tokenSet, error) {
	return c.token(base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// active asks base's /introspect (RFC 7662) whether tok is active.
func (c *oauthClient) active(base, tok string) (bool, error) {
	status, _, body, err := c.do(http.MethodPost, base+"/introspect", url.Values{"token": {tok}}, introspector, introspectorSecret)
	if err != nil {
		return false, err
	}
	var r struct {
		Active bool `json:"active"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil {
		return false, fmt.Errorf("introspect at %s: %d %.200s", base, status, body)
	}
	return r.Active, nil
}

// autoFlow authorizes at base (the server approves at once: a remembered
// consent or --dev-auto-approve) and redeems the code at tokenBase.
func (c *oauthClient) autoFlow(base, tokenBase string) (tokenSet, error) {
	loc, verifier, err := c.authorize(base)
	if err != nil {
		return tokenSet{}, err
	}
	code, err := codeFrom(loc)
	if err != nil {
		return tokenSet{}, err
	}
	status, ts, err := c.exchange(tokenBase, code, verifier)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("code exchange at %s: %d %s", tokenBase, status, ts.Error)
	}
	return ts, err
}

// hidden returns the value of the hidden form field name.
func hidden(page, name string) string {
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// kidOf returns the kid in a JWT's header.
func kidOf(jwt string) string {
	h, _, _ := strings.Cut(jwt, ".")
	b, _ := base64.RawURLEncoding.DecodeString(h)
	var hdr struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &hdr)
	return hdr.Kid
}

// verifyJWKS checks an ES256 JWT's signature against the JWK Set that base
// publishes at /jwks (RFC 7517, RFC 7518 §3.4).
func verifyJWKS(base, jwt string) error {
	resp, err := http.Get(base + "/jwks")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return fmt.Errorf("jwks of %s: %w", base, err)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("not a JWS compact serialization")
	}
	kid := kidOf(jwt)
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || k.Kty != "EC" || k.Crv != "P-256" {
			return fmt.Errorf("jwks of %s: key %s is not a P-256 key", base, kid)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return fmt.Errorf("jwks of %s: key %s: %w", base, kid, err)
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(sig) != 64 {
			return errors.New("signature is not 64 bytes of base64url")
		}
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return fmt.Errorf("signature does not verify with key %s of %s", kid, base)
		}
		return nil
	}
	return fmt.Errorf("kid %q is not in the JWK Set of %s", kid, base)
}

// TestReplicasShareOneDatabase: three replicas on one PostgreSQL serve any
// step of a flow, fetch a cold client's document once for a burst spread
// over all of them, and let exactly one of two simultaneous refreshes win.
func TestReplicasShareOneDatabase(t *testing.T) {
	t.Parallel()
	docs := newDocServer(t)
	cl := startCluster(t, 3, docs, postgresURL(t))
	a, b, c := cl.bases[0], cl.bases[1], cl.bases[2]
	if cl.password == "" {
		t.Fatal("the first replica did not create user admin")
	}
	oc := newOAuthClient(t, docs.client("app"))

	var rt string
	t.Run("E12 F1 F8 authorize on A, log in and consent on B, token on C, refresh on A", func(t *testing.T) {
		loc, verifier, err := oc.authorize(a)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(loc, "/login?request=") {
			t.Fatalf("authorize without a session must send to the login page, got %q", loc)
		}
		status, _, page, err := oc.do(http.MethodGet, b+loc, nil, "", "")
		if err != nil || status != http.StatusOK {
			t.Fatalf("login page on B: %d %v", status, err)
		}
		status, loc, page, err = oc.do(http.MethodPost, b+"/login", url.Values{"request": {hidden(page, "request")},
			"csrf": {hidden(page, "csrf")}, "username": {"admin"}, "password": {cl.password}}, "", "")
		if err != nil || status != http.StatusSeeOther || !strings.HasPrefix(loc, "/consent?request=") {
			t.Fatalf("login on B: %d %q %v %.300s", status, loc, err, page)
		}
		status, _, page, err = oc.do(http.MethodGet, b+loc, nil, "", "")
		if err != nil || status != http.StatusOK || !strings.Contains(page, "127.0.0.1") {
			t.Fatalf("consent page on B: %d %v %.300s", status, err, page)
		}
		status, loc, page, err = oc.do(http.MethodPost, b+"/consent", url.Values{"request": {hidden(page, "request")},
			"csrf": {hidden(page, "csrf")}, "decision": {"approve"}}, "", "")
		if err != nil || status != http.StatusSeeOther {
			t.Fatalf("consent on B: %d %v %.300s", status, err, page)
		}
		code, err := codeFrom(loc)
		if err != nil {
			t.Fatal(err)
		}
		if iss, _ := url.Parse(loc); iss.Query().Get("iss") != cl.issuer {
			t.Errorf("iss in the redirect = %q, want the shared issuer %q", iss.Query().Get("iss"), cl.issuer)
		}
		status, ts, err := oc.exchange(c, code, verifier)
		if err != nil || status != http.StatusOK || ts.RefreshToken == "" {
			t.Fatalf("code exchange on C: %d %+v %v", status, ts, err)
		}
		status, ts2, err := oc.refresh(a, ts.RefreshToken)
		if err != nil || status != http.StatusOK || ts2.RefreshToken == "" {
			t.Fatalf("refresh on A: %d %+v %v", status, ts2, err)
		}
		for _, base := range cl.bases {
			for _, tok := range []string{ts.AccessToken, ts2.AccessToken, ts2.RefreshToken} {
				if ok, err := oc.active(base, tok); err != nil || !ok {
					t.Errorf("introspection on %s: active %v, %v; want active", base, ok, err)
				}
			}
			if ok, err := oc.active(base, ts.RefreshToken); err != nil || ok {
				t.Errorf("the rotated-out refresh token is active on %s (%v)", base, err)
			}
		}
		rt = ts2.RefreshToken
		// The consent given on B is remembered by C: a code at once.
		loc, verifier, err = oc.authorize(c)
		if err != nil {
			t.Fatal(err)
		}
		if code, err = codeFrom(loc); err != nil {
			t.Fatalf("authorize on C after consenting on B: %v", err)
		}
		if status, _, err := oc.exchange(a, code, verifier); err != nil || status != http.StatusOK {
			t.Fatalf("code from C redeemed on A: %d %v", status, err)
		}
		if status, _, err := oc.exchange(b, code, verifier); err != nil || status != http.StatusBadRequest {
			t.Errorf("F2 the same code redeemed again on B: %d %v, want 400", status, err)
		}
	})

	t.Run("F8 one refresh token at two replicas at the same instant: one wins, the family is revoked", func(t *testing.T) {
		if rt == "" {
			t.Fatal("no refresh token from the flow")
		}
		for round := range 5 {
			if round > 0 {
				ts, err := oc.autoFlow(b, c)
				if err != nil {
					t.Fatal(err)
				}
				rt = ts.RefreshToken
			}
			var statuses [2]int
			var sets [2]tokenSet
			var errs [2]error
			together(2, func(i int) { statuses[i], sets[i], errs[i] = oc.refresh([]string{a, b}[i], rt) })
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("round %d: %v, %v", round, errs[0], errs[1])
			}
			winner := -1
			for i, s := range statuses {
				if s == http.StatusOK {
					if winner >= 0 {
						t.Fatalf("round %d: both replicas issued a new refresh token for one presented token", round)
					}
					winner = i
				} else if s != http.StatusBadRequest || sets[i].Error != "invalid_grant" {
					t.Errorf("round %d: the refused refresh got %d %q, want 400 invalid_grant", round, s, sets[i].Error)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: neither refresh succeeded (%v); exactly one must", round, statuses)
			}
			won := sets[winner]
			for _, base := range cl.bases {
				for _, tok := range []string{won.AccessToken, won.RefreshToken} {
					if ok, err := oc.active(base, tok); err != nil || ok {
						t.Errorf("round %d: a token of the revoked family is active on %s (%v)", round, base, err)
					}
				}
			}
			if status, _, _ := oc.refresh(c, won.RefreshToken); status != http.StatusBadRequest {
				t.Errorf("round %d: the winner's refresh token still refreshes (%d) after the replay revoked its family", round, status)
			}
		}
	})

	t.Run("B13 a burst of authorizations for a cold client over three replicas fetches its document once", func(t *testing.T) {
		cold := newOAuthClient(t, docs.client("burst"))
		const n = 50
		errs := make([]error, n)
		together(n, func(i int) { _, _, errs[i] = cold.authorize(cl.bases[i%len(cl.bases)]) })
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
				t.Log(err)
			}
		}
		if failed > 0 {
			t.Errorf("%d of %d authorizations failed", failed, n)
		}
		if got := docs.count("burst"); got != 1 {
			t.Errorf("%d concurrent authorizations over %d replicas fetched the cold client's document %d times, want 1", n, len(cl.bases), got)
		}
		t.Logf("%d authorizations over %d replicas: %d fetch(es) of the client metadata document", n, len(cl.bases), docs.count("burst"))
	})
}

// TestReplicasKeyRotation: a rotation made on one replica's database
// reaches every replica; tokens signed before and after it verify against
// every replica's JWK Set and are active at every replica's /introspect.
func TestReplicasKeyRotation(t *testing.T) {
	t.Parallel()
	docs := newDocServer(t)
	dsn := postgresURL(t)
	// Keys made an hour ago: the next key has been published longer than
	// token.DefaultPublishLead, so the rotation below takes effect at once.
	keys := token.NewKeys(openPostgresAt(t, dsn), token.KeyOptions{Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err := keys.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	oldKid := keys.Signer().KeyID()
	// Replicas reload keys every token.MaintainInterval (a minute); here
	// every 200 ms, so that the wait for the rotation to reach them is short.
	iv := defaultServeIntervals()
	iv.keyMaintain = 200 * time.Millisecond
	cl := startClusterWith(t, 3, docs, dsn, iv, "--dev-auto-approve", "admin")
	oc := newOAuthClient(t, docs.client("rotation"))

	var tokens []string
	for i, base := range cl.bases {
		ts, err := oc.autoFlow(base, cl.bases[(i+1)%len(cl.bases)])
		if err != nil {
			t.Fatal(err)
		}
		if kid := kidOf(ts.AccessToken); kid != oldKid {
			t.Fatalf("replica %d signs with %q before the rotation, want %q", i, kid, oldKid)
		}
		tokens = append(tokens, ts.AccessToken)
	}
	out, errOut, code := runCmd(t, "keys", "rotate", "--store", dsn)
	m := regexp.MustCompile(`signing now: (\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] == oldKid {
		t.Fatalf("keys rotate: exit %d\n%s%s", code, out, errOut)
	}
	newKid := m[1]
	// Every replica reloads keys every iv.keyMaintain; each signs with the
	// new key within that (and a margin for a loaded machine).
	for i, base := range cl.bases {
		deadline := time.Now().Add(iv.keyMaintain + 30*time.Second)
		for {
			ts, err := oc.autoFlow(base, base)
			if err != nil {
				t.Fatal(err)
			}
			if kidOf(ts.AccessToken) == newKid {
				tokens = append(tokens, ts.AccessToken)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d still signs with %q %v after the rotation", i, kidOf(ts.AccessToken), iv.keyMaintain+30*time.Second)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i, tok := range tokens {
		for _, base := range cl.bases {
			if err := verifyJWKS(base, tok); err != nil {
				t.Errorf("token %d (kid %s): %v", i, kidOf(tok), err)
			}
			if ok, err := oc.active(base, tok); err != nil || !ok {
				t.Errorf("token %d (kid %s) at %s/introspect: active %v, %v", i, kidOf(tok), base, ok, err)
			}
		}
	}
	t.Logf("rotation %s -> %s: %d tokens (3 before, 3 after) verified against %d replicas' /jwks and /introspect", oldKid, newKid, len(tokens), len(cl.bases))
}

// freePort returns a free loopback port's address (host:port).
func freePort(t *testing.T) (string, string) {
	t.Helper()
	addr := freeAddr(t)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return addr, port
}

// buildMcpauth builds this command into a temporary directory.
func buildMcpauth(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcpauth")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is `mcpauth serve` running as a process of its own.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	done chan struct{}
}

// startProc starts bin serve with args and waits until it listens. The
// process is killed when the test ends, if it still runs.
func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, append([]string{"serve"}, args...)...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String(), "listening on ") {
		select {
		case <-p.done:
			t.Fatalf("mcpauth serve exited:\n%s", p.out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mcpauth serve did not start:\n%s", p.out)
		}
	}
	return p
}

// kill sends SIGKILL (no shutdown, no flush) and waits for the exit.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// grant is what one client holds of one authorization: the code and
// every token it received, and the request it got no answer to when the
// server died.
type grant struct {
	code, verifier string
	codeSent       bool // the code exchange was sent
	codeAnswered   bool // ... and answered with tokens
	access         []string
	refresh        string   // the latest refresh token received
	rotated        []string // refresh tokens exchanged for a successor
	refreshSent    string   // a refresh token sent without an answer
}

// ledger collects the grants of a load run.
type ledger struct {
	mu       sync.Mutex
	grants   []*grant
	failures []string // answers that were not what a live server gives
	flows    atomic.Int64
}

func (l *ledger) add(g *grant) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.grants = append(l.grants, g)
}

// failed reports whether a failure was recorded.
func (l *ledger) failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.failures) > 0
}

func (l *ledger) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
}

// transport reports whether err is a failure to reach the server (it died).
func transport(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// run does complete flows (authorize, code exchange, two refreshes) at
// base until the server stops answering or stop is closed.
func (l *ledger) run(oc *oauthClient, base string, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		loc, verifier, err := oc.authorize(base)
		if err != nil {
			if !transport(err) {
				l.fail("authorize: %v", err)
			}
			return
		}
		code, err := codeFrom(loc)
		if err != nil {
			l.fail("authorize: %v", err)
			return
		}
		g := &grant{code: code, verifier: verifier, codeSent: true}
		l.add(g)
		status, ts, err := oc.exchange(base, code, verifier)
		switch {
		case transport(err):
			return
		case err != nil || status != http.StatusOK:
			l.fail("code exchange: %d %s %v", status, ts.Error, err)
			return
		}
		g.codeAnswered, g.access, g.refresh = true, []string{ts.AccessToken}, ts.RefreshToken
		for range 2 {
			g.refreshSent = g.refresh
			status, ts, err = oc.refresh(base, g.refresh)
			switch {
			case transport(err):
				return
			case err != nil || status != http.StatusOK:
				l.fail("refresh: %d %s %v", status, ts.Error, err)
				return
			}
			g.refreshSent, g.rotated, g.refresh = "", append(g.rotated, g.refresh), ts.RefreshToken
			g.access = append(g.access, ts.AccessToken)
		}
		l.flows.Add(1)
	}
}

// crashCounts is what TestCrashSafety reports.
type crashCounts struct {
	flows, grants, accessActive, refreshActive, rotatedInactive     int
	refreshed, revokedByReplay, codeReplaysRefused                  int
	inFlightCodeRedeemedAfter, inFlightCodeRedeemedBefore, inFlight int
}

// TestCrashSafety: a server process killed with SIGKILL in the middle of
// a load of complete flows loses nothing a client received. After a
// restart on the same store every access and refresh token the clients
// hold is active (or revoked by a rule: a refresh whose answer was lost,
// retried, is a replay, OAuth 2.1 §4.3.1, RFC 9700 §4.14.2), no code is
// redeemed twice (F2), and no refresh family has two live tokens.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	bin := buildMcpauth(t)
	docs := newDocServer(t)
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) ([]string, func(query string) (int, error))
	}{
		{"SQLite", func(t *testing.T) ([]string, func(string) (int, error)) {
			dir := t.TempDir()
			return []string{"--data", dir}, func(q string) (int, error) {
				db, err := sql.Open("sqlite", filepath.Join(dir, "mcpauth.db"))
				if err != nil {
					return 0, err
				}
				defer db.Close()
				var n int
				return n, db.QueryRowContext(t.Context(), q).Scan(&n)
			}
		}},
		{"PostgreSQL", func(t *testing.T) ([]string, func(string) (int, error)) {
			dsn := postgresURL(t)
			return []string{"--store", dsn, "--data", filepath.Join(t.TempDir(), "unused")}, func(q string) (int, error) {
				conn, err := pgx.Connect(t.Context(), dsn)
				if err != nil {
					return 0, err
				}
				defer conn.Close(t.Context())
				var n int
				return n, conn.QueryRow(t.Context(), q).Scan(&n)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeArgs, count := tc.store(t)
			addr, port := freePort(t)
			args := append(serveArgs(t, "http://localhost:"+port, docs), "--addr", addr, "--dev-auto-approve", "admin")
			args = append(args, storeArgs...)
			p := startProc(t, bin, args...)
			base := "http://" + addr
			oc := newOAuthClient(t, docs.client("crash-"+strings.ToLower(tc.name)))

			// Load, and SIGKILL once 40 flows are complete.
			var l ledger
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() { l.run(oc, base, stop) })
			}
			deadline := time.Now().Add(2 * time.Minute)
			for l.flows.Load() < 40 && time.Now().Before(deadline) && !l.failed() {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(time.Duration(time.Now().UnixNano()%7) * time.Millisecond) // land anywhere in a flow
			p.kill()
			close(stop)
			wg.Wait()
			for _, f := range l.failures {
				t.Errorf("before the kill: %s", f)
			}
			if l.flows.Load() < 40 {
				t.Fatalf("only %d flows completed before the deadline", l.flows.Load())
			}

			startProc(t, bin, args...)
			c := crashCounts{flows: int(l.flows.Load()), grants: len(l.grants)}
			mustActive := func(tok, what string, want bool) {
				t.Helper()
				ok, err := oc.active(base, tok)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if ok != want {
					t.Errorf("%s: active %v after the restart, want %v", what, ok, want)
				}
			}
			// 1. Before any retry, everything the clients received works.
			rtLive := map[*grant]bool{}
			for i, g := range l.grants {
				for j, at := range g.access {
					mustActive(at, fmt.Sprintf("grant %d access token %d", i, j), true)
					c.accessActive++
				}
				for j, rt := range g.rotated {
					mustActive(rt, fmt.Sprintf("grant %d rotated refresh token %d", i, j), false)
					c.rotatedInactive++
				}
				if g.refresh == "" {
					continue
				}
				ok, err := oc.active(base, g.refresh)
				if err != nil {
					t.Fatal(err)
				}
				rtLive[g] = ok
				switch {
				case ok:
					c.refreshActive++
				case g.refreshSent == "":
					t.Errorf("grant %d: its latest refresh token, never sent, is inactive after the restart", i)
				}
			}
			// 2. Every latest refresh token refreshes, except one whose
			// rotation committed while its answer was lost: presenting it
			// again is a replay, which revokes the family (OAuth 2.1 §4.3.1,
			// RFC 9700 §4.14.2).
			for i, g := range l.grants {
				if g.refresh == "" {
					continue
				}
				status, ts, err := oc.refresh(base, g.refresh)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case rtLive[g] && status == http.StatusOK:
					c.refreshed++
					mustActive(ts.AccessToken, fmt.Sprintf("grant %d access token after the restart", i), true)
				case !rtLive[g] && status == http.StatusBadRequest && ts.Error == "invalid_grant":
					c.revokedByReplay++
					mustActive(g.access[0], fmt.Sprintf("grant %d access token after the replay", i), false)
				default:
					t.Errorf("grant %d: refresh after the restart: %d %q (refresh token active before: %v)", i, status, ts.Error, rtLive[g])
				}
			}
			// 3. No code is redeemed twice; a code whose exchange got no
			// answer is redeemed now only if the first try did not commit.
			for i, g := range l.grants {
				status, ts, err := oc.exchange(base, g.code, g.verifier)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case g.codeAnswered && status == http.StatusBadRequest && ts.Error == "invalid_grant":
					c.codeReplaysRefused++
				case g.codeAnswered:
					t.Errorf("grant %d: a code already exchanged was exchanged again after the restart: %d", i, status)
				case status == http.StatusOK:
					c.inFlight++
					c.inFlightCodeRedeemedAfter++
				case status == http.StatusBadRequest && ts.Error == "invalid_grant":
					c.inFlight++
					c.inFlightCodeRedeemedBefore++
				default:
					t.Errorf("grant %d: exchange of a code sent before the kill: %d %q", i, status, ts.Error)
				}
			}
			// 4. No refresh family forks; each redeemed code made one family.
			for _, q := range []struct{ what, query string }{
				{"families with two live refresh tokens",
					"SELECT count(*) FROM (SELECT family_id FROM refresh_tokens WHERE used_at IS NULL GROUP BY family_id HAVING count(*) > 1) f"},
				{"redeemed codes without exactly one family",
					"SELECT abs((SELECT count(*) FROM codes WHERE used_at IS NOT NULL) - (SELECT count(*) FROM families))"},
			} {
				n, err := count(q.query)
				if err != nil {
					t.Fatalf("%s: %v", q.what, err)
				}
				if n != 0 {
					t.Errorf("%s: %d", q.what, n)
				}
			}
			t.Logf("%s: killed after %d complete flows (%d grants); after the restart %d access tokens active, %d latest refresh tokens active, "+
				"%d rotated-out refresh tokens inactive; %d refreshes succeeded, %d families revoked by a replayed refresh whose answer was lost; "+
				"%d code replays refused; %d codes in flight at the kill: %d redeemed after the restart, %d had been redeemed before",
				tc.name, c.flows, c.grants, c.accessActive, c.refreshActive, c.rotatedInactive, c.refreshed, c.revokedByReplay,
				c.codeReplaysRefused, c.inFlight, c.inFlightCodeRedeemedAfter, c.inFlightCodeRedeemedBefore)
		})
	}
}

// pgProxy forwards loopback TCP connections to PostgreSQL until cut, so
// that a test can take the database away from a replica without stopping
// the server other tests use.
type pgProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
	return p
}

func (p *pgProxy) forward(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, up)
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

// cut closes every connection and refuses new ones until restore.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *pgProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// TestReplicaWithoutDatabase: while PostgreSQL is unreachable a replica
// stays alive but not ready, refuses requests with a server error and
// writes nothing half; when the database is back it serves again, and a
// refresh token presented during the outage still works.
func TestReplicaWithoutDatabase(t *testing.T) {
	t.Parallel()
	docs := newDocServer(t)
	dsn := postgresURL(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	cl := startCluster(t, 1, docs, u.String(), "--dev-auto-approve", "admin")
	base := cl.bases[0]
	oc := newOAuthClient(t, docs.client("outage"))
	ts, err := oc.autoFlow(base, base)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != `{"status":"ready"}`+"\n" {
		t.Fatalf("readyz before the outage: %d %q, want 200 {\"status\":\"ready\"}", code, body)
	}

	proxy.cut()
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable ||
		body != `{"reason":"database not reachable or refusing writes","status":"not ready"}`+"\n" {
		t.Errorf("readyz without the database: %d %q, want 503 naming the database", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz without the database: %d, want 200 (the process is alive)", code)
	}
	status, failed, err := oc.refresh(base, ts.RefreshToken)
	if err != nil || status != http.StatusServiceUnavailable || failed.Error != "temporarily_unavailable" || failed.AccessToken != "" {
		t.Errorf("refresh without the database: %d %+v %v, want 503 temporarily_unavailable", status, failed, err)
	}
	t.Logf("without the database: readyz 503, healthz 200, token endpoint %d %s", status, failed.Error)

	proxy.restore()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := get(t, base+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz did not recover after the database came back: %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	status, next, err := oc.refresh(base, ts.RefreshToken)
	if err != nil || status != http.StatusOK || next.RefreshToken == "" {
		t.Fatalf("the refresh token presented during the outage must still work after it: %d %+v %v", status, next, err)
	}
	if ok, err := oc.active(base, next.AccessToken); err != nil || !ok {
		t.Errorf("token issued after the outage: active %v, %v", ok, err)
	}
}
