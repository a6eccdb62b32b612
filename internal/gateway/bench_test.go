package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// benchClients is the number of concurrent MCP clients the targets are set
// for; the benchmarks also run with one client, the latency without
// queueing.
const benchClients = 8

// BenchmarkProxyOverhead measures, in one run, the same MCP request sent by
// concurrent clients (8, the targets' figure, and 1) straight to a loopback
// upstream and through the gateway (token verified through the verified-token cache, tool scopes
// read, headers rewritten, forwarded). It alternates batches of direct and
// proxied requests, so that both see the same machine load, and reports:
//
//   - direct-ns/op and proxy-ns/op: wall time per request;
//   - direct-p50-ns, proxy-p50-ns and added-p50-ns: median latencies and the
//     latency the gateway adds (target with the 10 ms tool at 8 clients:
//     under 0.5 ms);
//   - throughput-%: proxied requests per second as a percentage of direct
//     ones (target with the 10 ms tool at 8 clients: at least 80).
//
// The benchmark's own ns/op covers one direct and one proxied request.
// Client, gateway and upstream share the machine's cores, so the gateway's
// share of the work decides both figures. Two upstreams: "empty-upstream"
// answers a tools/list with fixed bytes and does nothing else, the worst
// case for the gateway (the gateway's hop is then half the work); "go-sdk"
// is a real MCP server, the official Go SDK's stateless Streamable HTTP
// handler, answering a tools/call of an echo tool; "go-sdk-io-10ms" is the
// same server whose tool waits 10 ms before answering, as a tool that calls
// a database or an API does (the cores are then not all busy, and the
// gateway's cost shows as latency rather than lost throughput).
func BenchmarkProxyOverhead(b *testing.B) {
	b.Run("empty-upstream", func(b *testing.B) {
		const answer = `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}}`
		benchProxy(b, toolsList, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, answer)
		}))
	})
	const echoCall = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`
	b.Run("go-sdk", func(b *testing.B) { benchProxy(b, echoCall, sdkEchoServer(0)) })
	b.Run("go-sdk-io-10ms", func(b *testing.B) { benchProxy(b, echoCall, sdkEchoServer(10*time.Millisecond)) })
}

// sdkEchoServer is the Go SDK's stateless Streamable HTTP handler with an
// echo tool that waits wait before answering.
func sdkEchoServer(wait time.Duration) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "bench", Version: "1.0.0"}, nil)
	type echoIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echo the text back."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			if wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
}

func benchProxy(b *testing.B, body string, upstream http.Handler) {
	for _, clients := range []int{1, benchClients} {
		b.Run(fmt.Sprintf("clients-%d", clients), func(b *testing.B) { benchProxyClients(b, clients, body, upstream) })
	}
}

func benchProxyClients(b *testing.B, clients int, body string, upstream http.Handler) {
	up := httptest.NewServer(upstream)
	defer up.Close()
	h := newHarness(b, nil, func(o *Options) { o.Upstream = up.URL + "/mcp" })
	token := h.tokenFor(b, "bench", "mcp:tools")
	tr := &http.Transport{MaxIdleConnsPerHost: 4 * benchClients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	send := func(url, auth string) func() error {
		return func() error {
			req, err := http.NewRequest("POST", url, strings.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
			if auth != "" {
				req.Header.Set("Authorization", "Bearer "+auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.Contains(string(got), `"result"`) {
				return fmt.Errorf("status %d, body %q, %v", resp.StatusCode, got, err)
			}
			return nil
		}
	}
	direct, proxied := send(up.URL+"/mcp", ""), send(h.resource, token)
	for range 4 * benchClients { // warm up: connections, JWKS, token cache
		if err := direct(); err != nil {
			b.Fatal(err)
		}
		if err := proxied(); err != nil {
			b.Fatal(err)
		}
	}

	var dWall, pWall time.Duration
	var dLat, pLat []time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(b.N-done, 50*clients)
		wall, lat := phase(b, clients, n, direct)
		dWall, dLat = dWall+wall, append(dLat, lat...)
		wall, lat = phase(b, clients, n, proxied)
		pWall, pLat = pWall+wall, append(pLat, lat...)
		done += n
	}
	b.StopTimer()
	dMed, pMed := median(dLat), median(pLat)
	b.ReportMetric(float64(dWall.Nanoseconds())/float64(b.N), "direct-ns/op")
	b.ReportMetric(float64(pWall.Nanoseconds())/float64(b.N), "proxy-ns/op")
	b.ReportMetric(float64(dMed.Nanoseconds()), "direct-p50-ns")
	b.ReportMetric(float64(pMed.Nanoseconds()), "proxy-p50-ns")
	b.ReportMetric(float64((pMed - dMed).Nanoseconds()), "added-p50-ns")
	b.ReportMetric(100*float64(dWall)/float64(pWall), "throughput-%")
}

// phase sends n requests from clients goroutines and returns the wall time
// and every request's latency.
func phase(b *testing.B, clients, n int, send func() error) (time.Duration, []time.Duration) {
	var next atomic.Int64
	lats := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := send(); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lats[c] = append(lats[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	return wall, slices.Concat(lats...)
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkGatewayHandler is the gateway's own CPU per request, without any
// network: ServeHTTP on an in-memory request (token checked through the
// verified-token cache, tool scopes read, headers rewritten, session and
// identity handled) with a transport that answers from memory.
func BenchmarkGatewayHandler(b *testing.B) {
	const answer = `{"jsonrpc":"2.0","id":7,"result":{}}`
	h := newHarness(b, nil, func(o *Options) {
		o.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return nil, err
			}
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(answer)), ContentLength: int64(len(answer)), Request: r}, nil
		})
	})
	g := h.gw.Config.Handler
	token := h.tokenFor(b, "bench", "mcp:tools")
	serve := func() {
		r := httptest.NewRequest("POST", h.resource, strings.NewReader(toolsList))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 200 || w.Body.String() != answer {
			b.Fatalf("%d %q", w.Code, w.Body)
		}
	}
	serve() // JWKS fetched, token cached
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serve()
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
