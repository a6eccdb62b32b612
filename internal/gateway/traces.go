package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the instrumentation scope of the gateway's spans.
const tracerName = "github.com/mcpauth/mcpauth/internal/gateway"

// startTrace starts the server span of a request to the MCP endpoint, the
// child of the W3C traceparent the client sent, if any. traceBody names it
// once the body is read; endTrace ends it.
func (g *Gateway) startTrace(r *http.Request) (context.Context, trace.Span) {
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return g.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
}

// endTrace records the status sent and ends span.
func endTrace(span trace.Span, code int) {
	span.SetAttributes(attribute.Int("http.response.status_code", code))
	if code >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// traceBody names the request's span after its JSON-RPC request, following
// the MCP semantic conventions of OpenTelemetry: "{mcp.method.name}
// {target}" ("tools/call get_weather"), with mcp.method.name,
// gen_ai.tool.name for tools/call and jsonrpc.request.id. Only known MCP
// methods become names; a batch, a response or an unknown method leaves
// the span named after the HTTP method.
func traceBody(ctx context.Context, body []byte) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	var m struct {
		Method string          `json:"method"`
		ID     json.RawMessage `json:"id"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if body = bytes.TrimSpace(body); len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &m) != nil || !slices.Contains(mcpMethods, m.Method) {
		return
	}
	name := m.Method
	span.SetAttributes(attribute.String("mcp.method.name", m.Method))
	if m.Method == "tools/call" && m.Params.Name != "" {
		name += " " + m.Params.Name
		span.SetAttributes(attribute.String("gen_ai.tool.name", m.Params.Name))
	}
	span.SetName(name)
	var s string
	var n json.Number
	switch {
	case json.Unmarshal(m.ID, &s) == nil:
		span.SetAttributes(attribute.String("jsonrpc.request.id", s))
	case json.Unmarshal(m.ID, &n) == nil:
		span.SetAttributes(attribute.String("jsonrpc.request.id", n.String()))
	}
}

// traceSession records the client's MCP session on the request's span.
func traceSession(ctx context.Context, session string) {
	if session != "" {
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("mcp.session.id", session))
	}
}

// injectTrace puts the W3C traceparent of the request's span into the
// upstream request's headers, replacing any the client sent.
func (g *Gateway) injectTrace(ctx context.Context, h http.Header) {
	if g.tracer != nil {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	}
}
