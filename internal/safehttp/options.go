package safehttp

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Defaults for the zero values of Options (CIMD §8.7, MCP SEP-991 §Security
// Implications, CIMD §5, §8.7).
const (
	DefaultMaxBodyBytes       = 5120
	DefaultTimeout            = 5 * time.Second
	DefaultDNSTimeout         = 2 * time.Second
	DefaultConnectTimeout     = 2 * time.Second
	DefaultTLSTimeout         = 3 * time.Second
	DefaultHeaderTimeout      = 3 * time.Second
	DefaultPerHostConcurrency = 4
	DefaultPerHostRate        = 5
	DefaultPerHostBurst       = 10
	DefaultUserAgent          = "mcpauth (+https://github.com/mcpauth/mcpauth)"

	// MaxResponseHeaderBytes caps the response headers Fetch reads; more is
	// ReasonTooLarge.
	MaxResponseHeaderBytes = 16 << 10
)

// Options configures a Client. Every zero value has a documented safe
// default; negative numbers are refused by New.
type Options struct {
	// MaxBodyBytes caps the decoded body. Reaching the cap before EOF is an
	// error (ReasonTooLarge): a body of exactly MaxBodyBytes is accepted, one
	// byte more is not. 0 means 5120 (CIMD §8.7).
	MaxBodyBytes int64
	// Timeout is one overall deadline for the whole fetch, from the call to
	// Fetch (including waiting for a per-host slot) to the last body byte.
	// 0 means 5s (MCP SEP-991 §Security Implications).
	Timeout time.Duration
	// DNSTimeout bounds the name lookup. 0 means 2s.
	DNSTimeout time.Duration
	// ConnectTimeout bounds each TCP connection attempt. 0 means 2s.
	ConnectTimeout time.Duration
	// TLSTimeout bounds the TLS handshake. 0 means 3s.
	TLSTimeout time.Duration
	// HeaderTimeout bounds the time from the request being written to the
	// complete response headers. 0 means 3s.
	HeaderTimeout time.Duration
	// AllowLoopback is the development exception of CIMD §8.6,
	// CIMD §8.6: loopback targets (127.0.0.0/8, ::1,
	// localhost) are allowed, and the http scheme is allowed when the host is
	// loopback. Off by default; never in production.
	AllowLoopback bool
	// RootCAs verifies server certificates. nil means the system roots, so
	// SSL_CERT_FILE and SSL_CERT_DIR work. See LoadRootCAs.
	RootCAs *x509.CertPool
	// UserAgent is sent on every request (RFC 9110 §4.3.4, CIMD §8.6). "" means
	// DefaultUserAgent.
	UserAgent string
	// Resolver looks up host names. nil means net.DefaultResolver, queried
	// with the name made absolute (a trailing dot) so that no local search
	// domain is appended.
	Resolver Resolver
	// Dial opens TCP connections. It is only ever given a checked IP:port,
	// never a name, and must honour ctx. nil means a net.Dialer that checks
	// the address again just before connecting.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// PerHostConcurrency caps in-flight fetches per host name; callers beyond
	// it wait, bounded by their context and Timeout. 0 means 4.
	PerHostConcurrency int
	// PerHostRate is the sustained number of fetches per second per host
	// name (a token bucket, golang.org/x/time/rate). 0 means 5.
	PerHostRate float64
	// PerHostBurst is the token bucket size. Over the limit Fetch fails fast
	// with ReasonRateLimited (MCP SEP-991 §Best Practices). 0 means 10.
	PerHostBurst int
	// AllowedPorts lists the ports URLs may name (explicitly or by scheme
	// default). Empty means any port (CIMD §3).
	AllowedPorts []int
	// Logger receives one record per fetch: Debug on success, Info on
	// failure (MCP SEP-991 §Best Practices: log fetch failures). nil means
	// discard.
	Logger *slog.Logger
	// Now is the clock of the per-host rate limiter. nil means time.Now.
	Now func() time.Time
}

// Resolver looks up the IP addresses of a host name. *net.Resolver
// implements it. network is "ip"; host never has a trailing dot when passed
// to a caller-supplied Resolver.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// withDefaults validates o and fills in its zero values.
func (o Options) withDefaults() (Options, error) {
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"Timeout", &o.Timeout, DefaultTimeout},
		{"DNSTimeout", &o.DNSTimeout, DefaultDNSTimeout},
		{"ConnectTimeout", &o.ConnectTimeout, DefaultConnectTimeout},
		{"TLSTimeout", &o.TLSTimeout, DefaultTLSTimeout},
		{"HeaderTimeout", &o.HeaderTimeout, DefaultHeaderTimeout},
	}
	for _, d := range durations {
		if *d.d < 0 {
			return o, fmt.Errorf("safehttp: %s is %s; it must not be negative", d.name, *d.d)
		}
		if *d.d == 0 {
			*d.d = d.def
		}
	}
	switch {
	case o.MaxBodyBytes < 0:
		return o, fmt.Errorf("safehttp: MaxBodyBytes is %d; it must not be negative", o.MaxBodyBytes)
	case o.PerHostConcurrency < 0:
		return o, fmt.Errorf("safehttp: PerHostConcurrency is %d; it must not be negative", o.PerHostConcurrency)
	case o.PerHostBurst < 0:
		return o, fmt.Errorf("safehttp: PerHostBurst is %d; it must not be negative", o.PerHostBurst)
	case o.PerHostRate < 0 || math.IsNaN(o.PerHostRate) || math.IsInf(o.PerHostRate, 0):
		return o, fmt.Errorf("safehttp: PerHostRate is %v; it must be a finite, non-negative number", o.PerHostRate)
	case strings.ContainsAny(o.UserAgent, "\r\n\x00"):
		return o, fmt.Errorf("safehttp: UserAgent %q contains a control character", o.UserAgent)
	}
	for _, p := range o.AllowedPorts {
		if p < 1 || p > 65535 {
			return o, fmt.Errorf("safehttp: AllowedPorts contains %d; ports are 1-65535", p)
		}
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.PerHostConcurrency == 0 {
		o.PerHostConcurrency = DefaultPerHostConcurrency
	}
	if o.PerHostRate == 0 {
		o.PerHostRate = DefaultPerHostRate
	}
	if o.PerHostBurst == 0 {
		o.PerHostBurst = DefaultPerHostBurst
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Resolver == nil {
		o.Resolver = absoluteResolver{net.DefaultResolver}
	}
	if o.Dial == nil {
		o.Dial = checkedDialer(o.AllowLoopback)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.AllowedPorts = append([]int(nil), o.AllowedPorts...)
	return o, nil
}
