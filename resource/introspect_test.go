package resource

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testIntrospection is an RFC 7662 endpoint on loopback that answers with
// the response registered for each token.
type testIntrospection struct {
	srv       *httptest.Server
	responses map[string]map[string]any
	calls     atomic.Int32
	status    int
}

func newTestIntrospection(t *testing.T) *testIntrospection {
	ti := &testIntrospection{responses: map[string]map[string]any{}}
	ti.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti.calls.Add(1)
		// RFC 6749 §2.3.1: credentials are form-encoded before Basic encoding.
		id, secret, _ := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if id != "rs:mcp" || secret != "s3cr&t" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method != "POST" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.URL.RawQuery != "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if ti.status != 0 {
			w.WriteHeader(ti.status)
			return
		}
		resp, ok := ti.responses[r.PostFormValue("token")]
		if !ok {
			resp = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(ti.srv.Close)
	return ti
}

func TestIntrospectionVerifier(t *testing.T) {
	ti := newTestIntrospection(t)
	clock := newFakeClock()
	now := clock.Now()
	active := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{
			"active": true, "iss": "https://as.example", "sub": "user-1", "client_id": "https://client.example.com/cimd.json",
			"scope": "mcp files:read", "aud": testResource, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		}
		mod(m)
		return m
	}
	ti.responses["good"] = active(func(map[string]any) {})
	ti.responses["other-aud"] = active(func(m map[string]any) { m["aud"] = "https://other.example.com/mcp" })
	ti.responses["no-aud"] = active(func(m map[string]any) { delete(m, "aud") })
	ti.responses["expired"] = active(func(m map[string]any) { m["exp"] = now.Add(-time.Hour).Unix() })
	ti.responses["other-iss"] = active(func(m map[string]any) { m["iss"] = "https://evil.example" })
	ti.responses["no-exp"] = active(func(m map[string]any) { delete(m, "exp") })
	ti.responses["active-string"] = active(func(m map[string]any) { m["active"] = "true" })
	ti.responses["refresh"] = active(func(m map[string]any) { m["token_type"] = "refresh_token" })
	ti.responses["dpop"] = active(func(m map[string]any) { m["token_type"] = "DPoP" })
	ti.responses["bearer"] = active(func(m map[string]any) { m["token_type"] = "Bearer" })

	v, err := NewIntrospectionVerifier(IntrospectionOptions{
		Endpoint: ti.srv.URL + "/introspect", ClientID: "rs:mcp", ClientSecret: "s3cr&t",
		Issuer: "https://as.example", Resource: testResource, Client: ti.srv.Client(), Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		token   string
		wantErr string // "" means accepted
	}{
		{"H8 active token", "good", ""},
		{"H8 active token without exp", "no-exp", ""},
		{"H8 token_type Bearer", "bearer", ""},
		{"attack 58 H8 refresh token presented as an access token", "refresh", "token_type"},
		{"H8 DPoP-bound token refused", "dpop", "token_type"},
		{"attack 58 inactive token", "unknown", "inactive"},
		{"attack 58 active not a boolean", "active-string", "decode"},
		{"attack 57 audience another server", "other-aud", "does not include"},
		{"attack 57 no audience", "no-aud", "does not include"},
		{"attack 58 expired", "expired", "expired"},
		{"attack 58 unknown issuer", "other-iss", "not the trusted issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := v.VerifyToken(context.Background(), tt.token)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]string{"mcp", "files:read"}, info.Scopes); diff != "" || info.Subject != "user-1" {
					t.Fatalf("info = %+v", info)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
			if tt.wantErr != "decode" && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
	t.Run("H8 active results cached briefly", func(t *testing.T) {
		before := ti.calls.Load()
		for range 5 {
			if _, err := v.VerifyToken(context.Background(), "good"); err != nil {
				t.Fatal(err)
			}
		}
		if got := ti.calls.Load() - before; got != 0 {
			t.Fatalf("%d introspection calls for a cached token, want 0", got)
		}
		clock.Advance(DefaultIntrospectionCacheTTL)
		if _, err := v.VerifyToken(context.Background(), "good"); err != nil {
			t.Fatal(err)
		}
		if got := ti.calls.Load() - before; got != 1 {
			t.Fatalf("%d introspection calls after the TTL, want 1", got)
		}
	})
	t.Run("H8 endpoint failure is not invalid_token", func(t *testing.T) {
		ti.status = http.StatusServiceUnavailable
		defer func() { ti.status = 0 }()
		_, err := v.VerifyToken(context.Background(), "fresh-token")
		if err == nil || errors.Is(err, ErrInvalidToken) {
			t.Fatalf("err = %v, want a temporary error", err)
		}
	})
	t.Run("H8 wrong credentials are a configuration error", func(t *testing.T) {
		bad, err := NewIntrospectionVerifier(IntrospectionOptions{
			Endpoint: ti.srv.URL, ClientID: "rs:mcp", ClientSecret: "wrong", Resource: testResource, Client: ti.srv.Client(), CacheTTL: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.VerifyToken(context.Background(), "good")
		if err == nil || errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "status 401") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestNewIntrospectionVerifierChecksOptions(t *testing.T) {
	tests := []struct {
		name string
		opts IntrospectionOptions
		want string
	}{
		{"H8 client required", IntrospectionOptions{Endpoint: "https://as.example/introspect", Resource: testResource}, "Client"},
		{"H8 endpoint absolute", IntrospectionOptions{Endpoint: "/introspect", Resource: testResource, Client: &http.Client{}}, "Endpoint"},
		{"H10 resource required", IntrospectionOptions{Endpoint: "https://as.example/introspect", Client: &http.Client{}}, "Resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewIntrospectionVerifier(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
