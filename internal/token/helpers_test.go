package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// loadKeys returns Keys over ks on clk's time, loaded.
func loadKeys(t testing.TB, ks KeyStore, clk *fakeClock, opts KeyOptions) *Keys {
	t.Helper()
	opts.Now = clk.Now
	k := NewKeys(ks, opts)
	if err := k.Load(context.Background()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return k
}

// claimsAt is a complete claim set issued at now for lifetime.
func claimsAt(now time.Time, lifetime time.Duration) AccessClaims {
	return AccessClaims{
		Issuer:    "https://as.example",
		Subject:   "user-1",
		ClientID:  "https://client.example/cimd.json",
		Audience:  "https://mcp.example/mcp",
		Scope:     "files:read files:write",
		JTI:       NewID(),
		FamilyID:  "fam-1",
		IssuedAt:  now,
		ExpiresAt: now.Add(lifetime),
		AuthTime:  now.Add(-time.Minute),
	}
}

// parsedJWK is one key of a JWK Set as the test reads it, independently of
// the package's own types.
type parsedJWK struct {
	Members map[string]any
	Key     *ecdsa.PublicKey
}

// parseJWKS decodes a JWK Set by hand and builds each public key from x and y.
func parseJWKS(t testing.TB, b []byte) map[string]parsedJWK {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS %s: %v", b, err)
	}
	out := map[string]parsedJWK{}
	for _, m := range set.Keys {
		kid, _ := m["kid"].(string)
		x := decodeB64(t, m["x"])
		y := decodeB64(t, m["y"])
		if len(x) != 32 || len(y) != 32 {
			t.Fatalf("JWK %q: x and y must be 32 bytes, got %d and %d", kid, len(x), len(y))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("JWK %q: %v", kid, err)
		}
		if _, dup := out[kid]; dup {
			t.Fatalf("JWKS lists kid %q twice", kid)
		}
		out[kid] = parsedJWK{Members: m, Key: pub}
	}
	return out
}

// jwksKIDs lists the kids of a JWK Set in order.
func jwksKIDs(t testing.TB, b []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS %s: %v", b, err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

func decodeB64(t testing.TB, v any) []byte {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("want a base64url string, got %T", v)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

// splitJWT decodes a compact JWS into header and payload members and the
// raw signature.
func splitJWT(t testing.TB, tok string) (header, payload map[string]any, sig []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		dec := json.NewDecoder(strings.NewReader(string(decodeB64(t, parts[i]))))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	return header, payload, decodeB64(t, parts[2])
}

// signRaw builds a JWS from arbitrary header and payload values, signed by s.
func signRaw(t testing.TB, s *Signer, header, payload any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(h) + "." + b64(p)
	sig, err := s.sign([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// payloadFor is a valid claims object with times relative to now.
func payloadFor(now time.Time) map[string]any {
	return map[string]any{
		"iss": "https://as.example", "sub": "user-1", "aud": "https://mcp.example/mcp",
		"client_id": "https://client.example/cimd.json", "jti": "jti-1",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}
