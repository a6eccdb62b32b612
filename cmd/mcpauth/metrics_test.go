package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads and parses the text exposition at http://addr/metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample is the value of the counter or gauge, or the sample count of
// the histogram, named name with exactly labels; -1 when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	return -1
}

// wantSamples checks metric values; a negative want means "present, at
// least 1".
func wantSamples(t *testing.T, fams map[string]*dto.MetricFamily, want []metricWant) {
	t.Helper()
	for _, w := range want {
		got := sample(fams, w.name, w.labels)
		switch {
		case w.value < 0 && got < 1:
			t.Errorf("%s%v = %v, want at least 1", w.name, w.labels, got)
		case w.value >= 0 && got != w.value:
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
}

type metricWant struct {
	name   string
	labels map[string]string
	value  float64
}

// wantBoundedLabels fails when a label value holds something a label must
// never hold.
func wantBoundedLabels(t *testing.T, fams map[string]*dto.MetricFamily, never ...string) {
	t.Helper()
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, s := range never {
					if strings.Contains(l.GetValue(), s) {
						t.Errorf("%s label %s=%q holds %q", name, l.GetName(), l.GetValue(), s)
					}
				}
			}
		}
	}
}

func TestServeMetrics(t *testing.T) {
	maddr := freeAddr(t)
	a := newAttackServer(t, "--metrics-addr", maddr)
	pub := a.client("/metrics-client.json", nil)

	stranger := a.newBrowser()
	lp := stranger.follow(t, stranger.get(a.authorizeURL(pub, nil)))
	if r := stranger.post(a.base+"/login", url.Values{"username": {"admin"}, "password": {"wrong"},
		"request": {field(t, lp.body, "request")}, "csrf": {field(t, lp.body, "csrf")}}); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", r.status)
	}
	c, v := a.newBrowser().code(t, pub)
	if ta := a.token(t, codeForm(pub, c, v)); ta.status != http.StatusOK {
		t.Fatalf("token exchange: %d %s", ta.status, ta.body)
	}
	a.wantTokenError(t, a.token(t, codeForm(pub, c, v)), "invalid_grant") // the code again

	fams := scrape(t, maddr)
	wantSamples(t, fams, []metricWant{
		{"mcpauth_tokens_issued_total", map[string]string{"grant_type": "authorization_code"}, 1},
		{"mcpauth_token_errors_total", map[string]string{"grant_type": "authorization_code", "error": "invalid_grant"}, 1},
		{"mcpauth_http_requests_total", map[string]string{"handler": "POST /token", "code": "200"}, 1},
		{"mcpauth_http_requests_total", map[string]string{"handler": "POST /token", "code": "400"}, 1},
		{"mcpauth_http_requests_total", map[string]string{"handler": "POST /login", "code": "401"}, 1},
		{"mcpauth_http_request_duration_seconds", map[string]string{"handler": "POST /token"}, 2},
		{"mcpauth_logins_total", map[string]string{"result": "success"}, 1},
		{"mcpauth_logins_total", map[string]string{"result": "failure"}, 1},
		{"mcpauth_cimd_fetches_total", map[string]string{"result": "ok"}, 1}, // one fetch, then the cache
		{"mcpauth_cimd_cache_total", map[string]string{"result": "miss"}, 1},
		{"mcpauth_cimd_cache_total", map[string]string{"result": "hit"}, -1},
		{"go_goroutines", nil, -1},
		{"process_start_time_seconds", nil, -1},
	})
	wantBoundedLabels(t, fams, pub, "metrics-client", "admin", "127.0.0.1")
}

func TestServeMetricsOff(t *testing.T) {
	// Without --metrics-addr nothing listens: the same data directory
	// serves, and the settings table takes the address from the environment.
	cfg, err := loadServeConfig(nil, func(k string) string { return map[string]string{"MCPAUTH_METRICS_ADDR": "127.0.0.1:9"}[k] }, io.Discard, io.Discard)
	if err != nil || cfg.MetricsAddr != "127.0.0.1:9" {
		t.Fatalf("MCPAUTH_METRICS_ADDR: %q, %v", cfg.MetricsAddr, err)
	}
	if _, err := loadServeConfig([]string{"--metrics-addr", "9090"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--metrics-addr") {
		t.Errorf("--metrics-addr 9090: %v, want an error naming the flag", err)
	}
	hooks, stop, err := startMetrics("", nil)
	defer stop()
	if err != nil || hooks.server != nil || hooks.gateway != nil || hooks.cimdCache != nil || hooks.cimdFetch != nil {
		t.Errorf("startMetrics(\"\") = %+v, %v; want no hooks", hooks, err)
	}
}

func TestProxyMetrics(t *testing.T) {
	addr, maddr := freeAddr(t), freeAddr(t)
	resourceURL := "http://" + addr + "/mcp"
	as := introspectingIssuer(t, resourceURL, "good")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()

	args := []string{"proxy", "--listen", addr, "--upstream", up.URL + "/mcp", "--issuer", as.URL, "--scope", "mcp:tools",
		"--introspect", "--client-id", "gw", "--client-secret-file", writeFile(t, t.TempDir(), "secret", "s3cret\n")}
	env := map[string]string{"MCPAUTH_PROXY_METRICS_ADDR": maddr}
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), out, errOut)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy returned %v\nstderr:\n%s", err, errOut)
		}
	}()
	waitFor(t, out, "listening on ", done, errOut)

	post := func(token, body string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", resourceURL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("good", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"secret-tool-name"}}`); code != 200 {
		t.Fatalf("tools/call: %d", code)
	}
	if code := post("bad", `{"jsonrpc":"2.0","id":2,"method":"tools/call"}`); code != 401 {
		t.Fatalf("tools/call with a bad token: %d", code)
	}
	if code := post("good", `{"jsonrpc":"2.0","id":3,"method":"made/up"}`); code != 200 {
		t.Fatalf("unknown method: %d", code)
	}

	fams := scrape(t, maddr)
	wantSamples(t, fams, []metricWant{
		{"mcpauth_proxy_requests_total", map[string]string{"mcp_method": "tools/call", "code": "200"}, 1},
		{"mcpauth_proxy_requests_total", map[string]string{"mcp_method": "other", "code": "401"}, 1}, // body not read before the token is checked
		{"mcpauth_proxy_requests_total", map[string]string{"mcp_method": "other", "code": "200"}, 1},
		{"mcpauth_proxy_upstream_duration_seconds", nil, 2},
		{"go_goroutines", nil, -1},
	})
	wantBoundedLabels(t, fams, "made/up", "secret-tool-name", "alice", "client.example")
}
