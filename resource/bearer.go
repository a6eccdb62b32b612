// This file implements the resource server side of RFC 6750 (bearer tokens
// in the Authorization header, §2.1; error challenges, §3) with the RFC 9728
// §5.1 resource_metadata parameter and MCP step-up.

package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
)

// MaxTokenLength is the longest bearer token RequireBearer passes to a
// verifier, in bytes; longer ones are rejected as invalid_token.
const MaxTokenLength = 16 << 10

// Options configures RequireBearer. Resource (or ResourceMetadataURL) is
// required; every other field has a usable zero value.
type Options struct {
	// Resource is the canonical URL of the protected endpoint, such as
	// "https://mcp.example.com/mcp": the same value as the PRM resource and
	// the audience the verifier checks. It is used to build the
	// resource_metadata URL of challenges.
	Resource string
	// ResourceMetadataURL overrides the resource_metadata URL sent in every
	// challenge. Zero means the path-inserted well-known URL of Resource
	// (oauth.ProtectedResourceMetadataURL), which HandleMetadata serves.
	ResourceMetadataURL string
	// Scopes are required for every request and announced in the scope
	// parameter of 401 challenges (MCP 2025-11-25 "Scope Selection Strategy").
	// Zero means a valid token suffices.
	Scopes []string
	// ScopesFor, if set, returns further scopes the given request needs, for
	// per-route or per-tool rules (ToolScopes reads MCP tools/call). It is
	// called only after the token verified, so unauthenticated requests never
	// reach it, and may read and restore r.Body. A token lacking any of
	// Scopes or ScopesFor(r) gets 403 insufficient_scope listing all of them.
	ScopesFor func(r *http.Request) []string
	// ScopeSatisfies reports whether the granted scopes satisfy required, to
	// honour scope hierarchies (MCP 2026-07-28: a server MUST, RFC 6750 §3.1,
	// MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors), e.g.
	// "files" implying "files:read". Zero means exact string match.
	ScopeSatisfies func(granted []string, required string) bool
	// Logger receives verification failures that are not the token's fault
	// (level Error) and why tokens were rejected (level Debug). Tokens are
	// never logged. Zero means no logging.
	Logger *slog.Logger
	// Now is the clock for the final expiry check. Zero means time.Now.
	Now func() time.Time
}

// RequireBearer returns middleware that lets a request through only with a
// valid access token from the Authorization header (RFC 6750 §2.1,
// OAuth 2.1 §5.2, RFC 8707 §2), verified by v, with the scopes the request
// needs. The token is read from the header only: never from the query string or
// the body (OAuth 2.1 §5.2, RFC 8707 §2, RFC 6750 §2.3, MCP 2025-11-25 Authorization §Token Requirements). The next
// handler gets the request without its Authorization header, so the token
// cannot be forwarded upstream by accident
// (MCP 2025-11-25 Authorization §Access Token Privilege Restriction,
// MCP 2025-11-25 Authorization §Access Token Privilege Restriction); it finds the verified TokenInfo with
// TokenInfoFromContext.
//
// Responses, each with Cache-Control: no-store and, when an error code
// applies, a JSON oauth.Error body:
//
//   - no Bearer credentials: 401 with `WWW-Authenticate: Bearer
//     resource_metadata="...", scope="..."` and no error (RFC 6750 §3, §3.1,
//     RFC 9728 §5.1, RFC 6750 §3.1);
//   - several Authorization fields: 400 invalid_request;
//   - a token v rejects, or a malformed or overlong one: 401
//     error="invalid_token" (RFC 6750 §3, RFC 9728 §5.1,
//     RFC 8707 §2, RFC 9068 §4, OAuth 2.1 §5.2);
//   - missing scopes: 403 error="insufficient_scope" with scope= listing
//     every scope the request needs and resource_metadata= (RFC 6750 §3.1,
//     MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors,
//     RFC 6750 §3.1, MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors);
//   - v failed for another reason (authorization server unreachable): 503
//     with Retry-After, no challenge.
//
// Put CORS handling, if any, outside RequireBearer: a preflight carries no
// token. RequireBearer panics if opts has neither a valid Resource nor a
// ResourceMetadataURL, or v is nil: both are programming errors found at
// start-up. The middleware is safe for concurrent use.
func RequireBearer(v TokenVerifier, opts Options) func(http.Handler) http.Handler {
	b, err := newBearer(v, opts)
	if err != nil {
		panic("resource.RequireBearer: " + err.Error())
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.serve(w, r, next)
		})
	}
}

type bearer struct {
	v           TokenVerifier
	opts        Options
	metadataURL string
	satisfies   func([]string, string) bool
	now         func() time.Time
	log         *slog.Logger
	// noTokenChallenge is the precomputed 401 challenge without error.
	noTokenChallenge string
}

func newBearer(v TokenVerifier, opts Options) (*bearer, error) {
	if v == nil {
		return nil, errors.New("nil TokenVerifier")
	}
	b := &bearer{v: v, opts: opts, metadataURL: opts.ResourceMetadataURL, satisfies: opts.ScopeSatisfies, now: opts.Now, log: opts.Logger}
	if b.metadataURL == "" {
		if opts.Resource == "" {
			return nil, errors.New("Options.Resource is required, e.g. https://mcp.example.com/mcp")
		}
		canon, err := oauth.CanonicalResource(opts.Resource)
		if err != nil {
			return nil, err
		}
		if b.metadataURL, err = oauth.ProtectedResourceMetadataURL(canon); err != nil {
			return nil, err
		}
	}
	if b.satisfies == nil {
		b.satisfies = exactScope
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.noTokenChallenge = b.challenge("", "", opts.Scopes)
	return b, nil
}

func (b *bearer) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	token, err := bearerToken(r.Header)
	switch {
	case errors.Is(err, errNoCredentials):
		b.reject(w, http.StatusUnauthorized, b.noTokenChallenge, nil)
		return
	case errors.Is(err, errManyCredentials):
		b.reject(w, http.StatusBadRequest, b.challenge(oauth.InvalidRequest, "send exactly one Authorization header", b.opts.Scopes),
			&oauth.Error{Code: oauth.InvalidRequest, Description: "send exactly one Authorization header"})
		return
	case err != nil:
		b.invalidToken(w, err)
		return
	}
	info, err := b.v.VerifyToken(r.Context(), token)
	if err == nil && info == nil {
		err = errors.New("verifier returned no TokenInfo and no error")
	}
	if err == nil && !info.Expiry.IsZero() && !b.now().Before(info.Expiry) {
		err = fmt.Errorf("%w at %s", ErrTokenExpired, info.Expiry.UTC().Format(time.RFC3339))
	}
	if err != nil {
		if errors.Is(err, ErrInvalidToken) {
			b.log.LogAttrs(r.Context(), slog.LevelDebug, "bearer token rejected", slog.String("reason", err.Error()))
			b.invalidToken(w, err)
			return
		}
		b.log.LogAttrs(r.Context(), slog.LevelError, "bearer token verification failed", slog.String("error", err.Error()))
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, &oauth.Error{Code: oauth.TemporarilyUnavailable, Description: "the access token cannot be checked right now; retry later"})
		return
	}
	required := b.opts.Scopes
	if b.opts.ScopesFor != nil {
		required = union(required, b.opts.ScopesFor(r))
	}
	if missing := missingScopes(info.Scopes, required, b.satisfies); len(missing) > 0 {
		desc := "this operation needs scope " + strings.Join(required, " ")
		b.reject(w, http.StatusForbidden, b.challenge(oauth.InsufficientScope, desc, required),
			&oauth.Error{Code: oauth.InsufficientScope, Description: desc})
		return
	}
	ctx := context.WithValue(r.Context(), contextKey{}, &authState{info: info, satisfies: b.satisfies})
	r = r.WithContext(ctx)
	r.Header = withoutAuthorization(r.Header)
	next.ServeHTTP(w, r)
}

// withoutAuthorization returns a copy of h without the Authorization field,
// so that nothing behind RequireBearer can forward the token
// (MCP 2025-11-25 Authorization §Access Token Privilege Restriction), not even
// through the MCP Go SDK's RequestExtra.Header.
func withoutAuthorization(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		if k != "Authorization" {
			out[k] = v
		}
	}
	return out
}

func (b *bearer) invalidToken(w http.ResponseWriter, err error) {
	desc := "the access token is invalid"
	if errors.Is(err, ErrTokenExpired) {
		desc = "the access token expired"
	}
	b.reject(w, http.StatusUnauthorized, b.challenge(oauth.InvalidToken, desc, b.opts.Scopes),
		&oauth.Error{Code: oauth.InvalidToken, Description: desc})
}

// challenge builds the Bearer challenge: error first when there is one,
// then scope and resource_metadata (RFC 6750 §3, RFC 9728 §5.1).
func (b *bearer) challenge(code oauth.ErrorCode, desc string, scopes []string) string {
	c := oauth.Challenge{Scheme: "Bearer"}
	if code != "" {
		c.Params = append(c.Params, oauth.AuthParam{Name: oauth.ParamError, Value: string(code)})
		c.Params = append(c.Params, oauth.AuthParam{Name: oauth.ParamErrorDescription, Value: desc})
	}
	if len(scopes) > 0 {
		c.Params = append(c.Params, oauth.AuthParam{Name: oauth.ParamScope, Value: strings.Join(scopes, " ")})
	}
	c.Params = append(c.Params, oauth.AuthParam{Name: oauth.ParamResourceMetadata, Value: b.metadataURL})
	return c.String()
}

// reject writes a challenge response. A nil body (no credentials) gets a
// plain-text body, so that no error code appears anywhere (RFC 6750 §3.1).
func (b *bearer) reject(w http.ResponseWriter, status int, challenge string, body *oauth.Error) {
	h := w.Header()
	h.Set("WWW-Authenticate", challenge)
	if body != nil {
		writeJSON(w, status, body)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "This endpoint needs an OAuth access token in the Authorization header; see WWW-Authenticate.\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a write error has no one to go to
}

var (
	errNoCredentials   = errors.New("no bearer credentials")
	errManyCredentials = errors.New("several Authorization header fields")
)

// bearerToken returns the b64token of the request's single Authorization
// field when its scheme is Bearer (RFC 6750 §2.1; the scheme is
// case-insensitive, RFC 9110 §11.1). Another scheme, or no field, is
// errNoCredentials. A malformed token wraps ErrInvalidToken.
func bearerToken(h http.Header) (string, error) {
	vals := h["Authorization"]
	switch {
	case len(vals) == 0:
		return "", errNoCredentials
	case len(vals) > 1:
		return "", errManyCredentials
	}
	scheme, rest, _ := strings.Cut(strings.TrimLeft(vals[0], " \t"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoCredentials
	}
	token := strings.Trim(rest, " \t")
	switch {
	case token == "":
		return "", fmt.Errorf("%w: empty bearer token", ErrInvalidToken)
	case len(token) > MaxTokenLength:
		return "", fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, MaxTokenLength)
	case !isB64Token(token):
		return "", fmt.Errorf("%w: token has characters outside b64token (RFC 6750 §2.1)", ErrInvalidToken)
	}
	return token, nil
}

// b64token characters (RFC 6750 §2.1) as bit masks over bytes 0-63 and
// 64-127: DIGIT "+" "-" "." "/" and ALPHA "_" "~".
const (
	b64TokenLo uint64 = (1<<10-1)<<'0' | 1<<'+' | 1<<'-' | 1<<'.' | 1<<'/'
	b64TokenHi uint64 = (1<<26-1)<<('A'-64) | (1<<26-1)<<('a'-64) | 1<<('_'-64) | 1<<('~'-64)
)

// isB64Token reports whether s matches RFC 6750 §2.1
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c < 64 && b64TokenLo&(1<<c) == 0 || c >= 64 && (c >= 128 || b64TokenHi&(1<<(c-64)) == 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

// union returns a followed by the members of b not in a.
func union(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := append([]string(nil), a...)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
