package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/loopbacktest"
)

func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	return loopbacktest.CountingServer(t, h)
}

func newTestTransport(t *testing.T) *upstreamTransport {
	t.Helper()
	tr := newUpstreamTransport(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("fallback used for an http:// URL")
	}))
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// get sends a request through tr and returns the status and the body read
// to its end.
func get(t *testing.T, tr http.RoundTripper, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = nil
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// TestUpstreamTransportReusesConnection: answers read to their end leave
// the connection for the next request; the request's method, path, query,
// Host and body arrive as sent.
func TestUpstreamTransportReusesConnection(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Host+" "+string(b))
	})
	tr := newTestTransport(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	for i := range 5 {
		code, body := get(t, tr, "POST", srv.URL+"/mcp?x=1", `{"id":1}`)
		if want := "POST /mcp?x=1 " + host + ` {"id":1}`; code != 200 || body != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, code, body, want)
		}
	}
	code, body := get(t, tr, "GET", srv.URL+"/mcp", "")
	if code != 200 || body != "GET /mcp "+host+" " {
		t.Fatalf("GET: %d %q", code, body)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("6 sequential requests used %d connections, want 1", n)
	}
}

// TestUpstreamTransportDropsClosedIdleConnection: an idle connection the
// upstream closed is found before use, and the request goes out on a new
// one instead of failing.
func TestUpstreamTransportDropsClosedIdleConnection(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	tr := newTestTransport(t)
	get(t, tr, "POST", srv.URL, "a")
	srv.CloseClientConnections()
	// The FIN reaches the client's socket shortly after.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr.mu.Lock()
		pc := tr.idle[strings.TrimPrefix(srv.URL, "http://")][0]
		tr.mu.Unlock()
		if !stillOpen(pc.conn) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if code, body := get(t, tr, "POST", srv.URL, "b"); code != 200 || body != "ok" {
		t.Fatalf("after the upstream closed the idle connection: %d %q", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("used %d connections, want 2", n)
	}
}

// TestUpstreamTransportClosesWhenNotReusable: a connection is not reused
// after "Connection: close", after a body closed before its end, or after
// bytes that follow an answer.
func TestUpstreamTransportClosesWhenNotReusable(t *testing.T) {
	t.Run("connection close", func(t *testing.T) {
		srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "ok")
		})
		tr := newTestTransport(t)
		get(t, tr, "POST", srv.URL, "a")
		get(t, tr, "POST", srv.URL, "b")
		if n := conns.Load(); n != 2 {
			t.Errorf("used %d connections, want 2", n)
		}
	})
	t.Run("body closed early", func(t *testing.T) {
		srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("x", 100000))
		})
		tr := newTestTransport(t)
		req, _ := http.NewRequest("GET", srv.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code, body := get(t, tr, "GET", srv.URL, ""); code != 200 || len(body) != 100000 {
			t.Fatalf("next request: %d, %d bytes", code, len(body))
		}
		if n := conns.Load(); n != 2 {
			t.Errorf("used %d connections, want 2", n)
		}
	})
	t.Run("bytes after the answer", func(t *testing.T) {
		var accepted atomic.Int32
		url := rawServer(t, func(c net.Conn) {
			accepted.Add(1)
			br := bufio.NewReader(c)
			for {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokjunk")
			}
		})
		tr := newTestTransport(t)
		for range 2 {
			if code, body := get(t, tr, "GET", url, ""); code != 200 || body != "ok" {
				t.Fatalf("got %d %q", code, body)
			}
		}
		if n := accepted.Load(); n != 2 {
			t.Errorf("used %d connections, want 2 (the first carried bytes after its answer)", n)
		}
	})
}

// rawServer accepts loopback connections and hands each to serve.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	return "http://" + loopbacktest.Serve(t, serve)
}

// TestUpstreamTransportInterimAnswers: 100 Continue and 103 Early Hints
// are skipped; 101 Switching Protocols is refused.
func TestUpstreamTransportInterimAnswers(t *testing.T) {
	answer := func(head string) string {
		return rawServer(t, func(c net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
				return
			}
			_, _ = io.WriteString(c, head)
			_, _ = io.Copy(io.Discard, c)
		})
	}
	tr := newTestTransport(t)
	url := answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if code, body := get(t, tr, "POST", url, "x"); code != 200 || body != "ok" {
		t.Errorf("after interim answers: %d %q, want 200 ok", code, body)
	}
	url = answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	req, _ := http.NewRequest("GET", url, nil)
	if resp, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "101") {
		if resp != nil {
			resp.Body.Close()
		}
		t.Errorf("101 answer: err %v, want a refusal", err)
	}
}

// TestUpstreamTransportHeaderLimit: an upstream that sends headers without
// end gets an error after maxUpstreamHeaderSize bytes, not all of memory.
func TestUpstreamTransportHeaderLimit(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: ")
		chunk := strings.Repeat("a", 64<<10)
		for range 64 { // 4 MiB, until the client hangs up
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
		}
	})
	req, _ := http.NewRequest("GET", url, nil)
	resp, err := newTestTransport(t).RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a 4 MiB header was accepted")
	}
	if !errors.Is(err, errHeaderTooLarge) {
		t.Errorf("err = %v, want %v", err, errHeaderTooLarge)
	}
}

// TestUpstreamTransportStreams: an event stream's events arrive as the
// upstream sends them, before the answer ends, and the connection is
// reused once it has.
func TestUpstreamTransportStreams(t *testing.T) {
	release := make(chan struct{})
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ping" {
			_, _ = io.WriteString(w, "pong")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: 2\n\n")
	})
	tr := newTestTransport(t)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: 1\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	close(release)
	rest, err := io.ReadAll(br)
	resp.Body.Close()
	if err != nil || string(rest) != "\ndata: 2\n\n" {
		t.Fatalf("rest: %q, %v", rest, err)
	}
	if code, body := get(t, tr, "GET", srv.URL+"/ping", ""); code != 200 || body != "pong" {
		t.Fatalf("after the stream: %d %q", code, body)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("used %d connections, want 1", n)
	}
}

// TestUpstreamTransportCancel: a canceled request context ends the wait
// for the headers and the wait for the body, with the context's error;
// so does closing the body while a read waits.
func TestUpstreamTransportCancel(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
		}
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	tr := newTestTransport(t)
	within := func(what string, f func() error) error {
		t.Helper()
		errc := make(chan error, 1)
		go func() { errc <- f() }()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting after 10 s", what)
			return nil
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/headers", nil)
	time.AfterFunc(50*time.Millisecond, cancel)
	err := within("headers", func() error {
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled while waiting for headers: %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/body", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	err = within("body", func() error {
		_, err := io.ReadAll(resp.Body)
		return err
	})
	resp.Body.Close()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled while reading the body: %v, want context.Canceled", err)
	}

	req, _ = http.NewRequest("GET", srv.URL+"/body", nil)
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, func() { resp.Body.Close() })
	if err := within("close", func() error { _, err := io.ReadAll(resp.Body); return err }); err == nil {
		t.Errorf("read of a body closed meanwhile: nil error, want a failure")
	}
}

// TestUpstreamTransportFallback: requests for other schemes than http go
// to the fallback transport.
func TestUpstreamTransportFallback(t *testing.T) {
	var got string
	tr := newUpstreamTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.URL.String()
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	}))
	req, _ := http.NewRequest("POST", "https://127.0.0.1:1/mcp", strings.NewReader("x"))
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 204 || got != "https://127.0.0.1:1/mcp" {
		t.Errorf("https request: %v %v, fallback saw %q", resp, err, got)
	}
}

// TestUpstreamTransportDialFailure: an upstream that refuses connections
// is an error, and the request body is closed (http.RoundTripper).
func TestUpstreamTransportDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest("POST", "http://"+addr+"/mcp", body)
	if resp, err := newTestTransport(t).RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("request to a closed port succeeded")
	}
	if !body.closed {
		t.Error("request body not closed after a failed dial")
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return nil
}

// TestUpstreamTransportEarlyAnswer: an upstream that answers a large POST
// without reading its body (404 for an unknown session, 413) gets its
// answer to the client, through the gateway too, instead of a 502 for the
// broken write; an upstream that streams a large answer before reading the
// body neither deadlocks nor fails. Found by an audit against
// net/http.Transport.
func TestUpstreamTransportEarlyAnswer(t *testing.T) {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "session not found", http.StatusNotFound) // body not read
	})
	srv, _ := countingServer(t, notFound)
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(strings.Repeat("x", 4<<20-1)))
	resp, err := newTestTransport(t).RoundTrip(req)
	if err != nil {
		t.Fatalf("large POST answered early: %v, want the upstream's 404", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}

	h := newHarness(t, nil, func(o *Options) {
		o.Upstream = srv.URL + "/mcp"
		o.ToolScopes = nil
	})
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"` + strings.Repeat("x", 4<<20-100) + `"}}`
	if resp, body := do(t, "POST", h.resource, h.tokenFor(t, "alice", "mcp:tools"), big, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("through the gateway: %d %.200q, want the upstream's 404", resp.StatusCode, body)
	}

	const answer = 64 << 20
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
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
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(strings.Repeat("x", 4<<20)))
	resp, err = newTestTransport(t).RoundTrip(req)
	if err != nil {
		t.Fatalf("answer streamed before the body was read: %v", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != answer {
		t.Errorf("read %d of %d bytes: %v", n, answer, err)
	}
}

// TestUpstreamTransportInterimFlood: one header budget covers every
// interim answer and the final one, so an upstream that sends 1xx answers
// without end is refused at once instead of being read until the timeout.
func TestUpstreamTransportInterimFlood(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		buf := []byte(strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n", 1000))
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := newTestTransport(t).RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("an endless run of 103 answers was accepted")
	}
	if errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "interim") {
		t.Errorf("err = %v, want a refusal of the interim answers before the deadline", err)
	}
}

// TestUpstreamTransportStatusOutOfRange: a status below 100 is refused
// (the reverse proxy would panic writing it).
func TestUpstreamTransportStatusOutOfRange(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n")
	})
	req, _ := http.NewRequest("GET", url, nil)
	if resp, err := newTestTransport(t).RoundTrip(req); err == nil || !strings.Contains(err.Error(), "status 99") {
		if resp != nil {
			resp.Body.Close()
		}
		t.Errorf("status 099: err %v, want a refusal", err)
	}
}

// TestUpstreamTransportStreamDisconnectNotLogged: a client that leaves an
// event stream (the usual end of MCP's GET stream) is not logged as an
// upstream failure: the body's error is the context's own, which the
// reverse proxy recognises.
func TestUpstreamTransportStreamDisconnectNotLogged(t *testing.T) {
	var logs logBuffer
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
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
	h.gw.Close() // waits for the gateway's handler to end
	if strings.Contains(logs.String(), "error") {
		t.Errorf("a client leaving a stream was logged: %q", logs.String())
	}
}

// TestUpstreamTransportClosesExpiredIdleConnections: connections idle for
// upstreamIdleTimeout are closed by the sweep even when no request comes
// to look at them (the pool hands out the most recent first).
func TestUpstreamTransportClosesExpiredIdleConnections(t *testing.T) {
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tr := newTestTransport(t)
	var clock atomic.Int64
	base := time.Now()
	tr.now = func() time.Time { return base.Add(time.Duration(clock.Load())) }

	// Three connections at once, then back to the pool.
	var bodies []io.ReadCloser
	for range 3 {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
	}
	for _, b := range bodies {
		if _, err := io.ReadAll(b); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(int64(upstreamIdleTimeout / 2))
	get(t, tr, "GET", srv.URL, "") // uses and returns the newest
	clock.Add(int64(upstreamIdleTimeout/2 + time.Second))
	tr.sweep()
	tr.mu.Lock()
	idle := tr.n
	tr.mu.Unlock()
	if idle != 1 {
		t.Errorf("%d idle connections after the sweep, want 1 (the one used half a timeout ago)", idle)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(open)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d upstream connections open, want 1", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUpstreamTransportRetriesStaleGET: a GET on a kept-alive connection
// the upstream closes without answering (its idle timeout firing as the
// request arrives) is sent again on a new connection; a POST is not, as it
// may have reached the upstream.
func TestUpstreamTransportRetriesStaleGET(t *testing.T) {
	for _, c := range []struct {
		method, body string
		wantErr      bool
	}{{"GET", "", false}, {"POST", "x", true}} {
		var accepted atomic.Int32
		url := rawServer(t, func(conn net.Conn) {
			accepted.Add(1)
			br := bufio.NewReader(conn)
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			_, _ = http.ReadRequest(br) // the next request: closed unanswered
		})
		tr := newTestTransport(t)
		get(t, tr, c.method, url, c.body)
		req, _ := http.NewRequest(c.method, url, strings.NewReader(c.body))
		if c.body == "" {
			req.Body = nil
		}
		resp, err := tr.RoundTrip(req)
		if err == nil {
			_, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if (err != nil) != c.wantErr {
			t.Errorf("%s on a connection closed unanswered: err %v, want error %v (connections %d)", c.method, err, c.wantErr, accepted.Load())
		}
	}
}
