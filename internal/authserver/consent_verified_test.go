package authserver

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpauth/mcpauth/cimd"
)

// Badges of the consent page (templates/consent.html).
const (
	verifiedBadge   = `<span class="badge verified">verified by this server</span>`
	unverifiedBadge = `<span class="badge unverified">unverified</span>`
)

// TestConsentVerifiedClient checks that the consent page shows the name
// and logo of a client the trust policy allows without the "unverified"
// label, and labels a client the policy does not list
// (docs/security.md decision 6, CIMD §8.5, §8.8, §9.2,
// MCP 2025-11-25 Authorization §Localhost Redirect URI Risks).
func TestConsentVerifiedClient(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	img := pngBytes(t)
	h.docs.publish("/logo.png", "image/png", img, nil)
	withLogo := func(name string) func(map[string]any) {
		return func(d map[string]any) {
			d["client_name"] = name
			d["logo_uri"] = h.docs.url("/logo.png")
		}
	}
	verified := h.publishClient("/verified.json", withLogo("Trusted Editor"))
	unlisted := h.publishClient("/unlisted.json", withLogo("Unknown Editor"))
	// Both clients are on the same host: the exact client_id rule tells them apart.
	policy, err := cimd.NewPolicy(cimd.PolicyConfig{Allow: []string{verified}})
	if err != nil {
		t.Fatal(err)
	}
	h.resolver.SetPolicy(policy)

	b := h.newBrowser()
	signedIn := false
	consent := func(t *testing.T, client string) reply {
		t.Helper()
		b := b.in(t)
		resp := b.authorize(authParams(client, newPKCE()))
		if !signedIn {
			resp = b.login(resp, testPassword)
			signedIn = true
		}
		return b.consentPage(resp)
	}
	logoTag := func(client string) string {
		return `<img class="logo" src="` + html.EscapeString("/logo?client_id="+url.QueryEscape(client)) + `"`
	}

	t.Run("decision 6 allowed client: name and logo without the unverified label", func(t *testing.T) {
		cp := consent(t, verified)
		for _, want := range []string{`<strong>Trusted Editor</strong>`, logoTag(verified), verifiedBadge} {
			if !strings.Contains(cp.body, want) {
				t.Errorf("consent page for the allowed client lacks %s:\n%s", want, cp.body)
			}
		}
		if strings.Contains(cp.body, unverifiedBadge) || strings.Contains(cp.body, ">self-asserted, unverified<") {
			t.Errorf("consent page labels the allowed client unverified:\n%s", cp.body)
		}
		if resp := b.in(t).get("/logo?client_id=" + url.QueryEscape(verified)); resp.status != http.StatusOK || resp.body != string(img) {
			t.Errorf("GET the allowed client's logo: %d, %d bytes", resp.status, len(resp.body))
		}
	})
	t.Run("decision 6 unlisted client is labelled unverified", func(t *testing.T) {
		cp := consent(t, unlisted)
		for _, want := range []string{`<strong>Unknown Editor</strong>`, logoTag(unlisted), unverifiedBadge} {
			if !strings.Contains(cp.body, want) {
				t.Errorf("consent page for the unlisted client lacks %s:\n%s", want, cp.body)
			}
		}
		if strings.Contains(cp.body, "verified by this server") {
			t.Errorf("consent page calls the unlisted client verified:\n%s", cp.body)
		}
	})
}
