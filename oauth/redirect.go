package oauth

import "strings"

// Redirect URI matching: OAuth 2.1 (draft-ietf-oauth-v2-1-13) §4.1.1 and
// §8.4.2, RFC 8252 §7.3, RFC 9700 §2.1.

// MatchRedirectURI reports whether the redirect_uri of an authorization
// request (requested) matches one registered for the client (registered).
//
// The comparison is a simple string comparison (RFC 3986 §6.2.1, O21 §4.1.1,
// RFC 9700 §2.1): no case folding, no percent-decoding, no default-port
// elision. The one exception is the loopback interface redirect of RFC 8252
// §7.3 and O21 §8.4.2: when registered is an http URI whose host is exactly
// 127.0.0.1, [::1] or localhost, the port of requested is ignored (either
// may carry one, or not), while scheme, host, path and query must still be
// equal byte for byte. A requested port must be a canonical decimal number
// from 1 to 65535. URIs carrying a fragment or userinfo never match on this
// rule. MatchRedirectURI is safe for concurrent use.
func MatchRedirectURI(registered, requested string) bool {
	if registered == requested {
		return true
	}
	regHost, regRest, ok := splitLoopback(registered)
	if !ok {
		return false
	}
	reqHost, reqRest, ok := splitLoopback(requested)
	return ok && regHost == reqHost && regRest == reqRest
}

// IsLoopbackRedirect reports whether uri is an http redirect URI on a
// loopback host (127.0.0.1, [::1] or localhost, any valid port), the kind
// that MatchRedirectURI compares without its port (RFC 8252 §7.3). An https
// URI on a loopback host is not one: it is matched exactly.
func IsLoopbackRedirect(uri string) bool {
	_, _, ok := splitLoopback(uri)
	return ok
}

// splitLoopback splits an http loopback redirect URI into its host and the
// part after the authority (path and query), dropping the port. ok is false
// when uri is not such a URI.
func splitLoopback(uri string) (host, rest string, ok bool) {
	after, found := strings.CutPrefix(uri, "http://")
	if !found {
		return "", "", false
	}
	end := strings.IndexAny(after, "/?#")
	if end < 0 {
		end = len(after)
	}
	authority, rest := after[:end], after[end:]
	if strings.ContainsRune(rest, '#') {
		return "", "", false
	}
	host = authority
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.HasSuffix(authority, "]") {
		if !validPort(authority[i+1:]) {
			return "", "", false
		}
		host = authority[:i]
	}
	// RFC 8252 §7.3 names the IP literals; localhost is added because MCP
	// clients register it (O21 §8.4.2 calls it NOT RECOMMENDED, not forbidden).
	switch host {
	case "127.0.0.1", "[::1]", "localhost":
		return host, rest, true
	}
	return "", "", false
}

// validPort reports whether p is a port number in canonical decimal form,
// 1 to 65535, with no sign and no leading zero.
func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}
