package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/oauth"
)

func TestChallengesAndMetadata(t *testing.T) {
	h := newHarness(t, nil, nil)
	md := oauth.ProtectedResourceMetadataURL
	mdURL, err := md(h.resource)
	if err != nil {
		t.Fatal(err)
	}
	readToken := h.tokenFor(t, "alice", "mcp:tools")
	for _, tc := range []struct {
		name, method, token, body string
		status                    int
		challenge                 []string // substrings of WWW-Authenticate
		noChallenge               []string
	}{
		{name: "H5 attack 55 no token POST", method: "POST", body: toolsList, status: 401,
			challenge: []string{`resource_metadata="` + mdURL + `"`, `scope="mcp:tools"`}, noChallenge: []string{"error="}},
		{name: "H5 no token GET stream", method: "GET", status: 401, challenge: []string{`resource_metadata="` + mdURL + `"`}},
		{name: "H5 no token DELETE", method: "DELETE", status: 401, challenge: []string{`resource_metadata=`}},
		{name: "H5 attack 58 tampered token", method: "POST", body: toolsList, token: readToken[:len(readToken)-4] + "AAAA", status: 401,
			challenge: []string{`error="invalid_token"`, `resource_metadata="` + mdURL + `"`}},
		{name: "H8 attack 57 token for another resource", method: "POST", body: toolsList, token: h.is.token(t, "https://other.example/mcp", "alice", "mcp:tools"),
			status: 401, challenge: []string{`error="invalid_token"`}},
		{name: "H6 attack 59 token without the base scope", method: "POST", body: toolsList, token: h.tokenFor(t, "alice", "other"), status: 403,
			challenge: []string{`error="insufficient_scope"`, `scope="mcp:tools"`, `resource_metadata="` + mdURL + `"`}},
		{name: "H6 step-up for a tool needing files:write", method: "POST", body: toolCall(3, "delete_file"), token: readToken, status: 403,
			challenge: []string{`error="insufficient_scope"`, `scope="mcp:tools files:write"`, `resource_metadata="` + mdURL + `"`}},
		{name: "H6 step-up, tool name in another letter case", method: "POST", body: `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"NAME":"delete_file"}}`,
			token: readToken, status: 403, challenge: []string{`scope="mcp:tools files:write"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.up.requests())
			resp, _ := do(t, tc.method, h.resource, tc.token, tc.body, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			ch := resp.Header.Get("WWW-Authenticate")
			for _, want := range tc.challenge {
				if !strings.Contains(ch, want) {
					t.Errorf("WWW-Authenticate %q lacks %q", ch, want)
				}
			}
			for _, bad := range tc.noChallenge {
				if strings.Contains(ch, bad) {
					t.Errorf("WWW-Authenticate %q has %q", ch, bad)
				}
			}
			if n := len(h.up.requests()) - before; n != 0 {
				t.Errorf("a refused request reached the upstream (%d requests)", n)
			}
		})
	}

	t.Run("H1-H4 metadata at the path-inserted and root URLs", func(t *testing.T) {
		root, err := oauth.ProtectedResourceMetadataRootURL(h.resource)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{mdURL, root} {
			resp, body := do(t, "GET", u, "", "", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d", u, resp.StatusCode)
			}
			var got oauth.ProtectedResourceMetadata
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			want := oauth.ProtectedResourceMetadata{Resource: h.resource, AuthorizationServers: []string{h.is.srv.URL},
				ScopesSupported: []string{"mcp:tools"}, BearerMethodsSupported: []string{"header"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", u, diff)
			}
		}
	})

	t.Run("H6 a tool without extra scopes passes", func(t *testing.T) {
		resp, _ := do(t, "POST", h.resource, readToken, toolCall(4, "echo"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("H6 step-up done: the broader token calls the tool", func(t *testing.T) {
		resp, _ := do(t, "POST", h.resource, h.tokenFor(t, "alice", "mcp:tools", "files:write"), toolCall(5, "delete_file"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		reqs := h.up.requests()
		if got := reqs[len(reqs)-1].Body; got != toolCall(5, "delete_file") {
			t.Errorf("upstream got body %q", got)
		}
	})
	t.Run("other paths are not forwarded", func(t *testing.T) {
		before := len(h.up.requests())
		for _, p := range []string{"/", "/mcp/", "/other", "/upstream/mcp"} {
			resp, _ := do(t, "POST", strings.TrimSuffix(h.resource, "/mcp")+p, readToken, toolsList, nil)
			if resp.StatusCode != 404 {
				t.Errorf("POST %s: %d, want 404", p, resp.StatusCode)
			}
		}
		if len(h.up.requests()) != before {
			t.Error("a request outside the MCP endpoint reached the upstream")
		}
	})
}

func TestForwardedRequest(t *testing.T) {
	h := newHarness(t, nil, nil)
	token := h.tokenFor(t, "alice", "mcp:tools", "files:read")
	resp, _ := do(t, "POST", h.resource+"?tenant=a", token, toolsList, map[string]string{
		"X-MCPAuth-Subject":    "admin",                          // spoofed, canonical
		"x-mcpauth-client-id":  "https://trusted.example/c.json", // spoofed, lower case
		"X_MCPAUTH_SCOPES":     "admin:all",                      // spoofed, CGI style
		"X-Mcpauth_Subject":    "root",                           // spoofed, mixed
		"Cookie":               "session=from-the-browser",       // ambient credential
		"Mcp-Protocol-Version": "2025-11-25",
		"X-Forwarded-For":      "203.0.113.9", // client-chosen
		"Connection":           "X-Keep-Me-Not",
		"X-Keep-Me-Not":        "hop",
		"X-Custom":             "kept",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	reqs := h.up.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	got := reqs[0]
	for _, tc := range []struct {
		name, header string
		want         []string
	}{
		{"H9 attack 60 token not forwarded", "Authorization", nil},
		{"identity subject, spoofed values gone", "X-Mcpauth-Subject", []string{"alice"}},
		{"identity client id", "X-Mcpauth-Client-Id", []string{"https://client.example/cimd.json"}},
		{"identity scopes", "X-Mcpauth-Scopes", []string{"mcp:tools files:read"}},
		{"cookies not forwarded", "Cookie", nil},
		{"MCP headers intact", "Mcp-Protocol-Version", []string{"2025-11-25"}},
		{"hop-by-hop header named in Connection removed (RFC 9110 §7.6.1)", "X-Keep-Me-Not", nil},
		{"end-to-end header kept", "X-Custom", []string{"kept"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, got.Header.Values(tc.header)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.header, diff)
			}
		})
	}
	t.Run("no spoofed identity header in any spelling", func(t *testing.T) {
		for k, v := range got.Header {
			for _, n := range []string{DefaultSubjectHeader, DefaultClientIDHeader, DefaultScopesHeader} {
				if sameHeaderName(k, n) && k != http.CanonicalHeaderKey(n) {
					t.Errorf("upstream got %s: %q", k, v)
				}
			}
		}
	})
	t.Run("X-Forwarded-For is the gateway's view, not the client's", func(t *testing.T) {
		if xff := got.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q", xff)
		}
	})
	t.Run("upstream URL with the client's query", func(t *testing.T) {
		if got.Path != "/upstream/mcp" || got.Query != "tenant=a" || got.Body != toolsList {
			t.Errorf("upstream got %s ?%s %q", got.Path, got.Query, got.Body)
		}
	})
}

func TestIdentityHeaderNames(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) {
		o.IdentityHeaders = IdentityHeaders{Subject: "X-User", ClientID: "x-client", Scopes: "X-Grants"}
	})
	resp, _ := do(t, "POST", h.resource, h.tokenFor(t, "bob", "mcp:tools"), toolsList, map[string]string{"X-User": "admin", "X-MCPAuth-Subject": "admin"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := h.up.requests()[0].Header
	want := map[string][]string{"X-User": {"bob"}, "X-Client": {"https://client.example/cimd.json"}, "X-Grants": {"mcp:tools"}, "X-Mcpauth-Subject": nil}
	for k, v := range want {
		if diff := cmp.Diff(v, got.Values(k)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
}

func TestResponseCookiesDropped(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "upstream", Value: "x"})
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":7,"result":{}}`)
	}, nil)
	resp, body := do(t, "POST", h.resource, h.tokenFor(t, "alice", "mcp:tools"), toolsList, nil)
	if resp.StatusCode != 200 || body != `{"jsonrpc":"2.0","id":7,"result":{}}` {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("Set-Cookie passed through: %q", sc)
	}
}

// TestStreamUnbuffered checks that each server-sent event reaches the client
// while the upstream is still writing: the upstream sends one event and then
// waits for the client to confirm it before it finishes.
func TestStreamUnbuffered(t *testing.T) {
	for _, method := range []string{"POST", "GET"} {
		t.Run("SSE "+method+" first event before the upstream finishes", func(t *testing.T) {
			got1 := make(chan struct{})
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				if body, _ := io.ReadAll(r.Body); strings.Contains(string(body), `"initialize"`) {
					w.Header().Set("Mcp-Session-Id", "s-stream")
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "id: e1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-got1:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "id: e2\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
			}, nil)
			token := h.tokenFor(t, "alice", "mcp:tools")
			body := io.Reader(nil)
			if method == "POST" {
				body = strings.NewReader(toolCall(1, "long"))
			}
			req, _ := http.NewRequest(method, h.resource, body)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Accept", "text/event-stream")
			if method == "GET" {
				// A GET stream belongs to a session: start one first.
				resp, _ := do(t, "POST", h.resource, token, `{"jsonrpc":"2.0","id":1,"method":"initialize"}`, nil)
				if resp.Header.Get("Mcp-Session-Id") != "s-stream" {
					t.Fatalf("no session: %v", resp.Header)
				}
				req.Header.Set("Mcp-Session-Id", "s-stream")
				req.Header.Set("Last-Event-ID", "e0")
			}
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			rd := bufio.NewReader(resp.Body)
			first := readEvent(t, rd)
			if !strings.Contains(first, "id: e1") {
				t.Fatalf("first event %q", first)
			}
			close(got1) // only now may the upstream finish
			if second := readEvent(t, rd); !strings.Contains(second, "id: e2") {
				t.Fatalf("second event %q", second)
			}
			if method == "GET" {
				reqs := h.up.requests()
				if got := reqs[len(reqs)-1].Header.Get("Last-Event-ID"); got != "e0" {
					t.Errorf("Last-Event-ID upstream %q", got)
				}
			}
		})
	}
}

// readEvent reads one server-sent event (up to a blank line).
func readEvent(t *testing.T, rd *bufio.Reader) string {
	t.Helper()
	var ev strings.Builder
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading event: %v (so far %q)", err, ev.String())
		}
		if line == "\n" {
			return ev.String()
		}
		ev.WriteString(line)
	}
}

// TestStreamOutlivesWriteTimeout runs the gateway in an http.Server with a
// short WriteTimeout: an event stream must go on past it.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	}, nil, func(s *http.Server) { s.WriteTimeout = 100 * time.Millisecond })
	req, _ := http.NewRequest("POST", h.resource, strings.NewReader(toolCall(1, "long")))
	req.Header.Set("Authorization", "Bearer "+h.tokenFor(t, "alice", "mcp:tools"))
	resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if ev := readEvent(t, rd); ev != "data: one\n" {
		t.Fatalf("first event %q", ev)
	}
	time.Sleep(300 * time.Millisecond) // past the WriteTimeout; not a timing assertion
	close(release)
	if ev := readEvent(t, rd); ev != "data: two\n" {
		t.Fatalf("second event %q", ev)
	}
}

func TestSessions(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == "DELETE":
			w.WriteHeader(http.StatusOK)
		case strings.Contains(string(body), `"initialize"`):
			w.Header().Set("Mcp-Session-Id", "sess-1")
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":2,"result":{}}`)
		}
	}, nil)
	alice := h.tokenFor(t, "alice", "mcp:tools")
	mallory := h.tokenFor(t, "mallory", "mcp:tools")
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`

	resp, _ := do(t, "POST", h.resource, alice, initialize, nil)
	if got := resp.Header.Get("Mcp-Session-Id"); got != "sess-1" {
		t.Fatalf("Mcp-Session-Id to the client %q", got)
	}
	sid := map[string]string{"Mcp-Session-Id": "sess-1"}
	for _, tc := range []struct {
		name, method, token, body string
		hdr                       map[string]string
		status                    int
		forwarded                 bool
	}{
		{"Mcp-Session-Id round trip", "POST", alice, toolsList, sid, 200, true},
		{"session hijack: another user's token with the session ID", "POST", mallory, toolsList, sid, 404, false},
		{"unknown session ID", "POST", alice, toolsList, map[string]string{"Mcp-Session-Id": "guessed"}, 404, false},
		{"session ID with a space", "POST", alice, toolsList, map[string]string{"Mcp-Session-Id": "a b"}, 400, false},
		{"DELETE ends the session upstream", "DELETE", alice, "", sid, 200, true},
		{"after DELETE the session is gone", "POST", alice, toolsList, sid, 404, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.up.requests())
			resp, body := do(t, tc.method, h.resource, tc.token, tc.body, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			reqs := h.up.requests()
			if forwarded := len(reqs) > before; forwarded != tc.forwarded {
				t.Fatalf("forwarded %v, want %v", forwarded, tc.forwarded)
			}
			if tc.forwarded {
				if got := reqs[len(reqs)-1]; got.Method != tc.method || got.Header.Get("Mcp-Session-Id") != "sess-1" {
					t.Errorf("upstream got %s with Mcp-Session-Id %q", got.Method, got.Header.Get("Mcp-Session-Id"))
				}
			}
			if tc.status == 404 && tc.body != "" {
				wantErrorBody(t, body, 7, codeSessionNotFound)
			}
		})
	}
}

// wantErrorBody checks a JSON-RPC error response with the given id.
func wantErrorBody(t *testing.T, body string, id, code int) {
	t.Helper()
	var got struct {
		JSONRPC string
		ID      *int
		Error   struct {
			Code    int
			Message string
		}
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("not JSON: %q", body)
	}
	if got.JSONRPC != "2.0" || got.ID == nil || *got.ID != id || got.Error.Code != code || got.Error.Message == "" {
		t.Errorf("JSON-RPC error body %q, want id %d code %d", body, id, code)
	}
}

func TestUpstreamFailures(t *testing.T) {
	t.Run("upstream down: 502 with a JSON-RPC error", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + ln.Addr().String() + "/mcp"
		ln.Close() // nothing listens there now
		h := newHarness(t, nil, func(o *Options) { o.Upstream = down })
		token := h.tokenFor(t, "alice", "mcp:tools")
		resp, body := do(t, "POST", h.resource, token, toolsList, nil)
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		wantErrorBody(t, body, 7, codeUpstreamUnavailable)
		resp, body = do(t, "GET", h.resource, token, "", nil)
		if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || body == "" {
			t.Errorf("GET: %d %s %q, want 502 with a plain-text message", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("slow upstream: 504 with a JSON-RPC error", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}, func(o *Options) { o.UpstreamTimeout = 50 * time.Millisecond })
		resp, body := do(t, "POST", h.resource, h.tokenFor(t, "alice", "mcp:tools"), `{"jsonrpc":"2.0","id":"req-9","method":"tools/list"}`, nil)
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if !strings.Contains(body, `"id":"req-9"`) || !strings.Contains(body, `"code":-32001`) {
			t.Errorf("body %q", body)
		}
	})
	t.Run("body too large: 413", func(t *testing.T) {
		h := newHarness(t, nil, func(o *Options) { o.MaxBodyBytes = 1024 })
		token := h.tokenFor(t, "alice", "mcp:tools")
		big := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"` + strings.Repeat("x", 2048) + `"}}`
		resp, body := do(t, "POST", h.resource, token, big, nil)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("Content-Length: status %d: %s", resp.StatusCode, body)
		}
		if !strings.Contains(body, `"code":-32600`) {
			t.Errorf("body %q", body)
		}
		// Without Content-Length (chunked), the limit applies while reading.
		req, _ := http.NewRequest("POST", h.resource, io.MultiReader(strings.NewReader(big)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp2, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp2.Body.Close()
		if resp2.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
			t.Errorf("chunked: status %d (ContentLength %d)", resp2.StatusCode, req.ContentLength)
		}
		if n := len(h.up.requests()); n != 0 {
			t.Errorf("%d oversized requests reached the upstream", n)
		}
	})
}

// TestStalledBodyEnds checks that an upstream which sends its headers and
// part of a JSON body and then stalls does not hold the client: within the
// upstream timeout of the headers the gateway cancels the upstream request
// and cuts the response off, and says so in its log. The 10 s deadline on
// the client detects a hang; it is not a timing assertion.
func TestStalledBodyEnds(t *testing.T) {
	const (
		timeout = 200 * time.Millisecond
		answer  = `{"jsonrpc":"2.0","id":7,"result":{"tools":[]}}`
		sent    = 17 // bytes of answer the upstream sends before it stalls
	)
	big := `{"jsonrpc":"2.0","id":7,"result":{"text":"` + strings.Repeat("x", maxBufferedBody) + `"}}`
	for _, tc := range []struct {
		name          string
		answer        string
		sent          int
		contentLength bool
		cut           bool // the status went out before the stall: the response is cut off
	}{
		{"JSON body with Content-Length stalls: 504 with a JSON-RPC error", answer, sent, true, false},
		{"JSON body of unknown length (chunked) stalls: 504 with a JSON-RPC error", answer, sent, false, false},
		{"a body larger than the gateway reads first stalls: the response is cut off", big, maxBufferedBody + 10, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{}) // the upstream stalls until the test ends
			defer close(release)
			canceled := make(chan struct{})
			var logs logBuffer
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if tc.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.answer)))
				}
				_, _ = io.WriteString(w, tc.answer[:tc.sent])
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					close(canceled)
				}
			}, func(o *Options) {
				o.UpstreamTimeout = timeout
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "POST", h.resource, strings.NewReader(toolsList))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+h.tokenFor(t, "alice", "mcp:tools"))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			var got []byte
			resp, err := tr.RoundTrip(req)
			status := 0
			if err == nil {
				status = resp.StatusCode
				got, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if ctx.Err() != nil {
				t.Fatalf("the client still waited after 10 s with %d bytes received: the gateway hangs on a stalled body", len(got))
			}
			if tc.cut {
				// Headers and part of the body may or may not have reached
				// the client; either way its read must fail, not end as if
				// whole.
				if err == nil {
					t.Errorf("the client read %d bytes and no error: a cut-off body looks complete", len(got))
				}
				if !strings.HasPrefix(tc.answer[:tc.sent], string(got)) {
					t.Errorf("the client read %.60q..., not a prefix of the answer", got)
				}
			} else if err != nil || status != http.StatusGatewayTimeout || !strings.Contains(string(got), `"id":7`) ||
				!strings.Contains(string(got), "did not answer within 200ms") {
				t.Errorf("the client got %d %q (%v), want 504 with a JSON-RPC error for id 7", status, got, err)
			}
			select {
			case <-canceled:
			case <-ctx.Done():
				t.Fatal("the upstream request was not canceled")
			}
			log := logs.String()
			want := []string{"level=ERROR", "upstream=" + h.up.srv.URL + "/upstream/mcp", "timeout=200ms"}
			if tc.cut {
				want = append(want, "cut off", "body_bytes=")
			}
			for _, w := range want {
				if !strings.Contains(log, w) {
					t.Errorf("log lacks %q:\n%s", w, log)
				}
			}
		})
	}

	t.Run("a body that pauses within the timeout arrives whole", func(t *testing.T) {
		var logs logBuffer
		h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, answer[:sent])
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond) // a tenth of the timeout
			_, _ = io.WriteString(w, answer[sent:])
		}, func(o *Options) {
			o.UpstreamTimeout = 500 * time.Millisecond
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		resp, body := do(t, "POST", h.resource, h.tokenFor(t, "alice", "mcp:tools"), toolsList, nil)
		if resp.StatusCode != 200 || body != answer {
			t.Fatalf("%d %q, want 200 %q", resp.StatusCode, body, answer)
		}
		if log := logs.String(); log != "" {
			t.Errorf("a complete answer was logged:\n%s", log)
		}
	})
}

// TestStreamPauseNotCut checks that the upstream timeout does not apply to
// an established event stream: one that pauses for three times the timeout
// between two events delivers both, then ends cleanly.
func TestStreamPauseNotCut(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, method := range []string{"POST", "GET"} {
		t.Run("SSE "+method+" pausing 3x the upstream timeout", func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				if body, _ := io.ReadAll(r.Body); strings.Contains(string(body), `"initialize"`) {
					w.Header().Set("Mcp-Session-Id", "s-pause")
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-time.After(3 * timeout):
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "data: two\n\n")
			}, func(o *Options) { o.UpstreamTimeout = timeout })
			token := h.tokenFor(t, "alice", "mcp:tools")

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			body := io.Reader(nil)
			if method == "POST" {
				body = strings.NewReader(toolCall(1, "long"))
			}
			req, err := http.NewRequestWithContext(ctx, method, h.resource, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Accept", "text/event-stream")
			if method == "GET" {
				// A GET stream belongs to a session: start one first.
				resp, _ := do(t, "POST", h.resource, token, `{"jsonrpc":"2.0","id":1,"method":"initialize"}`, nil)
				if resp.Header.Get("Mcp-Session-Id") != "s-pause" {
					t.Fatalf("no session: %v", resp.Header)
				}
				req.Header.Set("Mcp-Session-Id", "s-pause")
			}
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			rd := bufio.NewReader(resp.Body)
			if ev := readEvent(t, rd); ev != "data: one\n" {
				t.Fatalf("first event %q", ev)
			}
			if ev := readEvent(t, rd); ev != "data: two\n" {
				t.Fatalf("second event %q", ev)
			}
			if rest, err := io.ReadAll(rd); err != nil || len(rest) != 0 {
				t.Errorf("after the events: %q, %v; want a clean end", rest, err)
			}
			if ctx.Err() != nil {
				t.Fatal("the client waited 10 s: the stream hung")
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	is := newTestIssuer(t)
	good := func() Options {
		return Options{Upstream: "http://127.0.0.1:3001/mcp", Resource: "http://127.0.0.1:8090/mcp",
			AuthorizationServers: []string{is.srv.URL}, Verifier: is.verifier(t, "http://127.0.0.1:8090/mcp")}
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"upstream relative", func(o *Options) { o.Upstream = "/mcp" }},
		{"upstream ftp", func(o *Options) { o.Upstream = "ftp://127.0.0.1/mcp" }},
		{"upstream with user info", func(o *Options) { o.Upstream = "http://u:p@127.0.0.1/mcp" }},
		{"H10 resource not canonical", func(o *Options) { o.Resource = "HTTP://127.0.0.1:8090/mcp" }},
		{"H10 resource with fragment", func(o *Options) { o.Resource = "http://127.0.0.1:8090/mcp#x" }},
		{"H1 no authorization server", func(o *Options) { o.AuthorizationServers = nil }},
		{"no verifier", func(o *Options) { o.Verifier = nil }},
		{"identity header not a token", func(o *Options) { o.IdentityHeaders.Subject = "X User" }},
		{"identity header is Authorization", func(o *Options) { o.IdentityHeaders.Subject = "authorization" }},
		{"identity header is Mcp-Session-Id", func(o *Options) { o.IdentityHeaders.Scopes = "Mcp_Session_Id" }},
		{"identity headers the same", func(o *Options) { o.IdentityHeaders = IdentityHeaders{Subject: "X-Who", ClientID: "x_who"} }},
		{"negative body limit", func(o *Options) { o.MaxBodyBytes = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.edit(&o)
			if _, err := New(o); err == nil {
				t.Error("accepted")
			}
		})
	}
}
