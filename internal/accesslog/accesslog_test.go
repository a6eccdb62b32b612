package accesslog

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHandler(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    map[string]any
	}{
		{"status and client_id", func(w http.ResponseWriter, r *http.Request) {
			SetClientID(r.Context(), "https://app.example/c.json")
			w.WriteHeader(http.StatusTeapot)
			_, _ = io.WriteString(w, "tea")
		}, map[string]any{"status": float64(418), "bytes": float64(3), "client_id": "https://app.example/c.json"}},
		{"nothing written is 200, no client_id", func(w http.ResponseWriter, r *http.Request) {},
			map[string]any{"status": float64(200), "bytes": float64(0)}},
		{"interim 103 then 204", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusNoContent)
		}, map[string]any{"status": float64(204), "bytes": float64(0)}},
		{"a flush sends 200", func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("flush through the recorder: %v", err)
			}
			if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
				t.Errorf("write deadline through the recorder: %v", err)
			}
		}, map[string]any{"status": float64(200), "bytes": float64(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			var id string
			h := Handler(slog.New(slog.NewJSONHandler(&buf, nil)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id = RequestID(r.Context())
				tc.handler(w, r)
			}))
			srv := httptest.NewServer(h)
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/authorize?code=secret-code&state=s")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			srv.Close() // the line is written once the handler returned
			if id == "" || resp.Header.Get("X-Request-Id") != id {
				t.Errorf("request id %q, header %q", id, resp.Header.Get("X-Request-Id"))
			}
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("not one JSON record: %q", buf.String())
			}
			if _, ok := rec["duration"].(float64); !ok {
				t.Errorf("no duration: %v", rec)
			}
			for _, k := range []string{"time", "level", "duration"} {
				delete(rec, k)
			}
			want := map[string]any{"msg": "request", "method": "GET", "path": "/authorize", "request_id": id}
			for k, v := range tc.want {
				want[k] = v
			}
			if diff := cmp.Diff(want, rec); diff != "" {
				t.Errorf("access line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWithID: WithID keeps the id an outer Handler gave, so that error
// pages and the access line name the same request; alone it makes one.
func TestWithID(t *testing.T) {
	var inner string
	h := WithID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner = RequestID(r.Context()) }))
	var outer string
	both := Handler(slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outer = RequestID(r.Context())
		h.ServeHTTP(w, r)
	}))
	rec := httptest.NewRecorder()
	both.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if inner == "" || inner != outer || rec.Header().Get("X-Request-Id") != inner {
		t.Errorf("outer %q, inner %q, header %q", outer, inner, rec.Header().Get("X-Request-Id"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if inner == "" || inner == outer || rec.Header().Get("X-Request-Id") != inner {
		t.Errorf("alone: id %q, header %q", inner, rec.Header().Get("X-Request-Id"))
	}
	if RequestID(t.Context()) != "" {
		t.Error("a request id outside any handler")
	}
	SetClientID(t.Context(), "x") // no entry: nothing to do, no panic
}
