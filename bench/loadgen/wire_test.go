package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpauth/mcpauth/internal/loopbacktest"
)

// wireTo starts a server for h and returns a wireConn to it and the
// server, with the number of connections the server accepted.
func wireTo(t *testing.T, h http.Handler) (*wireConn, *httptest.Server, *atomic.Int32) {
	t.Helper()
	srv, conns := loopbacktest.CountingServer(t, h)
	w := newWireConn(strings.TrimPrefix(srv.URL, "http://"))
	t.Cleanup(w.close)
	return w, srv, conns
}

// TestWireConnReadsWhatNetHTTPWrites: the generator's client parses the
// responses Go's server writes: sized and chunked bodies, redirects,
// keep-alive reuse, and forms and headers arrive intact.
func TestWireConnReadsWhatNetHTTPWrites(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /form", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "a=%s b=%s auth=%s ct=%s", r.PostForm.Get("a"), r.PostForm.Get("b"), r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
	})
	mux.HandleFunc("GET /chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush() // forces chunked encoding
		}
	})
	mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/callback?code=abc&state=s", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 100_000))
	})
	w, _, conns := wireTo(t, mux)

	resp, err := w.postForm("/form", "Basic abc", []byte("a=1&b=x%2By"))
	if err != nil || resp.status != 200 || string(resp.body) != "a=1 b=x+y auth=Basic abc ct=application/x-www-form-urlencoded" {
		t.Fatalf("postForm = %d %q, %v", resp.status, resp.body, err)
	}
	resp, err = w.get("/chunked")
	if err != nil || resp.status != 200 || string(resp.body) != "part0;part1;part2;" {
		t.Fatalf("chunked = %d %q, %v", resp.status, resp.body, err)
	}
	resp, err = w.get("/redirect")
	if err != nil || resp.status != http.StatusSeeOther || resp.location != "http://127.0.0.1:1/callback?code=abc&state=s" {
		t.Fatalf("redirect = %d %q, %v", resp.status, resp.location, err)
	}
	resp, err = w.get("/big")
	if err != nil || resp.status != 200 || len(resp.body) != 100_000 {
		t.Fatalf("big = %d, %d bytes, %v", resp.status, len(resp.body), err)
	}
	resp, err = w.get("/missing")
	if err != nil || resp.status != http.StatusNotFound {
		t.Fatalf("missing = %d, %v", resp.status, err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 requests, want 1 (keep-alive)", n)
	}
}

// TestWireConnReconnects: a connection the server closed, after a
// "Connection: close" response or while idle, is replaced by a new one.
func TestWireConnReconnects(t *testing.T) {
	w, srv, conns := wireTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = io.WriteString(w, "ok")
	}))
	for _, path := range []string{"/close", "/a", "/b"} {
		if resp, err := w.get(path); err != nil || string(resp.body) != "ok" {
			t.Fatalf("GET %s = %q, %v", path, resp.body, err)
		}
	}
	srv.CloseClientConnections() // the idle connection goes away
	if resp, err := w.get("/c"); err != nil || string(resp.body) != "ok" {
		t.Fatalf("GET after the server closed the idle connection = %q, %v", resp.body, err)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (first, after Connection: close, after the idle close)", n)
	}
}

// TestWireConnRejectsMalformedResponses: what the client cannot parse is an
// error, never a hang or a made-up success.
func TestWireConnRejectsMalformedResponses(t *testing.T) {
	cases := map[string]string{
		"not HTTP":           "SSH-2.0-OpenSSH\r\n",
		"bad status":         "HTTP/1.1 2x0 OK\r\n\r\n",
		"no length":          "HTTP/1.1 200 OK\r\n\r\nbody",
		"bad length":         "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
		"short body":         "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"bad chunk":          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk without CRLF": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
		"header garbage":     "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"huge body":          "HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				r := bufio.NewReader(c)
				for { // read the request head
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, raw)
			}()
			w := newWireConn(ln.Addr().String())
			defer w.close()
			if resp, err := w.get("/"); err == nil {
				t.Errorf("response %q parsed as %d %q, want an error", raw, resp.status, resp.body)
			}
		})
	}
}
