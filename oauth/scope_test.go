package oauth

import (
	"strings"
	"testing"
)

func TestCheckScope(t *testing.T) {
	ok := []string{"", "read", "read write", "mcp:tools files:write", "a!#[]~", "  read   write ", strings.Repeat("x", MaxScopeTokenLen),
		strings.TrimSpace(strings.Repeat("s ", MaxScopes))}
	for _, s := range ok {
		if err := CheckScope(s); err != nil {
			t.Errorf("CheckScope(%q) = %v, want nil", s, err)
		}
	}
	bad := map[string]string{
		"a\x00b":                                "0x00",
		`say"hi"`:                               "0x22",
		`back\slash`:                            "0x5c",
		"caf\xc3\xa9":                           "0xc3",
		"\xff":                                  "0xff",
		"del\x7f":                               "0x7f",
		strings.Repeat("x", MaxScopeTokenLen+1): "bytes long",
		strings.Repeat("s ", MaxScopes+1):       "at most 64",
	}
	for s, want := range bad {
		err := CheckScope(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckScope(%.50q) = %v, want an error mentioning %q", s, err, want)
		}
	}
}
