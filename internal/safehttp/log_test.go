package safehttp

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// logLines decodes the JSON log records in b into maps of the keys tests
// care about.
func logLines(t *testing.T, b *bytes.Buffer, keys ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		kept := map[string]any{}
		for _, k := range keys {
			if v, ok := rec[k]; ok {
				kept[k] = v
			}
		}
		out = append(out, kept)
	}
	return out
}

func TestFetchLogs(t *testing.T) {
	srv, _ := newTLSServer(t, serveDoc)
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, fake := publicClient(t, srv, Options{Logger: logger})
	fake.answer("private.example.com", "10.0.0.1")
	ctx := context.Background()
	if _, err := c.Fetch(ctx, Request{URL: "https://example.com/c.json"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(ctx, Request{URL: "https://private.example.com/c.json"}); err == nil {
		t.Fatal("fetch of a private host succeeded")
	}
	if _, err := c.Fetch(ctx, Request{URL: "https://example.com:8443/c.json"}); err != nil {
		t.Fatal(err)
	}
	got := logLines(t, &buf, "level", "msg", "url", "reason", "addr", "status", "port")
	want := []map[string]any{
		{"level": "DEBUG", "msg": "untrusted fetch", "url": "https://example.com/c.json", "addr": publicIP, "status": 200.0},
		{"level": "INFO", "msg": "untrusted fetch failed", "url": "https://private.example.com/c.json", "reason": "blocked_address", "addr": "10.0.0.1"},
		{"level": "INFO", "msg": "untrusted fetch to a non-standard port", "url": "https://example.com:8443/c.json", "port": 8443.0},
		{"level": "DEBUG", "msg": "untrusted fetch", "url": "https://example.com:8443/c.json", "addr": publicIP, "status": 200.0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("B13 attack 12 log records (-want +got):\n%s", diff)
	}
}
