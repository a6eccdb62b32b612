package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauth/mcpauth/internal/authserver"
	"github.com/mcpauth/mcpauth/internal/gateway"
	"github.com/mcpauth/mcpauth/internal/telemetry"
)

// metricsHooks are the metrics callbacks handed to the authorization
// server, the CIMD resolver and the gateway. The zero value, without
// --metrics-addr, reports nothing.
type metricsHooks struct {
	server    authserver.Observer
	gateway   gateway.Observer
	cimdCache func(string)
	cimdFetch func(string)
}

// startMetrics, when addr is set, serves this process's metrics, on a
// registry of its own, at /metrics on a listener of its own, until stop
// is called. A port in use is an error at start.
func startMetrics(addr string, logger *slog.Logger) (hooks metricsHooks, stop func(), err error) {
	if addr == "" {
		return metricsHooks{}, func() {}, nil
	}
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg)
	if err != nil {
		return metricsHooks{}, nil, fmt.Errorf("metrics: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return metricsHooks{}, nil, fmt.Errorf("cannot listen on %s (--metrics-addr): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.Handler(reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }() // ends with http.ErrServerClosed when stop closes it
	logger.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return metricsHooks{server: m, gateway: m, cimdCache: m.CIMDCacheResult, cimdFetch: m.CIMDFetch}, func() { _ = srv.Close() }, nil
}
