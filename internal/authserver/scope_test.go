package authserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpauth/mcpauth/oauth"
)

// TestMalformedScopesRefused: scope values are RFC 6749 §3.3 scope-tokens
// of bounded size, also when the resource declares no scopes of its own
// (the zero-configuration --resource URL). Otherwise a NUL, a quote or a
// backslash would be minted into tokens and WWW-Authenticate challenges,
// and thousands of scopes would make a token too large for any header.
func TestMalformedScopesRefused(t *testing.T) {
	h := newHarness(t, harnessConfig{resources: []Resource{{URL: testResource}}})
	id := h.publishClient("/client.json", nil)
	b := h.newBrowser()
	// Well-formed scopes of a resource without a scope list are accepted
	// (this also signs the browser in and records consent).
	if tr := b.flow(id, func(q url.Values) { q.Set("scope", "mcp:tools files:write") }); tr.Scope != "files:write mcp:tools" {
		t.Fatalf("token scope for well-formed scopes = %q", tr.Scope)
	}
	for name, scope := range map[string]string{
		"NUL":           "a\x00b",
		"quote":         `say"hi"`,
		"backslash":     `back\slash`,
		"non-ASCII":     "caf\xc3\xa9",
		"invalid UTF-8": "\xff",
		"too long":      strings.Repeat("x", oauth.MaxScopeTokenLen+1),
		"too many":      strings.Repeat("s ", oauth.MaxScopes+1),
	} {
		t.Run(name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			q := authParams(id, newPKCE())
			q.Set("scope", scope)
			h.wantRedirectError(b.authorize(q), q, oauth.InvalidScope)
		})
	}
	t.Run("DCR refuses a malformed scope", func(t *testing.T) {
		h := newHarness(t, harnessConfig{dcr: true})
		md := dcrMetadata()
		md["scope"] = "a\x00b \"q\""
		reg := h.register(md)
		if reg.Status != http.StatusBadRequest || reg.Error != string(oauth.InvalidClientMetadata) || !strings.Contains(reg.ErrorDescription, "scope") {
			t.Errorf("register with a malformed scope: %d %s %q, want 400 invalid_client_metadata naming scope", reg.Status, reg.Error, reg.ErrorDescription)
		}
	})
}
