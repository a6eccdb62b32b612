// This file holds the two discovery documents of OAuth: RFC 8414
// (Authorization Server Metadata) and RFC 9728 (Protected Resource Metadata),
// and the well-known URLs at which they are published.

package oauth

import (
	"fmt"
	"net/url"
	"strings"
)

// Well-known URI suffixes (RFC 8615) of the discovery documents.
const (
	// WellKnownAuthorizationServer is the RFC 8414 §3 suffix.
	WellKnownAuthorizationServer = "/.well-known/oauth-authorization-server"
	// WellKnownOpenIDConfiguration is the OpenID Connect Discovery 1.0 §4 suffix.
	WellKnownOpenIDConfiguration = "/.well-known/openid-configuration"
	// WellKnownProtectedResource is the RFC 9728 §3 suffix.
	WellKnownProtectedResource = "/.well-known/oauth-protected-resource"
)

// AuthorizationServerMetadata is the RFC 8414 §2 metadata document of an
// authorization server, with the extensions MCP relies on: RFC 9207 §3
// (authorization_response_iss_parameter_supported), CIMD-02 §6
// (client_id_metadata_document_supported) and RFC 9728 §4
// (protected_resources). The zero value of every optional field is omitted
// from JSON, so RFC 8414 defaults apply to it; list auth methods and grant
// types explicitly (RFC 8414 §2, CIMD §6) because those defaults include
// client_secret_basic and implicit.
//
// Not supported: signed_metadata (RFC 8414 §2.1), which is neither produced
// nor checked.
type AuthorizationServerMetadata struct {
	Issuer                                             string   `json:"issuer"`
	AuthorizationEndpoint                              string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                                      string   `json:"token_endpoint,omitempty"`
	JWKSURI                                            string   `json:"jwks_uri,omitempty"`
	RegistrationEndpoint                               string   `json:"registration_endpoint,omitempty"`
	ScopesSupported                                    []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                             []string `json:"response_types_supported"`
	ResponseModesSupported                             []string `json:"response_modes_supported,omitempty"`
	GrantTypesSupported                                []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported                  []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported         []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	ServiceDocumentation                               string   `json:"service_documentation,omitempty"`
	UILocalesSupported                                 []string `json:"ui_locales_supported,omitempty"`
	OPPolicyURI                                        string   `json:"op_policy_uri,omitempty"`
	OPTOSURI                                           string   `json:"op_tos_uri,omitempty"`
	RevocationEndpoint                                 string   `json:"revocation_endpoint,omitempty"`
	RevocationEndpointAuthMethodsSupported             []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpoint                              string   `json:"introspection_endpoint,omitempty"`
	IntrospectionEndpointAuthMethodsSupported          []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	CodeChallengeMethodsSupported                      []string `json:"code_challenge_methods_supported,omitempty"`
	AuthorizationResponseISSParameterSupported         bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	ClientIDMetadataDocumentSupported                  bool     `json:"client_id_metadata_document_supported,omitempty"`
	ProtectedResources                                 []string `json:"protected_resources,omitempty"`
}

// ProtectedResourceMetadata is the RFC 9728 §2 metadata document of a
// protected resource such as an MCP server
// (MCP 2025-11-25 Authorization §Authorization Server Location). Resource is
// REQUIRED and must equal the resource identifier the document was found
// through (RFC 9728 §3.3); MCP requires at least one entry in
// AuthorizationServers. Optional fields are omitted from JSON when zero.
//
// Not supported: signed_metadata (RFC 9728 §2.2) and language-tagged
// human-readable values (§2.1).
type ProtectedResourceMetadata struct {
	Resource                              string   `json:"resource"`
	AuthorizationServers                  []string `json:"authorization_servers,omitempty"`
	JWKSURI                               string   `json:"jwks_uri,omitempty"`
	ScopesSupported                       []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported                []string `json:"bearer_methods_supported,omitempty"`
	ResourceSigningAlgValuesSupported     []string `json:"resource_signing_alg_values_supported,omitempty"`
	ResourceName                          string   `json:"resource_name,omitempty"`
	ResourceDocumentation                 string   `json:"resource_documentation,omitempty"`
	ResourcePolicyURI                     string   `json:"resource_policy_uri,omitempty"`
	ResourceTOSURI                        string   `json:"resource_tos_uri,omitempty"`
	TLSClientCertificateBoundAccessTokens bool     `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	AuthorizationDetailsTypesSupported    []string `json:"authorization_details_types_supported,omitempty"`
	DPoPSigningAlgValuesSupported         []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundAccessTokensRequired         bool     `json:"dpop_bound_access_tokens_required,omitempty"`
}

// ProtectedResourceMetadataURL returns the URL at which the metadata of
// resource is published: the well-known suffix inserted between the host and
// the path and query (RFC 9728 §3, §5.1), so "https://h/public/mcp"
// gives "https://h/.well-known/oauth-protected-resource/public/mcp". A
// terminating "/" of the path is removed first (RFC 9728 §3.1). Pass the
// resource in its canonical form (CanonicalResource).
func ProtectedResourceMetadataURL(resource string) (string, error) {
	return insertWellKnown(resource, WellKnownProtectedResource, true)
}

// ProtectedResourceMetadataRootURL returns the metadata URL at the root of
// the resource's origin ("https://h/.well-known/oauth-protected-resource"),
// the last place MCP clients look (MCP 2025-11-25 "Protected Resource
// Metadata Discovery Requirements", RFC 9728 §3, §3.3, §5.1,
// MCP 2025-11-25 Authorization §Protected Resource Metadata Discovery
// Requirements).
func ProtectedResourceMetadataRootURL(resource string) (string, error) {
	origin, _, err := splitOrigin(resource)
	if err != nil {
		return "", err
	}
	return origin + WellKnownProtectedResource, nil
}

// AuthorizationServerMetadataURLs returns, in the order MCP clients try them
// (MCP 2025-11-25 "Authorization Server Metadata Discovery", RFC 8414 §3.1,
// MCP 2025-11-25 Authorization §Authorization Server Metadata Discovery), the
// URLs at which the issuer may publish its metadata: the RFC 8414 §3.1
// path-inserted URL, the OpenID Connect path-inserted URL and, for issuers with
// a path, the OpenID Connect path-appended URL. The document found must carry
// an issuer identical to issuer (RFC 8414 §3.3).
func AuthorizationServerMetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#") {
		return nil, fmt.Errorf("issuer %q must be an absolute URL without query or fragment (RFC 8414 §2)", issuer)
	}
	oauthURL, err := insertWellKnown(issuer, WellKnownAuthorizationServer, false)
	if err != nil {
		return nil, err
	}
	oidcURL, err := insertWellKnown(issuer, WellKnownOpenIDConfiguration, false)
	if err != nil {
		return nil, err
	}
	urls := []string{oauthURL, oidcURL}
	if _, path, _ := splitOrigin(issuer); strings.TrimSuffix(path, "/") != "" {
		urls = append(urls, strings.TrimSuffix(issuer, "/")+WellKnownOpenIDConfiguration)
	}
	return urls, nil
}

// insertWellKnown puts suffix between the origin and the rest of base,
// dropping a terminating "/" of the path (RFC 8414 §3.1, RFC 9728 §3.1).
func insertWellKnown(base, suffix string, allowQuery bool) (string, error) {
	origin, rest, err := splitOrigin(base)
	if err != nil {
		return "", err
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery && !allowQuery {
		return "", fmt.Errorf("%q must not have a query", base)
	}
	out := origin + suffix + strings.TrimSuffix(path, "/")
	if hasQuery {
		out += "?" + query
	}
	return out, nil
}

// splitOrigin splits an absolute http(s) URL into "scheme://authority" and
// the raw rest (path and query), keeping the bytes of the rest unchanged.
func splitOrigin(s string) (origin, rest string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("parse %q: %w", s, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.Opaque != "" || u.Fragment != "" || strings.Contains(s, "#") {
		return "", "", fmt.Errorf("%q must be an absolute http or https URL without a fragment", s)
	}
	after := s[len(u.Scheme)+len("://"):]
	end := strings.IndexAny(after, "/?")
	if end < 0 {
		end = len(after)
	}
	return s[:len(u.Scheme)+len("://")+end], after[end:], nil
}
