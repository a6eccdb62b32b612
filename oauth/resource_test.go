package oauth

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalResource(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"H10 already canonical", "https://mcp.example.com/mcp", "https://mcp.example.com/mcp"},
		{"H10 E11 uppercase scheme and host", "HTTPS://MCP.Example.COM/mcp", "https://mcp.example.com/mcp"},
		{"H10 path case kept", "https://h/MCP", "https://h/MCP"},
		{"H10 E11 lone trailing slash removed", "https://h/", "https://h"},
		{"H10 no path", "https://h", "https://h"},
		{"H10 significant trailing slash kept", "https://h/mcp/", "https://h/mcp/"},
		{"H10 default port kept", "https://h:443/mcp", "https://h:443/mcp"},
		{"H10 other port kept", "http://127.0.0.1:8081/mcp", "http://127.0.0.1:8081/mcp"},
		{"H10 ipv6 host", "http://[::1]:8081/mcp", "http://[::1]:8081/mcp"},
		{"H10 query kept byte for byte", "https://h/mcp?b=2&a=1", "https://h/mcp?b=2&a=1"},
		{"H10 percent-encoding kept", "https://h/a%2Fb", "https://h/a%2Fb"},
		{"H10 lone slash before query kept", "https://h/?x=1", "https://h/?x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalResource(tt.in)
			if err != nil {
				t.Fatalf("CanonicalResource(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("CanonicalResource(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := CanonicalResource(got)
			if err != nil || again != got {
				t.Fatalf("not idempotent: CanonicalResource(%q) = %q, %v", got, again, err)
			}
		})
	}
}

func TestCanonicalResourceRejects(t *testing.T) {
	tests := []struct {
		name, in, wantMsg string
	}{
		{"E11 attack 41 fragment", "https://h/mcp#x", "fragment"},
		{"E11 attack 41 bare fragment", "https://h/mcp#", "fragment"},
		{"E11 attack 41 relative", "/mcp", "absolute"},
		{"E11 attack 41 scheme-relative", "//h/mcp", "absolute"},
		{"E11 not http", "urn:example:mcp", "absolute"},
		{"E11 ftp", "ftp://h/mcp", "absolute"},
		{"E11 opaque", "https:h/mcp", "absolute"},
		{"E11 no host", "https:///mcp", "absolute"},
		{"E11 userinfo", "https://user@h/mcp", "userinfo"},
		{"E11 empty port", "https://h:/mcp", "port"},
		{"E11 port zero", "https://h:0/mcp", "port"},
		{"E11 port too big", "https://h:70000/mcp", "port"},
		{"E11 space", "https://h/m cp", "byte"},
		{"E11 backslash", `https://h\@evil/mcp`, "byte"},
		{"E11 newline", "https://h/mcp\n", "byte"},
		{"E11 non-ASCII host", "https://bücher.example/mcp", "punycode"},
		{"E11 empty", "", "absolute"},
		{"E11 overlong", "https://h/" + strings.Repeat("a", MaxResourceLength), "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalResource(tt.in)
			if err == nil {
				t.Fatalf("CanonicalResource(%q) = %q, want an error", tt.in, got)
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != InvalidTarget {
				t.Fatalf("error %v is not an invalid_target *Error", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

// FuzzCanonicalResource checks that every accepted resource has a canonical
// form that is stable, parses, has a lower-case scheme and host, and has
// well-known metadata URLs.
func FuzzCanonicalResource(f *testing.F) {
	for _, s := range []string{"https://h/mcp", "HTTPS://H:8443/", "http://[::1]:1/a?b#c", "https://u@h/", "https://h:/x", "//h", "https://h/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CanonicalResource(s)
		if err != nil {
			return
		}
		again, err := CanonicalResource(c)
		if err != nil || again != c {
			t.Fatalf("CanonicalResource(%q) = %q, then %q, %v", s, c, again, err)
		}
		origin, _, err := splitOrigin(c)
		if err != nil || origin != strings.ToLower(origin) {
			t.Fatalf("canonical %q has origin %q, %v", c, origin, err)
		}
		if _, err := ProtectedResourceMetadataURL(c); err != nil {
			t.Fatalf("ProtectedResourceMetadataURL(%q): %v", c, err)
		}
	})
}
