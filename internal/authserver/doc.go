// Package authserver is mcpauth's OAuth 2.1 authorization server for MCP:
// RFC 8414 metadata, /authorize with login and consent pages, /token
// (authorization_code with PKCE S256, rotating refresh tokens, RFC 7523
// private_key_jwt client authentication), RFC 7662 introspection, RFC 7009
// revocation, JWKS, optional RFC 7591 dynamic registration, client logos
// served from our own origin, and an account page where users revoke what
// they approved. CIMD clients are resolved through cimd.Resolver; static
// clients come from configuration; DCR clients from the store. routes.go
// lists the whole HTTP surface; errors.go is the one place that renders
// errors.
//
// Not supported: DPoP, PAR, OpenID Connect ID tokens, the implicit and
// password grants, client_credentials, RFC 7592 client management.
package authserver
