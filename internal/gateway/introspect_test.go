package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/resource"
)

// introspectingIssuer serves RFC 8414 metadata naming metaIssuer (its own
// URL when empty) and an RFC 7662 endpoint that knows one token.
func introspectingIssuer(t *testing.T, metaIssuer string, withEndpoint bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var srv *httptest.Server
	var metaHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+oauth.WellKnownAuthorizationServer, func(w http.ResponseWriter, r *http.Request) {
		metaHits.Add(1)
		md := oauth.AuthorizationServerMetadata{Issuer: srv.URL, AuthorizationEndpoint: srv.URL + "/authorize", TokenEndpoint: srv.URL + "/token"}
		if metaIssuer != "" {
			md.Issuer = metaIssuer
		}
		if withEndpoint {
			md.IntrospectionEndpoint = srv.URL + "/introspect"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(md)
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		if !ok || id != "gw" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		active := r.PostFormValue("token") == "opaque-good"
		_ = json.NewEncoder(w).Encode(map[string]any{"active": active, "iss": srv.URL, "sub": "alice", "client_id": "c",
			"scope": "mcp:tools", "aud": "http://127.0.0.1:8090/mcp", "exp": time.Now().Add(time.Hour).Unix(), "token_type": "Bearer"})
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &metaHits
}

func TestNewIntrospection(t *testing.T) {
	client := &http.Client{Timeout: 5 * time.Second}
	opts := func(issuer string) resource.IntrospectionOptions {
		return resource.IntrospectionOptions{Issuer: issuer, Resource: "http://127.0.0.1:8090/mcp", ClientID: "gw", ClientSecret: "s3cret", Client: client}
	}
	ctx := context.Background()

	t.Run("RFC 8414 discovery finds the endpoint; RFC 7662 active token accepted, inactive rejected", func(t *testing.T) {
		srv, hits := introspectingIssuer(t, "", true)
		v, err := NewIntrospection(opts(srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		if hits.Load() != 0 {
			t.Error("construction did I/O")
		}
		info, err := v.VerifyToken(ctx, "opaque-good")
		if err != nil || info.Subject != "alice" {
			t.Fatalf("good token: %v %+v", err, info)
		}
		if _, err := v.VerifyToken(ctx, "opaque-bad"); !errors.Is(err, resource.ErrInvalidToken) {
			t.Errorf("inactive token: %v", err)
		}
		if hits.Load() != 1 {
			t.Errorf("metadata fetched %d times, want once", hits.Load())
		}
	})
	t.Run("RFC 8414 §3.3 issuer mismatch: 503-class error, retried after a pause", func(t *testing.T) {
		srv, hits := introspectingIssuer(t, "https://evil.example", true)
		v, err := NewIntrospection(opts(srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := v.VerifyToken(ctx, "opaque-good"); err == nil || errors.Is(err, resource.ErrInvalidToken) {
				t.Fatalf("want a non-token error, got %v", err)
			}
		}
		if hits.Load() != 1 {
			t.Errorf("a failing authorization server was asked %d times in a row", hits.Load())
		}
	})
	t.Run("metadata without introspection_endpoint", func(t *testing.T) {
		srv, _ := introspectingIssuer(t, "", false)
		v, err := NewIntrospection(opts(srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyToken(ctx, "opaque-good"); err == nil || errors.Is(err, resource.ErrInvalidToken) {
			t.Fatalf("want a non-token error, got %v", err)
		}
	})
	t.Run("explicit endpoint: no discovery", func(t *testing.T) {
		srv, hits := introspectingIssuer(t, "", true)
		o := opts(srv.URL)
		o.Endpoint = srv.URL + "/introspect"
		v, err := NewIntrospection(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyToken(ctx, "opaque-good"); err != nil || hits.Load() != 0 {
			t.Errorf("err %v, metadata hits %d", err, hits.Load())
		}
	})
	t.Run("bad options fail at construction", func(t *testing.T) {
		for _, o := range []resource.IntrospectionOptions{
			{Issuer: "not a url", Resource: "http://127.0.0.1:8090/mcp", Client: client},
			{Issuer: "http://127.0.0.1:1", Resource: "", Client: client},
			{Issuer: "http://127.0.0.1:1", Resource: "http://127.0.0.1:8090/mcp"},
		} {
			if _, err := NewIntrospection(o); err == nil {
				t.Errorf("%+v accepted", o)
			}
		}
	})
}
