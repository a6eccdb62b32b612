// Package cimd implements OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document-02) for any Go authorization
// server.
//
// A CIMD client_id is an https URL at which the client publishes its own
// metadata. The package provides what an authorization server needs:
//
//   - ParseClientID checks a client_id against every URL rule (§3) before
//     any network activity.
//   - ParseDocument validates a fetched document (§4) and applies mcpauth's
//     settled choices (omitted auth method means "none", a listed set of
//     methods picks the first supported one, harmless unsupported grant types
//     are filtered).
//   - NewPolicy compiles the operator's trust policy (§8.9).
//   - Resolver.Resolve ties them together: trust policy (evaluated before any
//     fetch and again on every use), an RFC 9111 cache with revalidation and
//     bounded stale-if-error, one coalesced fetch per URL for concurrent
//     callers, change events for security-relevant edits, all through an
//     SSRF-hardened fetcher (special-use addresses blocked, the checked address
//     is the one dialled, no redirects, 5120-byte cap, 5 s deadline).
//
// Every rejection is an *Error carrying a machine-readable Reason, a Ref to
// the section of the standard behind the rule, and a sentence telling the
// client author what to fix.
//
// Not supported: software_statement (ignored, §4.3) and the atproto-style
// virtual http://localhost client.
package cimd
