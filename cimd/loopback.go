package cimd

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpauth/mcpauth/oauth"
)

// Loopback development clients follow the AT Protocol OAuth profile's
// localhost client convention (atproto.com/specs/oauth, "Localhost Client
// Development"): a client_id of exactly http://localhost, optionally with
// redirect_uri (repeatable) and scope query parameters, whose metadata the
// server derives from the URL itself. Nothing is fetched.

// refLoopbackClient is the reference Problem.Ref carries for loopback
// development client_ids.
const refLoopbackClient = "AT Protocol OAuth, Localhost Client Development"

// loopbackOrigin is the only origin a loopback development client_id has.
const loopbackOrigin = "http://localhost"

// IsLoopbackClientID reports whether s has the shape of a loopback
// development client_id: http://localhost with an empty path or "/",
// optionally followed by a query. It does not check the query; see
// LoopbackClient.
func IsLoopbackClientID(s string) bool {
	rest, ok := strings.CutPrefix(s, loopbackOrigin)
	if !ok {
		return false
	}
	rest = strings.TrimPrefix(rest, "/")
	return rest == "" || rest[0] == '?'
}

// LoopbackClient derives the client of a loopback development client_id
// (IsLoopbackClientID): a public native client (token_endpoint_auth_method
// none) allowed the authorization_code and refresh_token grants, whose
// redirect URIs are the redirect_uri parameters (default http://127.0.0.1/
// and http://[::1]/), each http on 127.0.0.1, [::1] or localhost and matched
// on any port (RFC 8252 §7.3), and whose scope is the scope parameter, if
// any. Every other parameter, and anything that is not such a client_id, is
// refused with an *Error that says what to fix. The Client has Tier
// unverified and Loopback set.
func LoopbackClient(s string) (*Client, error) {
	if p := checkRawClientID(s); p != nil {
		return nil, newError(*p)
	}
	if !IsLoopbackClientID(s) {
		return nil, loopbackError("client_id", "a loopback development client_id is exactly %s, optionally followed by /, then ?redirect_uri=...&scope=...", loopbackOrigin)
	}
	_, query, _ := strings.Cut(s, "?")
	if strings.ContainsRune(s, '#') {
		return nil, loopbackError("client_id", "client_id must not have a fragment")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, loopbackError("client_id", "client_id query is not valid URL encoding; percent-encode each redirect_uri and scope value")
	}
	d := &Document{ClientID: s, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: "none", ApplicationType: "native"}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		values := q[name]
		switch name {
		case "redirect_uri":
		case "scope":
			if len(values) != 1 {
				return nil, loopbackError("scope", "client_id may give scope at most once, as one space-separated list")
			}
			d.Scope = values[0]
		default:
			return nil, loopbackError("client_id", "a loopback development client_id takes only redirect_uri and scope parameters, not %s", truncate(name, 32))
		}
	}
	d.RedirectURIs = q["redirect_uri"]
	if len(d.RedirectURIs) == 0 {
		// The defaults of AT Protocol OAuth, Localhost Client Development.
		d.RedirectURIs = []string{"http://127.0.0.1/", "http://[::1]/"}
	}
	for i, u := range d.RedirectURIs {
		field := fmt.Sprintf("redirect_uri[%d]", i)
		if !oauth.IsLoopbackRedirect(u) {
			return nil, loopbackError(field, "%s must be an http URI on 127.0.0.1, [::1] or localhost, such as http://127.0.0.1:8080/callback", field)
		}
		if msg := redirectURIProblem(u); msg != "" {
			return nil, loopbackError(field, "%s %s", field, msg)
		}
	}
	return &Client{
		ID:          ClientID{raw: s, host: "localhost", hasQuery: query != "", dev: true},
		Document:    d,
		Tier:        TierUnverified,
		Loopback:    true,
		Fingerprint: d.Fingerprint(),
	}, nil
}

// loopbackError is the rejection of a malformed loopback development client_id.
func loopbackError(field, format string, args ...any) *Error {
	return newError(Problem{Reason: ReasonLoopbackClient, Ref: refLoopbackClient, Field: field, Message: fmt.Sprintf(format, args...)})
}
