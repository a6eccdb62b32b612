package login

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkRoundTrip compares one MCP request sent directly with a bearer
// token against the same request through an Authorizer holding that token:
// the per-request cost of the Authorizer.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	defer srv.Close()
	mcpURL := srv.URL + "/mcp"
	send := func(b *testing.B, c *http.Client, auth string) {
		req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.Run("direct", func(b *testing.B) {
		c := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		for b.Loop() {
			send(b, c, "Bearer tok")
		}
	})
	b.Run("authorizer", func(b *testing.B) {
		store := &memStore{}
		a, err := NewAuthorizer(Options{MCPURL: mcpURL, OpenBrowser: AutoApprove(), Store: store})
		if err != nil {
			b.Fatal(err)
		}
		_ = store.SaveSession(&Session{MCPURL: a.MCPURL(), Issuer: "i", AccessToken: "tok", Expiry: time.Now().Add(time.Hour)})
		c := &http.Client{Transport: a}
		for b.Loop() {
			send(b, c, "")
		}
	})
}

// BenchmarkLogin measures one whole authorization against the fake servers
// on loopback: discovery, dynamic registration, the code flow through the
// loopback listener, the code exchange and the replayed request.
func BenchmarkLogin(b *testing.B) {
	as := newFakeAS(b, nil)
	rs := newFakeRS(b, as, nil)
	for b.Loop() {
		a, err := NewAuthorizer(Options{MCPURL: rs.mcpURL(), OpenBrowser: AutoApprove()})
		if err != nil {
			b.Fatal(err)
		}
		c := &http.Client{Transport: a}
		resp, err := c.Post(rs.mcpURL(), "application/json", strings.NewReader(`{"method":"tools/list"}`))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d: %v", resp.StatusCode, a.Err())
		}
	}
}
