package authserver

import (
	"bytes"
	"html"
	"image"
	"image/png"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/cimd"
)

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLogo checks that client logos are fetched safely, cached, and served
// from our origin (CIMD §8.8, §9.2, docs/security.md attack 33).
func TestLogo(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	img := pngBytes(t)
	h.docs.publish("/logo.png", "image/png", img, nil)
	id := h.publishClient("/client.json", func(d map[string]any) { d["logo_uri"] = h.docs.url("/logo.png") })
	b := h.newBrowser()
	cp := b.consentPage(b.login(b.authorize(authParams(id, newPKCE())), testPassword))
	m := regexp.MustCompile(`<img class="logo" src="([^"]+)"`).FindStringSubmatch(cp.body)
	if m == nil {
		t.Fatalf("C13 no logo on the consent page:\n%s", cp.body)
	}
	logoURL := html.UnescapeString(m[1])

	t.Run("C13 logo served from our origin", func(t *testing.T) {
		if !strings.HasPrefix(logoURL, "/logo?client_id=") {
			t.Fatalf("logo hot-linked: %q", logoURL)
		}
		resp := b.in(t).get(logoURL)
		if resp.status != http.StatusOK || resp.body != string(img) {
			t.Fatalf("GET %s: %d, %d bytes", logoURL, resp.status, len(resp.body))
		}
		for k, want := range map[string]string{"Content-Type": "image/png", "X-Content-Type-Options": "nosniff",
			"Content-Security-Policy": "default-src 'none'; sandbox"} {
			if got := resp.header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
	})
	t.Run("D5 logo cached for the document's freshness", func(t *testing.T) {
		b := b.in(t)
		b.get(logoURL)
		if n := h.docs.fetchCount("/logo.png"); n != 1 {
			t.Errorf("logo fetched %d times, want once", n)
		}
		h.clock.advance(6 * time.Minute) // the document's default 5 minute freshness
		if resp := b.get(logoURL); resp.status != http.StatusOK {
			t.Errorf("GET after expiry: %d", resp.status)
		}
		if n := h.docs.fetchCount("/logo.png"); n != 2 {
			t.Errorf("logo fetched %d times, want a second fetch after the document expired", n)
		}
	})
	t.Run("C13 logo needs a signed-in user", func(t *testing.T) {
		if resp := h.in(t).newBrowser().get(logoURL); resp.status != http.StatusNotFound {
			t.Errorf("GET without a session: %d", resp.status)
		}
	})

	refused := []struct {
		name        string
		contentType string
		body        []byte
		logoURI     string
	}{
		{"attack 33 SVG", "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), ""},
		{"attack 33 HTML served as PNG", "image/png", []byte("<html><script>alert(1)</script></html>"), ""},
		{"attack 33 PNG served as text/html", "text/html", img, ""},
		{"attack 33 image over 64 KiB", "image/png", append(append([]byte{}, img...), make([]byte, logoMaxBytes)...), ""},
		{"attack 33 logo_uri over http", "image/png", img, "http://127.0.0.1/logo.png"},
		{"attack 33 logo_uri on a link-local address", "image/png", img, "https://169.254.169.254/logo.png"},
		{"attack 33 logo_uri data:", "image/png", img, "data:image/png;base64,AAAA"},
	}
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			path := "/bad-logo-" + string(rune('a'+i))
			h.docs.publish(path, tc.contentType, tc.body, nil)
			uri := tc.logoURI
			if uri == "" {
				uri = h.docs.url(path)
			}
			c := h.publishClient(path+".json", func(d map[string]any) { d["logo_uri"] = uri })
			if resp := b.get("/logo?client_id=" + c); resp.status != http.StatusNotFound || strings.HasPrefix(resp.header.Get("Content-Type"), "image/") {
				t.Errorf("GET /logo: %d %s", resp.status, resp.header.Get("Content-Type"))
			}
		})
	}
	t.Run("A12 no logo for a blocked client", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		p, err := cimd.NewPolicy(cimd.PolicyConfig{Deny: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		h.resolver.SetPolicy(p)
		if resp := b.get(logoURL); resp.status != http.StatusNotFound {
			t.Errorf("GET: %d", resp.status)
		}
	})
}
