// Package authserver is mcpauth's OAuth 2.1 authorization server for MCP:
// RFC 8414 metadata, /authorize with login and consent pages, /token
// (authorization_code with PKCE S256, rotating refresh tokens), RFC 7662
// introspection, RFC 7009 revocation, JWKS, optional RFC 7591 dynamic
// registration, and an account page. CIMD clients are resolved through
// cimd.Resolver; static clients come from configuration; DCR clients from
// the store. routes.go lists the whole HTTP surface.
package authserver
