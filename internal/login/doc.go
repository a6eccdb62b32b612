// Package login is the client side of MCP authorization (MCP 2025-11-25
// "Authorization", MCP 2025-11-25 Authorization §Authorization Flow Steps):
// what `mcpauth login` does to obtain an access token for an MCP server it has
// never seen before.
//
// An [Authorizer] is an http.RoundTripper placed under an MCP client (the
// official Go SDK's StreamableClientTransport). It attaches the stored access
// token to every request for the MCP server and, when the server answers
//
//   - 401: refreshes the token once if it can, otherwise discovers the
//     authorization server from the challenge (WWW-Authenticate
//     resource_metadata, then the path-inserted and root RFC 9728 metadata,
//     then the RFC 8414 / OpenID locations in the MCP order, checking issuer
//     equality and S256 support), registers (pre-registered credentials, then
//     a Client ID Metadata Document URL, then RFC 7591 dynamic registration),
//     and runs the authorization code flow with PKCE S256 through a loopback
//     redirect listener on 127.0.0.1, verifying state and the RFC 9207 iss
//     parameter, and exchanging the code with the RFC 8707 resource;
//   - 403 insufficient_scope: authorizes again with the union of the scopes
//     requested so far and the challenged ones (step-up), a bounded number of
//     times;
//
// and then replays the request. Tokens and dynamic registrations are kept in
// a [FileStore] (one 0600 file per MCP server and issuer in a 0700
// directory).
//
// Every URL learned from the network (resource_metadata, authorization
// servers, endpoints, the authorization URL) must be https, or http on a
// loopback host; the HTTP client used for discovery and token requests
// resolves names itself and dials only addresses the policy allows: never
// link-local, unspecified or multicast addresses, loopback only when the MCP
// server itself is on loopback, private ranges only when the MCP server is
// on a private or loopback address (MCP Security Best Practices §Server-Side
// Request Forgery).
//
// Not supported: DPoP, private_key_jwt client authentication, HTTP proxies
// (HTTP_PROXY and HTTPS_PROXY are ignored), redirects on metadata and token
// requests (a 3xx is an error), and choosing among several authorization
// servers (the first listed one is used).
package login
