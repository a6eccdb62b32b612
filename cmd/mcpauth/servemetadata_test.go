package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeMetadataServesTheDocument(t *testing.T) {
	clientID := startServeMetadata(t, map[string]any{"client_name": "dev", "redirect_uris": []string{"http://127.0.0.1/callback"}})
	if !strings.HasPrefix(clientID, "http://127.0.0.1:") || !strings.HasSuffix(clientID, "/client.json") {
		t.Fatalf("client_id %q", clientID)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(clientID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Run("C2 client_id rewritten to the URL", func(t *testing.T) {
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil || doc["client_id"] != clientID || doc["client_name"] != "dev" {
			t.Errorf("document %s (%v)", body, err)
		}
	})
	t.Run("B headers: exactly 200, JSON, no-cache with an ETag", func(t *testing.T) {
		h := resp.Header
		if resp.StatusCode != http.StatusOK || h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-cache" ||
			h.Get("ETag") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("status %d, headers %v", resp.StatusCode, h)
		}
	})
	t.Run("D revalidation answers 304", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, clientID, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusNotModified {
			t.Errorf("status %d, want 304", r.StatusCode)
		}
	})
	t.Run("B a range request still gets the whole document", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, clientID, nil)
		req.Header.Set("Range", "bytes=0-3")
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK || !bytes.Equal(b, body) {
			t.Errorf("status %d, %d bytes", r.StatusCode, len(b))
		}
	})
	t.Run("only the document's path", func(t *testing.T) {
		for _, u := range []string{strings.TrimSuffix(clientID, "client.json") + "other.json", clientID + "?x=1"} {
			r, err := c.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404", u, r.StatusCode)
			}
		}
	})
}

// TestServeMetadataFixedAddress: the document's own client_id names the
// address it is served on; it is served as written and its URL printed.
func TestServeMetadataFixedAddress(t *testing.T) {
	addr := freeAddr(t)
	clientID := "http://" + addr + "/client.json"
	doc, _ := json.Marshal(map[string]any{"client_id": clientID, "client_name": "fixed", "redirect_uris": []string{"http://127.0.0.1/callback"}})
	file := filepath.Join(t.TempDir(), "client.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"client", "serve-metadata", "--file", file, "--addr", addr}, func(string) string { return "" }, strings.NewReader(""), out, errOut)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve-metadata: %v\n%s", err, errOut)
		}
	}()
	for i := 0; !strings.HasSuffix(out.String(), "\n"); i++ {
		if i == 200 {
			t.Fatalf("serve-metadata printed nothing\n%s", errOut)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if got := strings.TrimSpace(out.String()); got != clientID {
		t.Errorf("printed %q, want the client_id %q", got, clientID)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(clientID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, doc) {
		t.Errorf("GET %s = %d %s, want the file unchanged", clientID, resp.StatusCode, body)
	}
}

func TestServeMetadataRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"client_id":"http://127.0.0.1:1/x.json","redirect_uris":["http://127.0.0.1/callback"]}`
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no --file", nil, "--file"},
		{"non-loopback address", []string{"--file", write("a.json", good), "--addr", "0.0.0.0:0"}, "loopback"},
		{"missing file", []string{"--file", filepath.Join(dir, "none.json"), "--addr", "127.0.0.1:0"}, "--file"},
		{"C2 client_id differs from the URL", []string{"--file", write("b.json", good), "--addr", "127.0.0.1:0"}, "--rewrite-client-id"},
		{"not JSON", []string{"--file", write("c.json", "<html>"), "--addr", "127.0.0.1:0"}, "JSON"},
		{"attack 26 client_secret", []string{"--file", write("d.json", `{"client_secret":"s","redirect_uris":["http://127.0.0.1/callback"]}`),
			"--addr", "127.0.0.1:0", "--rewrite-client-id"}, "would refuse"},
		{"attack 30 javascript redirect", []string{"--file", write("e.json", `{"redirect_uris":["javascript:alert(1)"]}`),
			"--addr", "127.0.0.1:0", "--rewrite-client-id"}, "would refuse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			err := run(ctx, append([]string{"client", "serve-metadata"}, tt.args...), func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
			code := exitCode(err, &errOut)
			if code != 2 || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q: nothing should be served", out.String())
			}
		})
	}
}
