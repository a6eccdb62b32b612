package cimd

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseClientIDAccepts(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		host  string
		port  string
		query bool
	}{
		{"A1 plain https with path", "https://client.example.com/cimd.json", "client.example.com", "", false},
		{"A3 MCP example document", "https://example.com/client.json", "example.com", "", false},
		{"A4 trailing slash on a longer path kept", "https://client.example.com/oauth/", "client.example.com", "", false},
		{"A4 extensionless path", "https://claude.ai/oauth/claude-code-client-metadata", "claude.ai", "", false},
		{"A7 query kept byte-exact", "https://client.example.com/cimd.json?b=2&a=1", "client.example.com", "", true},
		{"A7 query with encoded reserved character", "https://client.example.com/c?redirect=%2Fhome", "client.example.com", "", true},
		{"A8 port 443 kept", "https://client.example.com:443/cimd.json", "client.example.com", "443", false},
		{"A8 non-default port", "https://client.example.com:8443/cimd.json", "client.example.com", "8443", false},
		{"attack 12 unusual port allowed by default", "https://client.example.com:6379/c", "client.example.com", "6379", false},
		{"A10 punycode host", "https://xn--bcher-kva.example/client.json", "xn--bcher-kva.example", "", false},
		{"A10 digits inside the host", "https://app1.example.com/c", "app1.example.com", "", false},
		{"A10 numeric label not last", "https://10.0.0.5.example.com/c", "10.0.0.5.example.com", "", false},
		{"A10 single-label host syntactically fine", "https://localhost/c", "localhost", "", false},
		{"A5 encoded slash is not a dot segment", "https://client.example.com/a%2Fb/c", "client.example.com", "", false},
		{"A5 dots inside a segment", "https://client.example.com/a..b/.well-known/c", "client.example.com", "", false},
		{"A5 sub-delims in path", "https://client.example.com/a;v=1/b,c/@x/$y", "client.example.com", "", false},
		{"A5 percent-encoded non-ASCII in path", "https://client.example.com/caf%C3%A9", "client.example.com", "", false},
		{"A9 empty segment kept", "https://client.example.com//c", "client.example.com", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseClientID(tt.in)
			if err != nil {
				t.Fatalf("ParseClientID(%q) = %v", tt.in, err)
			}
			got := struct {
				String, Host, Port string
				Query, Zero, Dev   bool
			}{id.String(), id.Host(), id.Port(), id.HasQuery(), id.IsZero(), id.DevLoopback()}
			want := got
			want.String, want.Host, want.Port, want.Query, want.Zero, want.Dev = tt.in, tt.host, tt.port, tt.query, false, false
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseClientID(%q) accessors (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseClientIDRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Reason
	}{
		{"attack 1 http", "http://client.example.com/cimd.json", ReasonNotHTTPS},
		{"attack 1 http localhost without dev mode", "http://localhost/cimd.json", ReasonNotHTTPS},
		{"A1 empty", "", ReasonNotURL},
		{"A1 relative path", "/cimd.json", ReasonNotURL},
		{"A1 no scheme", "client.example.com/cimd.json", ReasonNotURL},
		{"A1 opaque https", "https:client.example.com/cimd.json", ReasonNotURL},
		{"A1 single slash", "https:/client.example.com/cimd.json", ReasonNotURL},
		{"A1 empty host", "https:///cimd.json", ReasonBadHost},
		{"A1 ftp", "ftp://client.example.com/cimd.json", ReasonNotHTTPS},
		{"A1 wss", "wss://client.example.com/cimd.json", ReasonNotHTTPS},
		{"attack 2 no path", "https://client.example.com", ReasonNoPath},
		{"attack 2 no path with port", "https://client.example.com:8443", ReasonNoPath},
		{"attack 2 query but no path", "https://client.example.com?x=1", ReasonNoPath},
		{"attack 3 root path", "https://client.example.com/", ReasonRootPath},
		{"attack 3 root path with query", "https://client.example.com/?client=1", ReasonRootPath},
		{"attack 4 fragment", "https://client.example.com/cimd.json#x", ReasonFragment},
		{"attack 4 bare hash", "https://client.example.com/cimd.json#", ReasonFragment},
		{"attack 4 fragment after query", "https://client.example.com/cimd.json?a=1#", ReasonFragment},
		{"attack 5 user and password", "https://user:pass@client.example.com/cimd.json", ReasonUserinfo},
		{"attack 5 user", "https://user@client.example.com/cimd.json", ReasonUserinfo},
		{"attack 5 empty userinfo", "https://:@client.example.com/cimd.json", ReasonUserinfo},
		{"attack 5 empty user", "https://@client.example.com/cimd.json", ReasonUserinfo},
		{"attack 6 double dot", "https://client.example.com/a/../cimd.json", ReasonDotSegment},
		{"attack 6 single dot", "https://client.example.com/./cimd.json", ReasonDotSegment},
		{"attack 6 trailing double dot", "https://client.example.com/a/..", ReasonDotSegment},
		{"attack 6 encoded double dot", "https://client.example.com/a/%2e%2e/cimd.json", ReasonDotSegment},
		{"attack 6 encoded uppercase dot", "https://client.example.com/%2E/cimd.json", ReasonDotSegment},
		{"attack 6 mixed encoded dot", "https://client.example.com/a/.%2e/cimd.json", ReasonDotSegment},
		{"attack 6 mixed encoded dot reversed", "https://client.example.com/a/%2E./cimd.json", ReasonDotSegment},
		{"A5 encoded unreserved letter", "https://client.example.com/%63imd.json", ReasonNonCanonical},
		{"A5 encoded tilde", "https://client.example.com/%7Euser/c", ReasonNonCanonical},
		{"A5 lowercase percent-encoding", "https://client.example.com/a%2fb", ReasonNonCanonical},
		{"A5 broken percent-encoding", "https://client.example.com/a%zz", ReasonBadCharacter},
		{"A5 truncated percent-encoding", "https://client.example.com/a%2", ReasonBadCharacter},
		{"A5 raw quote in path", "https://client.example.com/a\"b", ReasonNonCanonical},
		{"A5 raw angle bracket in query", "https://client.example.com/c?a=<b>", ReasonNonCanonical},
		{"A5 raw non-ASCII in path", "https://client.example.com/café", ReasonNonCanonical},
		{"A5 raw pipe", "https://client.example.com/a|b", ReasonNonCanonical},
		{"A5 empty query", "https://client.example.com/cimd.json?", ReasonNonCanonical},
		{"A5 empty port", "https://client.example.com:/cimd.json", ReasonNonCanonical},
		{"A5 port with leading zero", "https://client.example.com:0443/cimd.json", ReasonNonCanonical},
		{"A5 trailing dot on host", "https://client.example.com./cimd.json", ReasonNonCanonical},
		{"attack 8 uppercase scheme and host", "HTTPS://Client.EXAMPLE.com/cimd.json", ReasonUppercase},
		{"attack 8 uppercase scheme", "HTTPS://client.example.com/cimd.json", ReasonUppercase},
		{"attack 8 mixed-case scheme", "hTtPs://client.example.com/cimd.json", ReasonUppercase},
		{"attack 8 uppercase host", "https://Client.example.com/cimd.json", ReasonUppercase},
		{"attack 9 IPv4 loopback", "https://127.0.0.1/c", ReasonIPLiteral},
		{"attack 9 IPv6 loopback", "https://[::1]/c", ReasonIPLiteral},
		{"attack 9 private IPv4", "https://10.0.0.5/c", ReasonIPLiteral},
		{"attack 9 metadata address", "https://169.254.169.254/latest/meta-data/", ReasonIPLiteral},
		{"attack 9 hex IPv4", "https://0x7f000001/c", ReasonIPLiteral},
		{"attack 9 bare 0x", "https://0x/c", ReasonIPLiteral},
		{"attack 9 decimal IPv4", "https://2130706433/c", ReasonIPLiteral},
		{"attack 9 octal IPv4", "https://0177.0.0.1/c", ReasonIPLiteral},
		{"attack 9 short IPv4", "https://127.1/c", ReasonIPLiteral},
		{"attack 9 mixed hex dotted", "https://0x7f.0.0.1/c", ReasonIPLiteral},
		{"attack 9 numeric last label", "https://example.123/c", ReasonIPLiteral},
		{"attack 9 IPv4-mapped IPv6", "https://[::ffff:127.0.0.1]/c", ReasonIPLiteral},
		{"attack 9 IPv4-mapped IPv6 hex", "https://[::ffff:a9fe:a9fe]/c", ReasonIPLiteral},
		{"attack 9 zero address", "https://0.0.0.0/c", ReasonIPLiteral},
		{"attack 9 IPv6 with port", "https://[2001:db8::1]:443/c", ReasonIPLiteral},
		{"attack 9 unclosed bracket", "https://[::1/c", ReasonBadHost},
		{"attack 9 junk after bracket", "https://[::1]x/c", ReasonBadHost},
		{"attack 12 port zero", "https://client.example.com:0/c", ReasonBadPort},
		{"attack 12 port too large", "https://client.example.com:65536/c", ReasonBadPort},
		{"attack 12 port far too large", "https://client.example.com:99999999999999999999/c", ReasonBadPort},
		{"attack 12 port not numeric", "https://client.example.com:https/c", ReasonBadPort},
		{"attack 12 two ports", "https://client.example.com:443:443/c", ReasonBadPort},
		{"attack 13 backslash userinfo trick", "https://client.example.com\\@evil.com/c", ReasonBadCharacter},
		{"attack 13 backslash in path", "https://client.example.com/a\\b", ReasonBadCharacter},
		{"attack 13 tab", "https://client.example.com/c\td", ReasonBadCharacter},
		{"attack 13 newline", "https://client.example.com/c\n", ReasonBadCharacter},
		{"attack 13 carriage return in host", "https://client.exa\rmple.com/c", ReasonBadCharacter},
		{"attack 13 NUL", "https://client.example.com/c\x00", ReasonBadCharacter},
		{"attack 13 DEL", "https://client.example.com/c\x7f", ReasonBadCharacter},
		{"attack 13 space", "https://client.example.com/c d", ReasonBadCharacter},
		{"attack 13 leading space", " https://client.example.com/c", ReasonBadCharacter},
		{"attack 13 overlong", "https://client.example.com/" + strings.Repeat("a", MaxClientIDLength), ReasonTooLong},
		{"attack 13 javascript", "javascript:alert(1)", ReasonNotHTTPS},
		{"attack 13 javascript with slashes", "javascript://client.example.com/%0aalert(1)", ReasonNotHTTPS},
		{"attack 13 data", "data:application/json,{}", ReasonNotHTTPS},
		{"attack 13 file", "file:///etc/passwd", ReasonNotHTTPS},
		{"attack 13 scheme-relative", "//client.example.com/c", ReasonNotURL},
		{"A10 non-ASCII host", "https://bücher.example/client.json", ReasonNonASCIIHost},
		{"A10 fullwidth dot host", "https://client.example\uff0ecom/c", ReasonNonASCIIHost},
		{"A10 percent-encoded host", "https://client%2Eexample.com/c", ReasonBadHost},
		{"A10 underscore in host", "https://client_app.example.com/c", ReasonBadHost},
		{"A10 empty label", "https://client..example.com/c", ReasonBadHost},
		{"A10 leading dot", "https://.example.com/c", ReasonBadHost},
		{"A10 label starts with hyphen", "https://-client.example.com/c", ReasonBadHost},
		{"A10 label ends with hyphen", "https://client-.example.com/c", ReasonBadHost},
		{"A10 label too long", "https://" + strings.Repeat("a", 64) + ".example/c", ReasonBadHost},
		{"A10 host too long", "https://" + strings.Repeat("abcdefghi.", 26) + "example/c", ReasonBadHost},
		{"A10 lone dot host", "https://./c", ReasonBadHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseClientID(tt.in)
			if err == nil {
				t.Fatalf("ParseClientID(%q) accepted %q, want %s", tt.in, id, tt.want)
			}
			if got := reasonOf(err); got != tt.want {
				t.Fatalf("ParseClientID(%q) reason = %s (%v), want %s", tt.in, got, err, tt.want)
			}
			if !id.IsZero() {
				t.Errorf("rejected ParseClientID(%q) returned non-zero %q", tt.in, id)
			}
			var e *Error
			errors.As(err, &e)
			if e.Ref == "" || e.Message == "" || len(e.Problems) != 1 || e.Problems[0].Field != "client_id" {
				t.Errorf("incomplete error %#v", e)
			}
			if e.OAuth().Code != "invalid_client" {
				t.Errorf("OAuth() code = %q", e.OAuth().Code)
			}
		})
	}
}

func TestParseClientIDMessagesSayWhatToFix(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"A3 no path", "https://app.example", "client_id must have a path, e.g. https://app.example/client.json"},
		{"A4 root path", "https://app.example/", `client_id must have a path other than "/", e.g. https://app.example/client.json`},
		{"A1 http", "http://app.example/c", "client_id must use https, not http, e.g. https://app.example/client.json"},
		{"attack 8 uppercase scheme", "HTTPS://app.example/c", "client_id scheme must be lowercase: write https:// instead of HTTPS://"},
		{"attack 8 uppercase host", "https://App.Example/c", `client_id host must be lowercase: write "app.example"`},
		{"A10 too long", "https://app.example/" + strings.Repeat("x", 3000), "client_id is 3020 bytes long; keep it to at most 2048"},
		{"A5 encoded unreserved", "https://app.example/%41", `client_id path has "%41", an encoded "A"; write the character itself`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseClientID(tt.in)
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseClientID(%q) error = %v, want %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseClientIDLengthLimit(t *testing.T) {
	prefix := "https://client.example.com/"
	at := prefix + strings.Repeat("a", MaxClientIDLength-len(prefix))
	if _, err := ParseClientID(at); err != nil {
		t.Errorf("A10 client_id of exactly %d bytes rejected: %v", len(at), err)
	}
	if _, err := ParseClientID(at + "a"); reasonOf(err) != ReasonTooLong {
		t.Errorf("A10 client_id of %d bytes: got %v, want %s", len(at)+1, err, ReasonTooLong)
	}
}

func TestParseClientIDDevLoopback(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Reason // "" when accepted
		host string
		dev  bool
	}{
		{"B5 http localhost", "http://localhost/client.json", "", "localhost", true},
		{"B5 http localhost with port", "http://localhost:8080/client.json", "", "localhost", true},
		{"B5 http 127.0.0.1", "http://127.0.0.1:3000/client.json", "", "127.0.0.1", true},
		{"B5 http other 127/8 address", "http://127.0.0.2/client.json", "", "127.0.0.2", true},
		{"B5 http [::1]", "http://[::1]:3000/client.json", "", "::1", true},
		{"B5 https 127.0.0.1", "https://127.0.0.1/client.json", "", "127.0.0.1", true},
		{"B5 https localhost is not a dev exception", "https://localhost/client.json", "", "localhost", false},
		{"B5 https public host unchanged", "https://client.example.com/c", "", "client.example.com", false},
		{"B5 http public host still rejected", "http://client.example.com/c", ReasonNotHTTPS, "", false},
		{"B5 http localhost subdomain rejected", "http://app.localhost/c", ReasonNotHTTPS, "", false},
		{"B5 private IPv4 still rejected", "http://10.0.0.5/c", ReasonIPLiteral, "", false},
		{"B5 metadata IP still rejected", "https://169.254.169.254/c", ReasonIPLiteral, "", false},
		{"B5 hex loopback rejected", "http://0x7f000001/c", ReasonIPLiteral, "", false},
		{"B5 decimal loopback rejected", "http://2130706433/c", ReasonIPLiteral, "", false},
		{"B5 octal loopback rejected", "http://0177.0.0.1/c", ReasonIPLiteral, "", false},
		{"B5 short loopback rejected", "http://127.1/c", ReasonIPLiteral, "", false},
		{"B5 IPv4-mapped loopback rejected", "http://[::ffff:127.0.0.1]/c", ReasonIPLiteral, "", false},
		{"B5 long-form IPv6 loopback rejected", "http://[0:0:0:0:0:0:0:1]/c", ReasonIPLiteral, "", false},
		{"B5 zoned IPv6 rejected", "http://[::1%25lo]/c", ReasonIPLiteral, "", false},
		{"B5 uppercase HTTP", "HTTP://localhost/c", ReasonUppercase, "", false},
		{"B5 still needs a path", "http://localhost", ReasonNoPath, "", false},
		{"B5 still rejects root path", "http://127.0.0.1:8080/", ReasonRootPath, "", false},
		{"B5 still rejects userinfo", "http://u@localhost/c", ReasonUserinfo, "", false},
		{"B5 still rejects fragment", "http://localhost/c#", ReasonFragment, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := parseClientID(tt.in, true)
			if got := reasonOf(err); got != tt.want {
				t.Fatalf("parseClientID(%q, true) = %v, want reason %q", tt.in, err, tt.want)
			}
			if tt.want != "" {
				return
			}
			if id.String() != tt.in || id.Host() != tt.host || id.DevLoopback() != tt.dev {
				t.Errorf("parseClientID(%q, true) = %q host %q dev %v, want host %q dev %v", tt.in, id, id.Host(), id.DevLoopback(), tt.host, tt.dev)
			}
			if tt.dev {
				if _, err := ParseClientID(tt.in); err == nil {
					t.Errorf("strict ParseClientID(%q) accepted a development-only client_id", tt.in)
				}
			}
		})
	}
}

func TestClientIDWarnings(t *testing.T) {
	tests := []struct {
		name string
		in   string
		dev  bool
		want []string
	}{
		{"A7 A8 plain", "https://app.example/c", false, nil},
		{"A7 query", "https://app.example/c?v=1", false, []string{WarnQueryInClientID}},
		{"A8 explicit 443 is the default", "https://app.example:443/c", false, nil},
		{"A8 non-default port", "https://app.example:8443/c", false, []string{WarnNonDefaultPort}},
		{"A7 A8 both", "https://app.example:8443/c?v=1", false, []string{WarnQueryInClientID, WarnNonDefaultPort}},
		{"A8 http default port", "http://localhost:80/c", true, nil},
		{"A8 http other port", "http://localhost:443/c", true, []string{WarnNonDefaultPort}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := parseClientID(tt.in, tt.dev)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range ClientIDWarnings(id) {
				if w.Ref == "" || w.Message == "" {
					t.Errorf("incomplete warning %+v", w)
				}
				got = append(got, w.Code)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ClientIDWarnings(%q) codes (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	if w := ClientIDWarnings(ClientID{}); w != nil {
		t.Errorf("zero ClientID warnings = %v", w)
	}
}

func TestClientIDComparesExactly(t *testing.T) {
	// A9: IDs differing only in an explicit default port or in query order
	// are different clients.
	pairs := [][2]string{
		{"https://app.example/c", "https://app.example:443/c"},
		{"https://app.example/c?a=1&b=2", "https://app.example/c?b=2&a=1"},
		{"https://app.example/c", "https://app.example/c/"},
	}
	for _, p := range pairs {
		a, errA := ParseClientID(p[0])
		b, errB := ParseClientID(p[1])
		if errA != nil || errB != nil {
			t.Fatalf("A9 parse %q, %q: %v, %v", p[0], p[1], errA, errB)
		}
		if a == b || a.String() == b.String() {
			t.Errorf("A9 %q and %q compare equal", p[0], p[1])
		}
	}
	a, _ := ParseClientID("https://app.example/c")
	b, _ := ParseClientID("https://app.example/c")
	if a != b {
		t.Errorf("A9 identical client IDs compare different")
	}
}

func FuzzParseClientID(f *testing.F) {
	for _, s := range []string{
		"https://client.example.com/cimd.json",
		"https://client.example.com:443/c?x=1",
		"https://[::1]/c",
		"http://localhost:8080/c",
		"https://0x7f000001/c",
		"https://client.example.com/a/%2e%2e/c",
		"HTTPS://Client.EXAMPLE.com/c",
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, allowLoopback bool) {
		id, err := parseClientID(s, allowLoopback)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" || e.Ref == "" || e.Message == "" || !id.IsZero() {
				t.Fatalf("parseClientID(%q) returned a malformed rejection %#v, id %q", s, err, id)
			}
			return
		}
		if id.String() != s || id.IsZero() {
			t.Fatalf("accepted %q but String() = %q", s, id)
		}
		again, err := parseClientID(id.String(), allowLoopback)
		if err != nil || again != id {
			t.Fatalf("accepted %q does not re-parse identically: %v", s, err)
		}
		if !allowLoopback && !strings.HasPrefix(s, "https://") {
			t.Fatalf("strict parse accepted non-https %q", s)
		}
		u, err := url.Parse(s)
		if err != nil || u.String() != s || u.User != nil || u.Fragment != "" || strings.Contains(s, "#") {
			t.Fatalf("accepted %q that the URL parser does not reproduce", s)
		}
		if u.Hostname() != id.Host() || u.Port() != id.Port() || (u.RawQuery != "") != id.HasQuery() {
			t.Fatalf("accessors of %q disagree with net/url: %q %q %v", s, id.Host(), id.Port(), id.HasQuery())
		}
		if u.EscapedPath() == "" || u.EscapedPath() == "/" || len(s) > MaxClientIDLength {
			t.Fatalf("accepted %q with an empty or root path or too long", s)
		}
		if !id.DevLoopback() && endsInNumber(id.Host()) {
			t.Fatalf("accepted IP-literal host in %q", s)
		}
	})
}

func BenchmarkParseClientID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClientID("https://claude.ai/oauth/claude-code-client-metadata?v=2"); err != nil {
			b.Fatal(err)
		}
	}
}
