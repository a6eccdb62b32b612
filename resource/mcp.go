// This file reads MCP tools/call requests (MCP 2025-11-25 "Tools", JSON-RPC
// 2.0 over Streamable HTTP) to require per-tool scopes with a step-up
// challenge (RFC 6750 §3.1, MCP 2025-11-25 Authorization §Runtime Insufficient
// Scope Errors).

package resource

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// MaxToolCallPeek is how much of a request body ToolScopes reads to find the
// tool name. A larger body needs every scope ToolScopes knows.
const MaxToolCallPeek = 1 << 20

// ToolScopes returns an Options.ScopesFor function for an MCP Streamable
// HTTP endpoint: for a POST whose JSON-RPC body calls tools/call, it returns
// the scopes listed for the called tool in scopes (tool name to scopes).
// Other requests and unlisted tools need nothing more. RequireBearer then
// answers a token without them with 403 insufficient_scope and the full
// scope list, which MCP clients use to step up (RFC 6750 §3.1,
// MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors, §Scope
// Selection Strategy).
//
// The body is read (up to MaxToolCallPeek bytes) and put back for the next
// handler. Reading is deliberately pessimistic, so that no JSON trick gets a
// tool called without its scopes: member names are matched without regard
// to case and duplicates are all considered (a JSON-RPC batch or an object
// naming several tools needs the scopes of all of them), and a body that is
// too large, unreadable or not valid JSON needs every scope in the map.
func ToolScopes(scopes map[string][]string) func(*http.Request) []string {
	scopes = maps.Clone(scopes)
	var all []string
	for _, name := range slices.Sorted(maps.Keys(scopes)) {
		all = union(all, scopes[name])
	}
	return func(r *http.Request) []string {
		if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
			return nil
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxToolCallPeek+1))
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		if err != nil || len(body) > MaxToolCallPeek {
			return all
		}
		names, ok := toolCallNames(body)
		if !ok {
			return all
		}
		var need []string
		for _, n := range names {
			need = union(need, scopes[n])
		}
		return need
	}
}

// toolCallNames returns every tool name a JSON-RPC message or batch may call
// with tools/call. ok is false when body is not valid JSON.
func toolCallNames(body []byte) (names []string, ok bool) {
	if !json.Valid(body) {
		return nil, false
	}
	var msgs []json.RawMessage
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &msgs); err != nil {
			return nil, false
		}
	} else {
		msgs = []json.RawMessage{body}
	}
	for _, msg := range msgs {
		members := objectMembers(msg)
		if !slices.ContainsFunc(members, func(m member) bool {
			return strings.EqualFold(m.key, "method") && strings.EqualFold(stringValue(m.value), "tools/call")
		}) {
			continue
		}
		for _, m := range members {
			if !strings.EqualFold(m.key, "params") {
				continue
			}
			for _, p := range objectMembers(m.value) {
				if strings.EqualFold(p.key, "name") {
					names = append(names, stringValue(p.value))
				}
			}
		}
	}
	return names, true
}

type member struct {
	key   string
	value json.RawMessage
}

// objectMembers returns the members of a JSON object in order, keeping
// duplicates; anything but an object gives none.
func objectMembers(raw json.RawMessage) []member {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		out = append(out, member{key: key, value: v})
	}
	return out
}

// stringValue returns the JSON string in raw, or "" if raw is not a string.
func stringValue(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}
