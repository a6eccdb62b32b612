package safehttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// streamer is a handler that writes chunks until the client goes away (or
// limit bytes), then reports how much it wrote on done.
type streamer struct {
	chunk   []byte
	limit   int64
	flush   bool   // flush each chunk: chunked encoding on the wire
	declare string // Content-Length to declare, if any
	done    chan int64
}

func newStreamer(limit int64, flush bool, declare string) *streamer {
	return &streamer{chunk: bytes.Repeat([]byte("a"), 32<<10), limit: limit, flush: flush, declare: declare, done: make(chan int64, 1)}
}

func (s *streamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n int64
	defer func() { s.done <- n }()
	write := w.Write
	if s.declare != "" {
		// net/http refuses to write past a declared Content-Length, so lie
		// on the raw connection.
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n", s.declare)
		if err := buf.Flush(); err != nil {
			return
		}
		write = conn.Write
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	for n < s.limit {
		m, err := write(s.chunk)
		n += int64(m)
		if err != nil {
			return
		}
		if s.flush && s.declare == "" {
			if err := http.NewResponseController(w).Flush(); err != nil {
				return
			}
		}
		if r.Context().Err() != nil {
			return
		}
	}
}

func TestFetchBodyLimits(t *testing.T) {
	exact := strings.Repeat("x", DefaultMaxBodyBytes)
	bomb := gzipBomb(t)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		opts    Options
		want    Reason
		body    string // for successes
	}{
		{
			name:    "B7 exactly 5120 bytes accepted",
			handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, exact) },
			body:    exact,
		},
		{
			name:    "attack 18 5121 bytes",
			handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, exact+"x") },
			want:    ReasonTooLarge,
		},
		{
			name: "attack 18 5121 bytes without Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, exact)
				http.NewResponseController(w).Flush()
				fmt.Fprint(w, "x")
			},
			want: ReasonTooLarge,
		},
		{
			name:    "B7 MaxBodyBytes option",
			handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "0123456789A") },
			opts:    Options{MaxBodyBytes: 10},
			want:    ReasonTooLarge,
		},
		{
			name:    "B7 MaxBodyBytes option exact",
			handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "0123456789") },
			opts:    Options{MaxBodyBytes: 10},
			body:    "0123456789",
		},
		{
			name: "attack 18 declared Content-Length above the cap fails before reading",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(1<<30))
				w.WriteHeader(200)
			},
			want: ReasonTooLarge,
		},
		{
			name: "attack 18 Content-Length larger than the body sent",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "4000")
				fmt.Fprint(w, "{}")
			},
			want: ReasonConnect, // the body ends early: unexpected EOF
		},
		{
			name: "decision 4 gzip bomb",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(bomb)
			},
			want: ReasonEncoding,
		},
		{
			name: "decision 4 br",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "br")
				fmt.Fprint(w, doc)
			},
			want: ReasonEncoding,
		},
		{
			name: "decision 4 identity, gzip list",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "identity, gzip")
				fmt.Fprint(w, doc)
			},
			want: ReasonEncoding,
		},
		{
			name: "decision 4 identity is accepted",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "identity")
				fmt.Fprint(w, doc)
			},
			body: doc,
		},
		{
			name: "attack 18 response headers over 16 KiB",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Big", strings.Repeat("b", MaxResponseHeaderBytes+1))
				fmt.Fprint(w, doc)
			},
			want: ReasonTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTLSServer(t, tt.handler)
			c, _ := publicClient(t, srv, tt.opts)
			resp, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if string(resp.Body) != tt.body {
					t.Errorf("body is %d bytes, want %d", len(resp.Body), len(tt.body))
				}
				return
			}
			e := wantError(t, err, tt.want)
			if e.Addr != publicAddr() {
				t.Errorf("Addr = %s", e.Addr)
			}
		})
	}
}

// gzipBomb is 64 MiB of zeros gzipped to about 64 KiB.
func gzipBomb(t *testing.T) []byte {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range 64 {
		zw.Write(zeros)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestFetchStopsEndlessBodies checks that Fetch stops reading an endless
// body after MaxBodyBytes+1 and closes the connection, so the server's
// writes fail long before it could send 1 GB.
func TestFetchStopsEndlessBodies(t *testing.T) {
	const gigabyte = 1 << 30
	tests := []struct {
		name string
		s    *streamer
	}{
		{"attack 18 1 GB stream", newStreamer(gigabyte, false, "")},
		{"attack 18 infinite chunked encoding", newStreamer(gigabyte, true, "")},
		{"attack 18 Content-Length 100 with 10 MB sent", newStreamer(10<<20, false, "100")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTLSServer(t, tt.s.ServeHTTP)
			c, _ := publicClient(t, srv, Options{})
			resp, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
			if tt.s.declare == "100" {
				// The message ends after the declared 100 bytes; the rest is
				// never read.
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if len(resp.Body) != 100 {
					t.Errorf("body is %d bytes, want the declared 100", len(resp.Body))
				}
				<-tt.s.done
				return
			}
			wantError(t, err, ReasonTooLarge)
			written := <-tt.s.done
			if written >= tt.s.limit {
				t.Errorf("the server wrote all %d bytes; the client kept reading", written)
			}
		})
	}
}
