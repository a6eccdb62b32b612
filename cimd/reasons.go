package cimd

import (
	"fmt"

	"github.com/mcpauth/mcpauth/oauth"
)

// Reason is a machine-readable code naming the rule a client_id or client
// metadata document broke. Each constant stands for one distinct rule; the
// section of the standard it comes from is carried next to it in
// Problem.Ref. Values are stable snake_case strings, safe to log, count in
// metrics and branch on.
type Reason string

// Reasons for rejecting a client_id URL (CIMD §3).
const (
	ReasonNotURL       Reason = "client_id_not_url"        // CIMD §3: not an absolute URL at all
	ReasonNotHTTPS     Reason = "client_id_not_https"      // CIMD §3: a scheme other than https
	ReasonUserinfo     Reason = "client_id_userinfo"       // CIMD §3: user name or password before the host
	ReasonNoPath       Reason = "client_id_no_path"        // CIMD §3: no path component
	ReasonRootPath     Reason = "client_id_root_path"      // CIMD §3: path is exactly "/"
	ReasonDotSegment   Reason = "client_id_dot_segment"    // CIMD §3: "." or ".." segment, plain or percent-encoded
	ReasonNonCanonical Reason = "client_id_non_canonical"  // CIMD §3: a URL parser would rewrite the input
	ReasonFragment     Reason = "client_id_fragment"       // CIMD §3: fragment, even an empty one
	ReasonIPLiteral    Reason = "client_id_ip_literal"     // CIMD §3, §8.6: host is an IP address in any notation
	ReasonUppercase    Reason = "client_id_uppercase"      // CIMD §3, §8.6: uppercase letters in scheme or host
	ReasonNonASCIIHost Reason = "client_id_non_ascii_host" // CIMD §3, §8.6: IDN host not in punycode form
	ReasonBadHost      Reason = "client_id_bad_host"       // CIMD §3, §8.6: empty or malformed host name
	ReasonBadPort      Reason = "client_id_bad_port"       // CIMD §3: port that is not a number from 1 to 65535
	ReasonBadCharacter Reason = "client_id_bad_character"  // CIMD §3, §8.6: whitespace, control, backslash or other raw byte not allowed in a URL
	ReasonTooLong      Reason = "client_id_too_long"       // CIMD §3, §8.6: longer than MaxClientIDLength bytes
)

// Reasons for rejecting a client metadata document (CIMD §4).
const (
	ReasonInvalidJSON      Reason = "document_invalid_json"       // CIMD §4, RFC 8259 §4: not well-formed UTF-8 JSON, BOM, trailing data
	ReasonNotJSONObject    Reason = "document_not_object"         // CIMD §4, RFC 8259 §4: valid JSON, but not an object
	ReasonDuplicateKey     Reason = "document_duplicate_key"      // CIMD §4, RFC 8259 §4: the same member twice in one object
	ReasonFieldType        Reason = "document_field_type"         // CIMD §4, RFC 8259 §4: a known member has the wrong JSON type
	ReasonClientIDMissing  Reason = "document_client_id_missing"  // CIMD §4: no client_id member
	ReasonClientIDMismatch Reason = "document_client_id_mismatch" // CIMD §4: client_id differs from the URL fetched
	ReasonRedirectURIs     Reason = "redirect_uris_missing"       // MCP 2025-11-25 Authorization §Client ID Metadata Documents: redirect_uris absent or empty
	ReasonRedirectURI      Reason = "redirect_uri_invalid"        // CIMD §4.2, RFC 6749 §3.1.2: one redirect URI breaks a rule
	ReasonClientSecret     Reason = "client_secret_present"       // CIMD §4.1: client_secret or client_secret_expires_at
	ReasonAuthMethod       Reason = "auth_method_unsupported"     // CIMD §4.1, RFC 7591 §2: shared-secret or unknown auth method
	ReasonPrivateKey       Reason = "jwks_private_key"            // CIMD §4.1: private or symmetric key material
	ReasonJWKS             Reason = "jwks_invalid"                // CIMD §8.2, RFC 7591 §2: keys missing, both jwks and jwks_uri, bad jwks_uri
	ReasonSigningAlg       Reason = "auth_signing_alg_invalid"    // CIMD §8.2, RFC 7591 §2: token_endpoint_auth_signing_alg none or HS*
	ReasonGrantType        Reason = "grant_type_forbidden"        // RFC 7591 §2, RFC 9700 §2.1.2, §2.4: implicit, password, or no authorization_code
	ReasonResponseType     Reason = "response_type_unsupported"   // RFC 7591 §2, RFC 9700 §2.1.2, §2.4: a response type other than code
	ReasonApplicationType  Reason = "application_type_invalid"    // OIDC Registration §2: neither web nor native
)

// Reasons the resolver adds around fetching and policy
// (CIMD §5, §7.2, §8.6, §8.9).
const (
	ReasonFetch       Reason = "fetch_failed"       // B: the document could not be fetched
	ReasonContentType Reason = "bad_content_type"   // CIMD §4: not application/json or application/*+json
	ReasonBlocked     Reason = "client_blocked"     // CIMD §7.2, §8.9: the trust policy blocks this client
	ReasonNotAllowed  Reason = "client_not_allowed" // CIMD §7.2, §8.9: allowlist-only policy without a match
)

// Reasons for refusing a loopback development client_id
// (AT Protocol OAuth, Localhost Client Development).
const (
	ReasonLoopbackClient   Reason = "loopback_client_invalid"  // a malformed http://localhost client_id
	ReasonLoopbackDisabled Reason = "loopback_client_disabled" // the server does not accept loopback development clients
)

// Warning codes: conditions that do not reject a client but that an operator
// or the consent screen should show (CIMD §3, §8.5, §8.8, §9.2,
// MCP 2025-11-25 Authorization §Client ID Metadata Documents, §Localhost
// Redirect URI Risks, CIMD §4.1, RFC 7591 §2).
const (
	WarnQueryInClientID     = "query_in_client_id"       // CIMD §3: client_id has a query (SHOULD NOT)
	WarnNonDefaultPort      = "non_default_port"         // CIMD §3: client_id names a port other than the scheme default
	WarnLocalhostOnly       = "localhost_only_redirects" // CIMD §8.5, MCP 2025-11-25 Authorization §Localhost Redirect URI Risks: every redirect URI is on a loopback host
	WarnMissingClientName   = "missing_client_name"      // MCP 2025-11-25 Authorization §Client ID Metadata Documents: no client_name; show the host instead
	WarnGrantTypeFiltered   = "grant_type_filtered"      // CIMD §4.1, RFC 7591 §2: a grant type a public client cannot use was dropped
	WarnURIDropped          = "uri_dropped"              // CIMD §8.8, §9.2: a display URI that is not https was dropped
	WarnClientNameSanitized = "client_name_sanitized"    // CIMD §8.5: client_name needed cleaning for display
)

// Problem is one broken rule: its Reason, Ref (the section of the standard
// the rule comes from, e.g. "draft-ietf-oauth-client-id-metadata-document-02 §3"
// or "RFC 7591 §2"; for mcpauth's stricter rules, the section they tighten),
// the document member or URL part concerned (e.g. "redirect_uris[1]", empty
// when the whole input is concerned) and a sentence telling the client
// author what to fix. Messages never contain secrets; they may quote short
// parts of the input.
type Problem struct {
	Reason  Reason `json:"reason"`
	Ref     string `json:"ref"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Warning is a condition worth showing that does not reject the client.
// Code is one of the Warn* constants; Ref is as in Problem.
type Warning struct {
	Code    string `json:"code"`
	Ref     string `json:"ref"`
	Message string `json:"message"`
}

// Error is every rejection cimd returns: a client_id that breaks a URL
// rule, a document that breaks a content rule, a failed fetch or a policy
// refusal. Reason, Ref and Message repeat the first of Problems, which
// lists every problem found; Err is the underlying cause, if any (a network
// error, say). Use errors.As to get at it. OAuth converts it to the error an
// authorization server sends (CIMD §5.1, RFC 6749 §4.1.2.1).
type Error struct {
	Reason   Reason
	Ref      string
	Message  string
	Problems []Problem
	Err      error
}

// Error returns Message, followed by a count of further problems. The cause
// in Err is not repeated, because Message is shown to client authors and
// the cause may carry internal details such as the address dialled.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = string(e.Reason)
	}
	switch n := len(e.Problems) - 1; {
	case n == 1:
		msg += " (and 1 more problem)"
	case n > 1:
		msg += fmt.Sprintf(" (and %d more problems)", n)
	}
	return msg
}

// Unwrap returns the underlying cause, or nil.
func (e *Error) Unwrap() error { return e.Err }

// Has reports whether any of e's problems has reason r.
func (e *Error) Has(r Reason) bool {
	if e.Reason == r {
		return true
	}
	for _, p := range e.Problems {
		if p.Reason == r {
			return true
		}
	}
	return false
}

// OAuth returns the error response for the authorization or token
// endpoint: invalid_client (RFC 6749 §5.2) with Message as the description.
// Per RFC 6749 §4.1.2.1 the authorization endpoint must show it to the user
// rather than redirect, since the client could not be validated.
func (e *Error) OAuth() *oauth.Error {
	return &oauth.Error{Code: oauth.InvalidClient, Description: e.Message}
}

// newError builds an *Error from one or more problems; the first becomes
// the headline.
func newError(p ...Problem) *Error {
	e := &Error{Problems: append([]Problem(nil), p...)}
	if len(p) > 0 {
		e.Reason, e.Ref, e.Message = p[0].Reason, p[0].Ref, p[0].Message
	}
	return e
}

// The references Problem.Ref and Warning.Ref carry.
const (
	refCIMD             = "draft-ietf-oauth-client-id-metadata-document-02"
	refClientIDURL      = refCIMD + " §3"   // the client_id URL
	refDocument         = refCIMD + " §4"   // the document: JSON, client_id, media type
	refCredentials      = refCIMD + " §4.1" // no shared secrets or private keys
	refRedirectURIs     = refCIMD + " §4.2" // redirect URIs
	refDisplay          = refCIMD + " §8.5" // what the consent screen shows
	refSSRF             = refCIMD + " §8.6" // URLs the server fetches or shows
	refTrustPolicy      = refCIMD + " §8.9" // the operator's trust policy
	refClientMetadata   = "RFC 7591 §2"     // client metadata members
	refJSONNames        = "RFC 8259 §4"     // member names should be unique
	refOIDCRegistration = "OpenID Connect Dynamic Client Registration 1.0 §2"
	refLoopbackRedirect = "RFC 8252 §8.6" // client impersonation through loopback redirects
)
