package authserver

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpauth/mcpauth/internal/accesslog"
)

// tracerName names the instrumentation scope of the server's spans.
const tracerName = "github.com/mcpauth/mcpauth/internal/authserver"

// traced wraps h in a server span per request (OpenTelemetry HTTP semantic
// conventions): named by the method and the route pattern the mux matched
// ("POST /token"), with http.request.method, http.route and
// http.response.status_code. An incoming W3C traceparent is the span's
// parent. Without a tracer provider h is returned as is.
func (s *Server) traced(h http.Handler) http.Handler {
	if s.tracer == nil {
		return h
	}
	prop := propagation.TraceContext{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := s.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", spanMethod(r.Method))))
		defer span.End()
		sw := accesslog.NewRecorder(w)
		r = r.WithContext(ctx)
		h.ServeHTTP(sw, r)
		if _, route, ok := strings.Cut(r.Pattern, " "); ok || r.Pattern != "" {
			if !ok {
				route = r.Pattern
			}
			span.SetName(spanMethod(r.Method) + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		code := sw.Status()
		span.SetAttributes(attribute.Int("http.response.status_code", code))
		if code >= 500 {
			span.SetStatus(codes.Error, "")
		}
	})
}

// spanMethod is the request method when it is a standard one, else _OTHER
// (OpenTelemetry HTTP semantic conventions): a client picks the method.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// traceGrant records the token request's grant type on the request's span:
// authorization_code, refresh_token or other.
func traceGrant(ctx context.Context, grantType string) {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("oauth.grant_type", grantLabel(grantType)))
}

// startSpan starts an internal span when the server traces; end ends it,
// marking it failed when err is not nil.
func (s *Server) startSpan(ctx context.Context, name string) (context.Context, func(err error)) {
	if s.tracer == nil {
		return ctx, func(error) {}
	}
	ctx, span := s.tracer.Start(ctx, name)
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}
