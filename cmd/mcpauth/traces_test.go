package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpauth/mcpauth/internal/telemetry/otlptest"
)

// wantSpan checks the one span named name: its service and the attributes
// listed (others may be present).
func wantSpan(t *testing.T, rc *otlptest.Receiver, name, service string, attrs map[string]string) otlptest.Span {
	t.Helper()
	spans := rc.Named(name)
	if len(spans) != 1 {
		t.Fatalf("%d spans named %q, want 1; all: %+v", len(spans), name, rc.Spans())
	}
	s := spans[0]
	got := map[string]string{}
	for k := range attrs {
		if v, ok := s.Attrs[k]; ok {
			got[k] = v
		}
	}
	if diff := cmp.Diff(attrs, got); diff != "" || s.Service != service {
		t.Errorf("span %q of %q (-want +got):\n%s", name, s.Service, diff)
	}
	return s
}

// wantNoSecrets fails when an exported attribute holds one of secrets.
func wantNoSecrets(t *testing.T, rc *otlptest.Receiver, secrets ...string) {
	t.Helper()
	for _, s := range rc.Spans() {
		for k, v := range s.Attrs {
			for _, sec := range secrets {
				if strings.Contains(v, sec) {
					t.Errorf("span %q attribute %s=%q holds a secret", s.Name, k, v)
				}
			}
		}
	}
}

func TestServeTraces(t *testing.T) {
	rc := otlptest.New(t)
	var secrets []string
	t.Run("exchange", func(t *testing.T) { // serve stops, flushing its spans, when this ends
		a := newAttackServerEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rc.URL})
		pub := a.client("/traces-client.json", nil)
		c, v := a.newBrowser().code(t, pub)
		if ta := a.token(t, codeForm(pub, c, v)); ta.status != http.StatusOK {
			t.Fatalf("token exchange: %d %s", ta.status, ta.body)
		}
		a.wantTokenError(t, a.token(t, codeForm(pub, c, v)), "invalid_grant") // the code again
		secrets = append(secrets, c, v, a.password)
	})
	if t.Failed() {
		return
	}
	var ok, refused int
	for _, s := range rc.Named("POST /token") {
		if s.Service != "mcpauth" || s.Attrs["http.request.method"] != "POST" || s.Attrs["http.route"] != "/token" ||
			s.Attrs["oauth.grant_type"] != "authorization_code" {
			t.Errorf("token span: %+v", s)
		}
		switch s.Attrs["http.response.status_code"] {
		case "200":
			ok++
		case "400":
			refused++
		}
	}
	if ok != 1 || refused != 1 {
		t.Errorf("token spans: %d answered 200, %d answered 400; want 1 each", ok, refused)
	}
	if len(rc.Named("GET /authorize")) == 0 {
		t.Errorf("no GET /authorize span; spans: %+v", rc.Spans())
	}
	// The client's document is fetched once, inside a request's span.
	resolves := rc.Named("cimd resolve")
	if len(resolves) == 0 || resolves[0].ParentSpanID == "" {
		t.Errorf("cimd resolve spans: %+v, want children of request spans", resolves)
	}
	wantNoSecrets(t, rc, secrets...)
}

func TestProxyTraces(t *testing.T) {
	rc := otlptest.New(t)
	addr := freeAddr(t)
	resourceURL := "http://" + addr + "/mcp"
	as := introspectingIssuer(t, resourceURL, "good")
	var mu sync.Mutex
	var upstreamParents []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamParents = append(upstreamParents, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "sess-1")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()

	args := []string{"proxy", "--listen", addr, "--upstream", up.URL + "/mcp", "--issuer", as.URL, "--scope", "mcp:tools",
		"--introspect", "--client-id", "gw", "--client-secret-file", writeFile(t, t.TempDir(), "secret", "s3cret\n")}
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rc.URL}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), out, errOut)
	}()
	waitFor(t, out, "listening on ", done, errOut)

	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	post := func(session, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", resourceURL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer good")
		req.Header.Set("Traceparent", "00-"+traceID+"-"+clientSpan+"-01")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", body, resp.StatusCode)
		}
	}
	post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`)
	post("sess-1", `{"jsonrpc":"2.0","id":"call-2","method":"tools/call","params":{"name":"get_weather","arguments":{"city":"secret-city"}}}`)
	cancel() // the proxy stops, flushing its spans
	if err := <-done; err != nil {
		t.Fatalf("proxy returned %v\nstderr:\n%s", err, errOut)
	}

	wantSpan(t, rc, "initialize", "mcpauth-proxy", map[string]string{"mcp.method.name": "initialize", "jsonrpc.request.id": "1"})
	call := wantSpan(t, rc, "tools/call get_weather", "mcpauth-proxy", map[string]string{"mcp.method.name": "tools/call",
		"gen_ai.tool.name": "get_weather", "jsonrpc.request.id": "call-2", "mcp.session.id": "sess-1", "http.response.status_code": "200"})
	if call.TraceID != traceID || call.ParentSpanID != clientSpan {
		t.Errorf("tools/call span in trace %s under %s, want the client's %s under %s", call.TraceID, call.ParentSpanID, traceID, clientSpan)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "00-" + traceID + "-" + call.SpanID + "-01"; len(upstreamParents) != 2 || upstreamParents[1] != want {
		t.Errorf("upstream traceparents %q, want the second %q", upstreamParents, want)
	}
	wantNoSecrets(t, rc, "secret-city", "good")
}
