package safehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
)

// publicIP is what the fake resolver answers for example.com. Tests never
// connect to it: the fake dialer records it and connects to a loopback
// httptest server instead (NETWORK RULE).
const publicIP = "93.184.216.34"

func publicAddr() netip.Addr { return netip.MustParseAddr(publicIP) }

// fakeNet is an injected Resolver and Dial that record every attempt. Dial
// connects only to target, a loopback listener.
type fakeNet struct {
	target string

	mu          sync.Mutex
	answers     map[string][][]netip.Addr // per host, one answer per successive lookup; the last repeats
	lookups     []string
	dials       []string
	blockLookup bool // the resolver never answers (attack 19)
	blockDial   bool // connect hangs (attack 19)
}

func newFakeNet(t *testing.T, target string) *fakeNet {
	t.Helper()
	if target != "" {
		ap, err := netip.ParseAddrPort(target)
		if err != nil || !ap.Addr().IsLoopback() {
			t.Fatalf("fakeNet target %q is not a loopback address", target)
		}
	}
	return &fakeNet{
		target:  target,
		answers: map[string][][]netip.Addr{"example.com": {{publicAddr()}}},
	}
}

// answer makes host resolve to addrs on every lookup.
func (n *fakeNet) answer(host string, addrs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	n.answers[host] = [][]netip.Addr{as}
}

func (n *fakeNet) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	n.mu.Lock()
	i := 0
	for _, h := range n.lookups {
		if h == host {
			i++
		}
	}
	n.lookups = append(n.lookups, host)
	ans, ok := n.answers[host]
	block := n.blockLookup
	n.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ans[min(i, len(ans)-1)], nil
}

func (n *fakeNet) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	n.mu.Lock()
	n.dials = append(n.dials, address)
	block := n.blockDial
	n.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if n.target == "" {
		return nil, errors.New("connection refused (fake)")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, n.target)
}

func (n *fakeNet) recorded() (lookups, dials []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lookups...), append([]string(nil), n.dials...)
}

// recorder counts the requests a test server receives and keeps the last
// request header.
type recorder struct {
	mu     sync.Mutex
	n      int
	header http.Header
}

func (r *recorder) record(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.header = req.Header.Clone()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *recorder) last() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.header
}

// newTLSServer starts a loopback httptest TLS server whose requests are
// recorded before h runs.
func newTLSServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *recorder) {
	t.Helper()
	return startTLS(t, h, nil)
}

// startTLS starts a loopback httptest TLS server presenting cert (nil: the
// httptest certificate) whose requests are recorded before h runs. Its
// handshake-error log is discarded: the TLS tests fail handshakes on purpose.
func startTLS(t *testing.T, h http.HandlerFunc, cert *tls.Certificate) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		h(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, rec
}

// serverPool trusts the httptest server's certificate (valid for
// example.com, 127.0.0.1 and ::1).
func serverPool(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

// publicClient returns a Client whose injected network resolves example.com
// to publicIP and connects every dial to srv. Fields set in opts win.
func publicClient(t *testing.T, srv *httptest.Server, opts Options) (*Client, *fakeNet) {
	t.Helper()
	target := ""
	if srv != nil {
		target = srv.Listener.Addr().String()
		if opts.RootCAs == nil {
			opts.RootCAs = serverPool(srv)
		}
	}
	fake := newFakeNet(t, target)
	opts.Resolver = fake
	opts.Dial = fake.Dial
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, fake
}

// reasonOf returns err's Reason, or "" when err is not an *Error.
func reasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// wantError fails the test unless err is an *Error with reason want, and
// returns it.
func wantError(t *testing.T, err error, want Reason) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error with reason %s", err, err, want)
	}
	if e.Reason != want {
		t.Fatalf("reason = %s, want %s (err: %v)", e.Reason, want, err)
	}
	return e
}
