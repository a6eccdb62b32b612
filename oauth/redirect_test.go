package oauth

import (
	"fmt"
	"testing"
)

func TestMatchRedirectURI(t *testing.T) {
	tests := []struct {
		name       string
		registered string
		requested  string
		want       bool
	}{
		{"C8 exact https match", "https://app.example/cb", "https://app.example/cb", true},
		{"C8 exact private-use scheme match", "com.example.app:/cb", "com.example.app:/cb", true},
		{"attack 36 trailing slash", "https://app.example/cb", "https://app.example/cb/", false},
		{"attack 36 case difference in host", "https://app.example/cb", "https://APP.example/cb", false},
		{"attack 36 case difference in path", "https://app.example/cb", "https://app.example/CB", false},
		{"attack 36 extra query", "https://app.example/cb", "https://app.example/cb?x=1", false},
		{"attack 36 different path", "https://app.example/cb", "https://app.example/other", false},
		{"attack 36 https vs http", "https://app.example/cb", "http://app.example/cb", false},
		{"attack 36 userinfo trick", "https://good.example/cb", "https://good.example@evil.example/cb", false},
		{"attack 36 default port added to https", "https://app.example/cb", "https://app.example:443/cb", false},
		{"attack 36 port on https loopback is not ignored", "https://localhost/cb", "https://localhost:8443/cb", false},
		{"attack 36 fragment added", "https://app.example/cb", "https://app.example/cb#x", false},
		{"attack 36 percent-encoded path", "https://app.example/cb", "https://app.example/%63b", false},
		{"E3 loopback 127.0.0.1 any port", "http://127.0.0.1/callback", "http://127.0.0.1:54321/callback", true},
		{"E3 loopback [::1] any port", "http://[::1]/callback", "http://[::1]:8080/callback", true},
		{"E3 loopback localhost any port", "http://localhost/callback", "http://localhost:54321/callback", true},
		{"E3 loopback registered port, other port requested", "http://127.0.0.1:33418", "http://127.0.0.1:5000", true},
		{"E3 loopback registered port, no port requested", "http://127.0.0.1:33418/cb", "http://127.0.0.1/cb", true},
		{"E3 loopback highest port", "http://127.0.0.1/cb", "http://127.0.0.1:65535/cb", true},
		{"E3 loopback query compared exactly", "http://127.0.0.1/cb?a=1", "http://127.0.0.1:9/cb?a=1", true},
		{"attack 37 loopback different path", "http://127.0.0.1:5555/callback", "http://127.0.0.1:5555/other", false},
		{"attack 37 loopback path added", "http://127.0.0.1:33418", "http://127.0.0.1:5000/", false},
		{"attack 37 loopback extra query", "http://127.0.0.1/cb", "http://127.0.0.1:1234/cb?x=1", false},
		{"attack 37 loopback host changed", "http://localhost/cb", "http://127.0.0.1:1234/cb", false},
		{"attack 37 loopback to other loopback address", "http://127.0.0.1/cb", "http://127.0.0.2:1234/cb", false},
		{"attack 37 loopback host uppercase", "http://localhost/cb", "http://LOCALHOST:1234/cb", false},
		{"attack 37 loopback scheme uppercase", "http://localhost/cb", "HTTP://localhost:1234/cb", false},
		{"attack 37 loopback https requested", "http://localhost/cb", "https://localhost:1234/cb", false},
		{"attack 37 loopback userinfo", "http://127.0.0.1/cb", "http://evil@127.0.0.1:1234/cb", false},
		{"attack 37 loopback host suffix", "http://localhost/cb", "http://localhost.evil.example:1234/cb", false},
		{"attack 37 loopback fragment", "http://127.0.0.1/cb", "http://127.0.0.1:1234/cb#x", false},
		{"attack 37 loopback port zero", "http://127.0.0.1/cb", "http://127.0.0.1:0/cb", false},
		{"attack 37 loopback port too large", "http://127.0.0.1/cb", "http://127.0.0.1:65536/cb", false},
		{"attack 37 loopback port leading zero", "http://127.0.0.1/cb", "http://127.0.0.1:080/cb", false},
		{"attack 37 loopback empty port", "http://127.0.0.1/cb", "http://127.0.0.1:/cb", false},
		{"attack 37 loopback signed port", "http://127.0.0.1/cb", "http://127.0.0.1:+80/cb", false},
		{"attack 37 loopback port with letters", "http://127.0.0.1/cb", "http://127.0.0.1:80a/cb", false},
		{"attack 37 loopback two ports", "http://127.0.0.1/cb", "http://127.0.0.1:80:81/cb", false},
		{"attack 37 non-loopback http ignores no port", "http://app.example/cb", "http://app.example:8080/cb", false},
		{"attack 37 registered fragment never port-agnostic", "http://127.0.0.1/cb#x", "http://127.0.0.1:1/cb#x", false},
		{"attack 37 empty requested", "http://127.0.0.1/cb", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchRedirectURI(tt.registered, tt.requested); got != tt.want {
				t.Errorf("MatchRedirectURI(%q, %q) = %v, want %v", tt.registered, tt.requested, got, tt.want)
			}
		})
	}
}

func TestIsLoopbackRedirect(t *testing.T) {
	tests := []struct {
		uri  string
		want bool
	}{
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:33418", true},
		{"http://[::1]:8080/cb", true},
		{"http://[::1]", true},
		{"http://localhost/callback", true},
		{"http://localhost:3000/callback?x=1", true},
		{"https://localhost/callback", false},
		{"http://127.0.0.2/callback", false},
		{"http://[::2]/callback", false},
		{"http://LOCALHOST/callback", false},
		{"http://localhost./callback", false},
		{"http://user@localhost/callback", false},
		{"http://localhost:0/callback", false},
		{"http://localhost/callback#f", false},
		{"https://app.example/cb", false},
		{"com.example.app:/cb", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("E5 %s", tt.uri), func(t *testing.T) {
			if got := IsLoopbackRedirect(tt.uri); got != tt.want {
				t.Errorf("IsLoopbackRedirect(%q) = %v, want %v", tt.uri, got, tt.want)
			}
		})
	}
}

func FuzzMatchRedirectURI(f *testing.F) {
	f.Add("http://127.0.0.1/cb", "http://127.0.0.1:8080/cb")
	f.Add("http://[::1]:1/x?y", "http://[::1]/x?y")
	f.Add("https://app.example/cb", "https://app.example/cb")
	f.Fuzz(func(t *testing.T, registered, requested string) {
		got := MatchRedirectURI(registered, requested)
		if registered == requested && !got {
			t.Fatalf("identical URIs %q did not match", registered)
		}
		if got != MatchRedirectURI(requested, registered) {
			t.Fatalf("MatchRedirectURI is not symmetric for %q, %q", registered, requested)
		}
		if got && registered != requested && !(IsLoopbackRedirect(registered) && IsLoopbackRedirect(requested)) {
			t.Fatalf("%q matched %q without both being loopback", registered, requested)
		}
	})
}
