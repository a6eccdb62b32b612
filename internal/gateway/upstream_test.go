package gateway

// Tests of the upstream hop as clients see it through the gateway: how
// the gateway copes with upstream connections that close, misbehaving
// answers, large bodies and interim answers. Earlier the gateway had its
// own HTTP/1.1 client; these are the checks of its audit against
// net/http's Transport, kept for the net/http Transport that replaced it.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/loopbacktest"
)

// rawResult is a JSON-RPC result for the request of toolsList, and
// rawAnswer the raw HTTP/1.1 response carrying it.
const (
	rawResult = `{"jsonrpc":"2.0","id":7,"result":{}}`
	rawAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 36\r\n\r\n" + rawResult
)

// rawUpstream is an upstream served by hand on loopback: serve gets each
// connection the gateway opens. It returns the upstream URL.
func rawUpstream(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	return "http://" + loopbacktest.Serve(t, func(c net.Conn) { serve(c, bufio.NewReader(c)) }) + "/mcp"
}

// readRequest reads one request and its body.
func readRequest(br *bufio.Reader) (*http.Request, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, false
	}
	_, err = io.Copy(io.Discard, req.Body)
	return req, err == nil
}

// behind returns a harness whose gateway forwards to upstream, without
// tool scope rules.
func behind(t *testing.T, upstream string, edit ...func(*Options)) *harness {
	t.Helper()
	return newHarness(t, nil, func(o *Options) {
		o.Upstream = upstream
		o.ToolScopes = nil
		for _, e := range edit {
			e(o)
		}
	})
}

// TestUpstreamConnectionsReused: the gateway keeps a connection to the
// upstream per concurrent request, not net/http's default of two idle
// connections per host, which would dial anew for most requests of eight
// concurrent clients.
func TestUpstreamConnectionsReused(t *testing.T) {
	srv, conns := loopbacktest.CountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, rawResult)
	}))
	h := behind(t, srv.URL+"/mcp")
	token := h.tokenFor(t, "alice", "mcp:tools")
	const clients, rounds = 8, 25
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var failed atomic.Pointer[string]
	for range clients {
		wg.Go(func() {
			for range rounds {
				req, _ := http.NewRequest("POST", h.resource, strings.NewReader(toolsList))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					msg := err.Error()
					failed.CompareAndSwap(nil, &msg)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(body) != rawResult {
					msg := fmt.Sprintf("%d %q %v", resp.StatusCode, body, err)
					failed.CompareAndSwap(nil, &msg)
					return
				}
			}
		})
	}
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		t.Fatal(*msg)
	}
	// At most 8 requests are in flight, and net/http puts a connection
	// back in the pool before the reader of its answer sees the end: 8
	// connections, unless the machine is so busy that a connection's
	// writer goroutine does not report within 50 ms and net/http closes
	// it (Transport.wroteRequest). With net/http's default pool, 30-40.
	if n := conns.Load(); n > 2*clients {
		t.Errorf("%d clients sending %d requests made the gateway open %d upstream connections, want at most %d", clients, clients*rounds, n, 2*clients)
	}
}

// TestUpstreamConnectionEnds: an upstream connection that cannot carry
// another request (the upstream asked to close it, or closed it while
// idle) is not used again; the next request
// gets a new one and succeeds.
func TestUpstreamConnectionEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		// answer answers the first request on a connection; it returns
		// when the gateway may send the next one.
		answer func(t *testing.T, c net.Conn, br *bufio.Reader)
	}{
		{"Connection: close", func(t *testing.T, c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, strings.Replace(rawAnswer, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1))
		}},
		{"closed while idle", func(t *testing.T, c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, rawAnswer)
			_ = c.(*net.TCPConn).CloseWrite()
			// Wait until the gateway closes its end: it has seen the
			// connection end.
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Errorf("waiting for the gateway to close: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var accepted atomic.Int32
			answered := make(chan struct{}, 2)
			url := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
				accepted.Add(1)
				if _, ok := readRequest(br); !ok {
					return
				}
				tc.answer(t, c, br)
				answered <- struct{}{}
				// A connection that was reused would get no answer.
				_, _ = http.ReadRequest(br)
			})
			h := behind(t, url)
			token := h.tokenFor(t, "alice", "mcp:tools")
			for i := range 2 {
				resp, body := do(t, "POST", h.resource, token, toolsList, nil)
				if resp.StatusCode != 200 || body != rawResult {
					t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, rawResult)
				}
				select {
				case <-answered:
				case <-time.After(10 * time.Second): // detects a hang; not a timing assertion
					t.Fatal("the upstream's answer did not end within 10 s")
				}
			}
			if n := accepted.Load(); n != 2 {
				t.Errorf("the gateway opened %d upstream connections, want 2", n)
			}
		})
	}
}

// TestUpstreamConnectionBreaksUnanswered: a kept-alive connection the
// upstream closes after reading a request, without answering (its idle
// timeout firing as the request arrives), gets a GET sent again on a new
// connection; a POST is answered 502 and never sent twice, as the
// upstream may have acted on it.
func TestUpstreamConnectionBreaksUnanswered(t *testing.T) {
	for _, tc := range []struct {
		method, body string
		status       int
		requests     int32 // requests the upstream read in all
	}{
		{"GET", "", 200, 3},
		{"POST", toolsList, http.StatusBadGateway, 2},
	} {
		t.Run(tc.method, func(t *testing.T) {
			var requests atomic.Int32
			url := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
				for i := 0; ; i++ {
					if _, ok := readRequest(br); !ok {
						return
					}
					requests.Add(1)
					if i > 0 {
						return // closed unanswered
					}
					_, _ = io.WriteString(c, rawAnswer)
				}
			})
			h := behind(t, url)
			token := h.tokenFor(t, "alice", "mcp:tools")
			if resp, body := do(t, "POST", h.resource, token, toolsList, nil); resp.StatusCode != 200 {
				t.Fatalf("first request: %d %s", resp.StatusCode, body)
			}
			resp, body := do(t, tc.method, h.resource, token, tc.body, nil)
			if resp.StatusCode != tc.status {
				t.Errorf("%s on a connection closed unanswered: %d %s, want %d", tc.method, resp.StatusCode, body, tc.status)
			}
			if tc.status == http.StatusBadGateway {
				wantErrorBody(t, body, 7, codeUpstreamUnavailable)
			}
			if n := requests.Load(); n != tc.requests {
				t.Errorf("the upstream read %d requests, want %d", n, tc.requests)
			}
		})
	}
}

// TestUpstreamMisbehaves: answers the gateway cannot pass on get the
// client a 502 with a JSON-RPC error for its request, not a hang, a crash
// or the upstream's bytes.
func TestUpstreamMisbehaves(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(c net.Conn) // after the request was read
		want string           // in the log
	}{
		{"101 Switching Protocols", func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_, _ = io.Copy(io.Discard, c)
		}, "status 101"},
		{"status below 100", func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n")
		}, "status 99"},
		{"header section over 1 MiB", func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: ")
			chunk := strings.Repeat("a", 64<<10)
			for range 64 { // 4 MiB, until the gateway hangs up
				if _, err := io.WriteString(c, chunk); err != nil {
					return
				}
			}
		}, "exceeded"},
		{"interim answers without end", func(c net.Conn) {
			buf := []byte(strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n", 100))
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}, "interim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
				if _, ok := readRequest(br); ok {
					tc.send(c)
				}
			})
			var logs logBuffer
			// A refusal must not wait for the upstream timeout.
			h := behind(t, url, func(o *Options) {
				o.UpstreamTimeout = time.Minute
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			resp, body := do(t, "POST", h.resource, h.tokenFor(t, "alice", "mcp:tools"), toolsList, nil)
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("%d %.200q, want 502", resp.StatusCode, body)
			}
			wantErrorBody(t, body, 7, codeUpstreamUnavailable)
			if log := logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, tc.want) {
				t.Errorf("log lacks an error with %q:\n%s", tc.want, log)
			}
		})
	}
}

// TestInterimAnswersNotPassedOn: interim answers (100 Continue, 103 Early
// Hints) are skipped and the final answer passed on; the client sees none
// of them, nor their headers, which could otherwise carry a cookie or a
// challenge past the gateway's filters.
func TestInterimAnswersNotPassedOn(t *testing.T) {
	url := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readRequest(br); ok {
			_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+
				"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nSet-Cookie: s=1\r\nWWW-Authenticate: Bearer\r\n\r\n"+rawAnswer)
		}
	})
	h := behind(t, url)
	var interim []int
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { interim = append(interim, code); return nil },
	})
	req, _ := http.NewRequestWithContext(ctx, "POST", h.resource, strings.NewReader(toolsList))
	req.Header.Set("Authorization", "Bearer "+h.tokenFor(t, "alice", "mcp:tools"))
	resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != rawResult {
		t.Fatalf("%d %q %v, want 200 %q", resp.StatusCode, body, err, rawResult)
	}
	if len(interim) != 0 || resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("WWW-Authenticate") != "" || resp.Header.Get("Link") != "" {
		t.Errorf("the client saw interim answers %v and headers %v", interim, resp.Header)
	}
}

// TestUpstreamAnswersEarly: an upstream that answers a large POST without
// reading its body (404 for an unknown session, 413) gets its answer to
// the client instead of a 502 for the broken write; one that streams a
// large answer before it reads the body neither deadlocks nor fails.
func TestUpstreamAnswersEarly(t *testing.T) {
	srv, _ := loopbacktest.CountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "session not found", http.StatusNotFound) // body not read
	}))
	h := behind(t, srv.URL+"/mcp")
	token := h.tokenFor(t, "alice", "mcp:tools")
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"` + strings.Repeat("x", 4<<20-100) + `"}}`
	if resp, body := do(t, "POST", h.resource, token, big, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("upstream answering 404 unread: %d %.200q, want the upstream's 404", resp.StatusCode, body)
	}

	const answer = 64 << 20
	url := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n", answer); err != nil {
			return
		}
		chunk := []byte(strings.Repeat("data: x\n\n", 1<<12))
		for w := 0; w < answer; w += len(chunk) {
			if _, err := c.Write(chunk[:min(len(chunk), answer-w)]); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, req.Body)
	})
	h = behind(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // detects a deadlock
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.resource, strings.NewReader(big))
	req.Header.Set("Authorization", "Bearer "+h.tokenFor(t, "alice", "mcp:tools"))
	resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
	if err != nil {
		t.Fatalf("answer streamed before the body was read: %v", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || n != answer {
		t.Errorf("status %d, read %d of %d bytes: %v", resp.StatusCode, n, answer, err)
	}
}

// TestClientLeavesStream: a client that leaves an event stream (the usual
// end of MCP's GET stream) ends the upstream request, and is not logged as
// an upstream failure.
func TestClientLeavesStream(t *testing.T) {
	var logs logBuffer
	ended := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(ended)
	}, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	req, _ := http.NewRequest("GET", h.resource, nil)
	req.Header.Set("Authorization", "Bearer "+h.tokenFor(t, "alice", "mcp:tools"))
	req.Header.Set("Accept", "text/event-stream")
	tr := &http.Transport{}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if ev := readEvent(t, bufio.NewReader(resp.Body)); ev != "data: one\n" {
		t.Fatalf("first event %q", ev)
	}
	resp.Body.Close()
	tr.CloseIdleConnections()
	select {
	case <-ended:
	case <-time.After(10 * time.Second): // detects a hang; not a timing assertion
		t.Fatal("the upstream request still runs 10 s after the client left")
	}
	h.gw.Close() // waits for the gateway's handler to end
	if strings.Contains(logs.String(), "error") {
		t.Errorf("a client leaving a stream was logged: %q", logs.String())
	}
}

// TestUpstreamTransportSettings: the transport New builds takes no proxy
// from the environment (the upstream is the operator's own server; a
// loopback upstream would not show it, as net/http never proxies
// loopback) and leaves bodies as they are (transparent gzip would hold
// back stream events).
func TestUpstreamTransportSettings(t *testing.T) {
	tr := newTransport(time.Minute)
	if tr.Proxy != nil || !tr.DisableCompression || tr.ExpectContinueTimeout != 0 {
		t.Errorf("Proxy set %v, DisableCompression %v, ExpectContinueTimeout %v; want no proxy, no compression, no Expect handling",
			tr.Proxy != nil, tr.DisableCompression, tr.ExpectContinueTimeout)
	}
}
