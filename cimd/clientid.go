package cimd

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Client Identifier URL rules: draft-ietf-oauth-client-id-metadata-document-02
// §3, RFC 3986 §3 and §6.2, CIMD §3.

// MaxClientIDLength is the longest client_id ParseClientID accepts, in bytes
// (CIMD §3, §8.6; the draft sets no limit).
const MaxClientIDLength = 2048

// exampleClientID is the shape every fix-it message points to.
const exampleClientID = "https://app.example/client.json"

// ClientID is a client_id that passed every Client Identifier URL rule. Its
// zero value is not a valid client_id (see IsZero). A ClientID is an
// immutable value, safe to copy and to use concurrently.
type ClientID struct {
	raw      string
	host     string // lowercase, no port, no brackets
	port     string // "" when absent, never normalised
	hasQuery bool
	dev      bool // accepted only under the development loopback exception
}

// ParseClientID checks s against every Client Identifier URL rule and
// returns it as a ClientID (CIMD §3). The rules
// are strict and purely syntactic; no network activity happens here:
//
//   - https only, with no userinfo, not even an empty ":@";
//   - a path is required and may not be just "/" (CIMD §3); a trailing "/"
//     on a longer path is kept and compared exactly;
//   - no "." or ".." segments, plain or percent-encoded (CIMD §3), and no input
//     a URL parser would rewrite: percent-encoded unreserved characters,
//     lowercase hex in percent-encodings, raw characters that must be
//     percent-encoded, an empty port or query, a trailing dot on the host;
//   - no fragment, not even a bare "#" (CIMD §3);
//   - a query is allowed and kept byte for byte (CIMD §3,
//     CIMD §3);
//   - a port is allowed and never normalised: ":443" stays (CIMD §3);
//   - the host is a lowercase ASCII DNS name (punycode for IDNs), never an
//     IP address in any notation: dotted, hex, octal, single number,
//     bracketed IPv6 (CIMD §3, §8.6);
//   - no whitespace, control characters or backslashes, and at most
//     MaxClientIDLength bytes (CIMD §3, §8.6).
//
// Compare ClientIDs with String (simple string comparison, RFC 3986 §6.2.1,
// CIMD §3). Every rejection is an *Error whose message says what to fix.
//
// Whether the host resolves to a special-use address (CIMD §8.6, RFC 6890) is
// checked at fetch time, not here.
func ParseClientID(s string) (ClientID, error) {
	return parseClientID(s, false)
}

// parseClientID is ParseClientID with the development loopback exception
// (CIMD §8.6): when allowLoopback is true it also
// accepts the http scheme and IP-literal hosts, provided the host is loopback
// (localhost, an address in 127.0.0.0/8 or [::1], written canonically). Every
// other rule applies unchanged.
func parseClientID(s string, allowLoopback bool) (ClientID, error) {
	id, p := checkClientID(s, allowLoopback)
	if p != nil {
		return ClientID{}, newError(*p)
	}
	return id, nil
}

// String returns the client_id exactly as it was given.
func (c ClientID) String() string { return c.raw }

// Host returns the host name: lowercase, without port or brackets.
func (c ClientID) Host() string { return c.host }

// Port returns the port as written in the client_id, or "" when absent.
// "https://app.example:443/c" has port "443": client IDs that differ only
// in an explicit default port are different clients (CIMD-02 §3).
func (c ClientID) Port() string { return c.port }

// HasQuery reports whether the client_id has a query component (CIMD §3).
func (c ClientID) HasQuery() bool { return c.hasQuery }

// IsZero reports whether c is the zero ClientID, which no parse returns.
func (c ClientID) IsZero() bool { return c.raw == "" }

// DevLoopback reports whether c was accepted only because of the
// development loopback exception: an http client_id, or one whose host is a
// loopback IP address (CIMD §8.6). Such clients
// should be labelled "development client" wherever they are shown.
func (c ClientID) DevLoopback() bool { return c.dev }

// ClientIDWarnings returns the conditions worth showing for an accepted
// client_id that do not reject it: a query component (CIMD §3, SHOULD NOT)
// and a port other than the scheme's default (CIMD §3).
func ClientIDWarnings(id ClientID) []Warning {
	var w []Warning
	if id.hasQuery {
		w = append(w, Warning{Code: WarnQueryInClientID, Ref: refClientIDURL,
			Message: "client_id has a query component, which the draft advises against; servers compare it byte for byte, so the document's client_id must repeat it exactly"})
	}
	if id.port != "" && id.port != defaultPort(id.raw) {
		w = append(w, Warning{Code: WarnNonDefaultPort, Ref: refClientIDURL,
			Message: fmt.Sprintf("client_id uses port %s; some servers only fetch from the default port, so prefer a URL without a port", id.port)})
	}
	return w
}

// defaultPort is the default port of the scheme that raw starts with.
func defaultPort(raw string) string {
	if strings.HasPrefix(raw, "http://") {
		return "80"
	}
	return "443"
}

// idProblem returns a Problem with the client_id, as Field.
func idProblem(r Reason, ref, format string, args ...any) *Problem {
	return &Problem{Reason: r, Ref: ref, Field: "client_id", Message: fmt.Sprintf(format, args...)}
}

// checkClientID applies the rules in the order a client author would fix
// them and reports the first one broken.
func checkClientID(s string, allowLoopback bool) (ClientID, *Problem) {
	if p := checkRawClientID(s); p != nil {
		return ClientID{}, p
	}
	hier, isHTTP, p := checkScheme(s, allowLoopback)
	if p != nil {
		return ClientID{}, p
	}
	authority, rest, p := splitAuthority(hier)
	if p != nil {
		return ClientID{}, p
	}
	id := ClientID{raw: s}
	if p := parseAuthority(authority, isHTTP, allowLoopback, &id); p != nil {
		return ClientID{}, p
	}
	if p := checkPathAndQuery(rest, &id); p != nil {
		return ClientID{}, p
	}
	// Belt and braces: the standard parser must agree and reproduce s.
	u, err := url.Parse(s)
	if err != nil || u.String() != s || u.User != nil || u.Fragment != "" || u.Opaque != "" || u.Hostname() != id.host {
		return ClientID{}, idProblem(ReasonNonCanonical, refClientIDURL, "client_id is not in canonical URL form; write it as a URL parser would print it")
	}
	return id, nil
}

// checkRawClientID checks s as bytes: not empty, not too long, and free of
// control characters, spaces and backslashes (CIMD §3, §8.6).
func checkRawClientID(s string) *Problem {
	if s == "" {
		return idProblem(ReasonNotURL, refClientIDURL, "client_id is empty; use an https URL such as %s", exampleClientID)
	}
	if len(s) > MaxClientIDLength {
		return idProblem(ReasonTooLong, refClientIDURL, "client_id is %d bytes long; keep it to at most %d", len(s), MaxClientIDLength)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return idProblem(ReasonBadCharacter, refClientIDURL, "client_id contains a control character (byte %d); remove it", i)
		case c == ' ':
			return idProblem(ReasonBadCharacter, refClientIDURL, "client_id contains a space (byte %d); remove it or percent-encode it as %%20", i)
		case c == '\\':
			return idProblem(ReasonBadCharacter, refClientIDURL, "client_id contains a backslash (byte %d); use only forward slashes", i)
		}
	}
	return nil
}

// checkScheme checks the scheme (CIMD §3; http only with allowLoopback, for a
// loopback host as parseAuthority checks) and the absence of a fragment
// (CIMD §3), and returns what follows "scheme://".
func checkScheme(s string, allowLoopback bool) (hier string, isHTTP bool, p *Problem) {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || !validScheme(s[:colon]) {
		return "", false, idProblem(ReasonNotURL, refClientIDURL, "client_id must be an absolute https URL with a scheme, e.g. %s", exampleClientID)
	}
	scheme := s[:colon]
	switch lower := strings.ToLower(scheme); lower {
	case "https", "http":
		if lower == "http" && !allowLoopback {
			return "", false, idProblem(ReasonNotHTTPS, refClientIDURL, "client_id must use https, not http, e.g. %s", exampleClientID)
		}
		if scheme != lower {
			return "", false, idProblem(ReasonUppercase, refClientIDURL, "client_id scheme must be lowercase: write %s:// instead of %s://", lower, scheme)
		}
		isHTTP = lower == "http"
	default:
		return "", false, idProblem(ReasonNotHTTPS, refClientIDURL, "client_id must be an https URL, not a %q URL, e.g. %s", truncate(scheme, 32), exampleClientID)
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return "", false, idProblem(ReasonFragment, refClientIDURL, "client_id must not have a fragment; remove everything from the %q", "#")
	}
	hier, ok := strings.CutPrefix(s[colon+1:], "//")
	if !ok {
		return "", false, idProblem(ReasonNotURL, refClientIDURL, "client_id must start with %s:// followed by a host, e.g. %s", scheme, exampleClientID)
	}
	return hier, isHTTP, nil
}

// splitAuthority splits hier into the authority and the path and query
// after it, refusing userinfo (CIMD §3).
func splitAuthority(hier string) (authority, rest string, p *Problem) {
	end := strings.IndexAny(hier, "/?")
	if end < 0 {
		end = len(hier)
	}
	authority, rest = hier[:end], hier[end:]
	if strings.IndexByte(authority, '@') >= 0 {
		return "", "", idProblem(ReasonUserinfo, refClientIDURL, "client_id must not contain a user name or password; remove everything up to and including the %q", "@")
	}
	return authority, rest, nil
}

// checkPathAndQuery checks the path (CIMD §3) and the query (CIMD §3: allowed and
// kept byte for byte) and records the query in id.
func checkPathAndQuery(rest string, id *ClientID) *Problem {
	path, query, hasQuery := strings.Cut(rest, "?")
	switch path {
	case "":
		return idProblem(ReasonNoPath, refClientIDURL, "client_id must have a path, e.g. %s", exampleClientID)
	case "/":
		return idProblem(ReasonRootPath, refClientIDURL, "client_id must have a path other than %q, e.g. %s", "/", exampleClientID)
	}
	for _, seg := range strings.Split(path[1:], "/") {
		if isDotSegment(seg) {
			return idProblem(ReasonDotSegment, refClientIDURL, "client_id path must not contain the segment %q; write the path without . or .. segments", seg)
		}
	}
	if p := checkURLChars(path, "path"); p != nil {
		return p
	}
	if hasQuery {
		if query == "" {
			return idProblem(ReasonNonCanonical, refClientIDURL, "client_id ends in %q with no query; remove it", "?")
		}
		if p := checkURLChars(query, "query"); p != nil {
			return p
		}
		id.hasQuery = true
	}
	return nil
}

// parseAuthority checks host and port and records them in id.
func parseAuthority(authority string, isHTTP, allowLoopback bool, id *ClientID) *Problem {
	bad := idProblem
	if authority == "" {
		return bad(ReasonBadHost, refClientIDURL, "client_id must name a host after ://, e.g. %s", exampleClientID)
	}
	host, port, hasPort := authority, "", false
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return bad(ReasonBadHost, refClientIDURL, "client_id host starts with %q but has no closing %q", "[", "]")
		}
		host = authority[1:end]
		if after := authority[end+1:]; after != "" {
			port, hasPort = strings.CutPrefix(after, ":")
			if !hasPort {
				return bad(ReasonBadHost, refClientIDURL, "client_id host %q is followed by %q; only :port may follow it", truncate(authority[:end+1], 64), truncate(after, 16))
			}
		}
	} else if i := strings.IndexByte(authority, ':'); i >= 0 {
		host, port, hasPort = authority[:i], authority[i+1:], true
	}
	if hasPort {
		if p := checkPort(port); p != nil {
			return p
		}
		id.port = port
	}
	if strings.HasPrefix(authority, "[") {
		if !allowLoopback || !isLoopbackLiteral(host, true) {
			return bad(ReasonIPLiteral, refClientIDURL, "client_id host must be a DNS name, not the IP address [%s]", truncate(host, 64))
		}
		id.host, id.dev = host, true
		return nil
	}
	if p := checkHostName(host); p != nil {
		return p
	}
	if endsInNumber(host) {
		if !allowLoopback || !isLoopbackLiteral(host, false) {
			return bad(ReasonIPLiteral, refClientIDURL, "client_id host must be a DNS name, not an IP address such as %q", truncate(host, 64))
		}
		id.host, id.dev = host, true
		return nil
	}
	if isHTTP && host != "localhost" {
		return bad(ReasonNotHTTPS, refClientIDURL, "client_id must use https; http is accepted only for loopback hosts in development mode")
	}
	id.host, id.dev = host, isHTTP
	return nil
}

// checkPort checks that p is a port number from 1 to 65535 in canonical
// decimal form (RFC 3986 §3.2.3; an empty port or leading zeros are
// rewritten by URL parsers, so they are non-canonical).
func checkPort(p string) *Problem {
	if p == "" {
		return idProblem(ReasonNonCanonical, refClientIDURL, "client_id has a %q after the host but no port; remove it", ":")
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' || i >= 5 {
			return idProblem(ReasonBadPort, refClientIDURL, "client_id port %q must be a number from 1 to 65535", truncate(p, 16))
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 || n > 65535 {
		return idProblem(ReasonBadPort, refClientIDURL, "client_id port %q must be a number from 1 to 65535", p)
	}
	if p[0] == '0' {
		return idProblem(ReasonNonCanonical, refClientIDURL, "client_id port %q must be written without leading zeros", p)
	}
	return nil
}

// checkHostName checks that h is a lowercase ASCII DNS name: labels of
// letters, digits and hyphens, 1-63 bytes each, at most 253 bytes in all
// (RFC 1123 §2.1, CIMD §3, §8.6).
func checkHostName(h string) *Problem {
	bad := func(r Reason, format string, args ...any) *Problem {
		return idProblem(r, refClientIDURL, format, args...)
	}
	if h == "" {
		return bad(ReasonBadHost, "client_id must name a host after ://, e.g. %s", exampleClientID)
	}
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			return bad(ReasonNonASCIIHost, "client_id host must be ASCII; write an internationalised domain name in its punycode (xn--) form")
		}
	}
	if strings.IndexByte(h, '%') >= 0 {
		return bad(ReasonBadHost, "client_id host must not be percent-encoded; write the host name as plain lowercase ASCII")
	}
	if strings.ToLower(h) != h {
		return bad(ReasonUppercase, "client_id host must be lowercase: write %q", truncate(strings.ToLower(h), 64))
	}
	if strings.HasSuffix(h, ".") && len(h) > 1 {
		return bad(ReasonNonCanonical, "client_id host must not end in a dot: write %q", truncate(strings.TrimSuffix(h, "."), 64))
	}
	if len(h) > 253 {
		return bad(ReasonBadHost, "client_id host is %d bytes long; a DNS name has at most 253", len(h))
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return bad(ReasonBadHost, "client_id host %q must consist of dot-separated labels of 1 to 63 characters", truncate(h, 64))
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return bad(ReasonBadHost, "client_id host contains %q; a host name may contain only letters, digits, hyphens and dots", string(c))
			}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad(ReasonBadHost, "client_id host label %q must not start or end with a hyphen", truncate(label, 64))
		}
	}
	return nil
}

// endsInNumber reports whether a WHATWG URL parser would read h as an IPv4
// address: its last label is all digits or 0x-prefixed hex (WHATWG URL
// "ends in a number checker"). That covers 10.0.0.5, 2130706433,
// 0x7f000001 and 0177.0.0.1 (CIMD §8.6, RFC 6890).
func endsInNumber(h string) bool {
	last := h[strings.LastIndexByte(h, '.')+1:]
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// isLoopbackLiteral reports whether h is a loopback IP address written in
// its canonical form: dotted-decimal in 127.0.0.0/8, or ::1 (ipv6 true, the
// text between the brackets). IPv4-mapped and zoned addresses never are.
func isLoopbackLiteral(h string, ipv6 bool) bool {
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback() && a.Zone() == "" && a.Is6() == ipv6 && !a.Is4In6() && a.String() == h
}

// isDotSegment reports whether a path segment is "." or "..", counting
// percent-encoded dots (%2e, %2E) as dots (RFC 3986 §5.2.4, WHATWG URL
// "single-dot and double-dot path segments").
func isDotSegment(seg string) bool {
	if len(seg) > 6 {
		return false
	}
	seg = strings.ReplaceAll(strings.ToLower(seg), "%2e", ".")
	return seg == "." || seg == ".."
}

// checkURLChars checks a path or query for characters a URL parser would
// rewrite: raw bytes outside RFC 3986 pchar / "/" / "?", malformed or
// lowercase percent-encodings, and percent-encoded unreserved characters
// (RFC 3986 §2.1, §2.3, §6.2.2.1, §6.2.2.2).
func checkURLChars(s, part string) *Problem {
	bad := func(r Reason, format string, args ...any) *Problem {
		return idProblem(r, refClientIDURL, format, args...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if !isPathChar(c) {
				return bad(ReasonNonCanonical, "client_id %s contains %q, which must be percent-encoded", part, string(c))
			}
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return bad(ReasonBadCharacter, "client_id %s has a %q that does not start a percent-encoding such as %%2F; encode it as %%25", part, "%")
		}
		enc := s[i : i+3]
		if strings.ToUpper(enc) != enc {
			return bad(ReasonNonCanonical, "client_id %s has the percent-encoding %q; use uppercase hex digits: %q", part, enc, strings.ToUpper(enc))
		}
		if b := unhex(s[i+1])<<4 | unhex(s[i+2]); isUnreserved(b) {
			return bad(ReasonNonCanonical, "client_id %s has %q, an encoded %q; write the character itself", part, enc, string(b))
		}
		i += 2
	}
	return nil
}

// validScheme reports whether s is an RFC 3986 §3.1 scheme.
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// isUnreserved reports whether c is an RFC 3986 §2.3 unreserved character.
func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathChar reports whether c may appear unencoded in a path or query:
// RFC 3986 pchar (unreserved, sub-delims, ":" and "@") plus "/" and "?".
func isPathChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/?", c) >= 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// truncate shortens s to at most n bytes for quoting in a message, marking
// the cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
