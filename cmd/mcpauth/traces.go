package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mcpauth/mcpauth/internal/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// traceFlushTimeout bounds the flush of queued spans on exit.
const traceFlushTimeout = 5 * time.Second

// startTracing sets up traces from the OTEL_* environment variables
// (telemetry.SetupTracing); stop flushes the queued spans, logging a
// failure.
func startTracing(ctx context.Context, getenv func(string) string, serviceName string, logger *slog.Logger) (trace.TracerProvider, func(), error) {
	tp, shutdown, err := telemetry.SetupTracing(ctx, getenv, serviceName)
	if err != nil {
		return nil, nil, fmt.Errorf("traces: %w", err)
	}
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), traceFlushTimeout)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			logger.Warn("traces: flushing spans on exit failed", "error", err.Error())
		}
	}, nil
}
