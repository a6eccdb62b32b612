// Package gateway protects an existing MCP server that speaks Streamable
// HTTP (MCP 2025-11-25 "Transports") without touching its code: a reverse
// proxy that puts resource.RequireBearer in front of it. It is the engine of
// `mcpauth proxy`.
//
// A Gateway serves three things on its origin:
//
//   - the RFC 9728 protected resource metadata, path-inserted and at the root
//     (resource.HandleMetadata; RFC 9728);
//   - the MCP endpoint (the path of Options.Resource): every request needs a
//     bearer token that Options.Verifier accepts, with the scopes it needs,
//     or gets the 401/403 challenge MCP clients act on (RFC 9728, RFC 6750); a
//     tools/call for a tool listed in Options.ToolScopes needs that tool's
//     scopes too, answered 403 insufficient_scope with step-up (RFC 6750 §3.1,
//     MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors);
//   - nothing else: other paths are 404.
//
// Accepted requests go to Options.Upstream. The client's token is never
// forwarded (MCP 2025-11-25 Authorization §Access Token Privilege Restriction):
// the Authorization header is removed and the verified identity travels in
// headers the operator names (X-MCPAuth-Subject, X-MCPAuth-Client-ID and
// X-MCPAuth-Scopes by default), after every header from the client with one of
// those names is stripped, in any letter case and with "_" in place of "-".
// Cookies are not forwarded in either direction. Streams pass through
// unbuffered: server-sent events and long-lived GET streams are flushed on
// every write, and Mcp-Session-Id and Last-Event-ID travel unchanged. Each
// upstream session is bound to the identity that created it (MCP Security Best
// Practices, "Session Hijacking"), so another user's token cannot ride on a
// session ID it learned. The bindings live in memory: a session ID the gateway
// did not see created (after a restart, or on another replica) gets 404, and
// the client starts a new session (MCP 2025-11-25 "Session Management"), so
// replicas in front of a stateful upstream need sticky routing.
//
// The upstream is reached through net/http's Transport, tuned for one
// upstream (keep-alive pool sized for many concurrent requests, dial, TLS
// and header timeouts, a 1 MiB cap on response headers). Before a request
// goes upstream the gateway removes the hop-by-hop headers, those the
// client's Connection header names, Upgrade and every Sec-WebSocket-*
// header, and Expect. A GET or DELETE with a body is refused (400): the
// tool scope rules read POST bodies only. Interim (1xx) answers of the
// upstream are not passed on; 101 Switching Protocols gets 502.
//
// Failures are answered, never left hanging: an unreachable upstream gets
// 502, one that does not start answering within Options.UpstreamTimeout gets
// 504, a body over Options.MaxBodyBytes gets 413, each with a JSON-RPC error
// body carrying the request's id when the request was JSON-RPC. An upstream
// that sends its headers and then stalls has Options.UpstreamTimeout again
// to finish a body that is not an event stream; after that the gateway
// closes the connection to the client mid-body, the only signal left once
// a status is sent. Event streams have no time limit.
//
// Not supported: CORS (browser-based clients need it added in front), the
// deprecated HTTP+SSE transport of MCP 2024-11-05 (two endpoints),
// WebSocket or other protocol upgrades, and DPoP or mTLS-bound tokens.
package gateway
