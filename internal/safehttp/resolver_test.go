package safehttp

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
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
