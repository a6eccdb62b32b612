package cimd

import (
	"errors"
	"strings"
	"testing"
)

func TestPolicyEvaluate(t *testing.T) {
	p, err := NewPolicy(PolicyConfig{
		Allow: []string{"https://good.example/client.json", "trusted.example", "*.partner.example"},
		Deny:  []string{"https://good.example/evil.json", "evil.example", "*.bad.example", "https://claude.partner.example/x.json"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id string
		tier     Tier
		rule     string
	}{
		{"A12 exact URL allow", "https://good.example/client.json", TierVerified, "https://good.example/client.json"},
		{"A12 exact URL is byte-exact", "https://good.example/client.json?x=1", TierUnverified, ""},
		{"A12 exact URL deny", "https://good.example/evil.json", TierBlocked, "https://good.example/evil.json"},
		{"A12 host allow any path and port", "https://trusted.example:8443/a/b.json", TierVerified, "trusted.example"},
		{"A12 host does not match subdomain", "https://x.trusted.example/c.json", TierUnverified, ""},
		{"A12 host deny", "https://evil.example/c.json", TierBlocked, "evil.example"},
		{"A12 suffix matches apex", "https://partner.example/c.json", TierVerified, "*.partner.example"},
		{"A12 suffix matches deep subdomain", "https://a.b.partner.example/c.json", TierVerified, "*.partner.example"},
		{"A12 suffix needs a label boundary", "https://notpartner.example/c.json", TierUnverified, ""},
		{"A12 suffix deny", "https://x.bad.example/c.json", TierBlocked, "*.bad.example"},
		{"A12 deny wins over allow", "https://claude.partner.example/x.json", TierBlocked, "https://claude.partner.example/x.json"},
		{"A12 unlisted is unverified", "https://other.example/c.json", TierUnverified, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseClientID(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			tier, rule := p.Evaluate(id)
			if tier != tt.tier || rule != tt.rule {
				t.Errorf("Evaluate(%s) = %s, %q; want %s, %q", tt.id, tier, rule, tt.tier, tt.rule)
			}
		})
	}
}

func TestPolicyAllowlistOnly(t *testing.T) {
	p, err := NewPolicy(PolicyConfig{Allow: []string{"*.example.com"}, AllowlistOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ok, _ := ParseClientID("https://app.example.com/c.json")
	other, _ := ParseClientID("https://app.example.org/c.json")
	if tier, _ := p.Evaluate(ok); tier != TierVerified {
		t.Errorf("listed client: %s", tier)
	}
	tier, _, err := p.check(other)
	if tier != TierBlocked || err == nil {
		t.Fatalf("A12 allowlist-only: unlisted client got %s, err %v", tier, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonNotAllowed || !strings.Contains(e.Message, "allowlist") {
		t.Errorf("allowlist-only rejection: %#v", err)
	}
	var nilPolicy *Policy
	if tier, _ := nilPolicy.Evaluate(ok); tier != TierUnverified {
		t.Errorf("nil policy: %s", tier)
	}
}

func TestNewPolicyRejectsMalformedRules(t *testing.T) {
	for _, rule := range []string{"", "*.", "*.com", "https://x.example", "exa mple.com", "*.*.example.com", "host:8080", "https://x.example/a/../b"} {
		if _, err := NewPolicy(PolicyConfig{Deny: []string{rule}}); err == nil {
			t.Errorf("rule %q accepted", rule)
		} else if !strings.Contains(err.Error(), "deny rule") {
			t.Errorf("rule %q: error %q does not name the list", rule, err)
		}
	}
}
