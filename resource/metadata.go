// This file serves RFC 9728 Protected Resource Metadata.

package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpauth/mcpauth/oauth"
)

// ProtectedResourceMetadataHandler returns a handler serving md as the
// RFC 9728 §3.2 metadata document: 200 with application/json for GET and
// HEAD, 204 for a CORS preflight, 405 otherwise. CORS is open to every origin
// without credentials, because the document is public and browser-based MCP
// clients fetch it (RFC 9728 §3.1, RFC 9700 §2.6 allows CORS on metadata).
//
// md is checked first (RFC 9728 §2, §3.3,
// MCP 2025-11-25 Authorization §Authorization Server Location): Resource must
// be in canonical form (oauth.CanonicalResource), since clients compare it byte
// for byte with the URL they use; at least one authorization server is
// required; and BearerMethodsSupported, when set, may only be ["header"]
// because RequireBearer accepts nothing else. Zero BearerMethodsSupported is
// filled in as ["header"].
func ProtectedResourceMetadataHandler(md oauth.ProtectedResourceMetadata) (http.Handler, error) {
	if err := checkMetadata(&md); err != nil {
		return nil, err
	}
	body, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("encode protected resource metadata: %w", err)
	}
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		switch r.Method {
		case http.MethodOptions:
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
				h.Add("Vary", "Access-Control-Request-Headers")
			}
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet, http.MethodHead:
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "public, max-age=300")
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				_, _ = w.Write(body)
			}
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	}), nil
}

// HandleMetadata registers ProtectedResourceMetadataHandler(md) on mux at
// both places MCP clients look (RFC 9728 §3, §3.3, §5.1,
// MCP 2025-11-25 Authorization §Protected Resource Metadata Discovery
// Requirements): the path-inserted well-known path of md.Resource
// ("/.well-known/oauth-protected-resource/mcp" for ".../mcp") and the root
// ("/.well-known/oauth-protected-resource"). Both serve the same document,
// whose resource is the MCP endpoint URL (RFC 9728 §3.3): that is the value
// clients must send as the RFC 8707 resource parameter.
//
// The patterns carry no host and no method, so preflights reach the handler.
// Like ServeMux.Handle it panics if a pattern is already registered: to serve
// several resources from one origin, register each document yourself at the
// first of its MetadataPaths, and at most one at the root.
func HandleMetadata(mux *http.ServeMux, md oauth.ProtectedResourceMetadata) error {
	h, err := ProtectedResourceMetadataHandler(md)
	if err != nil {
		return err
	}
	paths, err := MetadataPaths(md.Resource)
	if err != nil {
		return err
	}
	for _, p := range paths {
		mux.Handle(p, h)
	}
	return nil
}

// MetadataPaths returns the URL paths at which the metadata of resource is
// served: the path-inserted one (RFC 9728 §3.1) and, when different, the root
// one. A reverse proxy in front of the server must route both to it.
func MetadataPaths(resource string) ([]string, error) {
	inserted, err := oauth.ProtectedResourceMetadataURL(resource)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(inserted)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", inserted, err)
	}
	p := u.EscapedPath()
	if strings.ContainsAny(p, "{}") {
		return nil, fmt.Errorf("resource %q: a path with { or } cannot be served by http.ServeMux", resource)
	}
	if p == oauth.WellKnownProtectedResource {
		return []string{p}, nil
	}
	return []string{p, oauth.WellKnownProtectedResource}, nil
}

func checkMetadata(md *oauth.ProtectedResourceMetadata) error {
	if md.Resource == "" {
		return errors.New("protected resource metadata: resource is required, e.g. https://mcp.example.com/mcp")
	}
	canon, err := oauth.CanonicalResource(md.Resource)
	if err != nil {
		return fmt.Errorf("protected resource metadata: %w", err)
	}
	if canon != md.Resource {
		return fmt.Errorf("protected resource metadata: resource %q is not in canonical form; use %q", md.Resource, canon)
	}
	if len(md.AuthorizationServers) == 0 {
		return errors.New("protected resource metadata: authorization_servers needs at least one issuer (MCP requires it), e.g. https://auth.example.com")
	}
	for _, as := range md.AuthorizationServers {
		if _, err := oauth.AuthorizationServerMetadataURLs(as); err != nil {
			return fmt.Errorf("protected resource metadata: authorization server: %w", err)
		}
	}
	switch {
	case len(md.BearerMethodsSupported) == 0:
		md.BearerMethodsSupported = []string{"header"}
	case len(md.BearerMethodsSupported) != 1 || md.BearerMethodsSupported[0] != "header":
		return fmt.Errorf("protected resource metadata: bearer_methods_supported %q: RequireBearer accepts only [\"header\"] (OAuth 2.1 section 5.2, RFC 8707 section 2)", md.BearerMethodsSupported)
	}
	return nil
}
