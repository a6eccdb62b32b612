package safehttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// absoluteResolver queries a *net.Resolver with the name made absolute
// ("example.com."), so the resolver never appends a search domain from
// resolv.conf and lands on an internal host.
type absoluteResolver struct{ r *net.Resolver }

func (a absoluteResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if isLocalhostName(host) {
		return localhostAddrs(network), nil
	}
	if !strings.HasSuffix(host, ".") {
		host += "."
	}
	return a.r.LookupNetIP(ctx, network, host)
}

// isLocalhostName reports whether host is "localhost" or a name under it.
// RFC 6761 §6.3: such names are the loopback address and are never sent to
// a DNS server (the absolute form "localhost." also misses /etc/hosts).
func isLocalhostName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// localhostAddrs are the loopback addresses of network ("ip", "ip4" or
// "ip6"), IPv4 first.
func localhostAddrs(network string) []netip.Addr {
	switch network {
	case "ip4":
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	case "ip6":
		return []netip.Addr{netip.IPv6Loopback()}
	}
	return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
}

// checkedDialer is the default Options.Dial: a net.Dialer whose control hook
// checks the address once more just before connect(2), as defence in depth
// (CIMD §8.6, RFC 6890: check the address actually dialled).
func checkedDialer(allowLoopback bool) func(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("dial %q: %w", address, err)
			}
			return CheckAddr(ap.Addr(), allowLoopback)
		},
	}
	return d.DialContext
}

// connect resolves f.host once, checks every address it returned, and
// dials the checked addresses in order until one answers (CIMD §8.6, RFC 6890:
// resolve, check every address, then connect only to a checked address;
// CIMD §8.6). Dialling the literal IP:port leaves no second
// resolution for DNS rebinding to exploit.
func (f *fetch) connect() (net.Conn, error) {
	addrs, err := f.resolve()
	if err != nil {
		return nil, f.fail(err)
	}
	var last *Error
	for _, a := range addrs {
		f.setAddr(a)
		cctx, cancel := context.WithTimeout(f.ctx, f.c.opts.ConnectTimeout)
		conn, err := f.c.opts.Dial(cctx, "tcp", netip.AddrPortFrom(a, uint16(f.port)).String())
		timedOut := cctx.Err() != nil
		cancel()
		if err == nil {
			return conn, nil
		}
		var be *Error
		if errors.As(err, &be) && be.Reason == ReasonBlockedAddress {
			return nil, f.fail(be)
		}
		if timedOut || f.ctx.Err() != nil {
			last = f.deadline("connecting to "+a.String(), f.c.opts.ConnectTimeout, err)
		} else {
			last = &Error{Reason: ReasonConnect, Err: err}
		}
		if f.ctx.Err() != nil {
			break
		}
	}
	return nil, f.fail(last)
}

// resolve returns the checked, unmapped, de-duplicated addresses of f.host.
// If any address is blocked, the whole host is refused.
func (f *fetch) resolve() ([]netip.Addr, *Error) {
	if a, err := netip.ParseAddr(f.host); err == nil {
		if err := CheckAddr(a, f.c.opts.AllowLoopback); err != nil {
			return nil, err.(*Error)
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	dctx, cancel := context.WithTimeout(f.ctx, f.c.opts.DNSTimeout)
	defer cancel()
	got, err := f.c.opts.Resolver.LookupNetIP(dctx, "ip", f.host)
	if err != nil {
		var de *net.DNSError
		if dctx.Err() != nil || errors.As(err, &de) && de.IsTimeout {
			return nil, f.deadline("the DNS lookup of "+f.host, f.c.opts.DNSTimeout, err)
		}
		return nil, &Error{Reason: ReasonDNS, Err: err}
	}
	if len(got) == 0 {
		return nil, &Error{Reason: ReasonDNS, Err: fmt.Errorf("%s has no addresses", f.host)}
	}
	addrs := make([]netip.Addr, 0, len(got))
	for _, a := range got {
		if err := CheckAddr(a, f.c.opts.AllowLoopback); err != nil {
			e := err.(*Error)
			e.Err = fmt.Errorf("%s resolves to %s, %w", f.host, a, e.Err)
			return nil, e
		}
		a = a.Unmap()
		if !contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs, nil
}

func contains(addrs []netip.Addr, a netip.Addr) bool {
	for _, b := range addrs {
		if a == b {
			return true
		}
	}
	return false
}

// dialPlain is the Transport's DialContext: used only for http, which
// CheckURL allows only for loopback hosts under AllowLoopback. The address
// the Transport asks for is ignored; f already knows the checked target.
func (f *fetch) dialPlain(context.Context, string, string) (net.Conn, error) {
	return f.connect()
}

// dialTLS is the Transport's DialTLSContext: connect, then a TLS handshake
// bounded by TLSTimeout that verifies the certificate for the URL's host
// against Options.RootCAs (RFC 9110 §4.3.4, CIMD §8.6).
func (f *fetch) dialTLS(context.Context, string, string) (net.Conn, error) {
	conn, err := f.connect()
	if err != nil {
		return nil, err
	}
	cfg := f.c.tls.Clone()
	cfg.ServerName = f.host
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(f.ctx, f.c.opts.TLSTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		if hctx.Err() != nil {
			return nil, f.fail(f.deadline("the TLS handshake", f.c.opts.TLSTimeout, err))
		}
		return nil, f.fail(&Error{Reason: ReasonTLS, Err: err})
	}
	return tc, nil
}

// deadline classifies a context expiry during phase: the caller's context
// ending first is ReasonCanceled (or ReasonTimeout for the caller's own
// deadline); the overall Timeout or the phase's limit is ReasonTimeout.
func (f *fetch) deadline(phase string, limit time.Duration, cause error) *Error {
	switch {
	case errors.Is(f.parent.Err(), context.Canceled):
		return &Error{Reason: ReasonCanceled, Err: f.parent.Err()}
	case f.parent.Err() != nil:
		return &Error{Reason: ReasonTimeout, Err: fmt.Errorf("the caller's deadline passed: %w", cause)}
	case f.ctx.Err() != nil:
		return &Error{Reason: ReasonTimeout, Err: fmt.Errorf("the whole fetch did not finish within %s: %w", f.c.opts.Timeout, cause)}
	default:
		return &Error{Reason: ReasonTimeout, Err: fmt.Errorf("%s did not finish within %s: %w", phase, limit, cause)}
	}
}
