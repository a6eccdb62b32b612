package resource

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/oauth"
)

func TestHandleMetadata(t *testing.T) {
	md := oauth.ProtectedResourceMetadata{
		Resource:             "https://mcp.example.com/public/mcp",
		AuthorizationServers: []string{"https://auth.example.com"},
		ScopesSupported:      []string{"files:read"},
		ResourceName:         "Files",
	}
	mux := http.NewServeMux()
	if err := HandleMetadata(mux, md); err != nil {
		t.Fatal(err)
	}
	want := md
	want.BearerMethodsSupported = []string{"header"}

	for _, path := range []string{
		"/.well-known/oauth-protected-resource/public/mcp",
		"/.well-known/oauth-protected-resource",
	} {
		t.Run("attack 61 H2 H4 resource equals the endpoint at "+path, func(t *testing.T) {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest("GET", "https://mcp.example.com"+path, nil))
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d", w.Code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q, want application/json (H3)", ct)
			}
			if o := w.Header().Get("Access-Control-Allow-Origin"); o != "*" {
				t.Fatalf("Access-Control-Allow-Origin = %q", o)
			}
			var got oauth.ProtectedResourceMetadata
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Resource != "https://mcp.example.com/public/mcp" {
				t.Fatalf("resource = %q, want exactly the MCP endpoint URL", got.Resource)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("metadata (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("E9 CORS preflight", func(t *testing.T) {
		r := httptest.NewRequest("OPTIONS", "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp", nil)
		r.Header.Set("Origin", "https://inspector.example")
		r.Header.Set("Access-Control-Request-Method", "GET")
		r.Header.Set("Access-Control-Request-Headers", "mcp-protocol-version")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			t.Fatalf("status = %d, want 204", w.Code)
		}
		for h, v := range map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "GET, OPTIONS",
			"Access-Control-Allow-Headers": "mcp-protocol-version",
		} {
			if got := w.Header().Get(h); got != v {
				t.Fatalf("%s = %q, want %q", h, got, v)
			}
		}
	})
	t.Run("H3 other methods refused", func(t *testing.T) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("POST", "https://mcp.example.com/.well-known/oauth-protected-resource", nil))
		if w.Code != http.StatusMethodNotAllowed {
			t.Fatalf("status = %d, want 405", w.Code)
		}
	})
	t.Run("H2 resource without a path registers one pattern", func(t *testing.T) {
		paths, err := MetadataPaths("https://mcp.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"/.well-known/oauth-protected-resource"}, paths); diff != "" {
			t.Fatalf("paths (-want +got):\n%s", diff)
		}
	})
}

func TestProtectedResourceMetadataHandlerRejects(t *testing.T) {
	base := oauth.ProtectedResourceMetadata{Resource: testResource, AuthorizationServers: []string{"https://auth.example.com"}}
	tests := []struct {
		name string
		mod  func(*oauth.ProtectedResourceMetadata)
		want string
	}{
		{"attack 61 H4 non-canonical resource", func(m *oauth.ProtectedResourceMetadata) { m.Resource = "HTTPS://MCP.example.com/mcp" }, `use "https://mcp.example.com/mcp"`},
		{"attack 61 H4 resource with lone trailing slash", func(m *oauth.ProtectedResourceMetadata) { m.Resource = "https://mcp.example.com/" }, "canonical"},
		{"H3 resource required", func(m *oauth.ProtectedResourceMetadata) { m.Resource = "" }, "resource is required"},
		{"H3 resource with fragment", func(m *oauth.ProtectedResourceMetadata) { m.Resource = testResource + "#x" }, "fragment"},
		{"H1 authorization server required", func(m *oauth.ProtectedResourceMetadata) { m.AuthorizationServers = nil }, "at least one issuer"},
		{"H1 authorization server with a query", func(m *oauth.ProtectedResourceMetadata) { m.AuthorizationServers = []string{"https://as.example?x"} }, "authorization server"},
		{"H8 bearer methods other than header", func(m *oauth.ProtectedResourceMetadata) { m.BearerMethodsSupported = []string{"header", "query"} }, "only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := base
			tt.mod(&md)
			_, err := ProtectedResourceMetadataHandler(md)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
