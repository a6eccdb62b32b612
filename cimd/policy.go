package cimd

import (
	"fmt"
	"strings"
)

// Tier is what the trust policy says about a client. Callers act on it: the
// consent page labels unverified clients, blocked clients are refused.
type Tier string

// The three trust tiers.
const (
	TierVerified   Tier = "verified"   // listed in Policy.Allow: name and logo may be shown as-is
	TierUnverified Tier = "unverified" // not listed: name and logo are labelled unverified (CIMD §8.5)
	TierBlocked    Tier = "blocked"    // listed in Policy.Deny, or not allowed in allowlist-only mode
)

// PolicyConfig is an operator's trust policy (CIMD §7.2, §8.9). Each
// rule is one of:
//
//   - an exact client_id URL ("https://app.example/client.json"), compared byte for byte;
//   - a host ("app.example"), matching every client_id on that host (any port);
//   - a domain suffix ("*.example.com"), matching example.com itself and every
//     host below it.
//
// Deny wins over Allow. With AllowlistOnly, every client not matched by Allow
// is blocked. The zero value allows every client as unverified.
type PolicyConfig struct {
	Allow         []string
	Deny          []string
	AllowlistOnly bool
}

// Policy is a compiled PolicyConfig. It is immutable and safe for concurrent
// use; Evaluate does not allocate.
type Policy struct {
	allow, deny   ruleSet
	allowlistOnly bool
}

type ruleSet struct {
	urls, hosts, domains map[string]string // key -> the rule as written
}

// NewPolicy compiles c, rejecting malformed rules with an error that names the rule.
func NewPolicy(c PolicyConfig) (*Policy, error) {
	p := &Policy{allowlistOnly: c.AllowlistOnly}
	var err error
	if p.allow, err = compileRules("allow", c.Allow); err != nil {
		return nil, err
	}
	if p.deny, err = compileRules("deny", c.Deny); err != nil {
		return nil, err
	}
	return p, nil
}

func compileRules(list string, rules []string) (ruleSet, error) {
	rs := ruleSet{urls: map[string]string{}, hosts: map[string]string{}, domains: map[string]string{}}
	for _, rule := range rules {
		kind, key, err := parseRule(rule)
		if err != nil {
			return ruleSet{}, fmt.Errorf("%s rule %q: %w", list, rule, err)
		}
		switch kind {
		case ruleURL:
			rs.urls[key] = rule
		case ruleHost:
			rs.hosts[key] = rule
		case ruleDomain:
			rs.domains[key] = rule
		}
	}
	return rs, nil
}

// ruleKind says how a policy rule matches.
type ruleKind int

// Rule kinds, see PolicyConfig.
const (
	ruleURL ruleKind = iota + 1
	ruleHost
	ruleDomain
)

// parseRule classifies a policy rule and returns its match key: the URL itself,
// the lowercased host, or the lowercased domain without "*.".
func parseRule(rule string) (ruleKind, string, error) {
	switch {
	case rule == "":
		return 0, "", fmt.Errorf("empty rule: write a client_id URL, a host, or *.domain")
	case strings.HasPrefix(rule, "https://") || strings.HasPrefix(rule, "http://"):
		if _, err := parseClientID(rule, true); err != nil {
			return 0, "", fmt.Errorf("not a valid client_id URL: %w", err)
		}
		return ruleURL, rule, nil
	case strings.HasPrefix(rule, "*."):
		d := strings.ToLower(rule[2:])
		if !validHostname(d) || !strings.Contains(d, ".") {
			return 0, "", fmt.Errorf("domain rules look like *.example.com")
		}
		return ruleDomain, d, nil
	default:
		h := strings.ToLower(rule)
		if !validHostname(h) {
			return 0, "", fmt.Errorf("write a client_id URL (https://...), a host (app.example) or a domain (*.example.com)")
		}
		return ruleHost, h, nil
	}
}

// validHostname accepts LDH labels separated by dots (no ports, no
// wildcards): the client_id host rules of checkHostName.
func validHostname(h string) bool { return checkHostName(h) == nil }

// match reports the first rule in rs that matches id, or "".
func (rs ruleSet) match(id ClientID) string {
	if r, ok := rs.urls[id.String()]; ok {
		return r
	}
	host := id.Host()
	if r, ok := rs.hosts[host]; ok {
		return r
	}
	if len(rs.domains) == 0 {
		return ""
	}
	for d := host; ; {
		if r, ok := rs.domains[d]; ok {
			return r
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return ""
		}
		d = d[i+1:]
	}
}

// Evaluate returns the tier of id and the rule that decided it ("" when no
// rule matched). A nil Policy treats every client as unverified.
func (p *Policy) Evaluate(id ClientID) (Tier, string) {
	if p == nil {
		return TierUnverified, ""
	}
	if r := p.deny.match(id); r != "" {
		return TierBlocked, r
	}
	if r := p.allow.match(id); r != "" {
		return TierVerified, r
	}
	if p.allowlistOnly {
		return TierBlocked, "allowlist-only"
	}
	return TierUnverified, ""
}

// check turns a blocked verdict into the rejection callers return.
func (p *Policy) check(id ClientID) (Tier, string, error) {
	tier, rule := p.Evaluate(id)
	if tier != TierBlocked {
		return tier, rule, nil
	}
	if rule == "allowlist-only" {
		return tier, rule, newError(Problem{Reason: ReasonNotAllowed, Ref: refTrustPolicy,
			Message: fmt.Sprintf("client %s is not on this server's allowlist; ask the operator to allow it", id)})
	}
	return tier, rule, newError(Problem{Reason: ReasonBlocked, Ref: refTrustPolicy,
		Message: fmt.Sprintf("client %s is blocked by this server's operator (rule %q)", id, rule)})
}
