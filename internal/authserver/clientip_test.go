package authserver

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIPBehindTrustedProxies(t *testing.T) {
	s := &Server{proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/128")}}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy: the peer", "198.51.100.7:4000", nil, "198.51.100.7"},
		{"untrusted peer: its X-Forwarded-For is ignored", "198.51.100.7:4000", []string{"203.0.113.9"}, "198.51.100.7"},
		{"trusted proxy: the client it names", "10.1.2.3:4000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed entries to the left are ignored", "10.1.2.3:4000", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"a chain of trusted proxies is skipped", "10.1.2.3:4000", []string{"203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"several header lines read as one list", "10.1.2.3:4000", []string{"1.2.3.4", "203.0.113.9"}, "203.0.113.9"},
		{"trusted proxy without the header: the proxy", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"garbage stops at the last trusted hop", "10.1.2.3:4000", []string{"203.0.113.9, not-an-ip"}, "10.1.2.3"},
		{"IPv6 proxy", "[2001:db8::1]:443", []string{"2001:db8::42"}, "2001:db8::42"},
		{"mapped IPv4 proxy and client", "[::ffff:10.0.0.5]:443", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/login", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientIP(r); got != tt.want {
				t.Errorf("clientIP = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("no trusted proxies configured", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/login", nil)
		r.RemoteAddr = "10.1.2.3:4000"
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := (&Server{}).clientIP(r); got != "10.1.2.3" {
			t.Errorf("clientIP = %q, want the peer", got)
		}
	})
}
