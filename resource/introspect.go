// This file verifies opaque tokens with RFC 7662 token introspection.

package resource

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
)

// DefaultIntrospectionCacheTTL is how long an active introspection result is
// reused by default: short, because revocation is the point of introspection.
const DefaultIntrospectionCacheTTL = 30 * time.Second

// IntrospectionOptions configures NewIntrospectionVerifier. Endpoint,
// Resource and Client are required.
type IntrospectionOptions struct {
	// Endpoint is the authorization server's introspection_endpoint
	// (RFC 7662 §2, RFC 8414 §2).
	Endpoint string
	// ClientID and ClientSecret authenticate this resource server to the
	// endpoint with HTTP Basic (RFC 7662 §2.1, RFC 6749 §2.3.1). Leave them
	// empty if Client's transport authenticates another way.
	ClientID     string
	ClientSecret string
	// Issuer, if set, must equal the iss member of every response.
	Issuer string
	// Resource is this MCP server's URL; the response's aud must include it
	// (OAuth 2.1 §5.2, RFC 8707 §2). A response without aud is rejected.
	Resource string
	// Client sends the introspection requests. It is required (never
	// http.DefaultClient); give it a Timeout. Redirects are not followed.
	Client *http.Client
	// CacheTTL is how long an active result is reused (never past the
	// token's exp). Zero means DefaultIntrospectionCacheTTL; negative
	// disables the cache.
	CacheTTL time.Duration
	// CacheMaxEntries bounds the cache. Zero means DefaultCacheMaxEntries.
	CacheMaxEntries int
	// Leeway is the clock skew allowed for exp, nbf and iat. Zero means
	// DefaultLeeway.
	Leeway time.Duration
	// Now is the clock. Zero means time.Now.
	Now func() time.Time
}

// IntrospectionVerifier verifies opaque access tokens by asking the
// authorization server (RFC 7662 §2.1). A token is accepted when the
// response says active: true, its token_type (when present) is a bearer
// access token (a refresh token is refused), it names this resource in aud,
// and its exp, nbf and iat (when present) hold. Active results are cached briefly (a Cache
// inside), so a burst of requests with one token causes one introspection.
//
// Not supported: JWT introspection responses (RFC 9701), client
// authentication other than HTTP Basic (use Client's transport for it).
// An IntrospectionVerifier is safe for concurrent use.
type IntrospectionVerifier struct {
	endpoint     string
	clientID     string
	clientSecret string
	issuer       string
	resource     string
	client       *http.Client
	leeway       time.Duration
	now          func() time.Time
	verify       TokenVerifier // introspect, behind a Cache unless disabled
}

var _ TokenVerifier = (*IntrospectionVerifier)(nil)

// NewIntrospectionVerifier checks opts and returns a verifier. It does no
// I/O.
func NewIntrospectionVerifier(opts IntrospectionOptions) (*IntrospectionVerifier, error) {
	if opts.Client == nil {
		return nil, errors.New("IntrospectionOptions.Client is required; pass an *http.Client with a Timeout")
	}
	u, err := url.Parse(opts.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("IntrospectionOptions.Endpoint %q must be an absolute https URL", opts.Endpoint)
	}
	resource, err := oauth.CanonicalResource(opts.Resource)
	if err != nil {
		return nil, fmt.Errorf("IntrospectionOptions.Resource: %w", err)
	}
	v := &IntrospectionVerifier{
		endpoint:     opts.Endpoint,
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		issuer:       opts.Issuer,
		resource:     resource,
		client:       noRedirects(opts.Client),
		leeway:       cmp.Or(opts.Leeway, DefaultLeeway),
		now:          opts.Now,
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.verify = TokenVerifierFunc(v.introspect)
	if opts.CacheTTL >= 0 {
		v.verify = NewCache(v.verify, CacheOptions{
			TTL:        cmp.Or(opts.CacheTTL, DefaultIntrospectionCacheTTL),
			MaxEntries: opts.CacheMaxEntries,
			Now:        v.now,
		})
	}
	return v, nil
}

// VerifyToken implements TokenVerifier.
func (v *IntrospectionVerifier) VerifyToken(ctx context.Context, token string) (*TokenInfo, error) {
	return v.verify.VerifyToken(ctx, token)
}

func (v *IntrospectionVerifier) introspect(ctx context.Context, token string) (*TokenInfo, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if v.clientID != "" {
		req.SetBasicAuth(url.QueryEscape(v.clientID), url.QueryEscape(v.clientSecret))
	}
	var raw json.RawMessage
	if err := doJSON(ctx, v.client, req, &raw); err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("introspect %q: decode response: %w", v.endpoint, err)
	}
	if !c.Active {
		return nil, fmt.Errorf("%w: inactive (RFC 7662 §2.2)", ErrInvalidToken)
	}
	if !isAccessTokenType(c.TokenType) {
		return nil, fmt.Errorf("%w: token_type %q is not a bearer access token", ErrInvalidToken, c.TokenType)
	}
	if err := c.check(v.now(), v.issuer, v.resource, v.leeway, false); err != nil {
		return nil, err
	}
	return c.tokenInfo(raw), nil
}

// isAccessTokenType reports whether an introspection token_type names a
// bearer access token. Authorization servers may introspect refresh tokens
// too (RFC 7662 §2.1); those must never open the resource, nor may
// sender-constrained (DPoP) tokens, which this package cannot check.
func isAccessTokenType(t string) bool {
	switch strings.ToLower(t) {
	case "", "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token":
		return true
	}
	return false
}
