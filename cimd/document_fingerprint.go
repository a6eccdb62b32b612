package cimd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// Change detection for the security-relevant members of a document
// (CIMD §8.4, §8.4.1).

// securityField is one security-relevant member in canonical form.
type securityField struct {
	name  string
	value []byte // canonical JSON
}

// securityFields returns, in a fixed order, the members whose change may
// call for fresh consent or revocation (CIMD §8.4): redirect_uris,
// token_endpoint_auth_method, jwks, jwks_uri, grant_types, scope,
// client_name and logo_uri. Order that carries no meaning is removed:
// redirect URIs, grant types, scope tokens and keys are sorted (JWK.Raw is
// already canonical).
func (d *Document) securityFields() [8]securityField {
	var keys []string
	if d.JWKS != nil {
		keys = make([]string, 0, len(d.JWKS.Keys))
		for _, k := range d.JWKS.Keys {
			keys = append(keys, string(k.Raw))
		}
		slices.Sort(keys)
	}
	return [8]securityField{
		{"redirect_uris", mustJSON(sortedSet(d.RedirectURIs))},
		{"token_endpoint_auth_method", mustJSON(d.TokenEndpointAuthMethod)},
		{"jwks", mustJSON(keys)},
		{"jwks_uri", mustJSON(d.JWKSURI)},
		{"grant_types", mustJSON(sortedSet(d.GrantTypes))},
		{"scope", mustJSON(sortedSet(strings.Fields(d.Scope)))},
		{"client_name", mustJSON(d.ClientName)},
		{"logo_uri", mustJSON(d.LogoURI)},
	}
}

// Fingerprint returns the hex SHA-256 of a canonical encoding of the
// security-relevant members (draft-ietf-oauth-client-id-metadata-document-02
// §8.4): redirect_uris, token_endpoint_auth_method, jwks, jwks_uri,
// grant_types, scope, client_name and logo_uri. Two documents have the same
// fingerprint exactly when none of these differs (ChangeEvent.Fields names
// those that do); re-ordering
// redirect URIs, grant types, scopes or keys, or re-formatting the JSON,
// does not change it. Store it with each grant and compare on use.
func (d *Document) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte("cimd-fingerprint-v1\n"))
	for _, f := range d.securityFields() {
		h.Write([]byte(f.name))
		h.Write([]byte{'='})
		h.Write(f.value)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// changedFields returns the JSON names of the security-relevant members
// that differ between old and new, in the order Fingerprint lists them, or
// nil when none does (CIMD §8.4). A nil Document
// counts as one with every member empty.
func changedFields(old, new *Document) []string {
	if old == nil {
		old = &Document{}
	}
	if new == nil {
		new = &Document{}
	}
	a, b := old.securityFields(), new.securityFields()
	var changed []string
	for i := range a {
		if !bytes.Equal(a[i].value, b[i].value) {
			changed = append(changed, a[i].name)
		}
	}
	return changed
}

// sortedSet returns the distinct elements of list in sorted order, as a
// new slice; nil and empty lists both give an empty one.
func sortedSet(list []string) []string {
	out := append([]string{}, list...)
	slices.Sort(out)
	return slices.Compact(out)
}

// canonicalJSON re-encodes a JSON value with object members sorted by name,
// no insignificant whitespace and encoding/json's string escaping; numbers
// keep their text. raw is returned unchanged if it does not decode.
func canonicalJSON(raw json.RawMessage) []byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	return mustJSON(v)
}

// mustJSON encodes values that always encode: strings, string slices and
// values decoded from JSON.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("cimd: encoding canonical JSON: " + err.Error())
	}
	return b
}
