package safehttp

import (
	"net/netip"
	"strings"
	"testing"
)

// checkURLCase is one CheckURL input and the reason it must fail with ("" =
// accepted).
type checkURLCase struct {
	name string
	url  string
	want Reason
}

// attack9Cases are the IP-literal and special-use hosts of
// docs/security.md attack 9, plus the other encodings of loopback a parser
// might accept.
func attack9Cases() []checkURLCase {
	return []checkURLCase{
		{"attack 9 127.0.0.1", "https://127.0.0.1/c", ReasonBlockedAddress},
		{"attack 9 [::1]", "https://[::1]/c", ReasonBlockedAddress},
		{"attack 9 10.0.0.5", "https://10.0.0.5/c", ReasonBlockedAddress},
		{"attack 9 metadata 169.254.169.254", "https://169.254.169.254/latest/meta-data/", ReasonBlockedAddress},
		{"attack 9 hex 0x7f000001", "https://0x7f000001/c", ReasonHost},
		{"attack 9 decimal 2130706433", "https://2130706433/c", ReasonHost},
		{"attack 9 octal 0177.0.0.1", "https://0177.0.0.1/c", ReasonHost},
		{"attack 9 short 127.1", "https://127.1/c", ReasonHost},
		{"attack 9 mixed 0x7f.0.0.1", "https://0x7f.0.0.1/c", ReasonHost},
		{"attack 9 hex last label", "https://127.0.0.0x1/c", ReasonHost},
		{"attack 9 uppercase hex", "https://0X7F000001/c", ReasonHost},
		{"attack 9 five parts", "https://1.2.3.4.5/c", ReasonHost},
		{"attack 9 trailing dot IPv4", "https://127.0.0.1./c", ReasonHost},
		{"attack 9 percent-encoded IPv4", "https://%31%32%37.0.0.1/c", ReasonRequest},
		{"attack 9 IPv4-mapped loopback", "https://[::ffff:127.0.0.1]/c", ReasonBlockedAddress},
		{"attack 9 IPv4-mapped metadata hex", "https://[::ffff:a9fe:a9fe]/c", ReasonBlockedAddress},
		{"attack 9 0.0.0.0", "https://0.0.0.0/c", ReasonBlockedAddress},
		{"attack 9 NAT64 of 10.0.0.1", "https://[64:ff9b::a00:1]/c", ReasonBlockedAddress},
		{"attack 9 6to4 of 127.0.0.1", "https://[2002:7f00:1::]/c", ReasonBlockedAddress},
		{"attack 9 IPv4-compatible loopback", "https://[::127.0.0.1]/c", ReasonBlockedAddress},
		{"attack 9 IPv6 zone", "https://[fe80::1%25eth0]/c", ReasonHost},
		{"attack 9 bracketed IPv4", "https://[127.0.0.1]/c", ReasonRequest},
		{"attack 10 localhost", "https://localhost/c", ReasonBlockedAddress},
		{"attack 10 LOCALHOST", "https://LOCALHOST/c", ReasonBlockedAddress},
		{"attack 10 sub.localhost", "https://app.localhost/c", ReasonBlockedAddress},
	}
}

// attack13Cases are the malformed URLs of docs/security.md attacks 1, 5, 13 and
// the other syntax rules of CheckURL.
func attack13Cases() []checkURLCase {
	return []checkURLCase{
		{"attack 1 http", "http://client.example.com/cimd.json", ReasonScheme},
		{"attack 5 user:pass", "https://user:pass@client.example.com/cimd.json", ReasonRequest},
		{"attack 5 user", "https://user@client.example.com/cimd.json", ReasonRequest},
		{"attack 5 empty userinfo", "https://:@client.example.com/cimd.json", ReasonRequest},
		{"attack 13 backslash", `https://client.example.com\@evil.com/c`, ReasonRequest},
		{"attack 13 tab", "https://client.example.com/c\tx", ReasonRequest},
		{"attack 13 newline", "https://client.example.com/c\nx", ReasonRequest},
		{"attack 13 space", "https://client.example.com/c x", ReasonRequest},
		{"attack 13 NUL", "https://client.example.com/c\x00", ReasonRequest},
		{"attack 13 overlong", "https://client.example.com/" + strings.Repeat("a", MaxURLBytes), ReasonRequest},
		{"attack 13 javascript", "javascript:alert(1)", ReasonScheme},
		{"attack 13 data", "data:text/plain,hello", ReasonScheme},
		{"attack 13 file", "file:///etc/passwd", ReasonScheme},
		{"attack 13 scheme-relative", "//client.example.com/c", ReasonScheme},
		{"attack 13 ftp", "ftp://client.example.com/c", ReasonScheme},
		{"attack 13 gopher", "gopher://client.example.com/c", ReasonScheme},
		{"attack 13 non-ASCII host", "https://bücher.example/c", ReasonRequest},
		{"B6 empty", "", ReasonRequest},
		{"B6 relative", "/cimd.json", ReasonScheme},
		{"B6 opaque", "https:client.example.com/c", ReasonRequest},
		{"A6 fragment", "https://client.example.com/c#x", ReasonRequest},
		{"A6 empty fragment", "https://client.example.com/c#", ReasonRequest},
		{"A10 no host", "https:///c", ReasonHost},
		{"A10 port only", "https://:443/c", ReasonHost},
		{"A10 single label", "https://intranet/c", ReasonHost},
		{"A10 trailing dot", "https://client.example.com./c", ReasonHost},
		{"A10 empty label", "https://client..example.com/c", ReasonHost},
		{"A10 underscore", "https://client_app.example.com/c", ReasonHost},
		{"A10 leading hyphen", "https://-client.example.com/c", ReasonHost},
		{"A10 label too long", "https://" + strings.Repeat("a", 64) + ".example.com/c", ReasonHost},
		{"A10 percent-encoded name", "https://ex%61mple.com/c", ReasonRequest},
		{"A8 empty port", "https://client.example.com:/c", ReasonPort},
		{"A8 port 0", "https://client.example.com:0/c", ReasonPort},
		{"A8 port 65536", "https://client.example.com:65536/c", ReasonPort},
		{"A8 leading zero port", "https://client.example.com:0443/c", ReasonPort},
		{"A8 non-numeric port", "https://client.example.com:https/c", ReasonRequest},
	}
}

func acceptedCases() []checkURLCase {
	return []checkURLCase{
		{"A1 plain", "https://client.example.com/cimd.json", ""},
		{"A7 query", "https://client.example.com/cimd.json?v=1", ""},
		{"A8 port 443", "https://client.example.com:443/c", ""},
		{"A8 port 8443", "https://client.example.com:8443/c", ""},
		{"A10 punycode", "https://xn--bcher-kva.example/c", ""},
		{"A10 mixed case", "https://Client.Example.com/c", ""},
		{"A10 digits in labels", "https://1password.com/c", ""},
		{"A10 hex-looking first label", "https://0x7f.example.com/c", ""},
		{"B4 public IPv4 literal", "https://93.184.216.34/c", ""},
		{"B4 public IPv6 literal", "https://[2606:2800:220:1:248:1893:25c8:1946]/c", ""},
	}
}

func TestCheckURL(t *testing.T) {
	var all []checkURLCase
	all = append(all, attack9Cases()...)
	all = append(all, attack13Cases()...)
	all = append(all, acceptedCases()...)
	for _, tt := range all {
		t.Run(tt.name, func(t *testing.T) {
			u, err := CheckURL(tt.url, false)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want accepted", tt.url, err)
				}
				if u.String() != tt.url {
					t.Errorf("CheckURL(%q) returned %q", tt.url, u)
				}
				return
			}
			e := wantError(t, err, tt.want)
			if e.URL != tt.url {
				t.Errorf("Error.URL = %q, want %q", e.URL, tt.url)
			}
			if u != nil {
				t.Errorf("CheckURL returned %v with an error", u)
			}
		})
	}
}

func TestCheckURLLoopbackException(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want Reason
	}{
		{"B5 https 127.0.0.1", "https://127.0.0.1:8443/c", ""},
		{"B5 https [::1]", "https://[::1]/c", ""},
		{"B5 https localhost", "https://localhost/c", ""},
		{"B5 http 127.0.0.1", "http://127.0.0.1:8080/c", ""},
		{"B5 http 127.0.0.2", "http://127.0.0.2/c", ""},
		{"B5 http [::1]", "http://[::1]:8080/c", ""},
		{"B5 http localhost", "http://localhost:3000/c", ""},
		{"B5 http public name", "http://client.example.com/c", ReasonScheme},
		{"B5 http public IP", "http://93.184.216.34/c", ReasonScheme},
		{"B5 http private IP", "http://10.0.0.1/c", ReasonBlockedAddress},
		{"B5 https private IP", "https://10.0.0.1/c", ReasonBlockedAddress},
		{"B5 https metadata", "https://169.254.169.254/c", ReasonBlockedAddress},
		{"B5 non-canonical loopback still refused", "https://127.1/c", ReasonHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckURL(tt.url, true)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q, true) = %v, want accepted", tt.url, err)
				}
				if _, err := CheckURL(tt.url, false); err == nil {
					t.Errorf("CheckURL(%q, false) accepted a loopback URL; AllowLoopback must be off by default", tt.url)
				}
				return
			}
			wantError(t, err, tt.want)
		})
	}
}

func TestClientCheckURLAllowedPorts(t *testing.T) {
	c, err := New(Options{AllowedPorts: []int{443, 8443}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		url  string
		want Reason
	}{
		{"attack 12 default port", "https://client.example.com/c", ""},
		{"attack 12 explicit 443", "https://client.example.com:443/c", ""},
		{"attack 12 listed 8443", "https://client.example.com:8443/c", ""},
		{"attack 12 ssh port 22", "https://client.example.com:22/c", ReasonPort},
		{"attack 12 redis port 6379", "https://client.example.com:6379/c", ReasonPort},
		{"attack 12 still checks the URL", "https://10.0.0.1/c", ReasonBlockedAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CheckURL(tt.url)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v", tt.url, err)
				}
				return
			}
			wantError(t, err, tt.want)
		})
	}
}

// FuzzCheckURL checks the invariants of an accepted URL: https (or http
// to loopback under the exception), no userinfo or fragment, a host that is
// an allowed IP or a DNS name that no resolver reads as a number.
func FuzzCheckURL(f *testing.F) {
	for _, tt := range append(append(attack9Cases(), attack13Cases()...), acceptedCases()...) {
		f.Add(tt.url, false)
	}
	f.Add("http://localhost:8080/c", true)
	f.Add("http://127.0.0.1/c", true)
	f.Fuzz(func(t *testing.T, raw string, allowLoopback bool) {
		u, err := CheckURL(raw, allowLoopback)
		if err != nil {
			e := wantErrorFuzz(t, err)
			if e.URL != raw {
				t.Fatalf("Error.URL = %q, want %q", e.URL, raw)
			}
			return
		}
		if len(raw) > MaxURLBytes {
			t.Fatalf("accepted %d bytes", len(raw))
		}
		if u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
			t.Fatalf("accepted userinfo or fragment in %q", raw)
		}
		host := u.Hostname()
		loopback := false
		if a, err := netip.ParseAddr(host); err == nil {
			if err := CheckAddr(a, allowLoopback); err != nil {
				t.Fatalf("accepted %q whose IP host fails CheckAddr: %v", raw, err)
			}
			loopback = a.Unmap().IsLoopback()
		} else {
			labels := strings.Split(host, ".")
			if numericLabel(labels[len(labels)-1]) {
				t.Fatalf("accepted numeric host %q", host)
			}
			lower := strings.ToLower(host)
			loopback = lower == "localhost" || strings.HasSuffix(lower, ".localhost")
			if len(labels) < 2 && !loopback {
				t.Fatalf("accepted single-label host %q", host)
			}
		}
		if loopback && !allowLoopback {
			t.Fatalf("accepted loopback host %q without AllowLoopback", host)
		}
		switch u.Scheme {
		case "https":
		case "http":
			if !allowLoopback || !loopback {
				t.Fatalf("accepted http for %q", raw)
			}
		default:
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
	})
}

func wantErrorFuzz(t *testing.T, err error) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	switch e.Reason {
	case ReasonRequest, ReasonScheme, ReasonHost, ReasonPort, ReasonBlockedAddress:
	default:
		t.Fatalf("CheckURL reason %q", e.Reason)
	}
	return e
}
