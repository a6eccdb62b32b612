package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestEveryResponseChecked: a token response counts only with status 200
// and an access token in its body; anything else is a failure, and the run
// reports it. The stand-in server answers the warm-up flow (a code
// exchange and a refresh) properly, then answers the timed exchanges with
// the case's status and body.
func TestEveryResponseChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		fails  bool
	}{
		{"200 with tokens", 200, `{"access_token":"a","refresh_token":"r"}`, false},
		{"500 with tokens", 500, `{"access_token":"a","refresh_token":"r"}`, true},
		{"200 without tokens", 200, `{"error":"invalid_grant"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tokenCalls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/authorize":
					http.Redirect(w, r, "http://127.0.0.1:1/callback?code=c1&state=bench", http.StatusSeeOther)
				case "/token":
					_, _ = io.Copy(io.Discard, r.Body)
					if tokenCalls.Add(1) <= 2 { // the warm-up flow
						_, _ = io.WriteString(w, `{"access_token":"a","refresh_token":"r"}`)
						return
					}
					w.WriteHeader(tc.status)
					_, _ = io.WriteString(w, tc.body)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			var out strings.Builder
			err := Run(context.Background(), []string{"--server", srv.URL, "--mode", "token", "--concurrency", "2",
				"--duration", "200ms", "--inputs", "6"}, &out)
			if tc.fails {
				if err == nil || !strings.Contains(err.Error(), "/token") || strings.Contains(out.String(), " 0 failures") {
					t.Errorf("run = %v, report:\n%s\nwant the failures counted and the first one returned", err, out.String())
				}
			} else if err != nil || !strings.Contains(out.String(), ": 6 requests") || !strings.Contains(out.String(), " 0 failures") {
				t.Errorf("run = %v, report:\n%s\nwant 6 requests and 0 failures", err, out.String())
			}
		})
	}
}
