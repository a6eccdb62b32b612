package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/mcpauth/mcpauth/oauth"
)

// writeJSONError renders err as an RFC 6749 §5.2 JSON error. Non-OAuth
// errors are logged with the request id and answered as server_error, never
// echoed (CONVENTIONS 4).
func (s *Server) writeJSONError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeJSONErrorStatus(w, r, 0, err)
}

// writeJSONErrorStatus is writeJSONError with an explicit HTTP status; 0
// picks the one RFC 6749 §5.2 implies.
func (s *Server) writeJSONErrorStatus(w http.ResponseWriter, r *http.Request, status int, err error) {
	oe := onWire(s.asOAuth(r, err))
	if oe.Code == oauth.ServerError {
		status = http.StatusInternalServerError
	}
	if status == 0 {
		status = http.StatusBadRequest
		switch oe.Code {
		case oauth.InvalidClient:
			status = http.StatusUnauthorized
		case oauth.TemporarilyUnavailable:
			status = http.StatusServiceUnavailable
		}
	}
	if r.Header.Get("Authorization") != "" && status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="mcpauth"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(oe)
}

// writeRedirectError sends an authorization error back to a redirect URI
// that has already been validated for the client (RFC 6749 §4.1.2.1,
// RFC 9700 §4.11.2), with state and iss (RFC 9207).
func (s *Server) writeRedirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, err error) {
	oe := onWire(s.asOAuth(r, err))
	q := url.Values{}
	q.Set("error", string(oe.Code))
	if oe.Description != "" {
		q.Set("error_description", oe.Description)
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", s.issuer)
	http.Redirect(w, r, appendQuery(redirectURI, q), http.StatusSeeOther)
}

// writeHTMLError renders an error page: used when the client or redirect URI
// cannot be trusted, so the user is never redirected (RFC 6749 §4.1.2.1,
// RFC 9700 §4.11.2, CIMD §5.1).
func (s *Server) writeHTMLError(w http.ResponseWriter, r *http.Request, status int, err error) {
	oe := s.asOAuth(r, err)
	s.render(w, r, status, "error.html", map[string]any{"Error": oe})
}

// asOAuth returns the OAuth error to render for err.
func (s *Server) asOAuth(r *http.Request, err error) *oauth.Error {
	var oe *oauth.Error
	if errors.As(err, &oe) {
		return oe
	}
	if unavailable(err) {
		s.log.LogAttrs(r.Context(), slog.LevelError, "storage unavailable", slog.String("request_id", requestID(r)), slog.Any("err", err))
		return &oauth.Error{Code: oauth.TemporarilyUnavailable, Description: "The server cannot reach its database right now; retry shortly (request id " + requestID(r) + ")."}
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("request_id", requestID(r)), slog.Any("err", err))
	return &oauth.Error{Code: oauth.ServerError, Description: "The server hit an internal error (request id " + requestID(r) + ")."}
}

// onWire returns oe with its description in the characters RFC 6749 §5.2
// allows, whatever produced it (a cimd or DCR rejection quotes values and
// cites sections with "§"). JSON bodies and error redirects go through it;
// the HTML error page, read by a person, keeps the original text.
func onWire(oe *oauth.Error) *oauth.Error {
	return &oauth.Error{Code: oe.Code, Description: oauth.DescriptionText(oe.Description), URI: oe.URI}
}

// unavailable reports errors that mean the database could not be reached or
// did not answer in time (connection refused or reset, a timeout): the
// request wrote nothing and may be retried, so it gets 503
// temporarily_unavailable rather than 500.
func unavailable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// appendQuery adds q to u, keeping any query u already has.
func appendQuery(u string, q url.Values) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	if parsed.RawQuery == "" {
		parsed.RawQuery = q.Encode()
	} else {
		parsed.RawQuery += "&" + q.Encode() // keep the registered query byte for byte (RFC 6749 §3.1.2)
	}
	return parsed.String()
}

// bodyError is the invalid_request for a request body that could not be
// read: too large, too slow, malformed Content-Type parameters, or else
// malformed as the endpoint's format says.
func bodyError(err error, malformed string) error {
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		return oauth.NewError(oauth.InvalidRequest, "The request body is larger than %d bytes.", tooLarge.Limit)
	case errors.As(err, &netErr) && netErr.Timeout():
		return oauth.NewError(oauth.InvalidRequest, "The request body did not arrive in time.")
	case errors.Is(err, mime.ErrInvalidMediaParameter):
		return oauth.NewError(oauth.InvalidRequest, "The Content-Type header has malformed parameters; send application/x-www-form-urlencoded, optionally with charset=utf-8.")
	default:
		return oauth.NewError(oauth.InvalidRequest, "%s", malformed)
	}
}
