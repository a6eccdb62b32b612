// Package accesslog gives every HTTP request an id and writes one log
// record per request when it ends: method, path without the query, status,
// response bytes, duration, request id, and the client_id when a handler
// learned it.
package accesslog

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Entry is what one request's log record holds that handlers fill in.
type Entry struct {
	// ID is the request id, also sent in the X-Request-Id response header.
	ID string

	mu       sync.Mutex
	clientID string
}

type ctxKey struct{}

// FromContext returns the request's entry, or nil outside Handler and
// WithID.
func FromContext(ctx context.Context) *Entry {
	e, _ := ctx.Value(ctxKey{}).(*Entry)
	return e
}

// RequestID is the request's id, "" outside Handler and WithID.
func RequestID(ctx context.Context) string {
	if e := FromContext(ctx); e != nil {
		return e.ID
	}
	return ""
}

// SetClientID records the OAuth client_id the request acts for, once a
// handler has checked it; a no-op outside Handler and WithID.
func SetClientID(ctx context.Context, clientID string) {
	if e := FromContext(ctx); e != nil {
		e.mu.Lock()
		e.clientID = clientID
		e.mu.Unlock()
	}
}

// WithID gives a request an id (and an Entry) unless an outer Handler or
// WithID already did, without logging.
func WithID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if FromContext(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		e := &Entry{ID: newID()}
		w.Header().Set("X-Request-Id", e.ID)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, e)))
	})
}

// Handler serves next and then logs the request at level Info with the
// message "request". The query is left out: it can carry authorization
// codes, state and, from careless clients, tokens.
func Handler(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		e := &Entry{ID: newID()}
		w.Header().Set("X-Request-Id", e.ID)
		rw := NewRecorder(w)
		next.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, e)))
		e.mu.Lock()
		clientID := e.clientID
		e.mu.Unlock()
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rw.Status()),
			slog.Int64("bytes", rw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", e.ID),
		}
		if clientID != "" {
			attrs = append(attrs, slog.String("client_id", clientID))
		}
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// Recorder is a ResponseWriter that notes the status and the size of the
// response, for the access log and for metrics and traces of the same
// request. It passes flushes and http.ResponseController calls through.
type Recorder struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (w *Recorder) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // 1xx are interim
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *Recorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush passes streamed responses (server-sent events) on at once.
func (w *Recorder) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *Recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// NewRecorder wraps w.
func NewRecorder(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// Status is the status sent, 200 when the handler sent nothing.
func (w *Recorder) Status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// newID is a random request id: 12 URL-safe characters.
func newID() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
