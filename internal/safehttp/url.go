package safehttp

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURLBytes caps the length of a URL CheckURL accepts (2048 bytes is our cap
// for client IDs, as CIMD §3 sets none; the same cap serves jwks_uri and
// logo_uri).
const MaxURLBytes = 2048

// CheckURL validates rawURL for fetching without any network activity and
// returns it parsed. CIMD resolvers call it before Fetch and for URLs found
// inside documents (jwks_uri, logo_uri; CIMD §8.6, §8.8, §9.2, RFC 6890).
//
// The rules:
//   - at most MaxURLBytes of printable ASCII: no whitespace, control
//     characters, backslashes or non-ASCII bytes (ReasonRequest,
//     CIMD §3, §8.6);
//   - absolute, with no userinfo (CIMD §3) and no fragment (CIMD §3)
//     (ReasonRequest);
//   - scheme https; http only when allowLoopback is set and the host is
//     localhost or a loopback IP literal (CIMD §8.6; ReasonScheme);
//   - the host is an IP literal that CheckAddr accepts (ReasonBlockedAddress),
//     or a DNS name of at least two letter-digit-hyphen labels with no
//     trailing dot and no percent-encoding, whose last label is not numeric:
//     0x7f000001, 2130706433, 0177.0.0.1 and 127.1 are ReasonHost, because
//     some resolvers read them as IPv4 addresses (CIMD §8.6, RFC 6890).
//     IPv6 zones are ReasonHost;
//   - "localhost" and names under ".localhost" always mean loopback (RFC 6761
//     §6.3), so they are ReasonBlockedAddress unless allowLoopback is set;
//   - an explicit port is canonical decimal in 1-65535 (ReasonPort).
//
// Not supported: internationalized host names other than their punycode
// (xn--) form, and underscores in host names. CheckURL does not consult an
// allowed-port list; Client.CheckURL does. Errors are *Error with URL set.
func CheckURL(rawURL string, allowLoopback bool) (*url.URL, error) {
	fail := func(r Reason, format string, args ...any) (*url.URL, error) {
		return nil, &Error{Reason: r, URL: rawURL, Err: fmt.Errorf(format, args...)}
	}
	if rawURL == "" {
		return fail(ReasonRequest, "the URL is empty")
	}
	if len(rawURL) > MaxURLBytes {
		return fail(ReasonRequest, "the URL is %d bytes long; at most %d are allowed", len(rawURL), MaxURLBytes)
	}
	for i := 0; i < len(rawURL); i++ {
		if c := rawURL[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return fail(ReasonRequest, "byte %d is %q; whitespace, control characters, backslashes and non-ASCII bytes are not allowed", i, rawURL[i:i+1])
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error would quote the URL a second time
		}
		return fail(ReasonRequest, "%w", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		if u.Scheme == "" {
			return fail(ReasonScheme, "the URL has no scheme")
		}
		return fail(ReasonScheme, "scheme %q is not allowed", u.Scheme)
	case u.Opaque != "":
		return fail(ReasonRequest, "the URL must be absolute, like https://host/path")
	case u.User != nil:
		return fail(ReasonRequest, "the URL must not contain userinfo (user:password@)")
	case strings.Contains(rawURL, "#"):
		return fail(ReasonRequest, "the URL must not contain a fragment (#)")
	case u.Scheme == "http" && !allowLoopback:
		return fail(ReasonScheme, "http is not allowed")
	}
	host := u.Hostname()
	if authority(rawURL, u.Scheme) != u.Host || strings.Contains(u.Host, "%") {
		// url.Parse decodes percent-encoding in hosts; refuse it outright.
		return fail(ReasonHost, "the host must not be percent-encoded")
	}
	if host == "" {
		return fail(ReasonHost, "the URL has no host")
	}
	loopbackHost, herr := checkHost(host, u.Host[0] == '[', allowLoopback)
	if herr != nil {
		herr.URL = rawURL
		return nil, herr
	}
	if u.Scheme == "http" && !loopbackHost {
		return fail(ReasonScheme, "http is allowed only for loopback hosts in development mode")
	}
	if _, err := urlPort(u); err != nil {
		return fail(ReasonPort, "%w", err)
	}
	return u, nil
}

// authority returns the authority of rawURL, which url.Parse accepted with
// the given scheme: what lies between "//" and the next "/" or "?".
func authority(rawURL, scheme string) string {
	rest := rawURL[len(scheme):]
	rest = strings.TrimPrefix(rest, ":")
	rest = strings.TrimPrefix(rest, "//")
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// checkHost validates a URL host (brackets removed). bracketed says it was
// written as [IPv6]. It reports whether the host is loopback.
func checkHost(host string, bracketed, allowLoopback bool) (loopback bool, _ *Error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return false, &Error{Reason: ReasonHost, Err: fmt.Errorf("IPv6 zones are not allowed")}
		}
		if a.Is6() != bracketed {
			return false, &Error{Reason: ReasonHost, Err: fmt.Errorf("IPv6 literals must be bracketed, IPv4 literals must not")}
		}
		if err := CheckAddr(a, allowLoopback); err != nil {
			return false, err.(*Error)
		}
		return a.Unmap().IsLoopback(), nil
	}
	if bracketed {
		return false, &Error{Reason: ReasonHost, Err: fmt.Errorf("%q is not an IPv6 address", host)}
	}
	if err := checkDNSName(host); err != nil {
		return false, &Error{Reason: ReasonHost, Err: err}
	}
	lower := strings.ToLower(host)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		if !allowLoopback {
			return false, &Error{Reason: ReasonBlockedAddress, Err: fmt.Errorf("%q always resolves to loopback (RFC 6761)", host)}
		}
		return true, nil
	}
	if !strings.Contains(host, ".") {
		return false, &Error{Reason: ReasonHost, Err: fmt.Errorf("%q is a single label; resolvers may complete it with a local search domain", host)}
	}
	return false, nil
}

// checkDNSName enforces RFC 1123 host name syntax (letters, digits and
// hyphens; labels of 1-63 bytes; at most 253 bytes; no trailing dot) and
// refuses names whose last label is numeric, as the WHATWG URL standard
// would read them as IPv4 addresses ("ends in a number").
func checkDNSName(host string) error {
	if len(host) > 253 {
		return fmt.Errorf("the host name is longer than 253 bytes")
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" {
			return fmt.Errorf("%q has an empty label or a trailing dot", host)
		}
		if len(l) > 63 {
			return fmt.Errorf("%q has a label longer than 63 bytes", host)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q has a label that starts or ends with a hyphen", host)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q contains %q; only letters, digits, hyphens and dots are allowed", host, l[i:i+1])
			}
		}
	}
	if numericLabel(labels[len(labels)-1]) {
		return fmt.Errorf("%q is a numeric host but not a canonical dotted-quad IPv4 address", host)
	}
	return nil
}

// numericLabel reports whether l is all decimal digits or 0x followed by hex
// digits: the forms inet_aton and the WHATWG IPv4 parser accept as numbers.
func numericLabel(l string) bool {
	digits := l
	hex := false
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		digits, hex = l[2:], true
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		isDigit := c >= '0' && c <= '9'
		isHex := c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
		if !isDigit && !(hex && isHex) {
			return false
		}
	}
	return true
}

// urlPort returns the port u connects to: the explicit one, which must be
// canonical decimal in 1-65535, or the scheme's default.
func urlPort(u *url.URL) (int, error) {
	p := u.Port()
	if p == "" {
		if strings.HasSuffix(u.Host, ":") {
			return 0, fmt.Errorf("the port after %q is empty", u.Host)
		}
		if u.Scheme == "http" {
			return 80, nil
		}
		return 443, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535 written without leading zeros", p)
	}
	return n, nil
}
