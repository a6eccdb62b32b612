package safehttp

import (
	"fmt"
	"net/netip"
	"strings"
)

// Reason classifies why a fetch or a check failed. Callers branch on it (for
// example to pick an OAuth error or to decide whether a stale cached document
// may still be served); the values are stable snake_case strings suitable for
// logs and metrics.
type Reason string

// The reasons a fetch can fail, each with the section it enforces.
const (
	// ReasonScheme: the URL is not https, or http for a non-loopback host
	// (CIMD §8.6).
	ReasonScheme Reason = "scheme_not_allowed"
	// ReasonHost: the host is not a valid DNS name or IP literal: a
	// non-canonical numeric IPv4 form such as 0x7f000001, 2130706433,
	// 0177.0.0.1 or 127.1, a percent-encoded or non-ASCII name, a trailing dot,
	// a single label, or an IPv6 zone (CIMD §3, §8.6,
	// CIMD §8.6, RFC 6890).
	ReasonHost Reason = "invalid_host"
	// ReasonPort: the port is malformed or not in Options.AllowedPorts
	// (CIMD §3, §8.6).
	ReasonPort Reason = "port_not_allowed"
	// ReasonBlockedAddress: the host is, or resolves to, a special-use address
	// (CIMD §8.6, RFC 6890). Error.Addr holds
	// the offending address when one is known.
	ReasonBlockedAddress Reason = "blocked_address"
	// ReasonDNS: the host name did not resolve (MCP SEP-991 §Security
	// Implications).
	ReasonDNS Reason = "dns_failure"
	// ReasonConnect: no checked address accepted a TCP connection, or the
	// connection broke before the body was complete.
	ReasonConnect Reason = "connect_failure"
	// ReasonTLS: the TLS handshake failed, for example an unknown CA, a
	// self-signed, expired or wrong-host certificate (RFC 9110 §4.3.4,
	// CIMD §8.6, RFC 9110 §4.3.4).
	ReasonTLS Reason = "tls_failure"
	// ReasonTimeout: a per-phase limit or the overall deadline passed
	// (MCP SEP-991 §Security Implications).
	ReasonTimeout Reason = "timeout"
	// ReasonRedirect: the server answered 3xx (other than a conditional 304);
	// redirects are never followed (CIMD §5).
	ReasonRedirect Reason = "redirect"
	// ReasonStatus: the server answered anything but 200, or 304 to an
	// unconditional request (CIMD §5, §5.1, §5.2, §8.6).
	// Error.StatusCode holds the code.
	ReasonStatus Reason = "bad_status"
	// ReasonTooLarge: the body or the response headers exceed their caps
	// (CIMD §8.7).
	ReasonTooLarge Reason = "too_large"
	// ReasonEncoding: the response carries a Content-Encoding other than
	// identity (CIMD §8.7, §5: no transparent
	// decompression).
	ReasonEncoding Reason = "content_encoding"
	// ReasonSetCookie: the response sets a cookie (RFC 9110 §4.3.4, CIMD §8.6,
	// CIMD §8.6).
	ReasonSetCookie Reason = "sets_cookie"
	// ReasonRateLimited: the per-host rate limit is exhausted
	// (MCP SEP-991 §Best Practices).
	ReasonRateLimited Reason = "rate_limited"
	// ReasonRequest: the URL or the request is malformed: unparsable,
	// relative, too long, with userinfo, a fragment, whitespace, control
	// characters or a backslash (CIMD §3, §8.6).
	ReasonRequest Reason = "bad_request"
	// ReasonCanceled: the caller's context was canceled. It says nothing
	// about the host, so Unavailable reports false.
	ReasonCanceled Reason = "canceled"
)

// maxURLInMessage bounds how much of a URL Error.Error quotes.
const maxURLInMessage = 256

// Error is the error returned by Fetch, CheckURL and CheckAddr. Every field
// but Reason is optional. Use errors.As to get it.
type Error struct {
	// Reason classifies the failure.
	Reason Reason
	// URL is the URL being fetched or checked, as the caller gave it.
	URL string
	// StatusCode is the HTTP status for ReasonStatus and ReasonRedirect (and
	// for failures after the response arrived), else 0.
	StatusCode int
	// Addr is the address that was blocked, or the address dialled when the
	// failure happened after connecting; the zero Addr when none.
	Addr netip.Addr
	// Err is the underlying cause or detail, if any.
	Err error
}

// Error returns one sentence a client author can act on. It quotes the URL
// and cites the section it enforces, e.g.
//
//	fetch "https://x/c.json": the server answered 302; redirects are never followed (CIMD section 5): serve the document at this exact URL
func (e *Error) Error() string {
	var b strings.Builder
	if e.URL != "" {
		u := e.URL
		if len(u) > maxURLInMessage {
			u = u[:maxURLInMessage] + "..."
		}
		fmt.Fprintf(&b, "fetch %q: ", u)
	}
	b.WriteString(e.sentence())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// sentence explains the reason and what to do about it.
func (e *Error) sentence() string {
	switch e.Reason {
	case ReasonScheme:
		return "only https URLs are fetched (CIMD section 8.6): use an https:// URL"
	case ReasonHost:
		return "the host is not a valid DNS name or IP address (CIMD section 3, section 8.6): use a fully qualified DNS name such as client.example.com"
	case ReasonPort:
		return "the port is not allowed (CIMD section 3): serve the document on an allowed port such as 443"
	case ReasonBlockedAddress:
		if e.Addr.IsValid() {
			return fmt.Sprintf("%s is a special-use address that is never fetched (CIMD section 8.6, RFC 6890): publish the document on a public address", e.Addr)
		}
		return "the host is a special-use address that is never fetched (CIMD section 8.6, RFC 6890): publish the document on a public address"
	case ReasonDNS:
		return "the host name could not be resolved: check its DNS records"
	case ReasonConnect:
		if e.Addr.IsValid() {
			return fmt.Sprintf("the connection to %s failed: check that the server is up", e.Addr)
		}
		return "the connection failed: check that the server is up"
	case ReasonTLS:
		return "the TLS handshake failed (RFC 9110 section 4.3.4, CIMD section 8.6): the server needs a valid, unexpired certificate for this host name from a public CA"
	case ReasonTimeout:
		return "the server did not answer in time (MCP SEP-991 section Security Implications): make the document quick to serve"
	case ReasonRedirect:
		return fmt.Sprintf("the server answered %d; redirects are never followed (CIMD section 5): serve the document at this exact URL", e.StatusCode)
	case ReasonStatus:
		return fmt.Sprintf("the server answered %d; only 200 is accepted (CIMD section 5): serve the document at this URL with status 200", e.StatusCode)
	case ReasonTooLarge:
		return "the response is too large (CIMD section 8.7): keep the document small"
	case ReasonEncoding:
		return "the response is compressed; compressed responses are refused (CIMD section 8.7): serve it without Content-Encoding"
	case ReasonSetCookie:
		return "the response sets a cookie (RFC 9110 section 4.3.4, CIMD section 8.6): serve the document without Set-Cookie"
	case ReasonRateLimited:
		return "too many fetches from this host (MCP SEP-991 section Best Practices): try again later"
	case ReasonRequest:
		return "the URL or request is not valid"
	case ReasonCanceled:
		return "the fetch was canceled"
	default:
		return fmt.Sprintf("the fetch failed (%s)", string(e.Reason))
	}
}

// Unwrap returns the underlying cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Unavailable reports whether the failure suggests the host is down rather
// than misconfigured or hostile: a DNS failure, a connect failure, a timeout,
// a 5xx status or rate limiting. A cache may serve a stale copy on such
// errors (RFC 5861 stale-if-error). TLS failures, blocked addresses,
// redirects, 4xx, oversized or compressed responses and cookies are not
// "unavailable": the host answered, wrongly.
func (e *Error) Unavailable() bool {
	switch e.Reason {
	case ReasonDNS, ReasonConnect, ReasonTimeout, ReasonRateLimited:
		return true
	case ReasonStatus:
		return e.StatusCode >= 500 && e.StatusCode <= 599
	default:
		return false
	}
}

// Ref returns the section of the standard whose rule a fetch failing for r
// enforces, for diagnostics shown to a document's publisher. A reason with no
// more specific rule, including "", gets the section on fetch failures.
func (r Reason) Ref() string {
	const cimd = "draft-ietf-oauth-client-id-metadata-document-02"
	switch r {
	case ReasonHost, ReasonPort:
		return cimd + " §3" // the client_id URL
	case ReasonRedirect, ReasonStatus:
		return cimd + " §5" // exactly 200, no redirects
	case ReasonScheme, ReasonBlockedAddress:
		return cimd + " §8.6" // server-side request forgery
	case ReasonTooLarge, ReasonEncoding:
		return cimd + " §8.7" // maximum response size
	case ReasonTLS:
		return "RFC 9110 §4.3.4" // https certificate verification
	default:
		return cimd + " §5.1" // a failed fetch aborts the request
	}
}

// IsJSONMediaType reports whether the media type mt (as returned by
// mime.ParseMediaType) is application/json or application/*+json, the types a
// client metadata document may be served as
// (draft-ietf-oauth-client-id-metadata-document-02 §4).
func IsJSONMediaType(mt string) bool {
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}
