// This file is the client-side SSRF defence of MCP Security Best Practices
// "Server-Side Request Forgery": URL rules for everything learned
// from the network, and an HTTP client that dials only allowed addresses.
package login

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// ErrURLRefused is wrapped by every rejection of a URL by the
// MCP Security Best Practices §Server-Side Request Forgery rules.
var ErrURLRefused = errors.New("URL refused")

// maxURLLength bounds every URL the client accepts from the network.
const maxURLLength = 4096

// checkURL enforces MCP Security Best Practices §Server-Side Request Forgery on
// a URL that names an HTTP endpoint the client will contact or send the user
// to: an absolute https URL, or http on a loopback host (localhost,
// 127.0.0.0/8, [::1]); no userinfo, no fragment, no whitespace or control
// bytes. javascript:, data:, file:, vbscript: and every other scheme are
// refused. what names the URL in errors.
func checkURL(what, raw string) (*url.URL, error) {
	if len(raw) > maxURLLength {
		return nil, fmt.Errorf("%w: %s is %d bytes long; at most %d are allowed", ErrURLRefused, what, len(raw), maxURLLength)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return nil, fmt.Errorf("%w: %s %q contains byte %#x", ErrURLRefused, what, raw, c)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %v", ErrURLRefused, what, raw, err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("%w: %s %q must use https (http is allowed on loopback hosts only)", ErrURLRefused, what, raw)
		}
	default:
		return nil, fmt.Errorf("%w: %s %q must be an https URL, not scheme %q", ErrURLRefused, what, raw, u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: %s %q must be an absolute URL with a host", ErrURLRefused, what, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: %s %q must not contain userinfo", ErrURLRefused, what, raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, fmt.Errorf("%w: %s %q must not contain a fragment", ErrURLRefused, what, raw)
	}
	return u, nil
}

// isLoopbackHost reports whether host (without brackets or port) is
// "localhost" or a loopback IP literal.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// addrPolicy says which addresses the discovery client may dial besides
// public ones. It is derived from the addresses of the MCP server itself:
// the user chose that server, so its own network neighbourhood is allowed,
// and nothing closer.
type addrPolicy struct {
	loopback bool // the MCP server is on loopback
	private  bool // the MCP server is on loopback or a private range
}

// policyFor derives the policy from the MCP server's addresses.
func policyFor(addrs []netip.Addr) addrPolicy {
	var p addrPolicy
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case a.IsLoopback():
			p.loopback, p.private = true, true
		case isPrivate(a):
			p.private = true
		}
	}
	return p
}

// isPrivate reports whether a is in an RFC 1918 or RFC 4193 private range or
// in the RFC 6598 shared address space (100.64.0.0/10).
func isPrivate(a netip.Addr) bool {
	if a.IsPrivate() {
		return true
	}
	b := a.As16()
	return a.Is4() && b[12] == 100 && b[13]&0xc0 == 64
}

// check returns an error unless a may be dialled under p. Link-local
// (including 169.254.169.254, the cloud metadata address), unspecified,
// multicast and "this network" addresses are never allowed.
func (p addrPolicy) check(a netip.Addr) error {
	a = a.Unmap()
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(),
		a.IsInterfaceLocalMulticast(), a.Is4() && a.As4()[0] == 0, a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%w: address %s is a special-use address", ErrURLRefused, a)
	case a.IsLoopback() && !p.loopback:
		return fmt.Errorf("%w: address %s is loopback but the MCP server is not", ErrURLRefused, a)
	case isPrivate(a) && !p.private:
		return fmt.Errorf("%w: address %s is in a private range but the MCP server is not", ErrURLRefused, a)
	}
	return nil
}

// lookupFunc resolves a host name to addresses.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// dialFunc opens a connection; net.Dialer.DialContext is one.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// policyDialer resolves the host itself, checks every address against the
// policy and dials only a checked address, so a name cannot resolve to an
// allowed address at check time and another at dial time.
type policyDialer struct {
	policy func(ctx context.Context) addrPolicy
	lookup lookupFunc
	dial   dialFunc
}

func (d *policyDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = d.lookup(ctx, host); err != nil {
		return nil, fmt.Errorf("resolve %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %q: no addresses", host)
	}
	p := d.policy(ctx)
	for _, a := range addrs {
		if err := p.check(a); err != nil {
			return nil, fmt.Errorf("dial %q: %w", host, err)
		}
	}
	var firstErr error
	for _, a := range addrs {
		c, err := d.dial(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// defaultLookup resolves with the system resolver.
func defaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Limits of the discovery and token client.
const (
	requestTimeout  = 15 * time.Second
	maxMetadataSize = 256 << 10
)

// newDiscoveryClient returns the client for metadata, registration and token
// requests: no proxy, no redirects (CheckRedirect hands back the 3xx, which
// callers treat as an error), no cookies, bounded headers and time.
func newDiscoveryClient(d *policyDialer) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:            d.DialContext,
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  requestTimeout,
			MaxResponseHeaderBytes: 64 << 10,
			IdleConnTimeout:        30 * time.Second,
		},
		Timeout:       requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
