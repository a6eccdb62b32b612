package login

import (
	"net/url"
	"testing"
)

// FuzzCheckURL checks the MCP Security Best Practices §Server-Side Request
// Forgery invariant: whatever checkURL accepts is an absolute https URL, or
// http on a loopback host, without userinfo or fragment.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://as.example/authorize", "http://127.0.0.1:8080/cb", "javascript:alert(1)",
		"http://localhost.evil.example/", "https://u@h/", "http://[::1]/x", "HTTP://LOCALHOST/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := checkURL("fuzz", s)
		if err != nil {
			return
		}
		v, perr := url.Parse(s)
		if perr != nil || v.Host == "" || v.User != nil || v.Fragment != "" {
			t.Fatalf("accepted %q: %+v", s, v)
		}
		if !(u.Scheme == "https" || u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
			t.Fatalf("accepted %q with scheme %q host %q", s, u.Scheme, u.Hostname())
		}
	})
}
