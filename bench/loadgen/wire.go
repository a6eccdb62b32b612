package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// wireConn is the load generator's HTTP/1.1 client: one keep-alive
// connection, requests written from a reused buffer, responses parsed in
// place. It exists so that the generator, which shares the machine's cores
// with the server it measures, spends as little CPU per request as a C tool
// such as wrk would; net/http's client costs several times more. It speaks
// only what mcpauth answers (Content-Length or chunked bodies) and checks
// every response.
type wireConn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	body []byte
}

// wireResponse is valid until the next request on the same connection.
type wireResponse struct {
	status   int
	location string
	body     []byte
}

func newWireConn(addr string) *wireConn { return &wireConn{addr: addr} }

func (w *wireConn) close() {
	if w.c != nil {
		w.c.Close()
		w.c = nil
	}
}

// get sends GET target (path and query, already escaped).
func (w *wireConn) get(target string) (wireResponse, error) {
	w.req = append(w.req[:0], "GET "...)
	w.req = append(w.req, target...)
	w.req = append(w.req, " HTTP/1.1\r\nHost: "...)
	w.req = append(w.req, w.addr...)
	w.req = append(w.req, "\r\n\r\n"...)
	return w.roundTrip()
}

// postForm sends a form body; auth, when not empty, is a whole
// Authorization header value.
func (w *wireConn) postForm(path, auth string, form []byte) (wireResponse, error) {
	w.req = append(w.req[:0], "POST "...)
	w.req = append(w.req, path...)
	w.req = append(w.req, " HTTP/1.1\r\nHost: "...)
	w.req = append(w.req, w.addr...)
	w.req = append(w.req, "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "...)
	w.req = strconv.AppendInt(w.req, int64(len(form)), 10)
	if auth != "" {
		w.req = append(w.req, "\r\nAuthorization: "...)
		w.req = append(w.req, auth...)
	}
	w.req = append(w.req, "\r\n\r\n"...)
	w.req = append(w.req, form...)
	return w.roundTrip()
}

func (w *wireConn) roundTrip() (wireResponse, error) {
	// A kept-alive connection the server closed meanwhile fails on first
	// use with EOF or a reset and no byte of a response; one fresh
	// connection is tried then. A timeout is never retried: the server may
	// have acted on the request (a code redeemed) and be slow to answer.
	for attempt := 0; ; attempt++ {
		fresh := w.c == nil
		if fresh {
			c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
			if err != nil {
				return wireResponse{}, err
			}
			w.c, w.r = c, bufio.NewReaderSize(c, 8192)
		}
		_ = w.c.SetDeadline(time.Now().Add(10 * time.Second))
		resp, started, err := w.exchange()
		if err == nil {
			return resp, nil
		}
		w.close()
		var ne net.Error
		if fresh || started || attempt > 0 || errors.As(err, &ne) && ne.Timeout() {
			return wireResponse{}, err
		}
	}
}

// exchange writes the request and reads one response. started reports
// whether any byte of the response arrived.
func (w *wireConn) exchange() (resp wireResponse, started bool, err error) {
	if _, err := w.c.Write(w.req); err != nil {
		return resp, false, err
	}
	line, err := w.r.ReadSlice('\n')
	if err != nil {
		return resp, len(line) > 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return resp, true, fmt.Errorf("bad status line %q", line)
	}
	resp.status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return resp, true, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closing := -1, false, false
	for {
		line, err := w.r.ReadSlice('\n')
		if err != nil {
			return resp, true, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return resp, true, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return resp, true, fmt.Errorf("bad Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			closing = asciiEqualFold(value, "close")
		case asciiEqualFold(name, "Location"):
			resp.location = string(value)
		}
	}
	w.body = w.body[:0]
	switch {
	case chunked:
		if w.body, err = readChunked(w.r, w.body); err != nil {
			return resp, true, err
		}
	case length >= 0:
		if length > 1<<20 {
			return resp, true, fmt.Errorf("response of %d bytes", length)
		}
		w.body = append(w.body, make([]byte, length)...)
		if _, err := io.ReadFull(w.r, w.body); err != nil {
			return resp, true, err
		}
	default:
		return resp, true, errors.New("response without Content-Length or chunked encoding")
	}
	resp.body = w.body
	if closing {
		w.close()
	}
	return resp, true, nil
}

func readChunked(r *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return dst, err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseUint(string(size), 16, 20)
		if err != nil {
			return dst, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// Trailers (none expected) end with an empty line.
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return dst, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return dst, nil
				}
			}
		}
		if len(dst)+int(n) > 1<<20 {
			return dst, errors.New("chunked response over 1 MiB")
		}
		start := len(dst)
		dst = append(dst, make([]byte, n+2)...)
		if _, err := io.ReadFull(r, dst[start:]); err != nil {
			return dst, err
		}
		if !bytes.Equal(dst[len(dst)-2:], []byte("\r\n")) {
			return dst, errors.New("chunk without CRLF")
		}
		dst = dst[:len(dst)-2]
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
