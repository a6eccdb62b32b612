// Package httpcache computes how long a shared cache may keep an HTTP
// response (RFC 9111 §4.2) and how long it may serve it stale while the
// origin is down (RFC 5861 §4), clamped to an operator's bounds. cimd uses it
// for client metadata documents (draft-ietf-oauth-client-id-metadata-document-02 §5.2).
//
// Only response directives are read; Vary is not supported.
package httpcache
