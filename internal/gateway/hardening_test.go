package gateway

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestOnlyStreamableHTTPMethods: methods other than POST, GET and DELETE
// get 405 and never reach the upstream; the tool scope rules (RFC 6750 §3.1,
// MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors) read POST
// bodies, so a PUT carrying a tools/call would otherwise pass unchecked.
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
// every tool's scopes (RFC 6750 §3.1, MCP 2025-11-25 Authorization §Runtime
// Insufficient Scope Errors).
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
// (RFC 6750 §2.3, OAuth 2.1 §5.2, RFC 8707 §2) rather than forwarded to the
// upstream's logs.
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
// server at its URL (RFC 9728 §3, §5.1, RFC 6750 §3.1,
// MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors: its own
// challenges are the ones clients follow). An upstream's WWW-Authenticate is
// dropped, and its 401 becomes a 502 naming the misconfiguration, so that
// clients do not throw away a good token and authorize again.
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

// TestBodyOnGetOrDeleteRefused: a GET or DELETE with a body gets 400 with a
// JSON-RPC error and never reaches the upstream: the tool scope rules read
// only POST bodies, so a tools/call in one would pass unchecked. Without a
// body both are forwarded.
func TestBodyOnGetOrDeleteRefused(t *testing.T) {
	h := newHarness(t, nil, nil)
	tok := h.tokenFor(t, "alice", "mcp:tools")
	call := toolCall(1, "delete_file") // needs files:write, which tok lacks
	for _, tc := range []struct {
		name, method string
		body         io.Reader
	}{
		{"GET with Content-Length", "GET", strings.NewReader(call)},
		{"GET chunked", "GET", io.MultiReader(strings.NewReader(call))},
		{"DELETE with Content-Length", "DELETE", strings.NewReader(call)},
		{"DELETE chunked", "DELETE", io.MultiReader(strings.NewReader(call))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.resource, tc.body)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" ||
				!strings.Contains(string(body), `"id":null`) || !strings.Contains(string(body), "must not have a body") {
				t.Errorf("%d %s %s, want 400 with a JSON-RPC error saying a body is not allowed", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		})
	}
	if n := len(h.up.requests()); n != 0 {
		t.Fatalf("the upstream received %d requests with a body on GET or DELETE, want none", n)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if resp, body := do(t, m, h.resource, tok, "", nil); resp.StatusCode != 200 {
			t.Errorf("%s without a body: %d %s, want 200", m, resp.StatusCode, body)
		}
	}
	if n := len(h.up.requests()); n != 2 {
		t.Errorf("the upstream received %d requests, want the 2 without a body", n)
	}
}

// TestHopByHopAndUpgradeHeadersNotForwarded: the upstream gets none of the
// hop-by-hop headers (RFC 9110 §7.6.1), none that the client's Connection
// header names (in any letter case, '_' for '-'), no Upgrade and no
// Sec-WebSocket-* header (Streamable HTTP has no upgrades), and no Expect.
func TestHopByHopAndUpgradeHeadersNotForwarded(t *testing.T) {
	h := newHarness(t, nil, nil)
	sent := map[string]string{
		"Connection":               "Upgrade, x_named_in_connection, keep-alive",
		"X-Named-In-Connection":    "hop",
		"Upgrade":                  "websocket",
		"Sec-WebSocket-Key":        "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Version":    "13",
		"sec-websocket-protocol":   "mcp",
		"Sec_WebSocket_Extensions": "permessage-deflate",
		"Keep-Alive":               "timeout=5",
		"Proxy-Connection":         "keep-alive",
		"Proxy-Authorization":      "Basic YTpi",
		"Te":                       "trailers",
		"Expect":                   "100-continue",
		"X-Custom":                 "kept",
	}
	resp, body := do(t, "POST", h.resource, h.tokenFor(t, "alice", "mcp:tools"), toolsList, sent)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	reqs := h.up.requests()
	if len(reqs) != 1 {
		t.Fatalf("the upstream received %d requests, want 1", len(reqs))
	}
	got := reqs[0].Header
	for k := range sent {
		if k == "X-Custom" {
			continue
		}
		for gk, v := range got {
			if sameHeaderName(gk, k) {
				t.Errorf("the upstream received %s: %q", gk, v)
			}
		}
	}
	if got.Get("X-Custom") != "kept" {
		t.Errorf("end-to-end header X-Custom: %q, want kept", got.Get("X-Custom"))
	}
}
