package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// readyCheck is one condition of the proxy's /readyz: its failure reason
// as answered, and the check, whose error goes to the log only.
type readyCheck struct {
	reason string
	check  func(context.Context) error
}

// upstreamReachable checks that the upstream accepts a TCP connection: a
// probe without an HTTP request, which on an MCP endpoint could open a
// stream or a session.
func upstreamReachable(upstream string) readyCheck {
	u, _ := url.Parse(upstream) // checked by the settings table
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	return readyCheck{reason: "upstream not reachable", check: func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err
	}}
}

// readyHandler answers the proxy's /readyz: 200 {"status":"ready"} when
// every check passes within 2 s, else 503 {"status":"not ready","reason":...}
// naming the first that failed, whose error is logged at level Warn.
func readyHandler(logger *slog.Logger, checks ...readyCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		for _, c := range checks {
			if err := c.check(ctx); err != nil {
				logger.Warn("not ready: "+c.reason, "err", err)
				w.WriteHeader(http.StatusServiceUnavailable)
				_ = json.NewEncoder(w).Encode(map[string]string{"status": "not ready", "reason": c.reason})
				return
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ready"})
	}
}
