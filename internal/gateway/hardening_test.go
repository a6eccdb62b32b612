package gateway

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestOnlyStreamableHTTPMethods: methods other than POST, GET and DELETE
// get 405 and never reach the upstream; the tool scope rules (SPEC H6)
// read POST bodies, so a PUT carrying a tools/call would otherwise pass
// unchecked.
func TestOnlyStreamableHTTPMethods(t *testing.T) {
	h := newHarness(t, nil, nil)
	tok := h.tokenFor(t, "alice", "mcp:tools")
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}`
	for _, m := range []string{"PUT", "PATCH", "OPTIONS", "TRACE"} {
		resp, body := do(t, m, h.resource, tok, call, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST, DELETE" {
			t.Errorf("%s: %d Allow %q %s, want 405 with Allow GET, POST, DELETE", m, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	}
	if n := len(h.up.requests()); n != 0 {
		t.Errorf("the upstream received %d requests, want none", n)
	}
}

// TestMalformedJSONWithToolRules: with tool scope rules, a body that is not
// JSON gets a JSON-RPC parse error (400), not a 403 step-up asking for
// every tool's scopes (SPEC H6).
func TestMalformedJSONWithToolRules(t *testing.T) {
	h := newHarness(t, nil, nil)
	tok := h.tokenFor(t, "alice", "mcp:tools")
	for _, body := range []string{`{"jsonrpc":"2.0","id":1,`, "\ufeff{}", `{} {}`, `method=tools/call`} {
		resp, got := do(t, "POST", h.resource, tok, body, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(got, `"code":-32700`) || !strings.Contains(got, "not valid JSON") ||
			resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("body %q: %d %s (WWW-Authenticate %q), want 400 with a JSON-RPC parse error and no challenge",
				body, resp.StatusCode, got, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if n := len(h.up.requests()); n != 0 {
		t.Errorf("the upstream received %d requests, want none", n)
	}
}

// TestAccessTokenInURLRefused: a token in the query string is refused
// (RFC 6750 §2.3, SPEC H8) rather than forwarded to the upstream's logs.
func TestAccessTokenInURLRefused(t *testing.T) {
	h := newHarness(t, nil, nil)
	tok := h.tokenFor(t, "alice", "mcp:tools")
	resp, body := do(t, "POST", h.resource+"?access_token=QUERYTOKEN", tok, toolsList, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Authorization header") {
		t.Errorf("token in the URL: %d %s, want 400 saying to use the Authorization header", resp.StatusCode, body)
	}
	for _, r := range h.up.requests() {
		if strings.Contains(r.Query, "QUERYTOKEN") {
			t.Errorf("the upstream received the token in its URL: %q", r.Query)
		}
	}
}

// TestUpstreamChallengeNotPassedOn: the gateway is the only OAuth resource
// server at its URL (SPEC H2, H6: its own challenges are the ones clients
// follow). An upstream's WWW-Authenticate is dropped, and its 401
// becomes a 502 naming the misconfiguration, so that clients do not throw
// away a good token and authorize again.
func TestUpstreamChallengeNotPassedOn(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="upstream"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":7,"result":{}}`))
	}, nil)
	tok := h.tokenFor(t, "alice", "mcp:tools")
	resp, _ := do(t, "POST", h.resource, tok, toolsList, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("upstream 200 with a challenge: %d WWW-Authenticate %q, want 200 without it", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	status.Store(http.StatusUnauthorized)
	resp, body := do(t, "POST", h.resource, tok, toolsList, nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("WWW-Authenticate") != "" || !strings.Contains(body, "own authentication") {
		t.Errorf("upstream 401: %d WWW-Authenticate %q %s, want 502 without a challenge, naming the upstream's authentication",
			resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
}

// TestBrokenOffAnswerIs502: an upstream that closes its connection partway
// through a JSON answer gets the client a 502 with a JSON-RPC error for its
// request, not a connection closed without a status.
func TestBrokenOffAnswerIs502(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":\"2.0\",")
		_ = buf.Flush()
	}, nil)
	resp, body := do(t, "POST", h.resource, h.tokenFor(t, "alice", "mcp:tools"), toolsList, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"id":7`) || !strings.Contains(body, "broke off its answer") {
		t.Errorf("upstream broke off: %d %s, want 502 with a JSON-RPC error for id 7", resp.StatusCode, body)
	}
}
