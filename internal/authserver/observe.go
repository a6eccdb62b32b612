package authserver

import (
	"errors"
	"net/http"
	"time"

	"github.com/mcpauth/mcpauth/oauth"

	"github.com/mcpauth/mcpauth/internal/accesslog"
)

// Observer receives the server's events for metrics (Options.Observer).
// Every value it is given is bounded: route patterns, grant types, OAuth
// error codes and fixed result words, never a user, token or client_id.
// Its methods must be safe for concurrent use and must not block.
type Observer interface {
	// Request reports an answered request: the ServeMux pattern that
	// served it ("unmatched" when none did), its status and duration.
	Request(handler string, code int, d time.Duration)
	// TokenIssued reports a token response; grantType is
	// authorization_code or refresh_token.
	TokenIssued(grantType string)
	// TokenError reports a token endpoint error: the grant type
	// (authorization_code, refresh_token, or other for a missing or
	// unsupported one) and the OAuth error code (RFC 6749 §5.2).
	TokenError(grantType, code string)
	// Login reports a sign-in attempt: LoginSuccess, LoginFailure
	// (wrong user name or password) or LoginRateLimited.
	Login(result string)
}

// Results given to Observer.Login.
const (
	LoginSuccess     = "success"
	LoginFailure     = "failure"
	LoginRateLimited = "rate_limited"
)

// observed wraps the route mux so that s.obs, when set, sees every answer
// with the pattern the mux matched (set on r by ServeMux.ServeHTTP).
func (s *Server) observed(mux *http.ServeMux) http.Handler {
	if s.obs == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := accesslog.NewRecorder(w)
		mux.ServeHTTP(sw, r)
		handler := r.Pattern
		if handler == "" {
			handler = "unmatched"
		}
		s.obs.Request(handler, sw.Status(), time.Since(start))
	})
}

// observeToken reports a token endpoint answer to s.obs, if set: issued
// when err is nil, else the error's OAuth code.
func (s *Server) observeToken(grantType string, err error) {
	if s.obs == nil {
		return
	}
	grantType = grantLabel(grantType)
	if err == nil {
		s.obs.TokenIssued(grantType)
		return
	}
	code := oauth.ServerError
	var oe *oauth.Error
	if errors.As(err, &oe) {
		code = oe.Code
	} else if unavailable(err) {
		code = oauth.TemporarilyUnavailable
	}
	s.obs.TokenError(grantType, string(code))
}

// grantLabel is grantType when it is authorization_code or refresh_token,
// else other: a bounded label.
func grantLabel(grantType string) string {
	if grantType != "authorization_code" && grantType != "refresh_token" {
		return "other"
	}
	return grantType
}

// observeLogin reports a sign-in attempt to s.obs, if set.
func (s *Server) observeLogin(result string) {
	if s.obs != nil {
		s.obs.Login(result)
	}
}
