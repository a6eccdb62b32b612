package safehttp

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/loopbacktest"
)

// stallListener accepts loopback TCP connections and never writes a byte
// until the test ends: a TLS handshake that never completes.
func stallListener(t *testing.T) string {
	t.Helper()
	return loopbacktest.Serve(t, nil)
}

// trickle writes p one byte per tick until stop is closed or a write fails.
func trickle(write func([]byte) (int, error), flush func() error, p []byte, tick time.Duration, stop <-chan struct{}) {
	for i := 0; ; i = (i + 1) % len(p) {
		select {
		case <-stop:
			return
		case <-time.After(tick):
		}
		if _, err := write(p[i : i+1]); err != nil {
			return
		}
		if flush != nil && flush() != nil {
			return
		}
	}
}

// timeoutEnv is the slow peer of one attack 19 case.
type timeoutEnv struct {
	target    string           // loopback address the fake dialer connects to
	roots     *x509.CertPool   // trusts target's certificate
	configure func(n *fakeNet) // makes the fake network hang
}

func TestFetchTimeouts(t *testing.T) {
	short := 100 * time.Millisecond
	tests := []struct {
		name    string
		setup   func(t *testing.T, stop <-chan struct{}) timeoutEnv
		opts    Options
		phase   string // the message must name the phase
		dialled bool
	}{
		{
			name: "attack 19 DNS never answers",
			setup: func(t *testing.T, stop <-chan struct{}) timeoutEnv {
				return timeoutEnv{configure: func(n *fakeNet) { n.blockLookup = true }}
			},
			opts:  Options{DNSTimeout: short},
			phase: "DNS lookup of example.com did not finish within 100ms",
		},
		{
			name: "attack 19 TCP connect hangs",
			setup: func(t *testing.T, stop <-chan struct{}) timeoutEnv {
				return timeoutEnv{configure: func(n *fakeNet) { n.blockDial = true }}
			},
			opts:    Options{ConnectTimeout: short},
			phase:   "connecting to " + publicIP + " did not finish within 100ms",
			dialled: true,
		},
		{
			name: "attack 19 TLS handshake stalls",
			setup: func(t *testing.T, stop <-chan struct{}) timeoutEnv {
				return timeoutEnv{target: stallListener(t)}
			},
			opts:    Options{TLSTimeout: short},
			phase:   "TLS handshake did not finish within 100ms",
			dialled: true,
		},
		{
			name: "attack 19 headers trickled (slow-loris)",
			setup: func(t *testing.T, stop <-chan struct{}) timeoutEnv {
				srv, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
					conn, buf, err := http.NewResponseController(w).Hijack()
					if err != nil {
						panic(err)
					}
					defer conn.Close()
					buf.WriteString("HTTP/1.1 200 OK\r\n")
					buf.Flush()
					trickle(conn.Write, nil, []byte("X-Slow: aaaa\r\n"), 10*time.Millisecond, stop)
				})
				return timeoutEnv{target: srv.Listener.Addr().String(), roots: serverPool(srv)}
			},
			opts:    Options{HeaderTimeout: short},
			phase:   "response headers did not arrive within 100ms",
			dialled: true,
		},
		{
			name: "attack 19 body trickled past the overall deadline",
			setup: func(t *testing.T, stop <-chan struct{}) timeoutEnv {
				srv, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
					rc := http.NewResponseController(w)
					w.WriteHeader(200)
					rc.Flush()
					trickle(w.Write, rc.Flush, []byte(" "), 10*time.Millisecond, stop)
				})
				return timeoutEnv{target: srv.Listener.Addr().String(), roots: serverPool(srv)}
			},
			opts:    Options{Timeout: 300 * time.Millisecond},
			phase:   "whole fetch did not finish within 300ms",
			dialled: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stop := make(chan struct{})
			t.Cleanup(func() { close(stop) }) // runs before the servers close
			env := tt.setup(t, stop)
			fake := newFakeNet(t, env.target)
			if env.configure != nil {
				env.configure(fake)
			}
			opts := tt.opts
			opts.Resolver, opts.Dial, opts.RootCAs = fake, fake.Dial, env.roots
			c, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
			e := wantError(t, err, ReasonTimeout)
			if !strings.Contains(err.Error(), tt.phase) {
				t.Errorf("message %q does not say %q", err, tt.phase)
			}
			if !e.Unavailable() {
				t.Error("Unavailable() = false for a timeout")
			}
			if _, dials := fake.recorded(); (len(dials) > 0) != tt.dialled {
				t.Errorf("dials = %v, want dialled=%v", dials, tt.dialled)
			}
		})
	}
}

func TestFetchCallerContext(t *testing.T) {
	t.Run("B8 caller cancels", func(t *testing.T) {
		fake := newFakeNet(t, "")
		fake.blockLookup = true
		c, err := New(Options{Resolver: fake, Dial: fake.Dial})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for {
				if lookups, _ := fake.recorded(); len(lookups) > 0 {
					cancel()
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		_, err = c.Fetch(ctx, Request{URL: "https://example.com/c.json"})
		e := wantError(t, err, ReasonCanceled)
		if e.Unavailable() || !errors.Is(err, context.Canceled) {
			t.Errorf("Unavailable() = %v, errors.Is(Canceled) = %v", e.Unavailable(), errors.Is(err, context.Canceled))
		}
	})
	t.Run("B8 caller's deadline", func(t *testing.T) {
		fake := newFakeNet(t, "")
		fake.blockDial = true
		c, err := New(Options{Resolver: fake, Dial: fake.Dial})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err = c.Fetch(ctx, Request{URL: "https://example.com/c.json"})
		wantError(t, err, ReasonTimeout)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("errors.Is(err, DeadlineExceeded) = false: %v", err)
		}
	})
	t.Run("B8 already canceled", func(t *testing.T) {
		srv, rec := newTLSServer(t, serveDoc)
		c, _ := publicClient(t, srv, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Fetch(ctx, Request{URL: "https://example.com/c.json"})
		wantError(t, err, ReasonCanceled)
		if rec.count() != 0 {
			t.Errorf("the server saw %d requests", rec.count())
		}
	})
}
