// Package oauth holds the protocol vocabulary shared by every part of mcpauth:
// the OAuth error type (RFC 6749 §5.2, RFC 6750 §3.1, RFC 8707 §2), metadata
// structures and small helpers. It depends on the standard library only and
// is safe to import from any authorization or resource server.
package oauth
