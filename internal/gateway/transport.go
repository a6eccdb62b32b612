// This file is the HTTP/1.1 client the gateway uses for a plain-http
// upstream (RFC 9112), the usual case of an MCP server next to its gateway.

package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of upstreamTransport.
const (
	maxIdleUpstreamConns  = 128
	upstreamIdleTimeout   = 90 * time.Second
	maxUpstreamHeaderSize = 1 << 20
	upstreamBufferSize    = 16 << 10
)

// errHeaderTooLarge ends an upstream answer whose header section passes
// maxUpstreamHeaderSize.
var errHeaderTooLarge = fmt.Errorf("upstream response header section is larger than %d bytes", maxUpstreamHeaderSize)

// upstreamTransport sends requests for http:// URLs itself and gives any
// other request to fallback (an http.Transport: TLS, HTTP/2).
//
// For http:// it writes each request and reads its answer on the calling
// goroutine, over a pool of keep-alive connections. net/http's Transport
// runs two goroutines per connection and hands every request and answer
// between them and the caller; on a loopback hop each hand-over can wake an
// idle core, and that was most of the latency the gateway added
// (README, "Where the time goes"). Request writing and response parsing are
// net/http's own (Request.Write, http.ReadResponse).
//
// A connection goes back to the pool only once its answer's body has been
// read to the end, neither side asked to close it and nothing follows the
// answer; an idle connection the upstream has closed is found (a
// non-blocking peek) and dropped before use. Requests are never retried on
// another connection: a POST may have reached the upstream. A canceled
// request context ends any wait on its connection, which is then closed.
type upstreamTransport struct {
	fallback http.RoundTripper
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	now      func() time.Time

	mu   sync.Mutex
	idle map[string][]*upstreamConn // by host:port, most recently used last
	n    int                        // idle connections in all
}

func newUpstreamTransport(fallback http.RoundTripper) *upstreamTransport {
	return &upstreamTransport{
		fallback: fallback,
		dial:     (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		now:      time.Now,
		idle:     make(map[string][]*upstreamConn),
	}
}

// upstreamConn is one keep-alive connection to the upstream.
type upstreamConn struct {
	conn      net.Conn
	lim       limitedReader // between conn and br: bounds the header section
	br        *bufio.Reader
	bw        *bufio.Writer
	addr      string
	idleSince time.Time
}

// limitedReader reads from r; while limit is on, at most left more bytes.
type limitedReader struct {
	r     io.Reader
	on    bool
	left  int64
	trips bool // the limit was reached
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if !l.on {
		return l.r.Read(p)
	}
	if l.left <= 0 {
		l.trips = true
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// RoundTrip implements http.RoundTripper.
func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if err := ctx.Err(); err != nil {
		closeBody()
		return nil, err
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	pc, err := t.get(ctx, addr)
	if err != nil {
		closeBody()
		return nil, ctxErr(ctx, err)
	}
	// A canceled context (client gone, gateway timeout) ends any read or
	// write on the connection at once.
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.conn.Close()
		return nil, ctxErr(ctx, err)
	}
	if err := req.Write(pc.bw); err != nil { // closes req.Body
		return fail(err)
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(err)
	}
	var resp *http.Response
	for {
		pc.lim.on, pc.lim.left, pc.lim.trips = true, maxUpstreamHeaderSize, false
		resp, err = http.ReadResponse(pc.br, req)
		pc.lim.on = false
		if err != nil {
			if pc.lim.trips {
				err = errHeaderTooLarge
			}
			return fail(err)
		}
		// Interim answers (100 Continue, 103 Early Hints) are skipped;
		// 101 Switching Protocols is refused, as the gateway strips
		// Upgrade.
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return fail(errors.New("upstream switched protocols (101), which Streamable HTTP never does"))
		}
	}
	reuse := !req.Close && !resp.Close
	if resp.Body == http.NoBody {
		// No body to read (Content-Length: 0, 204, 304): the connection
		// is free now.
		t.release(pc, stop, reuse)
		return resp, nil
	}
	resp.Body = &upstreamBody{t: t, pc: pc, rc: resp.Body, ctx: ctx, stop: stop, reuse: reuse}
	return resp, nil
}

// ctxErr is err, or the context's error when the context ended, which is
// then the cause (the connection's deadline was set to end the wait).
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// upstreamBody is an upstream answer's body; read to its end, it gives
// the connection back to the pool.
type upstreamBody struct {
	t     *upstreamTransport
	pc    *upstreamConn
	rc    io.ReadCloser
	ctx   context.Context
	stop  func() bool
	reuse bool
	done  atomic.Bool // the connection was released or closed
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		if b.done.CompareAndSwap(false, true) {
			b.t.release(b.pc, b.stop, b.reuse)
		}
	case err != nil:
		b.Close()
		err = ctxErr(b.ctx, err)
	}
	return n, err
}

// Close closes the connection unless the body was read to its end: what
// is left of it would have to be read before the next answer. It may be
// called while a Read waits, which it ends.
func (b *upstreamBody) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.stop()
		b.pc.conn.Close()
	}
	return nil
}

// release returns pc to the pool when reuse allows, the context's
// AfterFunc had not fired, and nothing follows the answer; else it closes
// pc.
func (t *upstreamTransport) release(pc *upstreamConn, stop func() bool, reuse bool) {
	if !stop() || !reuse || pc.br.Buffered() > 0 {
		pc.conn.Close()
		return
	}
	pc.idleSince = t.now()
	t.mu.Lock()
	if t.n >= maxIdleUpstreamConns {
		t.mu.Unlock()
		pc.conn.Close()
		return
	}
	t.idle[pc.addr] = append(t.idle[pc.addr], pc)
	t.n++
	t.mu.Unlock()
}

// get returns an idle connection to addr that is still open, or dials one.
func (t *upstreamTransport) get(ctx context.Context, addr string) (*upstreamConn, error) {
	for {
		t.mu.Lock()
		conns := t.idle[addr]
		if len(conns) == 0 {
			t.mu.Unlock()
			break
		}
		pc := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		t.idle[addr] = conns[:len(conns)-1]
		t.n--
		t.mu.Unlock()
		if t.now().Sub(pc.idleSince) < upstreamIdleTimeout && stillOpen(pc.conn) {
			return pc, nil
		}
		pc.conn.Close()
	}
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	pc := &upstreamConn{conn: conn, addr: addr}
	pc.lim.r = conn
	pc.br = bufio.NewReaderSize(&pc.lim, upstreamBufferSize)
	pc.bw = bufio.NewWriterSize(conn, upstreamBufferSize)
	return pc, nil
}

// CloseIdleConnections closes the idle connections, and those of the
// fallback transport.
func (t *upstreamTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.n = make(map[string][]*upstreamConn), 0
	t.mu.Unlock()
	for _, conns := range idle {
		for _, pc := range conns {
			pc.conn.Close()
		}
	}
	if c, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
