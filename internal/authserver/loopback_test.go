package authserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLoopbackClient runs a loopback development client (an http://localhost
// client_id whose metadata comes from its own query, AT Protocol OAuth,
// Localhost Client Development) through /authorize, consent and /token.
func TestLoopbackClient(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	b := h.newBrowser()
	id := "http://localhost?" + url.Values{"redirect_uri": {"http://127.0.0.1:4711/callback"}, "scope": {"read"}}.Encode()

	t.Run("A13 consent labels it and the flow yields tokens", func(t *testing.T) {
		b := b.in(t)
		q := authParams(id, newPKCE())
		cp := b.consentPage(b.login(b.authorize(q), testPassword))
		for _, want := range []string{`id="client-host">a development client on this computer<`, `id="localhost-warning"`, `id="redirect-host">127.0.0.1<`} {
			if !strings.Contains(cp.body, want) {
				t.Errorf("consent page lacks %q:\n%s", want, cp.body)
			}
		}
		b.decide(cp, "deny")
		mustTokens(t, b.flow(id, nil)) // testRedirect is the same URI on another port (RFC 8252 §7.3)
	})
	refused := []struct {
		name, id string
		edit     func(url.Values)
		status   int
		want     string
	}{
		{"a redirect_uri the client_id does not list", id, set("redirect_uri", "http://127.0.0.1/other"), http.StatusBadRequest, "redirect_uri"},
		{"a non-loopback redirect_uri in the client_id", "http://localhost?redirect_uri=https://attacker.example/cb", set("redirect_uri", "https://attacker.example/cb"), http.StatusBadRequest, "127.0.0.1, [::1] or localhost"},
	}
	for _, tc := range refused {
		t.Run("A13 "+tc.name, func(t *testing.T) {
			q := authParams(tc.id, newPKCE())
			if tc.edit != nil {
				tc.edit(q)
			}
			resp := b.in(t).authorize(q)
			wantErrorPage(t, resp, tc.status)
			if !strings.Contains(resp.body, tc.want) {
				t.Errorf("error page lacks %q:\n%s", tc.want, resp.body)
			}
		})
	}
	t.Run("A13 a scope outside the client_id's scope", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		q := authParams(id, newPKCE())
		q.Set("scope", "read write")
		h.wantRedirectError(b.authorize(q), q, "invalid_scope")
	})
	t.Run("A13 a port on the client_id", func(t *testing.T) {
		h := newHarness(t, harnessConfig{noDevLoopback: true})
		resp := h.newBrowser().authorize(authParams("http://localhost:8080", newPKCE()))
		wantErrorPage(t, resp, http.StatusBadRequest)
		if !strings.Contains(resp.body, "exactly http://localhost") {
			t.Errorf("error page:\n%s", resp.body)
		}
	})
	t.Run("A13 refused when turned off", func(t *testing.T) {
		h := newHarness(t, harnessConfig{noLoopbackClients: true})
		resp := h.newBrowser().authorize(authParams(id, newPKCE()))
		wantErrorPage(t, resp, http.StatusBadRequest)
		if !strings.Contains(resp.body, "does not accept loopback development clients") {
			t.Errorf("error page:\n%s", resp.body)
		}
	})
}
