package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/oauth"
)

// bannerWord is the word after label in a startup line, plain ("mcpauth:
// listening on http://ADDR, issuer URL") or inside a JSON log record.
func bannerWord(output, label string) (string, bool) {
	i := strings.Index(output, label)
	if i < 0 {
		return "", false
	}
	w := strings.Fields(output[i+len(label):])[0]
	w, _, _ = strings.Cut(w, `"`)
	return strings.TrimSuffix(w, ","), true
}

// listenedOn is the base URL serve printed or logged it listens on.
func listenedOn(output string) (string, bool) {
	return bannerWord(output, "listening on ")
}

// jsonRecords parses every line of logs as a JSON object; a line that is
// not one fails the test.
func jsonRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		recs = append(recs, rec)
	}
	return recs
}

// recordsWith returns the records whose msg is msg and whose fields
// include every one of match.
func recordsWith(recs []map[string]any, msg string, match map[string]any) []map[string]any {
	var out []map[string]any
next:
	for _, r := range recs {
		if r["msg"] != msg {
			continue
		}
		for k, v := range match {
			if r[k] != v {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

func TestNewLoggerLevel(t *testing.T) {
	for _, tc := range []struct {
		level string
		want  []string
	}{
		{"debug", []string{"DEBUG", "INFO", "WARN", "ERROR"}},
		{"info", []string{"INFO", "WARN", "ERROR"}},
		{"warn", []string{"WARN", "ERROR"}},
		{"error", []string{"ERROR"}},
	} {
		t.Run(tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			l := newLogger("json", tc.level, &buf)
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			var got []string
			for _, r := range jsonRecords(t, buf.String()) {
				got = append(got, r["level"].(string))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("levels written (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServeLogLevel: MCPAUTH_LOG_LEVEL=warn leaves out the info records,
// access lines among them (the startup line stays on stdout); debug keeps
// them.
func TestServeLogLevel(t *testing.T) {
	for _, tc := range []struct {
		level    string
		wantInfo bool
	}{{"warn", false}, {"debug", true}} {
		t.Run(tc.level, func(t *testing.T) {
			base, _, logs := startServeLogs(t, map[string]string{"MCPAUTH_LOG_LEVEL": tc.level}, "--addr", freeAddr(t), "--data", t.TempDir())
			if code, _ := get(t, base+"/.well-known/oauth-authorization-server"); code != 200 {
				t.Fatalf("metadata: %d", code)
			}
			text := waitLog(t, logs, "msg=request", 1) // 2 s when it never comes
			info, access := strings.Contains(text, "level=INFO"), strings.Contains(text, "msg=request")
			if info != tc.wantInfo || access != tc.wantInfo || !strings.Contains(text, "level=WARN") {
				t.Errorf("log level %s: info records %v, access lines %v, want %v:\n%s", tc.level, info, access, tc.wantInfo, text)
			}
		})
	}
}

// waitLog returns logs once they hold s n times (an access line is
// written after its response), or after 2 s.
func waitLog(t *testing.T, logs *syncBuffer, s string, n int) string {
	t.Helper()
	for range 100 {
		if strings.Count(logs.String(), s) >= n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return logs.String()
}

// TestServeJSONLogsOfAFullFlow: with --log-format json every line is a
// JSON record (stdout holds nothing); each request has one access line with
// its fields; sign-in, consent and both grants are logged at info; and no
// token, code, verifier or password appears anywhere.
func TestServeJSONLogsOfAFullFlow(t *testing.T) {
	a := newAttackServerWith(t, "--log-format", "json")
	clientID := a.client("/logs.json", nil)
	b := a.newBrowser()
	code, verifier := b.code(t, clientID)
	ta := a.token(t, codeForm(clientID, code, verifier))
	if ta.AccessToken == "" || ta.RefreshToken == "" {
		t.Fatalf("code grant: %s", ta.body)
	}
	rt := a.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ta.RefreshToken}, "client_id": {clientID}})
	if rt.AccessToken == "" {
		t.Fatalf("refresh grant: %s", rt.body)
	}
	logs := waitLog(t, a.logs, `"path":"/token"`, 2)

	for _, secret := range []string{code, verifier, a.password, ta.AccessToken, ta.RefreshToken, rt.AccessToken, rt.RefreshToken} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("the log holds a secret %.12s...:\n%s", secret, logs)
		}
	}
	recs := jsonRecords(t, logs)
	for _, r := range recordsWith(recs, "request", nil) {
		for _, k := range []string{"method", "path", "status", "duration", "request_id"} {
			if r[k] == nil {
				t.Errorf("access line without %s: %v", k, r)
			}
		}
		if p, _ := r["path"].(string); strings.Contains(p, "?") {
			t.Errorf("access line path with a query: %v", r)
		}
	}
	for _, tc := range []struct {
		msg   string
		match map[string]any
	}{
		{"request", map[string]any{"method": "GET", "path": "/authorize", "status": float64(303), "client_id": clientID}},
		{"request", map[string]any{"method": "POST", "path": "/login", "status": float64(303), "client_id": clientID}},
		{"request", map[string]any{"method": "POST", "path": "/consent", "status": float64(303), "client_id": clientID}},
		{"request", map[string]any{"method": "POST", "path": "/token", "status": float64(200), "client_id": clientID}},
		{"login succeeded", map[string]any{"level": "INFO", "user": "admin", "client_id": clientID}},
		{"consent granted", map[string]any{"level": "INFO", "client_id": clientID, "resource": attackResource, "scopes": "read"}},
		{"token issued", map[string]any{"level": "INFO", "grant_type": "authorization_code", "client_id": clientID, "resource": attackResource, "scopes": "read"}},
		{"token issued", map[string]any{"level": "INFO", "grant_type": "refresh_token", "client_id": clientID, "resource": attackResource, "scopes": "read"}},
	} {
		if len(recordsWith(recs, tc.msg, tc.match)) == 0 {
			t.Errorf("no %q record with %v in:\n%s", tc.msg, tc.match, logs)
		}
	}
	if n := len(recordsWith(recs, "request", map[string]any{"path": "/token"})); n != 2 {
		t.Errorf("%d access lines for the 2 token requests", n)
	}
}

// startProxyLogs runs `mcpauth proxy` in-process until the test ends and
// returns its stdout and stderr.
func startProxyLogs(t *testing.T, args ...string) (out, logs *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, logs = &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"proxy"}, args...), func(string) string { return "" }, strings.NewReader(""), out, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("proxy returned %v\nstderr:\n%s", err, logs)
			}
		case <-time.After(20 * time.Second):
			t.Error("proxy did not shut down")
		}
	})
	for range 200 {
		if strings.Contains(out.String()+logs.String(), "listening on ") {
			return out, logs
		}
		select {
		case err := <-done:
			t.Fatalf("proxy exited: %v\nstderr:\n%s", err, logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("proxy did not start\nstderr:\n%s", logs)
	return nil, nil
}

// fakeIssuer serves authorization server metadata and, while jwksOK, a
// JWKS with one key.
func fakeIssuer(t *testing.T, jwksOK bool) *httptest.Server {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var as *httptest.Server
	as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == oauth.WellKnownAuthorizationServer:
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": as.URL, "authorization_endpoint": as.URL + "/authorize",
				"token_endpoint": as.URL + "/token", "jwks_uri": as.URL + "/jwks"})
		case r.URL.Path == "/jwks" && jwksOK:
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{publicJWK(k)}})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(as.Close)
	return as
}

// TestProxyReadyz: /readyz answers 200 when the upstream accepts
// connections and the issuer's keys load, else 503 naming what is missing.
func TestProxyReadyz(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(up.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // a port nothing listens on
	for _, tc := range []struct {
		name     string
		upstream string
		jwksOK   bool
		status   int
		body     map[string]string
	}{
		{"ready", up.URL + "/mcp", true, 200, map[string]string{"status": "ready"}},
		{"upstream down", closed.URL + "/mcp", true, 503, map[string]string{"status": "not ready", "reason": "upstream not reachable"}},
		{"no issuer keys", up.URL + "/mcp", false, 503, map[string]string{"status": "not ready", "reason": "issuer keys not loaded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			_, logs := startProxyLogs(t, "--listen", addr, "--upstream", tc.upstream, "--issuer", fakeIssuer(t, tc.jwksOK).URL)
			code, body := get(t, "http://"+addr+"/readyz")
			var got map[string]string
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("readyz body is not JSON: %q", body)
			}
			if code != tc.status || !cmp.Equal(got, tc.body) {
				t.Errorf("readyz = %d %v, want %d %v\nlogs:\n%s", code, got, tc.status, tc.body, logs)
			}
		})
	}
}

// TestProxyJSONLogs: with --log-format json the proxy writes JSON records
// only, and one access line per request, with the client_id once a token
// was accepted.
func TestProxyJSONLogs(t *testing.T) {
	addr := freeAddr(t)
	resourceURL := "http://" + addr + "/mcp"
	as := introspectingIssuer(t, resourceURL, "good-token-value")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	t.Cleanup(up.Close)
	out, logs := startProxyLogs(t, "--listen", addr, "--upstream", up.URL+"/mcp", "--issuer", as.URL, "--log-format", "json",
		"--introspect", "--client-id", "gw", "--client-secret-file", writeFile(t, t.TempDir(), "secret", "s3cret\n"))

	post := func(token string) int {
		req, _ := http.NewRequest("POST", resourceURL+"?x=1", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("good-token-value"); code != 200 {
		t.Fatalf("good token: %d\n%s", code, logs)
	}
	if code := post("bad"); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	text := waitLog(t, logs, `"status":401`, 1)
	if out.String() != "" {
		t.Errorf("stdout with JSON logs: %q", out)
	}
	if strings.Contains(text, "good-token-value") {
		t.Errorf("the log holds the token:\n%s", text)
	}
	recs := jsonRecords(t, text)
	for _, match := range []map[string]any{
		{"method": "POST", "path": "/mcp", "status": float64(200), "client_id": "https://client.example/c.json"},
		{"method": "POST", "path": "/mcp", "status": float64(401)},
	} {
		got := recordsWith(recs, "request", match)
		if len(got) != 1 || got[0]["request_id"] == "" || got[0]["duration"] == nil {
			t.Errorf("access lines with %v: %v\nlogs:\n%s", match, got, text)
		}
	}
	if n := len(recordsWith(recs, "request", map[string]any{"status": float64(401), "client_id": nil})); n != 1 {
		t.Errorf("the refused request's access line names a client_id: %s", text)
	}
}

// TestJSONLogsEndInJSON: with JSON logs the error a command stops with is a
// JSON record too, and the exit status stays.
func TestJSONLogsEndInJSON(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"serve", []string{"serve", "--addr", busy.Addr().String(), "--data", t.TempDir(), "--log-format", "json"}},
		{"proxy", []string{"proxy", "--listen", busy.Addr().String(), "--upstream", "http://127.0.0.1:1/mcp",
			"--issuer", "http://127.0.0.1:2", "--resource-url", "http://127.0.0.1:3/mcp", "--log-format", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, logs bytes.Buffer
			err := run(t.Context(), tc.args, func(string) string { return "" }, strings.NewReader(""), &out, &logs)
			if code := exitCode(err, &logs); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			recs := jsonRecords(t, logs.String())
			last := recs[len(recs)-1]
			if last["level"] != "ERROR" || !strings.Contains(fmt.Sprint(last["err"]), busy.Addr().String()) || out.Len() != 0 {
				t.Errorf("last record %v, stdout %q", last, out.String())
			}
		})
	}
}
