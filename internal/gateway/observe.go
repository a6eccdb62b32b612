package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcpauth/mcpauth/internal/accesslog"
)

// Observer receives the gateway's events for metrics (Options.Observer).
// Its methods must be safe for concurrent use and must not block.
type Observer interface {
	// ProxyRequest reports an answered request to the MCP endpoint: the
	// JSON-RPC method of its body when it is a known MCP method (else
	// "other": no body, a body not read because the token was refused, a
	// response, a batch or an unknown method) and the status sent.
	ProxyRequest(mcpMethod string, code int)
	// Upstream reports how long a forwarded request waited for the
	// upstream's response headers, or for the upstream to fail.
	Upstream(d time.Duration)
}

// mcpMethods are the method names a client sends to an MCP server
// (MCP 2025-11-25 schema); only these become metric labels.
var mcpMethods = []string{
	"initialize", "ping", "notifications/initialized", "notifications/cancelled", "notifications/progress",
	"notifications/roots/list_changed", "tools/list", "tools/call", "resources/list", "resources/templates/list",
	"resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
	"completion/complete", "logging/setLevel", "tasks/get", "tasks/list", "tasks/result", "tasks/cancel",
}

// mcpMethod is the label for a request body: its method when known, else
// "other".
func mcpMethod(body []byte) string {
	var m struct {
		Method string `json:"method"`
	}
	if body = bytes.TrimSpace(body); len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &m) != nil || !slices.Contains(mcpMethods, m.Method) {
		return "other"
	}
	return m.Method
}

// observation is what the Observer is told about one request: a
// ResponseWriter that remembers the status, and the method that forward
// found in the body.
type observation struct {
	*accesslog.Recorder
	method string
}

type observationKey struct{}

// serveObserved serves a request to the MCP endpoint with serveMCP and
// reports it to g.obs and in a span of g.tracer, each when set.
func (g *Gateway) serveObserved(w http.ResponseWriter, r *http.Request) {
	o := &observation{Recorder: accesslog.NewRecorder(w), method: "other"}
	ctx := r.Context()
	if g.tracer != nil {
		var span trace.Span
		ctx, span = g.startTrace(r)
		defer func() { endTrace(span, o.Status()) }()
	}
	g.serveMCP(o, r.WithContext(context.WithValue(ctx, observationKey{}, o)))
	if g.obs != nil {
		g.obs.ProxyRequest(o.method, o.Status())
	}
}

// observeMethod records the method of a body forward has read.
func observeMethod(ctx context.Context, body []byte) {
	if o, _ := ctx.Value(observationKey{}).(*observation); o != nil {
		o.method = mcpMethod(body)
	}
}

// observeUpstream reports, once per exchange, the time since forwarding
// started.
func (g *Gateway) observeUpstream(ex *exchange) {
	if g.obs != nil && !ex.upstreamSeen {
		ex.upstreamSeen = true
		g.obs.Upstream(time.Since(ex.start))
	}
}
