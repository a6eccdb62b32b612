package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestJWTVerifierAlgorithms(t *testing.T) {
	is := newTestIssuer(t)
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := []testKey{
		newES256Key(t, "es256"),
		{kid: "es384", alg: jose.ES384, priv: p384},
		{kid: "rs256", alg: jose.RS256, priv: rsaPriv},
		{kid: "ps256", alg: jose.PS256, priv: rsaPriv},
		{kid: "eddsa", alg: jose.EdDSA, priv: edPriv},
		{kid: "small", alg: jose.RS256, priv: smallRSA},
	}
	is.publish(keys...)
	v := is.verifier(t, nil)
	for _, k := range keys[:5] {
		t.Run("H8 accepts "+string(k.alg), func(t *testing.T) {
			info, err := v.VerifyToken(context.Background(), k.mint(t, is.claims("a b"), nil))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"a", "b"}, info.Scopes); diff != "" {
				t.Fatalf("scopes (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("attack 58 RSA key under 2048 bits skipped", func(t *testing.T) {
		_, err := v.VerifyToken(context.Background(), keys[5].mint(t, is.claims(""), nil))
		if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "no RS256 key") {
			t.Fatalf("err = %v, want no usable key", err)
		}
	})
	t.Run("attack 58 algorithm outside the allowlist", func(t *testing.T) {
		es := is.verifier(t, func(o *JWTOptions) { o.Algorithms = []string{"ES256"} })
		_, err := es.VerifyToken(context.Background(), keys[2].mint(t, is.claims(""), nil))
		if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), `alg "RS256" is not allowed`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("attack 58 key type must fit alg", func(t *testing.T) {
		// An ES256 header on a token signed by the RSA key with kid rs256.
		tok := unsignedToken(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "rs256"}, is.claims(""), strings.Repeat("A", 86))
		_, err := v.VerifyToken(context.Background(), tok)
		if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "no ES256 key") {
			t.Fatalf("err = %v", err)
		}
	})
	for _, alg := range []string{"none", "HS256", "HS512", "RS1"} {
		t.Run("attack 58 allowlist refuses "+alg, func(t *testing.T) {
			_, err := NewJWTVerifier(JWTOptions{Issuer: is.URL(), Resource: testResource, Client: is.srv.Client(), Algorithms: []string{alg}})
			if err == nil {
				t.Fatalf("NewJWTVerifier accepted algorithm %q", alg)
			}
		})
	}
}

func TestJWTVerifierClaims(t *testing.T) {
	is := newTestIssuer(t)
	key := newES256Key(t, "k1")
	is.publish(key)
	clock := newFakeClock()
	v := is.verifier(t, func(o *JWTOptions) { o.Now = clock.Now; o.Leeway = 10 * time.Second })
	now := clock.Now()
	attacker := newES256Key(t, "k1") // same kid as the issuer's key
	with := func(mod func(c map[string]any)) map[string]any {
		c := is.claims("s1 s2")
		c["iat"], c["exp"] = now.Unix(), now.Add(time.Minute).Unix()
		mod(c)
		return c
	}
	tests := []struct {
		name    string
		token   string
		wantErr string // substring; "" means accepted
	}{
		{"H8 exp within leeway accepted", key.mint(t, with(func(c map[string]any) { c["exp"] = now.Add(-5 * time.Second).Unix() }), nil), ""},
		{"attack 58 exp beyond leeway", key.mint(t, with(func(c map[string]any) { c["exp"] = now.Add(-11 * time.Second).Unix() }), nil), "expired"},
		{"H8 nbf within leeway accepted", key.mint(t, with(func(c map[string]any) { c["nbf"] = now.Add(5 * time.Second).Unix() }), nil), ""},
		{"attack 58 nbf beyond leeway", key.mint(t, with(func(c map[string]any) { c["nbf"] = now.Add(11 * time.Second).Unix() }), nil), "not valid before"},
		{"attack 58 iat in the future", key.mint(t, with(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), nil), "issued in the future"},
		{"H8 fractional exp", key.mint(t, with(func(c map[string]any) { c["exp"] = float64(now.Add(time.Minute).UnixMilli()) / 1000 }), nil), ""},
		{"attack 58 exp not a number", key.mint(t, with(func(c map[string]any) { c["exp"] = "tomorrow" }), nil), "claims"},
		{"attack 58 negative exp", key.mint(t, with(func(c map[string]any) { c["exp"] = -1 }), nil), "claims"},
		{"attack 58 issuer differs by a trailing slash", key.mint(t, with(func(c map[string]any) { c["iss"] = is.URL() + "/" }), nil), "not the trusted issuer"},
		{"attack 57 audience list without this resource", key.mint(t, with(func(c map[string]any) { c["aud"] = []string{"https://a.example/mcp", "https://b.example/mcp"} }), nil), "does not include"},
		{"attack 57 audience not a URL", key.mint(t, with(func(c map[string]any) { c["aud"] = "mcp" }), nil), "does not include"},
		{"H10 audience with lone trailing slash differs from /mcp", key.mint(t, with(func(c map[string]any) { c["aud"] = "https://mcp.example.com/mcp/" }), nil), "does not include"},
		{"H8 typ application/at+jwt accepted", key.mint(t, with(func(map[string]any) {}), map[string]any{"typ": "application/at+jwt"}), ""},
		{"H8 typ case-insensitive", key.mint(t, with(func(map[string]any) {}), map[string]any{"typ": "AT+JWT"}), ""},
		{"attack 58 two-part token", "a.b", "compact"},
		{"attack 58 JWE-shaped token", "a.b.c.d.e", "compact"},
		{"attack 58 header not base64url", "!!!." + strings.Repeat("A", 10) + ".AA", "header"},
		{"attack 58 padded signature", key.mint(t, with(func(map[string]any) {}), nil) + "=", "signature"},
		{"attack 58 unknown kid", newES256Key(t, "k-unknown").mint(t, with(func(map[string]any) {}), nil), "no ES256 key"},
		{"RFC 9068 typ JWT refused", key.mint(t, with(func(map[string]any) {}), map[string]any{"typ": "JWT"}), `typ "JWT"`},
		{"RFC 9068 typ missing refused", key.mint(t, with(func(map[string]any) {}), map[string]any{"typ": nil}), `typ ""`},
		{"RFC 7515 crit header refused", key.mint(t, with(func(map[string]any) {}), map[string]any{"crit": []string{"exp"}, "exp": 1}), "crit"},
		{"RFC 7797 b64 header refused", key.mint(t, with(func(map[string]any) {}), map[string]any{"b64": true}), "crit"},
		{"attack 58 alg none", unsignedToken(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": "k1"}, with(func(map[string]any) {}), ""), `alg "none" is not allowed`},
		{"attack 58 HS256 keyed with the public JWK", hmacToken(t, key, with(func(map[string]any) {})), `alg "HS256" is not allowed`},
		{"attack 58 embedded jwk of another key not trusted", attacker.mint(t, with(func(map[string]any) {}), map[string]any{"jwk": attacker.publicJWK()}), "bad signature"},
		{"attack 58 tampered payload", tamperPayload(t, key.mint(t, with(func(map[string]any) {}), nil), with(func(c map[string]any) { c["scope"] = "admin" })), "bad signature"},
		{"RFC 9068 sub missing", key.mint(t, with(func(c map[string]any) { delete(c, "sub") }), nil), "no sub claim"},
		{"RFC 9068 client_id missing", key.mint(t, with(func(c map[string]any) { delete(c, "client_id") }), nil), "no client_id claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := v.VerifyToken(context.Background(), tt.token)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifyToken: %v", err)
				}
				if info.Subject != "user-1" || info.ClientID != "https://client.example.com/cimd.json" {
					t.Fatalf("info = %+v", info)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrInvalidToken mentioning %q", err, tt.wantErr)
			}
		})
	}
	t.Run("H8 TokenInfo carries every claim", func(t *testing.T) {
		c := with(func(c map[string]any) {
			delete(c, "client_id")
			c["azp"] = "https://client.example.com/cimd.json"
			c["tenant"] = "acme"
		})
		info, err := v.VerifyToken(context.Background(), key.mint(t, c, nil))
		if err != nil {
			t.Fatal(err)
		}
		want := &TokenInfo{
			Issuer: is.URL(), Subject: "user-1", ClientID: "https://client.example.com/cimd.json",
			Scopes: []string{"s1", "s2"}, Audience: []string{testResource},
			Expiry: time.Unix(now.Add(time.Minute).Unix(), 0), IssuedAt: time.Unix(now.Unix(), 0), ID: "jti-1",
		}
		if diff := cmp.Diff(want, info, cmpopts.IgnoreFields(TokenInfo{}, "Claims")); diff != "" {
			t.Fatalf("TokenInfo (-want +got):\n%s", diff)
		}
		var extra struct{ Tenant string }
		if err := json.Unmarshal(info.Claims, &extra); err != nil || extra.Tenant != "acme" {
			t.Fatalf("Claims = %s, %v", info.Claims, err)
		}
	})
}

// TestJWTVerifierMissingSubOrClientID checks RFC 9068 §2.2: sub and
// client_id are required unless JWTOptions.AllowMissingSubOrClientID is set.
func TestJWTVerifierMissingSubOrClientID(t *testing.T) {
	is := newTestIssuer(t)
	key := newES256Key(t, "k1")
	is.publish(key)
	strict, lax := is.verifier(t, nil), is.verifier(t, func(o *JWTOptions) { o.AllowMissingSubOrClientID = true })
	tests := []struct {
		name       string
		drop       []string
		strictErr  string // "" means accepted by the default verifier
		wantSub    string
		wantClient string
	}{
		{"both present", nil, "", "user-1", "https://client.example.com/cimd.json"},
		{"no sub", []string{"sub"}, "no sub claim", "", "https://client.example.com/cimd.json"},
		{"no client_id", []string{"client_id"}, "no client_id claim", "user-1", ""},
		{"neither", []string{"sub", "client_id"}, "no sub claim", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := is.claims("")
			for _, name := range tt.drop {
				delete(c, name)
			}
			tok := key.mint(t, c, nil)
			_, err := strict.VerifyToken(context.Background(), tok)
			if tt.strictErr == "" && err != nil {
				t.Fatalf("default verifier: %v", err)
			}
			if tt.strictErr != "" && (!errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tt.strictErr)) {
				t.Fatalf("default verifier: err = %v, want ErrInvalidToken mentioning %q", err, tt.strictErr)
			}
			info, err := lax.VerifyToken(context.Background(), tok)
			if err != nil {
				t.Fatalf("verifier with AllowMissingSubOrClientID: %v", err)
			}
			if info.Subject != tt.wantSub || info.ClientID != tt.wantClient {
				t.Fatalf("Subject, ClientID = %q, %q; want %q, %q", info.Subject, info.ClientID, tt.wantSub, tt.wantClient)
			}
		})
	}
	t.Run("azp stands for client_id", func(t *testing.T) {
		c := is.claims("")
		delete(c, "client_id")
		c["azp"] = "client-a"
		info, err := strict.VerifyToken(context.Background(), key.mint(t, c, nil))
		if err != nil || info.ClientID != "client-a" {
			t.Fatalf("VerifyToken = %+v, %v; want ClientID client-a", info, err)
		}
	})
	t.Run("RequireBearer answers invalid_token", func(t *testing.T) {
		c := is.claims("")
		delete(c, "sub")
		h := &okHandler{}
		r := httptest.NewRequest("GET", testResource, nil)
		r.Header.Set("Authorization", "Bearer "+key.mint(t, c, nil))
		w := httptest.NewRecorder()
		RequireBearer(strict, Options{Resource: testResource})(h).ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) || h.calls != 0 {
			t.Fatalf("got %d %q (handler ran %d times), want 401 invalid_token", w.Code, w.Header().Get("WWW-Authenticate"), h.calls)
		}
	})
}

func TestNewJWTVerifierChecksOptions(t *testing.T) {
	client := &http.Client{}
	tests := []struct {
		name string
		opts JWTOptions
		want string
	}{
		{"H8 client required", JWTOptions{Issuer: "https://as.example", Resource: testResource}, "Client is required"},
		{"H8 issuer required", JWTOptions{Resource: testResource, Client: client}, "Issuer"},
		{"H10 resource must be canonicalisable", JWTOptions{Issuer: "https://as.example", Resource: "mcp", Client: client}, "Resource"},
		{"B14 jwks url over http for an https issuer", JWTOptions{Issuer: "https://as.example", Resource: testResource, Client: client, JWKSURL: "http://as.example/jwks"}, "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewJWTVerifier(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
