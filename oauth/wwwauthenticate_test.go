package oauth

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChallengeString(t *testing.T) {
	tests := []struct {
		name string
		c    Challenge
		want string
	}{
		{"H5 attack 55 no token", Challenge{Scheme: "Bearer", Params: []AuthParam{
			{ParamResourceMetadata, "https://h/.well-known/oauth-protected-resource/mcp"},
			{ParamScope, "files:read"},
		}}, `Bearer resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", scope="files:read"`},
		{"H6 attack 59 insufficient scope", Challenge{Scheme: "Bearer", Params: []AuthParam{
			{ParamError, string(InsufficientScope)},
			{ParamScope, "a b"},
		}}, `Bearer error="insufficient_scope", scope="a b"`},
		{"H5 quotes and backslashes escaped", Challenge{Scheme: "Bearer", Params: []AuthParam{
			{ParamErrorDescription, `say "hi" \o/`},
		}}, `Bearer error_description="say \"hi\" \\o/"`},
		{"H5 header injection dropped", Challenge{Scheme: "Bearer", Params: []AuthParam{
			{ParamErrorDescription, "a\r\nSet-Cookie: x=1\x00\x7f"},
		}}, `Bearer error_description="aSet-Cookie: x=1"`},
		{"H5 scheme only", Challenge{Scheme: "Bearer"}, `Bearer`},
		{"H5 token68", Challenge{Scheme: "Negotiate", Token68: "YII="}, `Negotiate YII=`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Fatalf("String() = %s\nwant       %s", got, tt.want)
			}
		})
	}
}

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Challenge
	}{
		{"J1 bearer with resource_metadata", `Bearer resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", scope="a b"`,
			[]Challenge{{Scheme: "Bearer", Params: []AuthParam{{"resource_metadata", "https://h/.well-known/oauth-protected-resource/mcp"}, {"scope", "a b"}}}}},
		{"J1 token values and BWS", `bearer error = invalid_token ,realm="x"`,
			[]Challenge{{Scheme: "bearer", Params: []AuthParam{{"error", "invalid_token"}, {"realm", "x"}}}}},
		{"J1 two challenges", `Basic realm="a", Bearer error="insufficient_scope", scope="s"`,
			[]Challenge{
				{Scheme: "Basic", Params: []AuthParam{{"realm", "a"}}},
				{Scheme: "Bearer", Params: []AuthParam{{"error", "insufficient_scope"}, {"scope", "s"}}},
			}},
		{"J1 token68 then params challenge", `Negotiate abc==, Bearer realm="r"`,
			[]Challenge{{Scheme: "Negotiate", Token68: "abc=="}, {Scheme: "Bearer", Params: []AuthParam{{"realm", "r"}}}}},
		{"J1 bare schemes", `Bearer, Basic`, []Challenge{{Scheme: "Bearer"}, {Scheme: "Basic"}}},
		{"J1 empty list elements", ` , Bearer realm="r",, scope="s" ,`,
			[]Challenge{{Scheme: "Bearer", Params: []AuthParam{{"realm", "r"}, {"scope", "s"}}}}},
		{"J1 quoted pair", `Bearer error_description="a \"b\" \\c"`,
			[]Challenge{{Scheme: "Bearer", Params: []AuthParam{{"error_description", `a "b" \c`}}}}},
		{"J1 name= alone is a token68", `Bearer realm=`, []Challenge{{Scheme: "Bearer", Token68: "realm="}}},
		{"J1 empty field", ``, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChallenges(tt.in)
			if err != nil {
				t.Fatalf("ParseChallenges(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("ParseChallenges(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseChallengesRejects(t *testing.T) {
	for _, in := range []string{
		`Bearer realm="unterminated`,
		`Bearer realm="x" scope="y"`,
		`Bearer realm="a", realm="b"`,
		`Bearer REALM="a", realm="b"`,
		`Bearer realm="\`,
		`Bearer realm="a` + "\x01" + `"`,
		`Bearer"x"`,
		`"Bearer"`,
		`Bearer =x`,
		`Bearer realm="a", =b`,
	} {
		t.Run("J1 malformed "+in, func(t *testing.T) {
			got, err := ParseChallenges(in)
			if !errors.Is(err, ErrMalformedChallenge) {
				t.Fatalf("ParseChallenges(%q) = %+v, %v; want ErrMalformedChallenge", in, got, err)
			}
		})
	}
}

func TestParseWWWAuthenticateHeaderFields(t *testing.T) {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Basic realm="a"`)
	h.Add("WWW-Authenticate", `Bearer resource_metadata="https://h/.well-known/oauth-protected-resource"`)
	got, err := ParseWWWAuthenticate(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !strings.EqualFold(got[1].Scheme, "bearer") {
		t.Fatalf("got %+v", got)
	}
	if v, ok := got[1].Param("Resource_Metadata"); !ok || v != "https://h/.well-known/oauth-protected-resource" {
		t.Fatalf("Param(resource_metadata) = %q, %v", v, ok)
	}
	if _, ok := got[1].Param("scope"); ok {
		t.Fatal("Param(scope) present, want absent")
	}
	h.Add("WWW-Authenticate", `Bearer realm="x`)
	if _, err := ParseWWWAuthenticate(h); !errors.Is(err, ErrMalformedChallenge) {
		t.Fatalf("malformed field: err = %v", err)
	}
}

// FuzzWWWAuthenticate checks both directions: a challenge built by String
// parses back to itself, and anything the parser accepts survives a
// build-and-parse round trip unchanged.
func FuzzWWWAuthenticate(f *testing.F) {
	f.Add("Bearer", "resource_metadata", "https://h/.well-known/oauth-protected-resource/mcp", "scope", "a b", `Bearer error="invalid_token", error_description="expired"`)
	f.Add("Bearer", "error", "insufficient_scope", "error_description", `quote " and \ backslash`, `Basic realm="x", Bearer scope="s"`)
	f.Add("Negotiate", "", "", "", "", `Negotiate abc==, Bearer`)
	f.Add("b", "realm", "\t\x80\xff", "x", "", ` , ,Bearer realm=tok ,,`)
	f.Fuzz(func(t *testing.T, scheme, n1, v1, n2, v2, header string) {
		c := Challenge{Scheme: scheme}
		for _, p := range []AuthParam{{n1, v1}, {n2, v2}} {
			if p.Name != "" {
				c.Params = append(c.Params, p)
			}
		}
		if validForRoundTrip(c) {
			got, err := ParseChallenges(c.String())
			if err != nil {
				t.Fatalf("ParseChallenges(%q): %v", c.String(), err)
			}
			if diff := cmp.Diff([]Challenge{c}, got); diff != "" {
				t.Fatalf("round trip of %q mismatch (-want +got):\n%s", c.String(), diff)
			}
		} else if s := c.String(); strings.ContainsAny(s, "\r\n\x00") {
			t.Fatalf("String() produced an unsafe header value %q", s)
		}

		parsed, err := ParseChallenges(header)
		if err != nil {
			return
		}
		var parts []string
		for _, pc := range parsed {
			parts = append(parts, pc.String())
		}
		again, err := ParseChallenges(strings.Join(parts, ", "))
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", strings.Join(parts, ", "), header, err)
		}
		if diff := cmp.Diff(parsed, again); diff != "" {
			t.Fatalf("build-and-parse of %q changed it (-first +second):\n%s", header, diff)
		}
	})
}

// validForRoundTrip reports whether String and ParseChallenges must be exact
// inverses for c: scheme and names are tokens, names are unique, values hold
// no control characters except tab.
func validForRoundTrip(c Challenge) bool {
	isToken := func(s string) bool {
		if s == "" {
			return false
		}
		for i := 0; i < len(s); i++ {
			if !isTChar(s[i]) {
				return false
			}
		}
		return true
	}
	if !isToken(c.Scheme) {
		return false
	}
	for i, p := range c.Params {
		if !isToken(p.Name) {
			return false
		}
		for j := 0; j < i; j++ {
			if strings.EqualFold(c.Params[j].Name, p.Name) {
				return false
			}
		}
		for k := 0; k < len(p.Value); k++ {
			if !isQuotable(p.Value[k]) {
				return false
			}
		}
	}
	return true
}
