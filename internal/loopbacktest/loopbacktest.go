// Package loopbacktest has the loopback servers tests share: a raw TCP
// listener whose connections a test serves by hand, and an httptest server
// that counts the connections it accepted. Both listen on 127.0.0.1 only
// and are closed, with every connection, when the test ends.
package loopbacktest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Serve listens on a loopback port and runs serve for each connection it
// accepts, on a goroutine of its own; the connection is closed when serve
// returns. A nil serve holds every connection open without reading it. At
// the end of the test the listener and every connection are closed and
// Serve waits for the serve calls to return. It returns the listener's
// address (host:port).
func Serve(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close() // ends serve calls waiting on their client
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if serve != nil {
				wg.Go(func() {
					defer c.Close()
					serve(c)
				})
			}
		}
	})
	return ln.Addr().String()
}

// CountingServer starts an httptest server for h and returns it with the
// number of connections it has accepted so far.
func CountingServer(t testing.TB, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}
