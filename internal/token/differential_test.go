package token

// Differential tests against github.com/go-jose/go-jose/v4, the library the
// resource package verifies with: every access token this package signs
// must verify there (RFC 7515 §7.1, RFC 7518 §3.4, RFC 9068 §2), and the
// hand-written parser of VerifyAccessToken must reach the same verdict as
// go-jose on any input.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/resource"
)

// diffFixture is a loaded key set, a fixed time, and the three verifiers
// the differential tests compare.
type diffFixture struct {
	keys     *Keys
	clk      *fakeClock
	now      time.Time
	jwks     jose.JSONWebKeySet // Keys.JWKS as go-jose reads it
	resource *resource.JWTVerifier
}

const (
	diffIssuer   = "https://as.example"
	diffResource = "https://mcp.example/mcp"
)

// newDiffFixture loads keys (two published: current and next) and starts a
// loopback TLS server publishing their JWKS for a resource.JWTVerifier whose
// clock is the fixture's.
func newDiffFixture(t testing.TB) *diffFixture {
	t.Helper()
	clk := newFakeClock()
	fx := &diffFixture{keys: loadKeys(t, newFakeKeyStore(), clk, KeyOptions{PublishLead: -1}), clk: clk, now: clk.Now()}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(fx.keys.JWKS())
	}))
	t.Cleanup(srv.Close)
	fx.reloadJWKS(t)
	v, err := resource.NewJWTVerifier(resource.JWTOptions{
		Issuer: diffIssuer, Resource: diffResource, Client: srv.Client(), JWKSURL: srv.URL + "/jwks",
		Now: func() time.Time { return fx.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	fx.resource = v
	return fx
}

// reloadJWKS reads the current JWK Set with go-jose.
func (fx *diffFixture) reloadJWKS(t testing.TB) {
	t.Helper()
	fx.jwks = jose.JSONWebKeySet{}
	if err := json.Unmarshal(fx.keys.JWKS(), &fx.jwks); err != nil {
		t.Fatalf("go-jose cannot read our JWKS: %v", err)
	}
}

// extraClaims are the RFC 9068 §2.2 claims jwt.Claims does not name.
type extraClaims struct {
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	AuthTime int64  `json:"auth_time"`
	SID      string `json:"sid"`
}

// profile is what a verifier requires of a token beyond a valid ES256
// signature by a published key. The reference applies it with go-jose.
type profile struct {
	// canonical: every segment must be the one base64url encoding of its
	// bytes (RFC 7515 §2, no padding or stray bits, no whitespace), as
	// VerifyAccessToken requires; go-jose decodes leniently.
	canonical bool
	// anyKid: a token without kid may be checked with every published key
	// (resource); otherwise kid must name one (VerifyAccessToken).
	anyKid bool
	// issuer and audience, if set, must match iss and aud.
	issuer, audience string
	leeway           time.Duration
	// ownClaims: the complete claim set this package issues (iss, aud, jti,
	// iat required, exp after iat); iat in the future is not refused.
	ownClaims bool
}

var (
	// tokenProfile is VerifyAccessToken's contract (see its doc comment).
	tokenProfile = profile{canonical: true, ownClaims: true}
	// resourceProfile is resource.JWTVerifier's with the fixture's options.
	resourceProfile = profile{anyKid: true, issuer: diffIssuer, audience: diffResource, leeway: resource.DefaultLeeway}
)

// reference verifies tok with go-jose under p: jwt.ParseSigned with the
// ES256 allowlist, the RFC 9068 §4 header rules, Claims with the key kid
// selects, and jwt.Expected for iss, aud, exp, nbf and iat.
func (fx *diffFixture) reference(tok string, p profile) error {
	if p.canonical {
		for _, seg := range strings.Split(tok, ".") {
			if b, err := base64.RawURLEncoding.DecodeString(seg); err != nil || base64.RawURLEncoding.EncodeToString(b) != seg {
				return errors.New("a segment is not canonical base64url")
			}
		}
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return err
	}
	h := parsed.Headers[0]
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	switch {
	case !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt"):
		return fmt.Errorf("typ %q", typ)
	case h.ExtraHeaders["crit"] != nil || h.ExtraHeaders["b64"] != nil:
		return errors.New("crit or b64 header")
	}
	candidates := fx.jwks.Key(h.KeyID)
	if h.KeyID == "" && p.anyKid {
		candidates = fx.jwks.Keys
	}
	var c jwt.Claims
	var extra extraClaims
	err = errors.New("no key verifies the signature")
	for _, k := range candidates {
		if err = parsed.Claims(k.Key, &c, &extra); err == nil {
			break
		}
	}
	switch {
	case err != nil:
		return err
	case c.Subject == "" || extra.ClientID == "":
		return errors.New("sub or client_id missing")
	case c.Expiry == nil:
		return errors.New("exp missing")
	}
	if p.ownClaims {
		switch {
		case c.Issuer == "" || len(c.Audience) == 0 || c.ID == "" || c.IssuedAt == nil:
			return errors.New("iss, aud, jti or iat missing")
		case !c.Expiry.Time().After(c.IssuedAt.Time()):
			return errors.New("exp not after iat")
		}
		c.IssuedAt = nil // VerifyAccessToken does not compare iat with the clock
	}
	want := jwt.Expected{Issuer: p.issuer, Time: fx.now}
	if p.audience != "" {
		want.AnyAudience = jwt.Audience{p.audience}
	}
	return c.ValidateWithLeeway(want, p.leeway)
}

// verdicts runs tok through VerifyAccessToken, resource.JWTVerifier and the
// reference for each, and fails on any disagreement.
func (fx *diffFixture) verdicts(t *testing.T, tok string) {
	t.Helper()
	_, ownErr := fx.keys.VerifyAccessToken(tok, fx.now)
	if ownErr != nil && !errors.Is(ownErr, ErrInvalid) {
		t.Fatalf("VerifyAccessToken(%q): %v does not wrap ErrInvalid", tok, ownErr)
	}
	if refErr := fx.reference(tok, tokenProfile); (ownErr == nil) != (refErr == nil) {
		t.Fatalf("VerifyAccessToken and go-jose disagree on %q:\n  ours:    %v\n  go-jose: %v", tok, ownErr, refErr)
	}
	_, resErr := fx.resource.VerifyToken(context.Background(), tok)
	if resErr != nil && !errors.Is(resErr, resource.ErrInvalidToken) {
		t.Fatalf("resource.JWTVerifier(%q): %v does not wrap ErrInvalidToken", tok, resErr)
	}
	if refErr := fx.reference(tok, resourceProfile); (resErr == nil) != (refErr == nil) {
		t.Fatalf("resource.JWTVerifier and go-jose disagree on %q:\n  resource: %v\n  go-jose:  %v", tok, resErr, refErr)
	}
}

// TestSignedTokensVerifyWithGoJose signs claim sets of every shape this
// package issues with successive keys (ES256 on P-256 is the only
// algorithm it signs with) and requires go-jose to verify each token with
// the published JWK, read back the same claims, and resource.JWTVerifier to
// accept it.
func TestSignedTokensVerifyWithGoJose(t *testing.T) {
	fx := newDiffFixture(t)
	now := fx.now
	minimal := AccessClaims{Issuer: diffIssuer, Subject: "u", ClientID: "c", Audience: diffResource, JTI: "j", IssuedAt: now, ExpiresAt: now.Add(time.Second)}
	claimSets := map[string]AccessClaims{
		"complete": claimsAt(now, time.Hour),
		"minimal":  minimal,
		"unicode and escapes": func() AccessClaims {
			c := minimal
			c.Subject, c.ClientID, c.Scope = "ユーザー \"<&>\" \u2028", "https://client.example/cimd.json?a=1&b=2", "a:b c/d e\\f"
			return c
		}(),
		"long values": func() AccessClaims {
			c := claimsAt(now, 24*time.Hour)
			c.Scope = strings.Repeat("scope:x ", 100)
			c.Subject = strings.Repeat("s", 1000)
			return c
		}(),
	}
	for rotation := range 3 {
		if rotation > 0 {
			if err := fx.keys.Rotate(context.Background()); err != nil {
				t.Fatal(err)
			}
			fx.reloadJWKS(t)
		}
		kid := fx.keys.Signer().KeyID()
		for name, want := range claimSets {
			want.Audience = diffResource
			want.Issuer = diffIssuer
			t.Run(fmt.Sprintf("key %d %s", rotation, name), func(t *testing.T) {
				tok, err := fx.keys.SignAccessToken(want)
				if err != nil {
					t.Fatal(err)
				}
				parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
				if err != nil {
					t.Fatalf("go-jose cannot parse our token: %v", err)
				}
				h := parsed.Headers[0]
				if h.Algorithm != "ES256" || h.KeyID != kid || h.ExtraHeaders[jose.HeaderType] != TypeAccessToken {
					t.Fatalf("header alg %q kid %q typ %v, want ES256 %q at+jwt", h.Algorithm, h.KeyID, h.ExtraHeaders[jose.HeaderType], kid)
				}
				keys := fx.jwks.Key(kid)
				if len(keys) != 1 {
					t.Fatalf("JWKS has %d keys with kid %q, want 1", len(keys), kid)
				}
				var c jwt.Claims
				var extra extraClaims
				if err := parsed.Claims(keys[0].Key, &c, &extra); err != nil {
					t.Fatalf("go-jose does not verify our token: %v", err)
				}
				got := AccessClaims{
					Issuer: c.Issuer, Subject: c.Subject, ClientID: extra.ClientID, Audience: strings.Join(c.Audience, " "),
					Scope: extra.Scope, JTI: c.ID, FamilyID: extra.SID,
					IssuedAt: c.IssuedAt.Time(), ExpiresAt: c.Expiry.Time(), AuthTime: unixTime(extra.AuthTime),
				}
				if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Unix() == b.Unix() })); diff != "" {
					t.Fatalf("claims go-jose read (-signed +read):\n%s", diff)
				}
				if err := c.ValidateWithLeeway(jwt.Expected{Issuer: diffIssuer, AnyAudience: jwt.Audience{diffResource}, Time: now}, 0); err != nil {
					t.Fatalf("go-jose refuses the claims: %v", err)
				}
				if _, err := fx.resource.VerifyToken(context.Background(), tok); err != nil {
					t.Fatalf("resource.JWTVerifier: %v", err)
				}
				fx.verdicts(t, tok)
			})
		}
	}
}

// diffSeeds returns valid tokens and mutations of them for
// FuzzVerifyDifferential: every verdict either verifier can reach.
func diffSeeds(t testing.TB, fx *diffFixture) []string {
	t.Helper()
	now := fx.now
	s := fx.keys.Signer()
	kid := s.KeyID()
	good, err := s.SignAccessToken(claimsAt(now, 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	payload := func(edit func(map[string]any)) map[string]any {
		p := payloadFor(now)
		p["iss"], p["aud"] = diffIssuer, diffResource
		if edit != nil {
			edit(p)
		}
		return p
	}
	hdr := func(edit func(map[string]any)) map[string]any {
		h := map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": kid}
		if edit != nil {
			edit(h)
		}
		return h
	}
	signed := func(h map[string]any, p any) string { return signRaw(t, s, h, p) }
	parts := strings.Split(good, ".")
	last := parts[2][len(parts[2])-1]
	var pubJWK map[string]any
	if err := json.Unmarshal(fx.keys.JWKS(), &struct{ Keys []any }{Keys: []any{&pubJWK}}); err != nil {
		t.Fatal(err)
	}
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: mustJSON(t, pubJWK)}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	hsSigned, err := hs.Sign(mustJSON(t, payload(nil)))
	if err != nil {
		t.Fatal(err)
	}
	hsTok, err := hsSigned.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		good,
		signed(hdr(nil), payload(nil)),
		// typ variations (RFC 9068 §4)
		signed(hdr(func(h map[string]any) { h["typ"] = "application/at+jwt" }), payload(nil)),
		signed(hdr(func(h map[string]any) { h["typ"] = "AT+JWT" }), payload(nil)),
		signed(hdr(func(h map[string]any) { h["typ"] = "JWT" }), payload(nil)),
		signed(hdr(func(h map[string]any) { delete(h, "typ") }), payload(nil)),
		signed(hdr(func(h map[string]any) { h["typ"] = 1 }), payload(nil)),
		// header extensions and key selection
		signed(hdr(func(h map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 }), payload(nil)),
		signed(hdr(func(h map[string]any) { h["b64"] = false }), payload(nil)),
		signed(hdr(func(h map[string]any) { h["b64"] = true }), payload(nil)),
		signed(hdr(func(h map[string]any) { delete(h, "kid") }), payload(nil)),
		signed(hdr(func(h map[string]any) { h["kid"] = "unknown" }), payload(nil)),
		signed(hdr(func(h map[string]any) { h["jwk"] = pubJWK }), payload(nil)),
		// algorithm confusion
		b64(mustJSON(t, hdr(func(h map[string]any) { h["alg"] = "none" }))) + "." + parts[1] + ".",
		b64(mustJSON(t, hdr(func(h map[string]any) { h["alg"] = "none" }))) + "." + parts[1] + "." + parts[2],
		hsTok,
		signed(hdr(func(h map[string]any) { h["alg"] = "ES384" }), payload(nil)),
		// claims
		signed(hdr(nil), payload(func(p map[string]any) { delete(p, "sub") })),
		signed(hdr(nil), payload(func(p map[string]any) { delete(p, "client_id") })),
		signed(hdr(nil), payload(func(p map[string]any) { delete(p, "exp") })),
		signed(hdr(nil), payload(func(p map[string]any) { p["exp"] = now.Add(-time.Hour).Unix() })),
		signed(hdr(nil), payload(func(p map[string]any) { p["exp"] = now.Add(-10 * time.Second).Unix() })),
		signed(hdr(nil), payload(func(p map[string]any) { p["nbf"] = now.Add(time.Hour).Unix() })),
		signed(hdr(nil), payload(func(p map[string]any) { p["nbf"] = now.Add(10 * time.Second).Unix() })),
		signed(hdr(nil), payload(func(p map[string]any) { p["iat"] = now.Add(time.Hour).Unix(); p["exp"] = now.Add(2 * time.Hour).Unix() })),
		signed(hdr(nil), payload(func(p map[string]any) { p["aud"] = "https://other.example/mcp" })),
		signed(hdr(nil), payload(func(p map[string]any) { p["iss"] = "https://evil.example" })),
		signed(hdr(nil), []string{"not", "an", "object"}),
		// encodings
		"!!!." + parts[1] + "." + parts[2],
		parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + string(last+1),
		parts[0] + "." + parts[1] + "." + parts[2] + "=",
		parts[0] + "." + parts[1] + "." + parts[2][:40] + "\n" + parts[2][40:],
		parts[0] + "\n." + parts[1] + "." + parts[2],
		parts[0] + "." + parts[1] + "." + parts[2][:80],
		parts[0] + "." + parts[1] + "." + b64(rawToDER([64]byte(decodeB64(t, parts[2])))),
		// dots
		good + ".",
		"." + good,
		parts[0] + ".." + parts[1] + "." + parts[2],
		parts[0] + "." + parts[1],
		good + ".x.y",
		"",
		// tampering
		parts[0] + "." + b64(mustJSON(t, payload(func(p map[string]any) { p["scope"] = "admin" }))) + "." + parts[2],
		parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
	}
}

// TestVerifyDifferentialSeeds runs every seed of FuzzVerifyDifferential and
// checks that the seeds reach both verdicts for both verifiers.
func TestVerifyDifferentialSeeds(t *testing.T) {
	fx := newDiffFixture(t)
	var ownOK, resOK int
	seeds := diffSeeds(t, fx)
	for _, tok := range seeds {
		fx.verdicts(t, tok)
		if _, err := fx.keys.VerifyAccessToken(tok, fx.now); err == nil {
			ownOK++
		}
		if _, err := fx.resource.VerifyToken(context.Background(), tok); err == nil {
			resOK++
		}
	}
	if ownOK == 0 || ownOK == len(seeds) || resOK == 0 || resOK == len(seeds) {
		t.Fatalf("seeds accepted: %d by VerifyAccessToken, %d by resource, of %d; want both verdicts", ownOK, resOK, len(seeds))
	}
}

// FuzzVerifyDifferential feeds the same input to VerifyAccessToken (this
// package's hand-written parser), to resource.JWTVerifier, and to go-jose
// under each one's documented profile, and requires the same accept or
// reject verdict.
func FuzzVerifyDifferential(f *testing.F) {
	fx := newDiffFixture(f)
	for _, tok := range diffSeeds(f, fx) {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		fx.verdicts(t, tok)
	})
}
