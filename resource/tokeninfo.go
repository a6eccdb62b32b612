// This file holds what a verified access token says (RFC 9068 §2.2, RFC 7662
// §2.2) and how handlers read it from a request context.

package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// TokenInfo is what a TokenVerifier learned from a valid access token. It is
// shared between requests (verifiers and Cache return the same value for the
// same token), so treat it as read-only.
type TokenInfo struct {
	// Issuer is the iss claim: the authorization server that issued the token.
	Issuer string
	// Subject is the sub claim: the resource owner, usually a user.
	Subject string
	// ClientID is the client_id claim (RFC 9068 §2.2), or azp when a token
	// carries no client_id. Under CIMD it is the client's metadata URL.
	ClientID string
	// Scopes are the granted scopes (the space-separated scope claim).
	Scopes []string
	// Audience is the aud claim; it includes this resource.
	Audience []string
	// Expiry is the exp claim. It is zero only for introspected tokens whose
	// response carried no exp.
	Expiry time.Time
	// IssuedAt is the iat claim, zero when absent.
	IssuedAt time.Time
	// ID is the jti claim, empty when absent.
	ID string
	// Claims is the whole JWT claims set or introspection response, for
	// claims this struct does not name: json.Unmarshal it into your own type.
	Claims json.RawMessage
}

// HasScope reports whether the token grants scope, compared exactly.
func (t *TokenInfo) HasScope(scope string) bool {
	return slices.Contains(t.Scopes, scope)
}

type contextKey struct{}

// authState is what RequireBearer stores in the request context.
type authState struct {
	info      *TokenInfo
	satisfies func(granted []string, required string) bool
}

// TokenInfoFromContext returns the token info that RequireBearer stored in
// the context of an authenticated request, or nil. With the MCP Go SDK the
// request context reaches tool handlers when the StreamableHTTPHandler runs
// with Stateless: true; see the package example.
func TokenInfoFromContext(ctx context.Context) *TokenInfo {
	if st, ok := ctx.Value(contextKey{}).(*authState); ok {
		return st.info
	}
	return nil
}

// ContextWithTokenInfo returns a copy of ctx carrying info, as RequireBearer
// does after a successful verification. It lets tests of handlers that call
// TokenInfoFromContext or RequireScopes run without a token.
func ContextWithTokenInfo(ctx context.Context, info *TokenInfo) context.Context {
	return context.WithValue(ctx, contextKey{}, &authState{info: info, satisfies: exactScope})
}

// ScopeError reports that a token lacks scopes an operation needs (RFC 6750
// §3.1 insufficient_scope). Required lists every scope the operation needs,
// as the step-up challenge must (MCP 2025-11-25 Authorization §Runtime
// Insufficient Scope Errors); Missing lists those not granted.
type ScopeError struct {
	Required []string
	Missing  []string
}

// Error says which scopes the operation needs and which are missing.
func (e *ScopeError) Error() string {
	return fmt.Sprintf("insufficient_scope: this operation needs scope %q; the token lacks %q",
		strings.Join(e.Required, " "), strings.Join(e.Missing, " "))
}

// ErrNoToken is returned by RequireScopes when ctx carries no token info,
// which means the handler is not behind RequireBearer.
var ErrNoToken = errors.New("no verified bearer token in context; is the handler behind resource.RequireBearer?")

// RequireScopes checks, inside a handler such as an MCP tool, that the token
// of the current request grants every scope in scopes, honouring the
// Options.ScopeSatisfies of the RequireBearer that verified it. It returns
// nil, a *ScopeError, or ErrNoToken.
//
// A tool handler cannot turn its error into an HTTP 403, so MCP clients do
// not step up from it. Declare per-tool scopes with Options.ScopesFor (see
// ToolScopes) to get a 403 insufficient_scope challenge, and use
// RequireScopes as a second line of defence or for checks that depend on the
// arguments.
func RequireScopes(ctx context.Context, scopes ...string) error {
	st, ok := ctx.Value(contextKey{}).(*authState)
	if !ok || st.info == nil {
		return ErrNoToken
	}
	if missing := missingScopes(st.info.Scopes, scopes, st.satisfies); len(missing) > 0 {
		return &ScopeError{Required: scopes, Missing: missing}
	}
	return nil
}

// missingScopes returns the scopes in required that granted does not satisfy.
func missingScopes(granted, required []string, satisfies func([]string, string) bool) []string {
	var missing []string
	for _, s := range required {
		if !satisfies(granted, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

func exactScope(granted []string, required string) bool {
	return slices.Contains(granted, required)
}
