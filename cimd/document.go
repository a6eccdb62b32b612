package cimd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mcpauth/mcpauth/oauth"
)

// Client metadata document validation: draft-ietf-oauth-client-id-metadata-document-02
// §4 and §4.1-§4.3 and RFC 7591 §2.

// Document is a client metadata document that passed every rule of
// ParseDocument, with mcpauth's decisions applied: the effective
// authentication method, default and filtered grant and response types,
// display URIs kept only when https. Member names follow RFC 7591 §2, and
// marshalling a Document yields a document ParseDocument accepts unchanged.
// A Document is not modified after ParseDocument returns it and is safe for
// concurrent reads.
//
// ClientName is kept as published; show it only through DisplayName.
type Document struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name,omitempty"`
	ClientURI  string `json:"client_uri,omitempty"` // https only (CIMD §8.8, §9.2)
	LogoURI    string `json:"logo_uri,omitempty"`   // https only (CIMD §8.8, §9.2)
	TOSURI     string `json:"tos_uri,omitempty"`    // https only (CIMD §8.8, §9.2)
	PolicyURI  string `json:"policy_uri,omitempty"` // https only (CIMD §8.8, §9.2)

	RedirectURIs  []string `json:"redirect_uris"`  // the registered set (CIMD §4.2, RFC 6749 §3.1.2), in document order
	GrantTypes    []string `json:"grant_types"`    // authorization_code, and refresh_token when declared (RFC 7591 §2, RFC 9700 §2.1.2, §2.4)
	ResponseTypes []string `json:"response_types"` // always ["code"] (RFC 7591 §2, RFC 9700 §2.1.2, §2.4)

	// TokenEndpointAuthMethod is "none" or "private_key_jwt" (CIMD §4.1,
	// RFC 7591 §2, CIMD §4.1).
	TokenEndpointAuthMethod     string `json:"token_endpoint_auth_method"`
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty"`
	JWKS                        *JWKS  `json:"jwks,omitempty"`     // public keys only (CIMD §4.1)
	JWKSURI                     string `json:"jwks_uri,omitempty"` // https (CIMD §8.2, RFC 7591 §2)

	Scope           string   `json:"scope,omitempty"`            // space-separated, as published (RFC 7591 §2)
	ApplicationType string   `json:"application_type,omitempty"` // "", "web" or "native" (OIDC Registration §2)
	Contacts        []string `json:"contacts,omitempty"`
	SoftwareID      string   `json:"software_id,omitempty"`
	SoftwareVersion string   `json:"software_version,omitempty"`
}

// JWKS is a JSON Web Key Set holding public keys only (RFC 7517 §5,
// CIMD-02 §4.1).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one public JSON Web Key (RFC 7517 §4). Raw is the key as
// published, re-encoded canonically (members sorted by name, no
// insignificant whitespace, numbers as written), for handing to a JOSE
// library; Kty, Kid, Alg and Use repeat the members of the same names for
// selecting a key.
type JWK struct {
	Raw json.RawMessage
	Kty string
	Kid string
	Alg string
	Use string
}

// MarshalJSON returns Raw.
func (k JWK) MarshalJSON() ([]byte, error) {
	if len(k.Raw) == 0 {
		return []byte("null"), nil
	}
	return k.Raw, nil
}

// UnmarshalJSON keeps b, canonically encoded, as Raw and fills Kty, Kid, Alg and Use. Member
// names are matched exactly. It does not check for private key material;
// ParseDocument does.
func (k *JWK) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("jwk: %w", err)
	}
	*k = JWK{Raw: canonicalJSON(b)}
	for name, dst := range map[string]*string{"kty": &k.Kty, "kid": &k.Kid, "alg": &k.Alg, "use": &k.Use} {
		if raw, ok := m[name]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, dst); err != nil {
				return fmt.Errorf("jwk member %q: %w", name, err)
			}
		}
	}
	return nil
}

// ParseDocument validates a client metadata document fetched for id and
// returns it with mcpauth's decisions applied (CIMD §4,
// CIMD §4.1, RFC 7591 §2). It checks every member and reports every
// problem found, as one *Error, not just the first. Warnings are conditions
// worth showing that do not reject the document; they are returned with the
// error too.
//
// The rules, in short:
//
//   - CIMD §4, RFC 8259 §4: a single JSON object in UTF-8; no byte order mark,
//     no trailing data, no member twice in any object at any depth. Member
//     names are case-sensitive. A known member with the wrong JSON type is
//     rejected; null counts as absent. Unknown members are ignored
//     (RFC 7591 §2), and so is software_statement (CIMD §4.3).
//   - CIMD §4: client_id equals id.String() byte for byte.
//   - MCP 2025-11-25 Authorization §Client ID Metadata Documents, CIMD §4.2,
//     RFC 6749 §3.1.2: redirect_uris is a non-empty array of absolute URIs
//     without fragment or wildcard: https, http on a loopback host (localhost,
//     127.0.0.1, [::1]), or a private-use scheme with a dot in it
//     (com.example.app:/cb); never javascript:, data:, file: or vbscript:. A
//     missing client_name only warns.
//   - CIMD §4.1: client_secret and client_secret_expires_at must be absent.
//   - CIMD §4.1, RFC 7591 §2: an omitted
//     token_endpoint_auth_method means "none"; shared-secret and unknown
//     methods are rejected. A token_endpoint_auth_methods_supported list
//     (OpenID RP Metadata Choices) picks private_key_jwt when keys are
//     published, else none, skipping shared-secret entries.
//   - CIMD §4.1: no private or symmetric key material in jwks.
//   - CIMD §8.2, RFC 7591 §2: private_key_jwt needs exactly one of jwks (with a
//     key) or an https jwks_uri; token_endpoint_auth_signing_alg is never none
//     or HS*.
//   - RFC 7591 §2, RFC 9700 §2.1.2, §2.4: grant_types defaults to
//     authorization_code and must include it; implicit and password are
//     rejected; other grant types (for example client_credentials) are dropped
//     with a warning; refresh_token is kept only when declared. response_types
//     may only be code.
//   - CIMD §8.8, §9.2: client_uri, logo_uri, tos_uri and policy_uri are kept
//     only when https, otherwise dropped with a warning.
//   - OIDC Registration §2: application_type is web or native when present.
func ParseDocument(data []byte, id ClientID) (*Document, []Warning, error) {
	members, problems := decodeObject(data)
	if len(problems) > 0 {
		return nil, nil, newError(problems...)
	}
	v := &validator{m: members}
	d := v.document(id)
	if len(v.problems) > 0 {
		return nil, v.warnings, newError(v.problems...)
	}
	return d, v.warnings, nil
}

// decodeObject checks that data is one JSON object with no duplicate member
// names at any depth (CIMD §4, RFC 8259 §4) and returns its members.
// encoding/json keeps the last of two duplicates silently, and matches struct
// fields without regard to case, so the document is walked token by token first
// and then decoded into a map, whose keys are exact.
func decodeObject(data []byte) (map[string]json.RawMessage, []Problem) {
	bad := func(r Reason, format string, args ...any) []Problem {
		return []Problem{{Reason: r, Ref: refDocument, Message: fmt.Sprintf(format, args...)}}
	}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return nil, bad(ReasonInvalidJSON, "document starts with a byte order mark; remove it (RFC 8259 §8.1)")
	}
	if !utf8.Valid(data) {
		return nil, bad(ReasonInvalidJSON, "document is not valid UTF-8; encode it as UTF-8 (RFC 8259 §8.1)")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(ReasonInvalidJSON, "document is not valid JSON: %s", jsonErrorText(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, bad(ReasonNotJSONObject, "document must be a JSON object ({...}), not %s", tokenKind(tok))
	}
	problems, err := duplicateKeys(dec)
	if err != nil {
		return nil, bad(ReasonInvalidJSON, "document is not valid JSON: %s", jsonErrorText(err))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bad(ReasonInvalidJSON, "document has data after the closing %q; remove it", "}")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, bad(ReasonInvalidJSON, "document is not valid JSON: %s", jsonErrorText(err))
	}
	return m, nil
}

// jsonFrame is one open object or array while walking tokens.
type jsonFrame struct {
	path  string          // e.g. "jwks.keys[0]"; "" for the document
	keys  map[string]bool // member names seen; nil for an array
	key   string          // the member whose value comes next
	index int             // arrays: index of the next element
	isKey bool            // objects: the next token is a member name
}

// child returns the path of the value that comes next in f.
func (f *jsonFrame) child() string {
	switch {
	case f.keys == nil:
		return fmt.Sprintf("%s[%d]", f.path, f.index)
	case f.path == "":
		return f.key
	default:
		return f.path + "." + f.key
	}
}

// advance moves f past one value.
func (f *jsonFrame) advance() {
	if f.keys == nil {
		f.index++
	} else {
		f.isKey = true
	}
}

// duplicateKeys walks the rest of the object whose "{" dec has just
// returned and reports every member name that appears twice in one object.
func duplicateKeys(dec *json.Decoder) ([]Problem, error) {
	var problems []Problem
	stack := []*jsonFrame{{keys: map[string]bool{}, isKey: true}}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		top := stack[len(stack)-1]
		if top.keys != nil && top.isKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				continue
			}
			name, _ := tok.(string)
			top.key, top.isKey = name, false
			if top.keys[name] {
				field := top.child()
				problems = append(problems, Problem{Reason: ReasonDuplicateKey, Ref: refJSONNames, Field: field,
					Message: fmt.Sprintf("document has the member %q more than once; keep only one", truncate(field, 64))})
			}
			top.keys[name] = true
			continue
		}
		switch tok {
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		case json.Delim('{'), json.Delim('['):
			f := &jsonFrame{path: top.child(), isKey: true}
			if tok == json.Delim('{') {
				f.keys = map[string]bool{}
			}
			top.advance()
			stack = append(stack, f)
		default:
			top.advance()
		}
	}
	return problems, nil
}

// jsonErrorText describes a decoding error without Go type names.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "it ends before the object is closed"
	}
	return err.Error()
}

// tokenKind names the JSON type of a top-level token for messages.
func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return "null"
	}
}

// jsonKind names the JSON type of a raw value for messages.
func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '[':
		return "an array"
	case '{':
		return "an object"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// validator collects the problems and warnings of one document.
type validator struct {
	m        map[string]json.RawMessage
	problems []Problem
	warnings []Warning
}

func (v *validator) problem(r Reason, ref, field, format string, args ...any) {
	v.problems = append(v.problems, Problem{Reason: r, Ref: ref, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) warn(code, ref, format string, args ...any) {
	v.warnings = append(v.warnings, Warning{Code: code, Ref: ref, Message: fmt.Sprintf(format, args...)})
}

// raw returns the value of member name, or nil when it is absent or null.
func (v *validator) raw(name string) json.RawMessage {
	if raw, ok := v.m[name]; ok && !isNull(raw) {
		return raw
	}
	return nil
}

// str returns member name as a string; ok is false when it is absent,
// null or not a string (the last is recorded as a problem).
func (v *validator) str(name string) (s string, ok bool) {
	raw := v.raw(name)
	if raw == nil {
		return "", false
	}
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		v.problem(ReasonFieldType, refDocument, name, "%s must be a string, not %s", name, jsonKind(raw))
		return "", false
	}
	return s, true
}

// strs returns member name as an array of strings; present is true when
// the member is there and not null, ok when it is also well-typed.
func (v *validator) strs(name string) (list []string, present, ok bool) {
	raw := v.raw(name)
	if raw == nil {
		return nil, false, false
	}
	var elems []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
		v.problem(ReasonFieldType, refDocument, name, "%s must be an array of strings, not %s", name, jsonKind(raw))
		return nil, true, false
	}
	ok = true
	list = make([]string, 0, len(elems))
	for i, e := range elems {
		var s string
		if e[0] != '"' || json.Unmarshal(e, &s) != nil {
			field := fmt.Sprintf("%s[%d]", name, i)
			v.problem(ReasonFieldType, refDocument, field, "%s must be a string, not %s", field, jsonKind(e))
			ok = false
			continue
		}
		list = append(list, s)
	}
	return list, true, ok
}

// strsOr is strs with a default (RFC 7591 §2): def when the member is
// absent or null; ok is false when it is malformed.
func (v *validator) strsOr(name string, def ...string) (list []string, ok bool) {
	list, present, ok := v.strs(name)
	if !present {
		return def, true
	}
	return list, ok
}

// document checks every member and builds the Document.
func (v *validator) document(id ClientID) *Document {
	d := &Document{}
	v.clientID(d, id)
	for _, name := range [...]string{"client_secret", "client_secret_expires_at"} {
		if _, ok := v.m[name]; ok {
			v.problem(ReasonClientSecret, refCredentials, name, "remove %s: a client metadata document is public, so it must not carry a client secret; use token_endpoint_auth_method \"none\" or \"private_key_jwt\"", name)
		}
	}
	v.redirectURIs(d)
	v.keys(d)
	v.authMethod(d)
	v.grantTypes(d)
	v.responseTypes(d)
	v.display(d, id)
	v.other(d)
	return d
}

// clientID applies CIMD §4: client_id equals the URL fetched, byte for byte.
func (v *validator) clientID(d *Document, id ClientID) {
	if v.raw("client_id") == nil {
		v.problem(ReasonClientIDMissing, refDocument, "client_id", "document must contain client_id set to its own URL, %q", truncate(id.String(), 256))
		return
	}
	s, ok := v.str("client_id")
	if !ok {
		return
	}
	if s != id.String() {
		v.problem(ReasonClientIDMismatch, refDocument, "client_id",
			"document client_id %q must equal the URL it was fetched from, %q, byte for byte", truncate(s, 256), truncate(id.String(), 256))
		return
	}
	d.ClientID = s
}

// redirectURIs applies MCP 2025-11-25 Authorization §Client ID Metadata
// Documents, CIMD §4.2, RFC 6749 §3.1.2.
func (v *validator) redirectURIs(d *Document) {
	list, present, ok := v.strs("redirect_uris")
	switch {
	case !present:
		v.problem(ReasonRedirectURIs, refRedirectURIs, "redirect_uris", "document must list redirect_uris, a non-empty array such as [%q]", "https://app.example/callback")
		return
	case !ok:
		return
	case len(list) == 0:
		v.problem(ReasonRedirectURIs, refRedirectURIs, "redirect_uris", "redirect_uris must not be empty; list every redirect URI the client uses")
		return
	}
	valid := true
	for i, u := range list {
		if msg := redirectURIProblem(u); msg != "" {
			field := fmt.Sprintf("redirect_uris[%d]", i)
			v.problem(ReasonRedirectURI, refRedirectURIs, field, "%s %s", field, msg)
			valid = false
		}
	}
	if !valid {
		return
	}
	d.RedirectURIs = list
	if d.LocalhostOnlyRedirects() {
		v.warn(WarnLocalhostOnly, refLoopbackRedirect, "every redirect URI is on a loopback host, so any program on the user's machine could receive the authorization code; the consent screen warns about this")
	}
}

// redirectURIProblem returns what is wrong with one redirect URI, as the
// end of a sentence, or "" (CIMD §4.2, RFC 6749 §3.1.2, OAuth 2.1 §8.4,
// RFC 9700 §2.1).
func redirectURIProblem(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > MaxClientIDLength {
		return fmt.Sprintf("is longer than %d bytes", MaxClientIDLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return "must not contain whitespace, control characters or backslashes"
		}
	}
	if strings.IndexByte(s, '#') >= 0 {
		return "must not have a fragment (RFC 6749 §3.1.2)"
	}
	if strings.IndexByte(s, '*') >= 0 {
		return "must not contain the wildcard \"*\"; list each redirect URI exactly"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "must be an absolute URI such as https://app.example/callback"
	}
	scheme := strings.ToLower(u.Scheme) // url.Parse lowercases it already
	if s[:len(scheme)] != scheme {
		return fmt.Sprintf("must have a lowercase scheme: write %s:", scheme)
	}
	switch scheme {
	case "javascript", "data", "file", "vbscript":
		return fmt.Sprintf("must not use the %s: scheme; use https, loopback http, or a private-use scheme", scheme)
	case "https", "http":
		if u.Opaque != "" || u.Host == "" {
			return fmt.Sprintf("must name a host after %s://", scheme)
		}
		if u.User != nil {
			return "must not contain a user name or password before the host"
		}
		if scheme == "http" && !oauth.IsLoopbackRedirect(s) {
			return "uses http on a host that is not loopback; use https, or http://127.0.0.1, http://[::1] or http://localhost for a native app"
		}
	default:
		if !strings.Contains(scheme, ".") {
			return fmt.Sprintf("uses the scheme %q; a private-use scheme must be a reverse domain name such as com.example.app (O21 §8.4.3)", truncate(scheme, 32))
		}
	}
	return ""
}

// isHTTPSURL reports whether s is an absolute https URL with a host and no
// userinfo, fragment, whitespace or control characters.
func isHTTPSURL(s string) bool {
	if len(s) > MaxClientIDLength || strings.ContainsAny(s, "#\\") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Opaque == "" && u.Host != "" && u.User == nil
}

// keys applies CIMD §4.1 and the key rules of CIMD §8.2, RFC 7591 §2 that hold
// for any method: jwks has public keys only, jwks_uri is https, and not both
// are present.
func (v *validator) keys(d *Document) {
	raw := v.raw("jwks")
	if raw != nil {
		d.JWKS = v.jwks(raw)
	}
	if uri, ok := v.str("jwks_uri"); ok {
		if isHTTPSURL(uri) {
			d.JWKSURI = uri
		} else {
			v.problem(ReasonJWKS, refClientMetadata, "jwks_uri", "jwks_uri must be an https URL such as https://app.example/jwks.json")
		}
	}
	if raw != nil && v.raw("jwks_uri") != nil {
		v.problem(ReasonJWKS, refClientMetadata, "jwks", "publish keys in jwks or at jwks_uri, not both (RFC 7591 §2)")
	}
}

// privateKeyMembers are the JWK members that carry private key material
// (RFC 7518 §6.2.2, §6.3.2 and §6.4.1).
func privateKeyMembers() [8]string {
	return [...]string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
}

// jwks checks a jwks member and returns its keys (CIMD §4.1).
func (v *validator) jwks(raw json.RawMessage) *JWKS {
	var set map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &set) != nil {
		v.problem(ReasonFieldType, refDocument, "jwks", "jwks must be an object with a keys array, not %s", jsonKind(raw))
		return nil
	}
	keysRaw := set["keys"]
	var elems []json.RawMessage
	if keysRaw == nil || keysRaw[0] != '[' || json.Unmarshal(keysRaw, &elems) != nil {
		v.problem(ReasonFieldType, refDocument, "jwks.keys", "jwks must have a keys member holding an array of keys, not %s", jsonKind(keysRaw))
		return nil
	}
	out := &JWKS{Keys: make([]JWK, 0, len(elems))}
	for i, e := range elems {
		field := fmt.Sprintf("jwks.keys[%d]", i)
		var members map[string]json.RawMessage
		if e[0] != '{' || json.Unmarshal(e, &members) != nil {
			v.problem(ReasonFieldType, refDocument, field, "%s must be a JSON Web Key object, not %s", field, jsonKind(e))
			continue
		}
		private := false
		for _, m := range privateKeyMembers() {
			if _, ok := members[m]; ok {
				v.problem(ReasonPrivateKey, refCredentials, field+"."+m, "%s contains the private key member %q; publish only the public key and keep the private key secret", field, m)
				private = true
			}
		}
		var k JWK
		if err := k.UnmarshalJSON(e); err != nil {
			v.problem(ReasonFieldType, refDocument, field, "%s members kty, kid, alg and use must be strings", field)
			continue
		}
		switch {
		case k.Kty == "":
			v.problem(ReasonJWKS, refCredentials, field+".kty", "%s must have a kty member such as \"EC\" or \"RSA\" (RFC 7517 §4.1)", field)
		case k.Kty == "oct" && !private:
			v.problem(ReasonPrivateKey, refCredentials, field+".kty", "%s is a symmetric (kty \"oct\") key, which is a shared secret; publish an asymmetric public key instead", field)
		}
		out.Keys = append(out.Keys, k)
	}
	return out
}

// sharedSecretMethod reports whether an authentication method relies on a
// secret shared with the server (CIMD-02 §4.1).
func sharedSecretMethod(m string) bool {
	return strings.HasPrefix(m, "client_secret")
}

// authMethod applies CIMD §4.1, RFC 7591 §2 and
// the requirements of CIMD §8.2, RFC 7591 §2 for private_key_jwt.
func (v *validator) authMethod(d *Document) {
	const none, pkj = "none", "private_key_jwt"
	method, hasMethod := v.str("token_endpoint_auth_method")
	supported, hasList, listOK := v.strs("token_endpoint_auth_methods_supported")
	if alg, ok := v.str("token_endpoint_auth_signing_alg"); ok {
		if alg == "" || alg == "none" || strings.HasPrefix(strings.ToUpper(alg), "HS") {
			v.problem(ReasonSigningAlg, refOIDCRegistration, "token_endpoint_auth_signing_alg",
				"token_endpoint_auth_signing_alg %q is not allowed; use an asymmetric algorithm such as ES256 or RS256", truncate(alg, 32))
		} else {
			d.TokenEndpointAuthSigningAlg = alg
		}
	}
	switch {
	case !hasMethod || method == none || method == pkj:
	case sharedSecretMethod(method):
		v.problem(ReasonAuthMethod, refCredentials, "token_endpoint_auth_method",
			"token_endpoint_auth_method %q uses a shared secret, which a client metadata document cannot carry; use \"none\" or \"private_key_jwt\"", truncate(method, 64))
		return
	default:
		v.problem(ReasonAuthMethod, refCredentials, "token_endpoint_auth_method",
			"token_endpoint_auth_method %q is not supported; use \"none\" or \"private_key_jwt\"", truncate(method, 64))
		return
	}
	hasKeys := d.JWKS != nil && len(d.JWKS.Keys) > 0 || v.raw("jwks_uri") != nil
	switch {
	case hasList && !listOK:
		return
	case hasList:
		// CIMD §4.1, RFC 7591 §2: the list, plus the single method if both
		// are given, offers choices; shared-secret and unknown entries are
		// skipped.
		if hasMethod {
			supported = append(supported, method)
		}
		switch {
		case hasKeys && slices.Contains(supported, pkj):
			d.TokenEndpointAuthMethod = pkj
		case slices.Contains(supported, none):
			d.TokenEndpointAuthMethod = none
		case slices.Contains(supported, pkj):
			d.TokenEndpointAuthMethod = pkj
		default:
			v.problem(ReasonAuthMethod, refCredentials, "token_endpoint_auth_methods_supported",
				"token_endpoint_auth_methods_supported lists no method this server supports; include \"none\" or \"private_key_jwt\"")
			return
		}
	case hasMethod:
		d.TokenEndpointAuthMethod = method
	default:
		d.TokenEndpointAuthMethod = none // CIMD §4.1, RFC 7591 §2, not RFC 7591's client_secret_basic
	}
	// CIMD §8.2, RFC 7591 §2: private_key_jwt needs keys. Malformed jwks or
	// jwks_uri values have been reported already.
	switch {
	case d.TokenEndpointAuthMethod != pkj || hasKeys:
	case v.raw("jwks") == nil:
		v.problem(ReasonJWKS, refClientMetadata, "jwks", "private_key_jwt needs the client's public keys: add jwks or an https jwks_uri")
	case d.JWKS != nil:
		v.problem(ReasonJWKS, refClientMetadata, "jwks.keys", "private_key_jwt needs at least one valid public key in jwks.keys")
	}
}

// grantTypes applies RFC 7591 §2, RFC 9700 §2.1.2, §2.4,
// CIMD §4.1, RFC 7591 §2 to grant_types.
func (v *validator) grantTypes(d *Document) {
	list, ok := v.strsOr("grant_types", "authorization_code")
	if !ok {
		return
	}
	bad := false
	for _, g := range list {
		switch g {
		case "authorization_code", "refresh_token":
			if !slices.Contains(d.GrantTypes, g) {
				d.GrantTypes = append(d.GrantTypes, g)
			}
		case "implicit", "password":
			v.problem(ReasonGrantType, refClientMetadata, "grant_types",
				"grant_types must not include %q: OAuth 2.1 removed it; use authorization_code with PKCE", g)
			bad = true
		default:
			v.warn(WarnGrantTypeFiltered, refClientMetadata,
				"grant type %q is not available to clients identified by a metadata document and was ignored", truncate(g, 64))
		}
	}
	if !bad && !slices.Contains(d.GrantTypes, "authorization_code") {
		v.problem(ReasonGrantType, refClientMetadata, "grant_types", "grant_types must include \"authorization_code\"")
	}
}

// responseTypes applies RFC 7591 §2, RFC 9700 §2.1.2, §2.4 to response_types.
func (v *validator) responseTypes(d *Document) {
	list, ok := v.strsOr("response_types", "code")
	if !ok {
		return
	}
	for _, r := range list {
		if r != "code" {
			v.problem(ReasonResponseType, refClientMetadata, "response_types",
				"response_types may only contain \"code\"; remove %q (OAuth 2.1 removed the implicit and hybrid flows)", truncate(r, 64))
			return
		}
	}
	if len(list) == 0 {
		v.problem(ReasonResponseType, refClientMetadata, "response_types", "response_types must include \"code\"")
		return
	}
	d.ResponseTypes = []string{"code"}
}

// display applies the client_name fallback
// (MCP 2025-11-25 Authorization §Client ID Metadata Documents) and CIMD §8.8.
func (v *validator) display(d *Document, id ClientID) {
	name, _ := v.str("client_name")
	d.ClientName = name
	switch clean := sanitizeName(name); {
	case clean == "":
		v.warn(WarnMissingClientName, refDisplay, "client_name is missing or empty; the consent screen shows the host %s instead", id.Host())
	case clean != strings.TrimSpace(name):
		v.warn(WarnClientNameSanitized, refDisplay, "client_name contains control, invisible or direction-changing characters or is too long; it is shown as %q", clean)
	}
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{"client_uri", &d.ClientURI}, {"logo_uri", &d.LogoURI}, {"tos_uri", &d.TOSURI}, {"policy_uri", &d.PolicyURI}} {
		s, ok := v.str(f.name)
		switch {
		case !ok:
		case isHTTPSURL(s):
			*f.dst = s
		default:
			v.warn(WarnURIDropped, refSSRF, "%s was ignored because it is not an https URL", f.name)
		}
	}
}

// other reads the remaining known members: scope (RFC 7591 §2),
// application_type (OIDC Registration §2), contacts, software_id and
// software_version.
func (v *validator) other(d *Document) {
	d.Scope, _ = v.str("scope")
	if t, ok := v.str("application_type"); ok {
		if t == "web" || t == "native" {
			d.ApplicationType = t
		} else {
			v.problem(ReasonApplicationType, refOIDCRegistration, "application_type", "application_type must be \"web\" or \"native\", not %q", truncate(t, 32))
		}
	}
	if c, _, ok := v.strs("contacts"); ok && len(c) > 0 {
		d.Contacts = c
	}
	d.SoftwareID, _ = v.str("software_id")
	d.SoftwareVersion, _ = v.str("software_version")
}

// AllowsRedirectURI reports whether uri matches one of the registered
// redirect URIs: exactly, or on any port for an http loopback URI
// (CIMD §4.2, RFC 6749 §3.1.2, OAuth 2.1 §8.4.2, RFC 8252 §7.3;
// oauth.MatchRedirectURI).
func (d *Document) AllowsRedirectURI(uri string) bool {
	for _, r := range d.RedirectURIs {
		if oauth.MatchRedirectURI(r, uri) {
			return true
		}
	}
	return false
}

// LocalhostOnlyRedirects reports whether every redirect URI is an http
// loopback URI (CIMD §8.5, MCP 2025-11-25 Authorization §Localhost Redirect URI
// Risks). Anyone can present such a client's client_id and receive the code on
// a local port, so the consent screen should warn.
func (d *Document) LocalhostOnlyRedirects() bool {
	for _, r := range d.RedirectURIs {
		if !oauth.IsLoopbackRedirect(r) {
			return false
		}
	}
	return len(d.RedirectURIs) > 0
}

// size returns the approximate number of bytes d holds, for a cache bounded
// in bytes.
func (d *Document) size() int {
	n := 320 // the struct itself and slice headers
	for _, s := range [...]string{d.ClientID, d.ClientName, d.ClientURI, d.LogoURI, d.TOSURI, d.PolicyURI,
		d.TokenEndpointAuthMethod, d.TokenEndpointAuthSigningAlg, d.JWKSURI, d.Scope, d.ApplicationType,
		d.SoftwareID, d.SoftwareVersion} {
		n += len(s)
	}
	for _, list := range [...][]string{d.RedirectURIs, d.GrantTypes, d.ResponseTypes, d.Contacts} {
		for _, s := range list {
			n += 16 + len(s)
		}
	}
	if d.JWKS != nil {
		for _, k := range d.JWKS.Keys {
			n += 88 + len(k.Raw) + len(k.Kty) + len(k.Kid) + len(k.Alg) + len(k.Use)
		}
	}
	return n
}
