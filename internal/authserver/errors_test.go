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
