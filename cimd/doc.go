// Package cimd implements OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document-02) for any Go authorization
// server.
//
// A CIMD client_id is an https URL at which the client publishes its own
// metadata. The package provides the three pieces an authorization server
// needs:
//
//   - ParseClientID checks a client_id against every URL rule (SPEC A1-A10)
//     before any network activity.
//   - ParseDocument validates a fetched document (SPEC C1-C15) and applies
//     mcpauth's settled decisions (omitted auth method means "none", a listed
//     set of methods picks the first supported one, harmless unsupported grant
//     types are filtered).
//   - Resolver.Resolve ties them together: trust policy (evaluated before any
//     fetch and again on every use), an RFC 9111 cache with revalidation and
//     bounded stale-if-error, one coalesced fetch per URL for concurrent
//     callers, change events for security-relevant edits, all through an
//     SSRF-hardened fetcher (special-use addresses blocked, the checked address
//     is the one dialled, no redirects, 5120-byte cap, 5 s deadline).
//
// Every rejection is an *Error carrying a machine-readable Reason, the SPEC
// item it enforces, and a sentence telling the client author what to fix.
//
// Not supported: software_statement (ignored, SPEC C14) and the atproto-style
// virtual http://localhost client (SPEC A13).
package cimd
