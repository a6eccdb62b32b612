// This file forwards accepted requests to the upstream MCP server
// (RFC 9110 §7.6 intermediaries, MCP 2025-11-25 "Streamable HTTP"), without
// the client's token (MCP 2025-11-25 Authorization §Access Token Privilege
// Restriction).

package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcpauth/mcpauth/internal/accesslog"
	"github.com/mcpauth/mcpauth/resource"
)

const (
	sessionHeader = "Mcp-Session-Id"
	maxSessionID  = 1024 // longer session IDs are refused with 400
)

// exchange is the state of one forwarded request, shared by forward,
// rewrite, modifyResponse and upstreamError through the request context.
type exchange struct {
	w        http.ResponseWriter
	body     []byte    // the request body, for JSON-RPC error replies
	identity [3]string // values of the identity headers; "" omits one
	owner    string    // who the request's session belongs to
	session  string    // the request's Mcp-Session-Id, if any
	method   string
	// start is when forwarding began; upstreamSeen is set once the
	// Observer has been told how long the upstream took.
	start        time.Time
	upstreamSeen bool
	// timer cancels the upstream request when it fires: first it bounds
	// the wait for the response headers, then (re-armed by modifyResponse)
	// the body of a response that is not an event stream.
	timer    *time.Timer
	timedOut atomic.Bool
	cancel   context.CancelFunc // cancels the upstream request
	// out is what the reverse proxy writes to: w without interim answers.
	out     interimFilter
	interim atomic.Int32 // interim answers from the upstream so far
	flooded atomic.Bool  // more than maxInterimAnswers: request canceled
}

// maxInterimAnswers bounds the interim (1xx) answers an upstream may send
// before its final one.
const maxInterimAnswers = 16

// interimFilter is the ResponseWriter the reverse proxy writes to. It drops
// the upstream's interim (1xx) answers, which httputil.ReverseProxy would
// pass on with all their headers (a Set-Cookie or WWW-Authenticate in a 103
// would get past modifyResponse), and cancels the upstream request after
// maxInterimAnswers of them: net/http's Transport leaves that bound to
// whoever is shown them, here the reverse proxy, which sets none.
type interimFilter struct {
	http.ResponseWriter
	ex *exchange
}

// WriteHeader passes a final status on and drops an interim one.
func (w *interimFilter) WriteHeader(code int) {
	if code >= 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.ex.interim.Add(1) > maxInterimAnswers && !w.ex.flooded.Swap(true) {
		w.ex.cancel()
	}
}

// Unwrap gives http.ResponseController (flushes, write deadlines) the
// server's writer.
func (w *interimFilter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// errTimeout reports that the upstream's headers came too late.
var errTimeout = errors.New("upstream response headers timed out")

// forward runs behind RequireBearer: the token is verified, its scopes
// suffice, and the Authorization header is gone.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request) {
	info := resource.TokenInfoFromContext(r.Context())
	ex := &exchange{w: w, method: r.Method}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			g.tooLarge(w, r)
			return
		case errors.Is(err, errNotJSON):
			writeError(w, http.StatusBadRequest, codeParseError,
				"the request body is not valid JSON (this gateway reads each tools/call to apply its tool scope rules)", []byte(unknownID))
			return
		case err != nil:
			g.log.LogAttrs(r.Context(), slog.LevelDebug, "gateway: request body unreadable", slog.String("error", err.Error()))
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "the request body could not be read", nil)
			return
		}
		ex.body = body
		observeMethod(r.Context(), body)
		traceBody(r.Context(), body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.TransferEncoding = nil
		// Lets net/http send the request again on a new connection when
		// a kept-alive one broke before any byte of it was written (then
		// the upstream cannot have seen it). A request written even in
		// part net/http repeats only when it is idempotent (RFC 9110
		// §9.2.2): a POST is not, unless the client sent an
		// Idempotency-Key header, its word that a repeat is safe.
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}

	accesslog.SetClientID(r.Context(), info.ClientID)
	ex.identity = [3]string{info.Subject, info.ClientID, strings.Join(info.Scopes, " ")}
	for i, v := range ex.identity {
		if !isHeaderValue(v) {
			g.log.LogAttrs(r.Context(), slog.LevelError, "gateway: identity cannot be sent in a header", slog.String("header", g.names[i]))
			writeError(w, http.StatusInternalServerError, codeInternal, "the verified identity cannot be passed to the MCP server", ex.body)
			return
		}
	}
	ex.owner = info.Issuer + "\x00" + info.Subject + "\x00" + info.ClientID

	switch ids := r.Header.Values(sessionHeader); {
	case len(ids) > 1 || len(ids) == 1 && (len(ids[0]) > maxSessionID || !isVisibleASCII(ids[0])):
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "send at most one Mcp-Session-Id header of visible ASCII characters", ex.body)
		return
	case len(ids) == 1:
		ex.session = ids[0]
		if !g.sessions.allowed(ex.session, ex.owner) {
			// Unknown, expired, or another identity's session: the same
			// answer, so that a session ID's existence is not revealed.
			g.log.LogAttrs(r.Context(), slog.LevelDebug, "gateway: session refused: unknown or bound to another identity")
			writeError(w, http.StatusNotFound, codeSessionNotFound, "Session not found", ex.body)
			return
		}
	}

	traceSession(r.Context(), ex.session)

	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), exchangeKey{}, ex))
	defer cancel()
	ex.cancel = cancel
	ex.out = interimFilter{ResponseWriter: w, ex: ex}
	ex.timer = time.AfterFunc(g.timeout, func() {
		ex.timedOut.Store(true)
		cancel()
	})
	defer ex.timer.Stop() // also when the proxy aborts with http.ErrAbortHandler
	ex.start = time.Now()
	g.proxy.ServeHTTP(&ex.out, r.WithContext(ctx))
}

// rewrite builds the upstream request: the upstream URL with the client's
// query, no credentials of the client, the verified identity in headers.
// It removes, in any letter case and with '_' for '-':
//
//   - every header named in g.strip: the identity headers, the hop-by-hop
//     set (RFC 9110 §7.6.1), Authorization, Cookie and Expect;
//   - every header the client's Connection header names (RFC 9110 §7.6.1);
//   - every Sec-WebSocket-* header (RFC 6455 §11.3): Streamable HTTP has
//     no protocol upgrades.
//
// The reverse proxy removed the hop-by-hop set and the headers named in
// Connection already, but then puts Connection and Upgrade back for a
// client that asked for an upgrade, and Te for one that accepts trailers;
// X-Forwarded-* and Forwarded sent by the client are gone too.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeFrom(pr.In.Context())
	out := pr.Out
	u := *g.upstream
	switch {
	case u.RawQuery == "":
		u.RawQuery = pr.In.URL.RawQuery
	case pr.In.URL.RawQuery != "":
		u.RawQuery += "&" + pr.In.URL.RawQuery
	}
	out.URL = &u
	out.Host = ""
	h := out.Header
	connection := pr.In.Header["Connection"]
	for k := range h {
		if slices.ContainsFunc(g.strip, func(n string) bool { return sameHeaderName(k, n) }) ||
			hasPrefixFold(k, "Sec-WebSocket-") || namedIn(connection, k) {
			delete(h, k)
		}
	}
	pr.SetXForwarded()
	g.injectTrace(out.Context(), h)
	for i, v := range ex.identity {
		if v != "" {
			h[g.names[i]] = []string{v}
		}
	}
}

// errBadStatus is an upstream answer whose status the gateway cannot pass
// on as a final one.
var errBadStatus = errors.New("upstream answered with a status that cannot end a request")

// errUpstreamAuth is an upstream's 401: the gateway's token check is the
// only one the client can satisfy, so the client gets a 502.
var errUpstreamAuth = errors.New("upstream answered 401")

// errBrokenAnswer wraps the failure of an upstream answer that broke off
// before maxBufferedBody bytes, while the client can still get a status.
var errBrokenAnswer = errors.New("upstream broke off its answer")

// maxBufferedBody is how much of a response body other than an event
// stream the gateway reads before it sends the status on: an upstream that
// fails within it gets the client a 502 or 504 with a JSON-RPC error.
// JSON-RPC answers are usually far smaller; a larger body streams on.
const maxBufferedBody = 256 << 10

// modifyResponse runs when the upstream's headers arrive: it stops the
// header timer, keeps session bindings current, drops cookies, lets event
// streams run without a time limit and gives any other body the upstream
// timeout again to arrive whole, reading up to maxBufferedBody of it
// before the status goes to the client.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	ex := exchangeFrom(resp.Request.Context())
	g.observeUpstream(ex)
	if !ex.timer.Stop() {
		return errTimeout
	}
	if resp.StatusCode < 200 {
		// 101 Switching Protocols (the gateway asks for no upgrade), or a
		// status below 100, which net/http's server refuses to write.
		// Interim answers (100-199 but 101) never end up here.
		return fmt.Errorf("%w: status %d", errBadStatus, resp.StatusCode)
	}
	resp.Header.Del("Set-Cookie")
	resp.Header.Del("Set-Cookie2")
	// The gateway is the only OAuth resource server at this URL: an
	// upstream's own challenge would make clients discard a good token.
	resp.Header.Del("WWW-Authenticate")
	if resp.StatusCode == http.StatusUnauthorized {
		return errUpstreamAuth
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if id := resp.Header.Get(sessionHeader); id != "" && ok && id != ex.session {
		if !g.sessions.bind(id, ex.owner) {
			return fmt.Errorf("upstream reused session ID of another identity")
		}
	}
	if ex.session != "" && (resp.StatusCode == http.StatusNotFound || ex.method == http.MethodDelete && ok) {
		g.sessions.forget(ex.session)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		// An established stream (a POST's answer or the long-lived GET
		// stream) may stay open for as long as both ends want: the timer
		// stays stopped, and the server's WriteTimeout must not cut it.
		_ = http.NewResponseController(ex.w).SetWriteDeadline(time.Time{})
		return nil
	}
	// Any other body, such as a JSON-RPC answer, must arrive whole within
	// the upstream timeout of its headers: an upstream that stalls halfway
	// would otherwise hold the client forever, since the server's
	// WriteTimeout does not end a handler blocked reading the upstream.
	// When the timer fires it cancels the upstream request and the body
	// read fails. Within the first maxBufferedBody bytes, read here before
	// the status goes out, that becomes a 504 (or a 502 for an upstream
	// that broke off) with a JSON-RPC error. Past them the body streams on
	// and the reverse proxy aborts the handler (http.ErrAbortHandler) with
	// the status already written (it may be on the wire), so no error can
	// follow: the connection to the client is closed (HTTP/1.1) or the
	// stream reset (HTTP/2), and the client's read fails on the incomplete
	// Content-Length or chunked body; that is the one signal left. (An
	// HTTP/1.0 client of a body of unknown length, which ends where the
	// connection does, sees a short body instead.)
	ex.timer.Reset(g.timeout)
	body := &timedBody{ReadCloser: resp.Body, g: g, ex: ex, req: resp.Request}
	var head []byte
	var err error
	if cl := resp.ContentLength; cl >= 0 && cl <= maxBufferedBody {
		head = make([]byte, cl) // the transport ends the body at its length
		var n int
		n, err = io.ReadFull(body, head)
		head = head[:n]
	} else {
		head, err = io.ReadAll(io.LimitReader(body, maxBufferedBody+1))
	}
	if err != nil {
		body.Close()
		return fmt.Errorf("%w after %d bytes: %w", errBrokenAnswer, len(head), err)
	}
	if len(head) <= maxBufferedBody {
		body.Close()
		ex.timer.Stop() // the answer is complete
		resp.Body = io.NopCloser(bytes.NewReader(head))
		resp.ContentLength = int64(len(head))
		resp.TransferEncoding = nil
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified {
			resp.Header.Set("Content-Length", strconv.Itoa(len(head)))
		}
		return nil
	}
	body.streaming = true
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), body), body}
	return nil
}

// timedBody is an upstream response body read under the exchange's timer:
// it logs a read that failed because the timer fired.
type timedBody struct {
	io.ReadCloser
	g   *Gateway
	ex  *exchange
	req *http.Request // the upstream request, whose context the log gets
	n   int64         // bytes read so far
	// streaming is set once the status has gone to the client: a failure
	// then cuts the response off, and is logged here.
	streaming bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && b.streaming && b.ex.timedOut.Load() {
		b.g.log.LogAttrs(b.req.Context(), slog.LevelError, "gateway: upstream response body timed out; response to the client cut off",
			slog.String("upstream", b.g.upstream.Redacted()), slog.Duration("timeout", b.g.timeout), slog.Int64("body_bytes", b.n))
	}
	return n, err
}

// upstreamError answers when the upstream could not be reached, did not
// answer in time, or broke a rule: never a hang, always a clear status.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeFrom(r.Context())
	g.observeUpstream(ex)
	var netErr net.Error
	switch {
	case ex.flooded.Load():
		g.log.LogAttrs(r.Context(), slog.LevelError, "gateway: upstream sent too many interim (1xx) answers", slog.String("upstream", g.upstream.Redacted()), slog.Int("limit", maxInterimAnswers))
		writeError(w, http.StatusBadGateway, codeUpstreamUnavailable, "the MCP server behind this gateway sent too many interim (1xx) answers", ex.body)
	case ex.timedOut.Load() || errors.Is(err, errTimeout):
		g.log.LogAttrs(r.Context(), slog.LevelError, "gateway: upstream timed out", slog.String("upstream", g.upstream.Redacted()), slog.Duration("timeout", g.timeout))
		writeError(w, http.StatusGatewayTimeout, codeRequestTimeout,
			fmt.Sprintf("the MCP server behind this gateway did not answer within %s", g.timeout), ex.body)
	case errors.Is(err, errBrokenAnswer):
		g.log.LogAttrs(r.Context(), slog.LevelError, "gateway: upstream broke off its answer", slog.String("upstream", g.upstream.Redacted()), slog.String("error", err.Error()))
		writeError(w, http.StatusBadGateway, codeUpstreamUnavailable, "the MCP server behind this gateway broke off its answer", ex.body)
	case errors.Is(err, errUpstreamAuth):
		g.log.LogAttrs(r.Context(), slog.LevelError, "gateway: upstream answered 401; behind mcpauth proxy it must not require authentication of its own", slog.String("upstream", g.upstream.Redacted()))
		writeError(w, http.StatusBadGateway, codeUpstreamUnavailable, "the MCP server behind this gateway refused the request (401); its operator must turn off its own authentication", ex.body)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		g.log.LogAttrs(r.Context(), slog.LevelDebug, "gateway: client canceled the request")
		w.WriteHeader(http.StatusBadGateway)
	case errors.As(err, &netErr) && netErr.Timeout():
		g.log.LogAttrs(r.Context(), slog.LevelError, "gateway: upstream timed out", slog.String("upstream", g.upstream.Redacted()), slog.String("error", err.Error()))
		writeError(w, http.StatusGatewayTimeout, codeRequestTimeout, "the MCP server behind this gateway did not answer in time", ex.body)
	default:
		g.log.LogAttrs(r.Context(), slog.LevelError, "gateway: upstream unavailable", slog.String("upstream", g.upstream.Redacted()), slog.String("error", err.Error()))
		writeError(w, http.StatusBadGateway, codeUpstreamUnavailable, "the MCP server behind this gateway is unavailable", ex.body)
	}
}

// isHeaderValue reports whether v can be sent as a header value unchanged:
// visible ASCII, spaces and tabs (RFC 9110 §5.5, without obs-text, whose
// meaning upstreams disagree on).
func isHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}

// namedIn reports whether the Connection header values conn name the
// header name (RFC 9110 §7.6.1: a comma-separated list of field names).
func namedIn(conn []string, name string) bool {
	for _, v := range conn {
		for f := range strings.SplitSeq(v, ",") {
			if sameHeaderName(textproto.TrimString(f), name) {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold reports whether the header name s starts with prefix, as
// sameHeaderName compares.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && sameHeaderName(s[:len(prefix)], prefix)
}

// isVisibleASCII reports whether s has only 0x21-0x7E, the characters an
// Mcp-Session-Id may use (MCP 2025-11-25 "Session Management").
func isVisibleASCII(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return s != ""
}
