package gateway

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRequestID(t *testing.T) {
	for _, tc := range []struct {
		name, body, id string
		ok             bool
	}{
		{"number id", `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, `7`, true},
		{"string id", ` {"id":"a\"b","jsonrpc":"2.0","method":"x"}`, `"a\"b"`, true},
		{"negative id", `{"jsonrpc":"2.0","id":-1,"method":"x"}`, `-1`, true},
		{"notification: null id", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, `null`, true},
		{"object id is not an id", `{"jsonrpc":"2.0","id":{"a":1},"method":"x"}`, `null`, true},
		{"batch: null id", `[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"}]`, `null`, true},
		{"not JSON-RPC 2.0", `{"jsonrpc":"1.0","id":1}`, ``, false},
		{"not JSON", `hello`, ``, false},
		{"truncated", `{"jsonrpc":"2.0","id":1`, ``, false},
		{"empty", ``, ``, false},
		{"batch of strangers", `[1,2]`, ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := requestID([]byte(tc.body))
			if ok != tc.ok || string(id) != tc.id {
				t.Errorf("requestID = %s, %v; want %s, %v", id, ok, tc.id, tc.ok)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	writeError(w, 502, codeUpstreamUnavailable, "down", []byte(`{"jsonrpc":"2.0","id":"x","method":"tools/list"}`))
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"jsonrpc": "2.0", "id": "x", "error": map[string]any{"code": float64(-32000), "message": "down"}}
	if diff := cmp.Diff(want, got); diff != "" || w.Code != 502 || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("%d %s (-want +got):\n%s", w.Code, w.Header().Get("Content-Type"), diff)
	}
	w = httptest.NewRecorder()
	writeError(w, 504, codeRequestTimeout, "slow", nil)
	if w.Code != 504 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") || w.Body.String() != "slow\n" {
		t.Errorf("plain: %d %s %q", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
}

// FuzzRequestID checks that any body gives either no JSON-RPC verdict or an
// error response that is valid JSON with a string, number or null id.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, `[{"jsonrpc":"2.0"}]`, `{"jsonrpc":"2.0","id":1e400}`, `{"jsonrpc":"2.0","id":"\ud800"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		id, ok := requestID(body)
		if !ok {
			return
		}
		w := httptest.NewRecorder()
		writeError(w, 502, codeUpstreamUnavailable, "m", body)
		var resp struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.JSONRPC != "2.0" {
			t.Fatalf("reply %q for body %q: %v", w.Body, body, err)
		}
		if c := resp.ID[0]; c != '"' && c != '-' && (c < '0' || c > '9') && string(resp.ID) != "null" {
			t.Fatalf("id %s (from %s)", resp.ID, id)
		}
	})
}
