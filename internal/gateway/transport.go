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
	"slices"
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
// A connection goes back to the pool only once the request went out whole,
// its answer's body has been read to the end, neither side asked to close
// it and nothing follows the answer. An idle connection the upstream has
// closed is found (a non-blocking peek) and dropped before use; one that
// closes as a request arrives gets a GET without body sent again on a new
// connection, never a POST, which may have reached the upstream. Idle
// connections are closed after upstreamIdleTimeout. A body larger than the
// write buffer is written while the answer is read, so an upstream that
// answers first (404, 413) is heard. A canceled request context ends any
// wait on its connection, which is then closed, with the context's error.
type upstreamTransport struct {
	fallback http.RoundTripper
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	now      func() time.Time

	mu      sync.Mutex
	idle    map[string][]*upstreamConn // by host:port, oldest first
	n       int                        // idle connections in all
	sweeper *time.Timer                // closes expired idle connections; nil when none are idle
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

// maxInterimAnswers bounds the 1xx answers skipped before the final one.
const maxInterimAnswers = 16

// RoundTrip implements http.RoundTripper.
func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	for attempt := 0; ; attempt++ {
		pc, reused, err := t.get(ctx, addr)
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, ctxErr(ctx, err)
		}
		resp, unanswered, err := t.exchange(ctx, pc, req)
		// A kept-alive connection the upstream closed just as the request
		// went out (its idle timeout) ends without a byte of answer. Like
		// net/http, only a request without a body whose method is safe to
		// repeat is sent again, once, on a new connection; a POST may have
		// reached the upstream.
		if err != nil && reused && unanswered && attempt == 0 && ctx.Err() == nil && repeatable(req) {
			continue
		}
		return resp, err
	}
}

// repeatable reports whether req may be sent again after its connection
// broke before any answer: no body, and a method without side effects.
func repeatable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// exchange sends req on pc and reads its answer. unanswered reports a
// failure before any byte of an answer arrived.
func (t *upstreamTransport) exchange(ctx context.Context, pc *upstreamConn, req *http.Request) (resp *http.Response, unanswered bool, err error) {
	// A canceled context (client gone, gateway timeout) ends any read or
	// write on the connection at once.
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.SetDeadline(time.Unix(1, 0)) })
	written := make(chan error, 1)
	write := func() {
		err := req.Write(pc.bw) // closes req.Body
		if err == nil {
			err = pc.bw.Flush()
		}
		written <- err
	}
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength >= 0 && req.ContentLength <= upstreamBufferSize {
		// Small enough for the socket's buffer: written before reading.
		// If the write fails, an answer the upstream sent before closing
		// (a 404 or 413 without reading the body) is still read below.
		write()
	} else {
		// A large body goes out while the answer is read, so that an
		// upstream that answers before reading it all is neither a
		// failure nor a deadlock.
		go write()
	}
	pc.lim.on, pc.lim.left, pc.lim.trips = true, maxUpstreamHeaderSize, false // one budget for every 1xx and the final answer
	for i := 0; ; i++ {
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			unanswered = pc.lim.left == maxUpstreamHeaderSize
			if pc.lim.trips {
				err = errHeaderTooLarge
			}
			if werr := writeResult(written); werr != nil && werr != errWriteUnfinished && unanswered {
				err = werr // the write's failure is the cause
			}
			break
		}
		// Interim answers (100 Continue, 103 Early Hints) are skipped;
		// 101 Switching Protocols is refused, as the gateway strips
		// Upgrade.
		switch code := resp.StatusCode; {
		case code >= 200 && code <= 999:
		case code == http.StatusSwitchingProtocols:
			err = errors.New("upstream switched protocols (101), which Streamable HTTP never does")
		case code >= 100 && code < 200 && i < maxInterimAnswers:
			continue
		case code >= 100 && code < 200:
			err = fmt.Errorf("upstream sent more than %d interim (1xx) answers", maxInterimAnswers)
		default:
			err = fmt.Errorf("upstream answered with status %d, outside 100-999", code)
		}
		break
	}
	pc.lim.on = false
	if err != nil {
		stop()
		pc.conn.Close()
		return nil, unanswered, ctxErr(ctx, err)
	}
	body := &upstreamBody{t: t, pc: pc, rc: resp.Body, ctx: ctx, stop: stop, written: written, reuse: !req.Close && !resp.Close}
	if resp.Body == http.NoBody {
		// No body to read (Content-Length: 0, 204, 304): the connection
		// is free once the request is out.
		body.done.Store(true)
		t.release(body)
		return resp, false, nil
	}
	resp.Body = body
	return resp, false, nil
}

// writeResult is the outcome of the request's write if it has ended, or
// errWriteUnfinished.
func writeResult(written chan error) error {
	select {
	case err := <-written:
		written <- err // for the next look
		return err
	default:
		return errWriteUnfinished
	}
}

// errWriteUnfinished: the upstream answered before it read the whole
// request body.
var errWriteUnfinished = errors.New("request body still being written")

// ctxErr is err, or the context's error itself when the context ended:
// the connection's deadline was set to end the wait, and callers such as
// httputil.ReverseProxy compare with context.Canceled.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// upstreamBody is an upstream answer's body; read to its end, it gives
// the connection back to the pool.
type upstreamBody struct {
	t       *upstreamTransport
	pc      *upstreamConn
	rc      io.ReadCloser
	ctx     context.Context
	stop    func() bool
	written chan error // the request's write outcome, once it has one
	reuse   bool       // neither side asked to close the connection
	done    atomic.Bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		if b.done.CompareAndSwap(false, true) {
			b.t.release(b)
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

// release returns the answer's connection to the pool when the request
// went out whole, neither side asked to close, the context's AfterFunc had
// not fired and nothing follows the answer; else it closes it.
func (t *upstreamTransport) release(b *upstreamBody) {
	pc := b.pc
	if !b.stop() || !b.reuse || writeResult(b.written) != nil || pc.br.Buffered() > 0 {
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
	if t.sweeper == nil {
		t.sweeper = time.AfterFunc(upstreamIdleTimeout, t.sweep)
	}
	t.mu.Unlock()
}

// sweep closes the connections idle for upstreamIdleTimeout or longer,
// and runs again later while any are left.
func (t *upstreamTransport) sweep() {
	var expired []*upstreamConn
	t.mu.Lock()
	now := t.now()
	for addr, conns := range t.idle {
		i := 0
		for i < len(conns) && now.Sub(conns[i].idleSince) >= upstreamIdleTimeout {
			i++ // oldest first
		}
		expired = append(expired, conns[:i]...)
		if i == len(conns) {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = slices.Delete(conns, 0, i)
		}
		t.n -= i
	}
	if t.n > 0 && t.sweeper != nil {
		t.sweeper.Reset(upstreamIdleTimeout)
	} else {
		t.sweeper = nil
	}
	t.mu.Unlock()
	for _, pc := range expired {
		pc.conn.Close()
	}
}

// get returns an idle connection to addr that is still open (reused), or
// dials one.
func (t *upstreamTransport) get(ctx context.Context, addr string) (pc *upstreamConn, reused bool, err error) {
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
			return pc, true, nil
		}
		pc.conn.Close()
	}
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	pc = &upstreamConn{conn: conn, addr: addr}
	pc.lim.r = conn
	pc.br = bufio.NewReaderSize(&pc.lim, upstreamBufferSize)
	pc.bw = bufio.NewWriterSize(conn, upstreamBufferSize)
	return pc, false, nil
}

// CloseIdleConnections closes the idle connections, and those of the
// fallback transport.
func (t *upstreamTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.n = make(map[string][]*upstreamConn), 0
	if t.sweeper != nil {
		t.sweeper.Stop()
		t.sweeper = nil
	}
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
