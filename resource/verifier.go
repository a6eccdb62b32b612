package resource

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
)

// A TokenVerifier checks a bearer access token and says what it grants. It
// must check that the token was issued for this resource (audience,
// OAuth 2.1 §5.2, RFC 8707 §2) and is within its validity period.
//
// A token that is not acceptable gives an error wrapping ErrInvalidToken
// (RequireBearer answers 401 invalid_token). Any other error means the token
// could not be checked (the authorization server is unreachable, say), and
// RequireBearer answers 503 without blaming the token.
//
// JWTVerifier, IntrospectionVerifier and Cache implement it; all are safe for
// concurrent use, as every implementation must be.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (*TokenInfo, error)
}

// TokenVerifierFunc adapts a function to TokenVerifier.
type TokenVerifierFunc func(ctx context.Context, token string) (*TokenInfo, error)

// VerifyToken calls f(ctx, token).
func (f TokenVerifierFunc) VerifyToken(ctx context.Context, token string) (*TokenInfo, error) {
	return f(ctx, token)
}

var (
	// ErrInvalidToken is wrapped by every rejection of a token (RFC 6750 §3.1
	// invalid_token): bad signature, unknown issuer or key, wrong audience,
	// expired, not yet valid, inactive.
	ErrInvalidToken = errors.New("invalid token")
	// ErrTokenExpired wraps ErrInvalidToken for a token past its exp.
	ErrTokenExpired = fmt.Errorf("%w: expired", ErrInvalidToken)
)

// DefaultLeeway is the clock skew allowed when checking exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// checkTimes applies exp, nbf and iat with leeway (RFC 7519 §4.1.4-4.1.6,
// RFC 9068 §4). A zero time means the claim is absent; requireExp makes a
// missing exp an error.
func checkTimes(now, exp, nbf, iat time.Time, leeway time.Duration, requireExp bool) error {
	switch {
	case exp.IsZero() && requireExp:
		return fmt.Errorf("%w: no exp claim", ErrInvalidToken)
	case !exp.IsZero() && !now.Before(exp.Add(leeway)):
		return fmt.Errorf("%w at %s", ErrTokenExpired, exp.UTC().Format(time.RFC3339))
	case !nbf.IsZero() && now.Add(leeway).Before(nbf):
		return fmt.Errorf("%w: not valid before %s", ErrInvalidToken, nbf.UTC().Format(time.RFC3339))
	case !iat.IsZero() && now.Add(leeway).Before(iat):
		return fmt.Errorf("%w: issued in the future at %s", ErrInvalidToken, iat.UTC().Format(time.RFC3339))
	}
	return nil
}

// audienceIncludes reports whether aud names resource (already canonical),
// comparing canonical forms (OAuth 2.1 §5.2, RFC 8707 §2,
// MCP 2025-11-25 Authorization §Canonical Server URI). Entries that are not
// valid resource URIs never match.
func audienceIncludes(aud []string, resource string) bool {
	for _, a := range aud {
		if a == resource {
			return true
		}
	}
	for _, a := range aud {
		if c, err := oauth.CanonicalResource(a); err == nil && c == resource {
			return true
		}
	}
	return false
}
