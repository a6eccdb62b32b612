package oauth

import (
	"fmt"
	"strings"
)

// Limits on a requested scope. Every scope ends up in each access token
// and in WWW-Authenticate challenges, so an unbounded one would make tokens
// too large for HTTP headers.
const (
	MaxScopes        = 64  // scope values in one request
	MaxScopeTokenLen = 128 // bytes in one scope value
)

// CheckScope reports whether s is a scope parameter of RFC 6749 §3.3:
// scope values separated by spaces, each made of the printable ASCII
// characters other than space, '"' and '\', within MaxScopes values of at
// most MaxScopeTokenLen bytes. The error says which value is wrong and why.
func CheckScope(s string) error {
	tokens := strings.Fields(s)
	if len(tokens) > MaxScopes {
		return fmt.Errorf("%d scope values; at most %d are accepted", len(tokens), MaxScopes)
	}
	for _, t := range tokens {
		if len(t) > MaxScopeTokenLen {
			return fmt.Errorf("scope value %.40q... is %d bytes long; at most %d are accepted", t, len(t), MaxScopeTokenLen)
		}
		for i := 0; i < len(t); i++ {
			if c := t[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return fmt.Errorf("scope value %q contains the byte 0x%02x; scope values are printable ASCII without space, '\"' or '\\' (RFC 6749 section 3.3)", truncateScope(t), c)
			}
		}
	}
	return nil
}

func truncateScope(t string) string {
	if len(t) > 40 {
		return t[:40] + "..."
	}
	return t
}
