package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/mcpauth/mcpauth/oauth"
)

// TestStorageOutageIs503: when the database cannot be reached, back-channel
// requests get 503 temporarily_unavailable with Retry-After (issue 6), not
// a 500; other internal errors stay 500 server_error and are never echoed.
func TestStorageOutageIs503(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"connection refused", fmt.Errorf("redeem code: %w", refused), http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"statement timeout", fmt.Errorf("get code: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"connection reset", fmt.Errorf("rotate: %w", syscall.ECONNRESET), http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"other internal error", errors.New("secret detail: constraint xyz"), http.StatusInternalServerError, "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.writeJSONError(rec, httptest.NewRequest(http.MethodPost, "/token", nil), tt.err)
			var body struct{ Error, ErrorDescription string }
			var raw map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
				t.Fatal(err)
			}
			body.Error, body.ErrorDescription = raw["error"], raw["error_description"]
			if rec.Code != tt.status || body.Error != tt.code {
				t.Errorf("status %d error %q, want %d %q", rec.Code, body.Error, tt.status, tt.code)
			}
			if tt.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if body.ErrorDescription == "" || strings.Contains(body.ErrorDescription, "secret detail") || strings.Contains(body.ErrorDescription, "refused") {
				t.Errorf("description %q must be present and must not echo the internal error", body.ErrorDescription)
			}
		})
	}
}

// TestBodyErrorsSayWhatIsWrong: a body the server cannot read gets an
// invalid_request that names the cause (too large, malformed Content-Type
// parameters, not a form) rather than "could not be parsed".
func TestBodyErrorsSayWhatIsWrong(t *testing.T) {
	h := newHarness(t, harnessConfig{dcr: true})
	post := func(path, contentType, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, h.url(path), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		status, _ := h.send(req, &e)
		if e.Error != string(oauth.InvalidRequest) && e.Error != string(oauth.InvalidClientMetadata) {
			t.Errorf("POST %s: error %q, want invalid_request or invalid_client_metadata", path, e.Error)
		}
		return status, e.Description
	}
	form := "application/x-www-form-urlencoded"
	for _, path := range []string{"/token", "/revoke", "/introspect"} {
		if status, d := post(path, form, "grant_type=x&pad="+strings.Repeat("a", 70<<10)); status != http.StatusBadRequest || !strings.Contains(d, "larger than 65536 bytes") {
			t.Errorf("POST %s with 70 KiB: %d %q, want 400 saying the body is larger than 65536 bytes", path, status, d)
		}
		if status, d := post(path, form+"; charset", "grant_type=x"); status != http.StatusBadRequest || !strings.Contains(d, "Content-Type header has malformed parameters") {
			t.Errorf("POST %s with a malformed charset parameter: %d %q, want 400 naming the Content-Type parameters", path, status, d)
		}
	}
	if status, d := post("/register", "application/json", `{"pad":"`+strings.Repeat("a", 20<<10)+`"}`); status != http.StatusRequestEntityTooLarge || !strings.Contains(d, "larger than") {
		t.Errorf("POST /register with 20 KiB: %d %q, want 413 saying it is too large", status, d)
	}
}

// TestBackChannelWrongMethod: a back-channel endpoint called with another
// method than POST answers 405 with Allow: POST and an OAuth error in JSON,
// readable by browser-based clients where CORS is allowed (RFC 9700 §2.6).
func TestBackChannelWrongMethod(t *testing.T) {
	h := newHarness(t, harnessConfig{dcr: true})
	for _, tc := range []struct {
		method, path string
		cors         bool
	}{{"GET", "/token", true}, {"PUT", "/revoke", true}, {"GET", "/introspect", false}, {"DELETE", "/register", true}} {
		req, err := http.NewRequest(tc.method, h.url(tc.path), nil)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		status, hdr := h.send(req, &e)
		if status != http.StatusMethodNotAllowed || hdr.Get("Allow") != "POST" || e.Error != string(oauth.InvalidRequest) ||
			(hdr.Get("Access-Control-Allow-Origin") == "*") != tc.cors {
			t.Errorf("%s %s: %d Allow %q error %q CORS %q; want 405, Allow POST, invalid_request, CORS %v",
				tc.method, tc.path, status, hdr.Get("Allow"), e.Error, hdr.Get("Access-Control-Allow-Origin"), tc.cors)
		}
	}
}
