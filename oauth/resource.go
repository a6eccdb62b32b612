// This file implements canonical resource identifiers: RFC 8707 §2 (resource
// indicators) as profiled by MCP 2025-11-25 "Canonical Server URI".

package oauth

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxResourceLength is the longest resource URI CanonicalResource accepts, in
// bytes. RFC 8707 sets no limit; real MCP endpoint URLs are far shorter.
const MaxResourceLength = 2048

// CanonicalResource returns the canonical form of an MCP server URI, used both
// as the RFC 8707 §2 `resource` parameter and as the access token audience
// (RFC 9068 §3). Every part of mcpauth that compares resource URIs calls this
// one function and then compares the results byte for byte.
//
// The input must be an absolute http or https URL (RFC 8707 §2: an absolute
// URI) without a fragment, userinfo, whitespace, backslashes or non-ASCII
// bytes (write internationalised hosts in punycode). The result differs from
// the input in two ways only (RFC 8707 §2 POLICY, MCP "Canonical Server URI"):
//
//   - the scheme and the host are lower-cased;
//   - a path of exactly "/" is removed, so "https://h/" becomes "https://h".
//     A trailing slash after a longer path ("https://h/mcp/") is kept: it may
//     be significant to the server.
//
// Default ports are not removed: "https://h:443/mcp" and "https://h/mcp" are
// different resources, as they are different client IDs under CIMD (CIMD §3).
// Configure the URL exactly as clients reach the server. The path and query
// are kept byte for byte; percent-encoding is not normalised.
//
// A rejected input gives an *Error with Code InvalidTarget (RFC 8707 §2)
// whose description says what to fix.
//
// Not supported: URIs that are not http or https (such as urn: resource
// indicators), IPv6 zone identifiers.
func CanonicalResource(s string) (string, error) {
	if len(s) > MaxResourceLength {
		return "", NewError(InvalidTarget, "resource is %d bytes long; at most %d are allowed", len(s), MaxResourceLength)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '#':
			return "", NewError(InvalidTarget, "resource %q must not contain a fragment (#)", s)
		case c <= ' ' || c >= 0x7f || c == '\\':
			return "", NewError(InvalidTarget, "resource %q contains byte %#x; use an ASCII URL (punycode hosts, percent-encoded paths)", s, c)
		}
	}
	origin, tail, err := splitOrigin(s)
	if err != nil {
		return "", NewError(InvalidTarget, "resource %q must be an absolute http or https URL, e.g. https://mcp.example.com/mcp", s)
	}
	scheme, authority, _ := strings.Cut(origin, "://")
	if strings.ContainsAny(authority, "@%") {
		return "", NewError(InvalidTarget, "resource %q must not contain userinfo or an escaped host", s)
	}
	if err := checkPort(authority); err != nil {
		return "", NewError(InvalidTarget, "resource %q: %v", s, err)
	}
	if tail == "/" {
		tail = ""
	}
	return strings.ToLower(scheme) + "://" + strings.ToLower(authority) + tail, nil
}

// checkPort rejects an empty port ("h:") and ports outside 1-65535.
func checkPort(authority string) error {
	i := strings.LastIndexByte(authority, ':')
	if i < 0 || i < strings.LastIndexByte(authority, ']') {
		return nil
	}
	port := authority[i+1:]
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q must be a number from 1 to 65535", port)
	}
	return nil
}
