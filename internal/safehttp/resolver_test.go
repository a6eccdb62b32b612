package safehttp

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// dnsRecorder is the Dial of a pure-Go *net.Resolver: it hands the resolver
// one end of an in-memory pipe, records the name in each query and answers
// nothing. No packet leaves the process.
type dnsRecorder struct {
	mu    sync.Mutex
	names []string
}

func (d *dnsRecorder) dial(context.Context, string, string) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		var n [2]byte // a net.Pipe conn is not a PacketConn: TCP framing
		if _, err := io.ReadFull(server, n[:]); err != nil {
			return
		}
		msg := make([]byte, int(n[0])<<8|int(n[1]))
		if _, err := io.ReadFull(server, msg); err != nil {
			return
		}
		d.mu.Lock()
		d.names = append(d.names, questionName(msg))
		d.mu.Unlock()
	}()
	return client, nil
}

// questionName decodes the first question's name (RFC 1035 §4.1.2) of a
// DNS message, as a dotted name with a trailing dot.
func questionName(msg []byte) string {
	var b strings.Builder
	for i := 12; i < len(msg) && msg[i] != 0; i += int(msg[i]) + 1 {
		b.Write(msg[i+1 : min(i+1+int(msg[i]), len(msg))])
		b.WriteByte('.')
	}
	return b.String()
}

func TestDefaultResolverQueriesAbsoluteNames(t *testing.T) {
	rec := &dnsRecorder{}
	r := absoluteResolver{&net.Resolver{PreferGo: true, Dial: rec.dial}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, host := range []string{"intranet", "client.example.com", "client.example.com."} {
		if addrs, err := r.LookupNetIP(ctx, "ip", host); err == nil {
			t.Fatalf("%s resolved to %v with no DNS server", host, addrs)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.names) == 0 {
		t.Fatal("no DNS query was made")
	}
	for _, name := range rec.names {
		if name != "intranet." && name != "client.example.com." {
			t.Errorf("B4 the resolver queried %q: a search domain was appended", name)
		}
	}
}

func TestDefaultResolverLocalhost(t *testing.T) {
	v4, v6 := netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()
	tests := []struct {
		name, network, host string
		want                []netip.Addr
	}{
		{"B4 RFC 6761 localhost", "ip", "localhost", []netip.Addr{v4, v6}},
		{"B4 RFC 6761 absolute localhost", "ip", "localhost.", []netip.Addr{v4, v6}},
		{"B4 RFC 6761 upper case", "ip", "LocalHost", []netip.Addr{v4, v6}},
		{"B4 RFC 6761 name under localhost", "ip", "client.localhost", []netip.Addr{v4, v6}},
		{"B4 RFC 6761 ip4 only", "ip4", "localhost", []netip.Addr{v4}},
		{"B4 RFC 6761 ip6 only", "ip6", "localhost", []netip.Addr{v6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &dnsRecorder{}
			r := absoluteResolver{&net.Resolver{PreferGo: true, Dial: rec.dial}}
			got, err := r.LookupNetIP(context.Background(), tt.network, tt.host)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("LookupNetIP(%q) (-want +got):\n%s", tt.host, diff)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.names) != 0 {
				t.Errorf("a localhost name was sent to DNS: %q", rec.names)
			}
		})
	}
	// Names that merely contain "localhost" still go to DNS.
	rec := &dnsRecorder{}
	r := absoluteResolver{&net.Resolver{PreferGo: true, Dial: rec.dial}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if addrs, err := r.LookupNetIP(ctx, "ip", "localhost.example.com"); err == nil {
		t.Fatalf("localhost.example.com resolved to %v with no DNS server", addrs)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.names) == 0 {
		t.Error("localhost.example.com was not looked up in DNS")
	}
}
