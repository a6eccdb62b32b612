// Package telemetry holds the Prometheus metrics of mcpauth serve and
// mcpauth proxy. It is the only package besides cmd/mcpauth that imports
// Prometheus: the authorization server, the CIMD resolver and the gateway
// report events through small interfaces and callbacks that Metrics
// implements. Every label value is bounded (route patterns, grant types,
// OAuth error codes, fixed result words, known MCP method names); never a
// user, token, client_id or raw URL.
package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the collectors of one process, registered on its own
// registry by NewMetrics.
type Metrics struct {
	HTTPRequests     *prometheus.CounterVec   // mcpauth_http_requests_total{handler,code}
	HTTPDuration     *prometheus.HistogramVec // mcpauth_http_request_duration_seconds{handler}
	TokensIssued     *prometheus.CounterVec   // mcpauth_tokens_issued_total{grant_type}
	TokenErrors      *prometheus.CounterVec   // mcpauth_token_errors_total{grant_type,error}
	CIMDFetches      *prometheus.CounterVec   // mcpauth_cimd_fetches_total{result}
	CIMDCache        *prometheus.CounterVec   // mcpauth_cimd_cache_total{result}
	Logins           *prometheus.CounterVec   // mcpauth_logins_total{result}
	ProxyRequests    *prometheus.CounterVec   // mcpauth_proxy_requests_total{mcp_method,code}
	UpstreamDuration prometheus.Histogram     // mcpauth_proxy_upstream_duration_seconds
}

// NewMetrics creates the collectors and registers them, with the Go
// runtime and process collectors, on reg. It fails when reg already holds
// one of them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		HTTPRequests: counter("mcpauth_http_requests_total", "HTTP requests to the authorization server by route pattern and status code.", "handler", "code"),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mcpauth_http_request_duration_seconds",
			Help: "Time to answer HTTP requests to the authorization server by route pattern.", Buckets: prometheus.DefBuckets}, []string{"handler"}),
		TokensIssued: counter("mcpauth_tokens_issued_total", "Token responses issued by grant type.", "grant_type"),
		TokenErrors:  counter("mcpauth_token_errors_total", "Token endpoint errors by grant type and OAuth error code (RFC 6749 section 5.2).", "grant_type", "error"),
		CIMDFetches:  counter("mcpauth_cimd_fetches_total", "Client ID metadata document fetches by result.", "result"),
		CIMDCache:    counter("mcpauth_cimd_cache_total", "Client ID metadata document look-ups by cache result: hit, miss, stale, revalidated.", "result"),
		Logins:       counter("mcpauth_logins_total", "Sign-in attempts by result.", "result"),
		ProxyRequests: counter("mcpauth_proxy_requests_total",
			"Requests to the proxied MCP endpoint by JSON-RPC method (known MCP methods, else other) and status code.", "mcp_method", "code"),
		UpstreamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mcpauth_proxy_upstream_duration_seconds",
			Help: "Time the upstream MCP server took to send its response headers, or to fail.", Buckets: prometheus.DefBuckets}),
	}
	for _, c := range []prometheus.Collector{m.HTTPRequests, m.HTTPDuration, m.TokensIssued, m.TokenErrors, m.CIMDFetches,
		m.CIMDCache, m.Logins, m.ProxyRequests, m.UpstreamDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves the metrics gathered from reg in the Prometheus
// exposition formats.
func Handler(reg prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Request records one answered HTTP request to the authorization server
// (authserver.Observer).
func (m *Metrics) Request(handler string, code int, d time.Duration) {
	m.HTTPRequests.WithLabelValues(handler, strconv.Itoa(code)).Inc()
	m.HTTPDuration.WithLabelValues(handler).Observe(d.Seconds())
}

// TokenIssued records a token response (authserver.Observer).
func (m *Metrics) TokenIssued(grantType string) { m.TokensIssued.WithLabelValues(grantType).Inc() }

// TokenError records a token endpoint error (authserver.Observer).
func (m *Metrics) TokenError(grantType, code string) {
	m.TokenErrors.WithLabelValues(grantType, code).Inc()
}

// Login records a sign-in attempt (authserver.Observer).
func (m *Metrics) Login(result string) { m.Logins.WithLabelValues(result).Inc() }

// CIMDFetch records a document fetch (cimd.Options.OnFetch).
func (m *Metrics) CIMDFetch(result string) { m.CIMDFetches.WithLabelValues(result).Inc() }

// CIMDCacheResult records how a look-up was answered (cimd.Options.OnCache).
func (m *Metrics) CIMDCacheResult(result string) { m.CIMDCache.WithLabelValues(result).Inc() }

// ProxyRequest records an answered request to the MCP endpoint
// (gateway.Observer).
func (m *Metrics) ProxyRequest(mcpMethod string, code int) {
	m.ProxyRequests.WithLabelValues(mcpMethod, strconv.Itoa(code)).Inc()
}

// Upstream records how long the upstream took (gateway.Observer).
func (m *Metrics) Upstream(d time.Duration) { m.UpstreamDuration.Observe(d.Seconds()) }
