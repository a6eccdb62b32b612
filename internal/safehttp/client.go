package safehttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client fetches untrusted URLs: CIMD documents, jwks_uri and logo_uri
// (CIMD §5, §8.6). It is safe for concurrent use. Its per-host limits are
// shared by all its fetches, so one process should use one Client.
type Client struct {
	opts  Options
	tls   *tls.Config
	hosts *hostLimiter
	log   *slog.Logger
}

// New returns a Client configured by opts, or an error naming the first
// invalid option.
func New(opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{
		opts: o,
		tls: &tls.Config{
			RootCAs:    o.RootCAs,
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"},
		},
		hosts: newHostLimiter(o.PerHostRate, o.PerHostBurst, o.PerHostConcurrency, o.Now),
		log:   o.Logger,
	}, nil
}

// Request is one GET of an untrusted URL.
type Request struct {
	// URL is fetched exactly as given (after CheckURL).
	URL string
	// Accept is sent as the Accept header when not empty, e.g.
	// "application/cimd+json, application/json;q=0.9" (RFC 9110 §12.5.1).
	Accept string
	// Header carries conditional request headers for cache revalidation
	// (RFC 9110 §13.1): only If-None-Match and If-Modified-Since are sent;
	// every other header (Cookie, Authorization, ...) is ignored.
	Header http.Header
	// Known says the caller holds a document it accepted from this URL
	// before (a revalidation). Such fetches draw on a per-host budget of
	// their own: fetches of URLs nobody has seen a document at, which any
	// stranger can ask for, cannot use up the budget that keeps the clients
	// already known working.
	Known bool
}

// conditionalHeaders are the only caller headers Fetch forwards.
func conditionalHeaders() [2]string { return [...]string{"If-None-Match", "If-Modified-Since"} }

// Response is a successful fetch.
type Response struct {
	// URL is Request.URL.
	URL string
	// StatusCode is 200, or 304 when the request carried a conditional
	// header and the server answered Not Modified (Body is then empty).
	StatusCode int
	// Header is the response header.
	Header http.Header
	// Body is the complete body, at most Options.MaxBodyBytes long.
	Body []byte
	// Addr is the address actually dialled.
	Addr netip.Addr
}

// CheckURL is the package-level CheckURL with this client's AllowLoopback,
// plus its AllowedPorts. It does no I/O.
func (c *Client) CheckURL(rawURL string) (*url.URL, error) {
	u, err := CheckURL(rawURL, c.opts.AllowLoopback)
	if err != nil {
		return nil, err
	}
	port, err := urlPort(u)
	if err != nil {
		return nil, &Error{Reason: ReasonPort, URL: rawURL, Err: err}
	}
	if len(c.opts.AllowedPorts) > 0 && !slices.Contains(c.opts.AllowedPorts, port) {
		return nil, &Error{Reason: ReasonPort, URL: rawURL, Err: fmt.Errorf("port %d is not one of the allowed ports %v", port, c.opts.AllowedPorts)}
	}
	return u, nil
}

// Fetch GETs req.URL under every rule of CIMD §5, §8.6: the URL passes
// CheckURL; the host is resolved once and every address checked with CheckAddr;
// only a checked address is dialled; TLS is verified; no redirect is followed;
// only 200 (or 304 to a conditional request) succeeds; responses that set
// cookies or are compressed are refused; the body is capped; one overall
// deadline and per-phase limits apply; per-host concurrency and rate limits
// apply. No proxy, cookie jar, credentials or Authorization header is ever
// used.
//
// Every error is an *Error. Fetch is safe for concurrent use.
func (c *Client) Fetch(ctx context.Context, req Request) (*Response, error) {
	start := time.Now()
	resp, err := c.fetch(ctx, req)
	attrs := []slog.Attr{slog.String("url", req.URL), slog.Duration("duration", time.Since(start))}
	if err != nil {
		attrs = append(attrs, slog.String("reason", string(err.Reason)), slog.String("err", err.Error()))
		if err.Addr.IsValid() {
			attrs = append(attrs, slog.String("addr", err.Addr.String()))
		}
		if err.StatusCode != 0 {
			attrs = append(attrs, slog.Int("status", err.StatusCode))
		}
		c.log.LogAttrs(ctx, slog.LevelInfo, "untrusted fetch failed", attrs...)
		return nil, err
	}
	attrs = append(attrs, slog.String("addr", resp.Addr.String()), slog.Int("status", resp.StatusCode), slog.Int("bytes", len(resp.Body)))
	c.log.LogAttrs(ctx, slog.LevelDebug, "untrusted fetch", attrs...)
	return resp, nil
}

// fetch does the work of Fetch; its error is always a non-nil *Error or nil.
func (c *Client) fetch(ctx context.Context, req Request) (*Response, *Error) {
	u, err := c.CheckURL(req.URL)
	if err != nil {
		return nil, err.(*Error)
	}
	header, herr := c.header(req)
	if herr != nil {
		herr.URL = req.URL
		return nil, herr
	}
	port, _ := urlPort(u) // CheckURL validated it
	if port != 443 && u.Scheme == "https" {
		c.log.LogAttrs(ctx, slog.LevelInfo, "untrusted fetch to a non-standard port", slog.String("url", req.URL), slog.Int("port", port))
	}

	octx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	f := &fetch{c: c, parent: ctx, ctx: octx, rawURL: req.URL, host: strings.ToLower(u.Hostname()), port: port}

	release, lerr := c.hosts.acquire(octx, f.host, req.Known)
	if lerr != nil {
		if errors.Is(lerr, errRateLimited) {
			return nil, &Error{Reason: ReasonRateLimited, URL: req.URL, Err: fmt.Errorf("more than %d fetches at %v per second to %s", c.opts.PerHostBurst, c.opts.PerHostRate, f.host)}
		}
		e := f.deadline("waiting for one of the "+strconv.Itoa(c.opts.PerHostConcurrency)+" fetch slots of "+f.host, c.opts.Timeout, lerr)
		e.URL = req.URL
		return nil, e
	}
	defer release()
	return f.do(header)
}

// header builds the complete outgoing header. No caller header other than
// the conditional ones is copied, so no Cookie or Authorization can leak
// (RFC 9110 §4.3.4, CIMD §8.6).
func (c *Client) header(req Request) (http.Header, *Error) {
	h := http.Header{
		"User-Agent":      {c.opts.UserAgent},
		"Accept-Encoding": {"identity"}, // CIMD §5, §8.7: no transparent decompression
	}
	if req.Accept != "" {
		h.Set("Accept", req.Accept)
	}
	for _, k := range conditionalHeaders() {
		if v := req.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	for k, vs := range h {
		for _, v := range vs {
			if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r >= 0x7f }) {
				return nil, &Error{Reason: ReasonRequest, Err: fmt.Errorf("header %s contains a control or non-ASCII character", k)}
			}
		}
	}
	return h, nil
}

// fetch is the state of one Fetch call. The Transport may run the dial
// functions on another goroutine, so the fields they write are guarded.
type fetch struct {
	c      *Client
	parent context.Context // the caller's context
	ctx    context.Context // parent plus the overall Timeout
	rawURL string
	host   string // lower case, no brackets
	port   int

	mu      sync.Mutex
	addr    netip.Addr // last address dialled
	dialErr *Error     // why the connection could not be set up
}

func (f *fetch) setAddr(a netip.Addr) {
	f.mu.Lock()
	f.addr = a
	f.mu.Unlock()
}

// fail records e as the connection failure and returns it.
func (f *fetch) fail(e *Error) *Error {
	f.mu.Lock()
	f.dialErr = e
	f.mu.Unlock()
	return e
}

// result completes e with the URL, dialled address and status.
func (f *fetch) result(e *Error, status int) *Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.URL = f.rawURL
	if !e.Addr.IsValid() {
		e.Addr = f.addr
	}
	if e.StatusCode == 0 {
		e.StatusCode = status
	}
	return e
}

// do sends the request on a Transport of its own, whose dialer knows this
// fetch's checked target, and validates the response.
func (f *fetch) do(header http.Header) (*Response, *Error) {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	tr := &http.Transport{
		Proxy:                  nil, // never use environment proxies
		DialContext:            f.dialPlain,
		DialTLSContext:         f.dialTLS,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
		ResponseHeaderTimeout:  f.c.opts.HeaderTimeout,
		Protocols:              protocols,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // CIMD §5: never follow
		},
	}
	hreq, err := http.NewRequestWithContext(f.ctx, http.MethodGet, f.rawURL, nil)
	if err != nil {
		return nil, f.result(&Error{Reason: ReasonRequest, Err: err}, 0)
	}
	hreq.Header = header
	res, err := hc.Do(hreq)
	if err != nil {
		return nil, f.result(f.roundTripError(err), 0)
	}
	defer res.Body.Close()

	if e := f.checkResponse(res, header); e != nil {
		return nil, f.result(e, res.StatusCode)
	}
	var body []byte
	if res.StatusCode == http.StatusOK {
		limit := f.c.opts.MaxBodyBytes
		body, err = io.ReadAll(io.LimitReader(res.Body, limit+1))
		if err != nil {
			if f.ctx.Err() != nil {
				return nil, f.result(f.deadline("reading the body", f.c.opts.Timeout, err), res.StatusCode)
			}
			return nil, f.result(&Error{Reason: ReasonConnect, Err: fmt.Errorf("reading the body: %w", err)}, res.StatusCode)
		}
		if int64(len(body)) > limit {
			return nil, f.result(&Error{Reason: ReasonTooLarge, Err: fmt.Errorf("the body is longer than %d bytes", limit)}, res.StatusCode)
		}
	}
	f.mu.Lock()
	addr := f.addr
	f.mu.Unlock()
	return &Response{URL: f.rawURL, StatusCode: res.StatusCode, Header: res.Header, Body: body, Addr: addr}, nil
}

// roundTripError classifies an error from http.Client.Do.
func (f *fetch) roundTripError(err error) *Error {
	f.mu.Lock()
	de := f.dialErr
	f.mu.Unlock()
	if de != nil {
		return de
	}
	if f.ctx.Err() != nil {
		return f.deadline("the request", f.c.opts.Timeout, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Reason: ReasonTimeout, Err: fmt.Errorf("the response headers did not arrive within %s: %w", f.c.opts.HeaderTimeout, err)}
	}
	if strings.Contains(err.Error(), "server response headers exceeded") {
		return &Error{Reason: ReasonTooLarge, Err: fmt.Errorf("the response headers are longer than %d bytes", MaxResponseHeaderBytes)}
	}
	return &Error{Reason: ReasonConnect, Err: err}
}

// checkResponse applies the status, cookie, encoding and declared-length
// rules before any body byte is read.
func (f *fetch) checkResponse(res *http.Response, sent http.Header) *Error {
	conditional := sent.Get("If-None-Match") != "" || sent.Get("If-Modified-Since") != ""
	switch code := res.StatusCode; {
	case code == http.StatusNotModified && conditional:
	case code == http.StatusNotModified:
		return &Error{Reason: ReasonStatus, Err: errors.New("304 Not Modified answers only a conditional request, and none was sent")}
	case code >= 300 && code <= 399:
		return &Error{Reason: ReasonRedirect}
	case code != http.StatusOK:
		return &Error{Reason: ReasonStatus}
	}
	if len(res.Header.Values("Set-Cookie")) > 0 || len(res.Header.Values("Set-Cookie2")) > 0 {
		return &Error{Reason: ReasonSetCookie}
	}
	for _, v := range res.Header.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(v, ",") {
			coding = strings.TrimSpace(coding)
			if coding != "" && !strings.EqualFold(coding, "identity") {
				return &Error{Reason: ReasonEncoding, Err: fmt.Errorf("the Content-Encoding is %q", v)}
			}
		}
	}
	if limit := f.c.opts.MaxBodyBytes; res.ContentLength > limit {
		return &Error{Reason: ReasonTooLarge, Err: fmt.Errorf("the Content-Length is %d; at most %d bytes are read", res.ContentLength, limit)}
	}
	return nil
}
