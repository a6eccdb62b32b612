package authserver

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/mcpauth/mcpauth/oauth"
)

// metadataPaths are where the RFC 8414 and OIDC discovery documents are
// served: path-inserted for issuers with a path (RFC 8414 §3), and
// also the OIDC "appended" form.
func (s *Server) metadataPaths() []string {
	p := s.base
	paths := []string{"/.well-known/oauth-authorization-server" + p, "/.well-known/openid-configuration" + p}
	if p != "" {
		paths = append(paths, p+"/.well-known/openid-configuration", p+"/.well-known/oauth-authorization-server")
	}
	return paths
}

// metadata is the RFC 8414 document, exactly per RFC 8414 §2, CIMD §6.
func (s *Server) metadata() oauth.AuthorizationServerMetadata {
	scopes := map[string]bool{}
	var resources []string
	for _, u := range s.resOrder {
		resources = append(resources, u)
		for _, sc := range s.resources[u].Scopes {
			scopes[sc] = true
		}
	}
	var scopeList []string
	for sc := range scopes {
		scopeList = append(scopeList, sc)
	}
	sort.Strings(scopeList)
	m := oauth.AuthorizationServerMetadata{
		Issuer:                            s.issuer,
		AuthorizationEndpoint:             s.issuer + "/authorize",
		TokenEndpoint:                     s.issuer + "/token",
		JWKSURI:                           s.issuer + "/jwks",
		ScopesSupported:                   scopeList,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethodsSupported: s.authMethods(),
		TokenEndpointAuthSigningAlgValuesSupported:      clientAssertionAlgs(),
		RevocationEndpoint:                              s.issuer + "/revoke",
		RevocationEndpointAuthMethodsSupported:          s.authMethods(),
		RevocationEndpointAuthSigningAlgValuesSupported: clientAssertionAlgs(), // required with private_key_jwt (RFC 8414 §2)
		IntrospectionEndpoint:                           s.issuer + "/introspect",
		IntrospectionEndpointAuthMethodsSupported:       []string{"client_secret_basic", "client_secret_post"},
		CodeChallengeMethodsSupported:                   []string{"S256"},
		AuthorizationResponseISSParameterSupported:      true,
		ClientIDMetadataDocumentSupported:               true,
		ProtectedResources:                              resources,
	}
	if s.enableDCR {
		m.RegistrationEndpoint = s.issuer + "/register"
	}
	return m
}

// authMethods are the client authentication methods of the token and
// revocation endpoints: none and private_key_jwt (RFC 8414 §2, CIMD §6), plus
// the shared-secret methods only when a client can hold a secret (a static
// client with one, or DCR).
func (s *Server) authMethods() []string {
	methods := []string{"none", "private_key_jwt"}
	secrets := s.enableDCR
	for _, c := range s.static {
		secrets = secrets || c.SecretHash != ""
	}
	if secrets {
		methods = append(methods, "client_secret_basic", "client_secret_post")
	}
	return methods
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(s.metadata())
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.keys.JWKS())
}
