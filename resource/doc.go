// Package resource protects an MCP server (or any HTTP API) with OAuth
// access tokens from any authorization server, mcpauth first. It is the
// resource-server half of the MCP authorization spec (RFC 9728):
//
//   - RequireBearer is middleware that accepts a token only from the
//     Authorization header (RFC 6750 §2.1), verifies it, checks the scopes
//     the request needs, and answers failures with the challenges MCP
//     clients act on: 401 with resource_metadata (RFC 9728 §5.1), 401
//     invalid_token, and 403 insufficient_scope for step-up (RFC 6750 §3, §3.1,
//     MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors, §Error
//     Handling).
//   - HandleMetadata serves the RFC 9728 protected resource metadata at the
//     path-inserted well-known URL and at the root.
//   - JWTVerifier checks RFC 9068 JWT access tokens with keys from the
//     issuer's JWKS, found through its RFC 8414 metadata and cached; the
//     JWS is parsed and its signature checked by go-jose v4 with an
//     algorithm allowlist;
//     IntrospectionVerifier checks opaque tokens with RFC 7662; Cache
//     remembers verified tokens.
//   - TokenInfoFromContext gives handlers the subject, client, scopes and
//     claims; ToolScopes and RequireScopes express per-tool scopes.
//
// Canonical resource URIs (MCP 2025-11-25 Authorization §Canonical Server URI)
// come from oauth.CanonicalResource, the one helper every part of mcpauth uses.
//
// The package works with the official MCP Go SDK: wrap the SDK's
// StreamableHTTPHandler with RequireBearer (see the example). Run the
// handler with StreamableHTTPOptions.Stateless so that every tool call sees
// the TokenInfo of its own request; a stateful SDK session keeps the context
// of the request that created it, and RequireBearer does not bind sessions
// to users. Tokens are never forwarded anywhere
// (MCP 2025-11-25 Authorization §Access Token Privilege Restriction) and never
// logged.
//
// Not supported: DPoP and mTLS sender-constrained tokens, tokens in the
// query string or body (refused on purpose, OAuth 2.1 §5.2, RFC 8707 §2).
package resource
