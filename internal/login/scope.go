// This file holds scope lists (RFC 6749 §3.3: space-delimited, unordered,
// case-sensitive) and the MCP scope selection strategy (MCP 2025-11-25
// "Scope Selection Strategy", MCP 2025-11-25 Authorization §Scope Selection
// Strategy).
package login

import (
	"slices"
	"strings"
)

// splitScope splits a scope parameter into its scopes, dropping empty ones
// and repeats.
func splitScope(s string) []string {
	return union(nil, strings.Fields(s))
}

// union returns a followed by the scopes of b not in a, without repeats.
func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for _, list := range [][]string{a, b} {
		for _, s := range list {
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// subset reports whether every scope of a is in b.
func subset(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

// selectScopes is MCP 2025-11-25 Authorization §Scope Selection Strategy for an
// authorization: the user's --scope when given; otherwise the challenge's
// scope, or else every scope of the PRM's scopes_supported, or else none (scope
// omitted); in every case joined with the scopes requested before for this
// server, so a new token never loses what the old one could do.
func selectScopes(override, challenged, supported, previous []string) []string {
	switch {
	case len(override) > 0:
		return union(previous, override)
	case len(challenged) > 0:
		return union(previous, challenged)
	case len(previous) > 0:
		return previous
	default:
		return union(nil, supported)
	}
}
