package oauth

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProtectedResourceMetadataURL(t *testing.T) {
	tests := []struct {
		name, resource, want, wantRoot string
	}{
		{"H2 path inserted", "https://h/public/mcp", "https://h/.well-known/oauth-protected-resource/public/mcp", "https://h/.well-known/oauth-protected-resource"},
		{"H2 no path", "https://h", "https://h/.well-known/oauth-protected-resource", "https://h/.well-known/oauth-protected-resource"},
		{"H2 port kept", "http://127.0.0.1:8081/mcp", "http://127.0.0.1:8081/.well-known/oauth-protected-resource/mcp", "http://127.0.0.1:8081/.well-known/oauth-protected-resource"},
		{"H2 terminating slash removed", "https://h/mcp/", "https://h/.well-known/oauth-protected-resource/mcp", "https://h/.well-known/oauth-protected-resource"},
		{"H2 query kept after path", "https://h/mcp?tenant=a", "https://h/.well-known/oauth-protected-resource/mcp?tenant=a", "https://h/.well-known/oauth-protected-resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ProtectedResourceMetadataURL(tt.resource)
			if err != nil || got != tt.want {
				t.Fatalf("ProtectedResourceMetadataURL(%q) = %q, %v; want %q", tt.resource, got, err, tt.want)
			}
			root, err := ProtectedResourceMetadataRootURL(tt.resource)
			if err != nil || root != tt.wantRoot {
				t.Fatalf("ProtectedResourceMetadataRootURL(%q) = %q, %v; want %q", tt.resource, root, err, tt.wantRoot)
			}
		})
	}
	for _, bad := range []string{"/mcp", "https://h/mcp#f", "mailto:a@b", ":"} {
		t.Run("H2 rejects "+bad, func(t *testing.T) {
			if got, err := ProtectedResourceMetadataURL(bad); err == nil {
				t.Fatalf("ProtectedResourceMetadataURL(%q) = %q, want an error", bad, got)
			}
			if got, err := ProtectedResourceMetadataRootURL(bad); err == nil {
				t.Fatalf("ProtectedResourceMetadataRootURL(%q) = %q, want an error", bad, got)
			}
		})
	}
}

func TestAuthorizationServerMetadataURLs(t *testing.T) {
	tests := []struct {
		name, issuer string
		want         []string
	}{
		{"J4 G1 no path", "https://as.example", []string{
			"https://as.example/.well-known/oauth-authorization-server",
			"https://as.example/.well-known/openid-configuration",
		}},
		{"J4 G1 no path trailing slash", "https://as.example/", []string{
			"https://as.example/.well-known/oauth-authorization-server",
			"https://as.example/.well-known/openid-configuration",
		}},
		{"J4 G1 path", "https://as.example/tenant1", []string{
			"https://as.example/.well-known/oauth-authorization-server/tenant1",
			"https://as.example/.well-known/openid-configuration/tenant1",
			"https://as.example/tenant1/.well-known/openid-configuration",
		}},
		{"J4 loopback dev issuer", "http://localhost:8080", []string{
			"http://localhost:8080/.well-known/oauth-authorization-server",
			"http://localhost:8080/.well-known/openid-configuration",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AuthorizationServerMetadataURLs(tt.issuer)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("AuthorizationServerMetadataURLs(%q) mismatch (-want +got):\n%s", tt.issuer, diff)
			}
		})
	}
	for _, bad := range []string{"https://as.example?x=1", "https://as.example/#f", "as.example", "https://as.example/a?"} {
		t.Run("G2 rejects "+bad, func(t *testing.T) {
			if got, err := AuthorizationServerMetadataURLs(bad); err == nil {
				t.Fatalf("AuthorizationServerMetadataURLs(%q) = %q, want an error", bad, got)
			}
		})
	}
}

func TestMetadataJSON(t *testing.T) {
	t.Run("H3 PRM field names", func(t *testing.T) {
		md := ProtectedResourceMetadata{
			Resource:               "https://h/mcp",
			AuthorizationServers:   []string{"https://as.example"},
			ScopesSupported:        []string{"files:read"},
			BearerMethodsSupported: []string{"header"},
			ResourceName:           "Files",
		}
		b, err := json.Marshal(md)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"resource":"https://h/mcp","authorization_servers":["https://as.example"],"scopes_supported":["files:read"],"bearer_methods_supported":["header"],"resource_name":"Files"}`
		if string(b) != want {
			t.Fatalf("JSON = %s\nwant   %s", b, want)
		}
	})
	t.Run("G3 AS metadata field names", func(t *testing.T) {
		md := AuthorizationServerMetadata{
			Issuer:                                     "https://as.example",
			AuthorizationEndpoint:                      "https://as.example/authorize",
			TokenEndpoint:                              "https://as.example/token",
			ResponseTypesSupported:                     []string{"code"},
			CodeChallengeMethodsSupported:              []string{"S256"},
			ClientIDMetadataDocumentSupported:          true,
			AuthorizationResponseISSParameterSupported: true,
		}
		b, err := json.Marshal(md)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"issuer":"https://as.example","authorization_endpoint":"https://as.example/authorize","token_endpoint":"https://as.example/token","response_types_supported":["code"],"code_challenge_methods_supported":["S256"],"authorization_response_iss_parameter_supported":true,"client_id_metadata_document_supported":true}`
		if string(b) != want {
			t.Fatalf("JSON = %s\nwant   %s", b, want)
		}
		var back AuthorizationServerMetadata
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(md, back); diff != "" {
			t.Fatalf("round trip mismatch (-want +got):\n%s", diff)
		}
	})
}
