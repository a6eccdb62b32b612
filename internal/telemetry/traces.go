package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// SetupTracing builds the tracer provider of one process from the standard
// OpenTelemetry environment variables, read through getenv:
//
//   - OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none: no tracing;
//   - OTEL_TRACES_EXPORTER=otlp, or OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set: OTLP over HTTP (protobuf);
//   - nothing set: no tracing.
//
// Without tracing the provider is a no-op one, which costs next to nothing.
// The resource's service.name is OTEL_SERVICE_NAME, else serviceName. The
// endpoint and headers come from getenv; the exporter reads the other
// OTEL_EXPORTER_OTLP_* settings (timeout, compression, TLS) from the
// process environment itself. shutdown flushes the spans still queued; call
// it once, on exit. The provider is never made the global one.
func SetupTracing(ctx context.Context, getenv func(string) string, serviceName string) (trace.TracerProvider, func(context.Context) error, error) {
	none := func(context.Context) error { return nil }
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return noop.NewTracerProvider(), none, nil
	}
	traces, all := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")), strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return noop.NewTracerProvider(), none, nil
	case "":
		if traces == "" && all == "" {
			return noop.NewTracerProvider(), none, nil
		}
	case "otlp":
	default:
		return nil, nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q is not supported: use otlp or none", exp)
	}
	if p := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")); p == "" {
		p = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
		if p != "" && p != "http/protobuf" {
			return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q is not supported: use http/protobuf", p)
		}
	} else if p != "http/protobuf" {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL %q is not supported: use http/protobuf", p)
	}

	var opts []otlptracehttp.Option
	switch {
	case traces != "": // used as is
		opts = append(opts, otlptracehttp.WithEndpointURL(traces))
	case all != "": // the signal's path appended
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(all, "/")+"/v1/traces"))
	}
	headers, err := otlpHeaders(getenv("OTEL_EXPORTER_OTLP_HEADERS"))
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: %w", err)
	}
	th, err := otlpHeaders(getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS"))
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_HEADERS: %w", err)
	}
	for k, v := range th {
		headers[k] = v
	}
	if len(headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(headers))
	}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	if n := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); n != "" {
		serviceName = n
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", serviceName))))
	return tp, tp.Shutdown, nil
}

// otlpHeaders parses an OTEL_EXPORTER_OTLP_HEADERS value: comma-separated
// key=value pairs, each part URL-encoded (W3C Baggage format).
func otlpHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k, kerr := url.PathUnescape(strings.TrimSpace(k))
		v, verr := url.PathUnescape(strings.TrimSpace(v))
		if !ok || k == "" || kerr != nil || verr != nil {
			return nil, fmt.Errorf("malformed key=value pair (values are not shown)")
		}
		h[k] = v
	}
	return h, nil
}
