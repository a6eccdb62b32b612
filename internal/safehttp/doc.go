// Package safehttp is the only HTTP client mcpauth uses for URLs chosen by
// someone else: Client ID Metadata Documents, and the jwks_uri and logo_uri
// they contain (CIMD §5, §8.6, §8.8, §9.2-8.7).
// Nothing else in mcpauth calls http.Get or uses
// http.DefaultClient for such URLs (CONVENTIONS 11).
//
// A fetch is an SSRF attempt until proven otherwise, so Client.Fetch:
//
//   - validates the URL before any I/O (CheckURL): https only, no userinfo,
//     no fragment, no non-canonical numeric hosts such as 0x7f000001 or
//     2130706433, IP literals checked with CheckAddr, optional port list;
//   - resolves the host once, checks every returned address against the
//     special-use table of CIMD §8.6 (RFC 6890; IPv4-mapped, NAT64, 6to4 and
//     Teredo forms included) and refuses the host if any address is special,
//     then dials only the checked IP:port from the Transport's dialer, so a
//     second, rebound resolution never happens (CIMD §8.6);
//   - verifies TLS against the system roots (or Options.RootCAs), never uses
//     a proxy, a cookie jar or credentials, and sends only User-Agent,
//     Accept, Accept-Encoding: identity and the conditional headers
//     If-None-Match and If-Modified-Since;
//   - never follows redirects, accepts only 200 (or 304 to a conditional
//     request), refuses Set-Cookie and any Content-Encoding, caps headers at
//     16 KiB and the body at 5120 bytes whatever Content-Length says;
//   - bounds everything by one overall deadline (5 s) plus per-phase limits
//     for DNS, connect, TLS and response headers (MCP SEP-991 §Security
//     Implications);
//   - limits each host name to a few concurrent fetches and a token bucket
//     of fetches per second (MCP SEP-991 §Best Practices), keeping that state
//     in a bounded map.
//
// Every failure is an *Error whose Reason says what went wrong, whose
// message says what the document's publisher should fix, and whose
// Unavailable method tells a cache whether serving a stale copy is
// reasonable (the host looks down) or not (the host answered wrongly).
//
// Options.AllowLoopback is the development exception of CIMD §8.6,
// CIMD §8.6: it lets loopback addresses through, and http for
// loopback hosts. It must stay off in production.
//
// Not supported: HTTP/2 (requests use HTTP/1.1 with one connection per
// fetch), proxies, methods other than GET, request bodies, and
// internationalized host names other than their xn-- form.
package safehttp
