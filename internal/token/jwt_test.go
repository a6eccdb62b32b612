package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSignAccessTokenRFC9068(t *testing.T) {
	clk := newFakeClock()
	k := loadKeys(t, newFakeKeyStore(), clk, KeyOptions{})
	now := clk.Now()
	kid := k.Signer().KeyID()

	tests := []struct {
		name   string
		claims AccessClaims
		want   map[string]any
	}{
		{
			name:   "F10 all claims",
			claims: claimsAt(now, 10*time.Minute),
			want: map[string]any{
				"iss": "https://as.example", "sub": "user-1", "aud": "https://mcp.example/mcp",
				"client_id": "https://client.example/cimd.json", "scope": "files:read files:write",
				"sid": "fam-1", "iat": json.Number(itoa(now.Unix())), "exp": json.Number(itoa(now.Add(10 * time.Minute).Unix())),
				"auth_time": json.Number(itoa(now.Add(-time.Minute).Unix())),
			},
		},
		{
			name: "F10 required claims only",
			claims: AccessClaims{
				Issuer: "https://as.example", Subject: "user-2", ClientID: "c", Audience: "https://mcp.example",
				JTI: "j", IssuedAt: now, ExpiresAt: now.Add(time.Minute),
			},
			want: map[string]any{
				"iss": "https://as.example", "sub": "user-2", "aud": "https://mcp.example", "client_id": "c",
				"jti": "j", "iat": json.Number(itoa(now.Unix())), "exp": json.Number(itoa(now.Add(time.Minute).Unix())),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := k.SignAccessToken(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			header, payload, sig := splitJWT(t, tok)
			if diff := cmp.Diff(map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": kid}, header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if _, ok := tt.want["jti"]; !ok {
				tt.want["jti"] = tt.claims.JTI
			}
			if diff := cmp.Diff(tt.want, payload); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}

			// The signature verifies with crypto/ecdsa and the key from the JWKS.
			jwk, ok := parseJWKS(t, k.JWKS())[kid]
			if !ok {
				t.Fatalf("kid %q not in JWKS", kid)
			}
			if len(sig) != 64 {
				t.Fatalf("signature is %d bytes, want 64 (R || S, RFC 7518 §3.4)", len(sig))
			}
			input := tok[:strings.LastIndexByte(tok, '.')]
			hash := sha256.Sum256([]byte(input))
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			if !ecdsa.Verify(jwk.Key, hash[:], r, s) {
				t.Error("signature does not verify with the JWKS key")
			}

			got, err := k.VerifyAccessToken(tok, now)
			if err != nil {
				t.Fatalf("VerifyAccessToken: %v", err)
			}
			want := tt.claims
			want.IssuedAt = want.IssuedAt.Truncate(time.Second)
			want.ExpiresAt = want.ExpiresAt.Truncate(time.Second)
			want.AuthTime = want.AuthTime.Truncate(time.Second)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("VerifyAccessToken claims (-want +got):\n%s", diff)
			}
		})
	}
}

func itoa(n int64) string { return big.NewInt(n).String() }

func TestSignAccessTokenRefusesIncompleteClaims(t *testing.T) {
	clk := newFakeClock()
	k := loadKeys(t, newFakeKeyStore(), clk, KeyOptions{})
	now := clk.Now()
	tests := []struct {
		name   string
		modify func(*AccessClaims)
	}{
		{"F10 no iss", func(c *AccessClaims) { c.Issuer = "" }},
		{"F10 no sub", func(c *AccessClaims) { c.Subject = "" }},
		{"F10 no client_id", func(c *AccessClaims) { c.ClientID = "" }},
		{"F10 no aud", func(c *AccessClaims) { c.Audience = "" }},
		{"F10 no jti", func(c *AccessClaims) { c.JTI = "" }},
		{"F10 no iat", func(c *AccessClaims) { c.IssuedAt = time.Time{} }},
		{"F10 exp before iat", func(c *AccessClaims) { c.ExpiresAt = c.IssuedAt.Add(-time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claimsAt(now, time.Minute)
			tt.modify(&c)
			if tok, err := k.SignAccessToken(c); err == nil {
				t.Errorf("signed %q, want an error", tok)
			}
		})
	}
}

func TestSignBeforeLoad(t *testing.T) {
	k := NewKeys(newFakeKeyStore(), KeyOptions{})
	if _, err := k.SignAccessToken(claimsAt(time.Now(), time.Minute)); !errors.Is(err, ErrNoKey) {
		t.Errorf("SignAccessToken before Load: %v, want ErrNoKey", err)
	}
	if _, err := k.VerifyAccessToken("a.b.c", time.Now()); !errors.Is(err, ErrInvalid) {
		t.Errorf("VerifyAccessToken before Load: %v, want ErrInvalid", err)
	}
	if got := string(k.JWKS()); got != `{"keys":[]}` {
		t.Errorf("JWKS before Load = %s", got)
	}
}

func TestVerifyAccessTokenAccepts(t *testing.T) {
	clk := newFakeClock()
	k := loadKeys(t, newFakeKeyStore(), clk, KeyOptions{})
	s := k.Signer()
	now := clk.Now()
	for _, typ := range []string{"at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"} {
		t.Run("F10 typ "+typ, func(t *testing.T) {
			tok := signRaw(t, s, map[string]any{"alg": "ES256", "typ": typ, "kid": s.KeyID()}, payloadFor(now))
			if _, err := k.VerifyAccessToken(tok, now); err != nil {
				t.Errorf("VerifyAccessToken: %v", err)
			}
		})
	}
}

func TestVerifyAccessTokenRejects(t *testing.T) {
	clk := newFakeClock()
	k := loadKeys(t, newFakeKeyStore(), clk, KeyOptions{})
	s := k.Signer()
	now := clk.Now()
	kid := s.KeyID()
	hdr := func(alg, typ, kid string) map[string]any { return map[string]any{"alg": alg, "typ": typ, "kid": kid} }
	good, err := k.SignAccessToken(claimsAt(now, 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	// A key of the right type that is not ours.
	otherPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := &Signer{kid: "other", priv: otherPriv}

	hs256 := func(secret []byte) string {
		input := b64(mustJSON(t, hdr("HS256", "at+jwt", kid))) + "." + b64(mustJSON(t, payloadFor(now)))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return input + "." + b64(m.Sum(nil))
	}
	pubJWK := parseJWKS(t, k.JWKS())[kid].Members
	pubPoint, err := s.priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	tamperedPayload := payloadFor(now)
	tamperedPayload["sub"] = "admin"
	noJTI := payloadFor(now)
	delete(noJTI, "jti")
	sigBytes := decodeB64(t, parts[2])
	flipped := append([]byte(nil), sigBytes...)
	flipped[10] ^= 1
	// The last base64url character of a 64-byte value carries 2 unused bits.
	last := parts[2][len(parts[2])-1]
	nonCanonical := parts[2][:len(parts[2])-1] + string(last+1)

	tests := []struct {
		name        string
		tok         string
		wantExpired bool
	}{
		{"attack 58 alg none", b64(mustJSON(t, hdr("none", "at+jwt", kid))) + "." + b64(mustJSON(t, payloadFor(now))) + ".", false},
		{"attack 58 alg none with our signature", b64(mustJSON(t, hdr("none", "at+jwt", kid))) + "." + parts[1] + "." + parts[2], false},
		{"attack 52 HS256 keyed with the public JWK", hs256(mustJSON(t, pubJWK)), false},
		{"attack 52 HS256 keyed with the public point", hs256(pubPoint), false},
		{"attack 58 ES384 claimed", signRaw(t, s, hdr("ES384", "at+jwt", kid), payloadFor(now)), false},
		{"attack 58 tampered payload", parts[0] + "." + b64(mustJSON(t, tamperedPayload)) + "." + parts[2], false},
		{"attack 58 tampered signature", parts[0] + "." + parts[1] + "." + b64(flipped), false},
		{"attack 58 non-canonical signature encoding", parts[0] + "." + parts[1] + "." + nonCanonical, false},
		{"attack 58 signature in DER form", parts[0] + "." + parts[1] + "." + b64(rawToDER([64]byte(sigBytes))), false},
		{"attack 58 unknown kid", signRaw(t, other, hdr("ES256", "at+jwt", "other"), payloadFor(now)), false},
		{"attack 58 foreign key under our kid", signRaw(t, other, hdr("ES256", "at+jwt", kid), payloadFor(now)), false},
		{"attack 58 no kid", signRaw(t, s, map[string]any{"alg": "ES256", "typ": "at+jwt"}, payloadFor(now)), false},
		{"F10 typ JWT", signRaw(t, s, hdr("ES256", "JWT", kid), payloadFor(now)), false},
		{"F10 no typ", signRaw(t, s, map[string]any{"alg": "ES256", "kid": kid}, payloadFor(now)), false},
		{"F10 typ application/jwt", signRaw(t, s, hdr("ES256", "application/jwt", kid), payloadFor(now)), false},
		{"crit header", signRaw(t, s, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": kid, "crit": []string{"exp"}}, payloadFor(now)), false},
		{"F10 missing jti", signRaw(t, s, hdr("ES256", "at+jwt", kid), noJTI), false},
		{"attack 58 expired", signRaw(t, s, hdr("ES256", "at+jwt", kid), map[string]any{
			"iss": "i", "sub": "s", "aud": "a", "client_id": "c", "jti": "j",
			"iat": now.Add(-time.Hour).Unix(), "exp": now.Unix(),
		}), true},
		{"attack 58 not yet valid", signRaw(t, s, hdr("ES256", "at+jwt", kid), map[string]any{
			"iss": "i", "sub": "s", "aud": "a", "client_id": "c", "jti": "j",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(time.Minute).Unix(),
		}), false},
		{"claims not an object", signRaw(t, s, hdr("ES256", "at+jwt", kid), []string{"x"}), false},
		{"two parts", parts[0] + "." + parts[1], false},
		{"JWE five parts", good + ".x.y", false},
		{"empty", "", false},
		{"header not base64url", "!!!." + parts[1] + "." + parts[2], false},
		{"header not JSON", b64([]byte("nope")) + "." + parts[1] + "." + parts[2], false},
		{"too long", parts[0] + "." + strings.Repeat("A", maxTokenBytes) + "." + parts[2], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := k.VerifyAccessToken(tt.tok, now)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("VerifyAccessToken = %+v, %v; want ErrInvalid", c, err)
			}
			if errors.Is(err, ErrExpired) != tt.wantExpired {
				t.Errorf("errors.Is(%v, ErrExpired) = %v, want %v", err, !tt.wantExpired, tt.wantExpired)
			}
			if c != (AccessClaims{}) {
				t.Errorf("claims returned with an error: %+v", c)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDERConversion(t *testing.T) {
	var rs [][64]byte
	for _, fill := range [][2]byte{{0x00, 0x00}, {0xff, 0xff}, {0x7f, 0x80}, {0x01, 0x00}} {
		var raw [64]byte
		for i := range raw {
			raw[i] = fill[(i/32)%2]
		}
		rs = append(rs, raw)
	}
	var leadingZeros [64]byte
	leadingZeros[5], leadingZeros[40] = 0x90, 0x01
	rs = append(rs, leadingZeros)
	for range 50 {
		var raw [64]byte
		_, _ = rand.Read(raw[:])
		rs = append(rs, raw)
	}
	for _, raw := range rs {
		got, err := derToRaw(rawToDER(raw))
		if err != nil || got != raw {
			t.Fatalf("round trip of %x = %x, %v", raw, got, err)
		}
	}

	bad := map[string][]byte{
		"empty":            {},
		"not a sequence":   {0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"length mismatch":  {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"integer too long": append([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, make([]byte, 32+3)...),
		"trailing bytes":   {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00},
		"short integer":    {0x30, 0x04, 0x02, 0x05, 0x01, 0x02},
		"not an integer":   {0x30, 0x06, 0x04, 0x01, 0x01, 0x02, 0x01, 0x01},
	}
	for name, der := range bad {
		if raw, err := derToRaw(der); err == nil {
			t.Errorf("%s: derToRaw(%x) = %x, want an error", name, der, raw)
		}
	}
}

func TestSignerLogValueHidesKey(t *testing.T) {
	clk := newFakeClock()
	k := loadKeys(t, newFakeKeyStore(), clk, KeyOptions{})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "signer", k.Signer())
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"kid": k.Signer().KeyID(), "alg": "ES256"}
	if diff := cmp.Diff(want, line["signer"]); diff != "" {
		t.Errorf("logged signer (-want +got):\n%s", diff)
	}
}

func TestVerifiedCache(t *testing.T) {
	clk := newFakeClock()
	k := loadKeys(t, newFakeKeyStore(), clk, KeyOptions{})
	now := clk.Now()

	t.Run("F10 a remembered token still expires", func(t *testing.T) {
		tok, err := k.SignAccessToken(claimsAt(now, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.VerifyAccessToken(tok, now); err != nil {
			t.Fatal(err)
		}
		if _, err := k.VerifyAccessToken(tok, now.Add(time.Minute)); !errors.Is(err, ErrExpired) {
			t.Errorf("remembered token at exp: %v, want ErrExpired", err)
		}
	})
	t.Run("attack 58 a rejected token is not remembered", func(t *testing.T) {
		tok, err := k.SignAccessToken(claimsAt(now, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		i := strings.LastIndexByte(tok, '.')
		bad := tok[:i+1] + strings.Repeat("A", len(tok)-i-1)
		for range 2 {
			if _, err := k.VerifyAccessToken(bad, now); !errors.Is(err, ErrInvalid) {
				t.Fatalf("bad signature: %v, want ErrInvalid", err)
			}
		}
	})
	t.Run("bounded", func(t *testing.T) {
		k := loadKeys(t, newFakeKeyStore(), clk, KeyOptions{})
		k.verified.max = 8
		var toks []string
		for range 20 {
			tok, err := k.SignAccessToken(claimsAt(now, time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, tok)
			if _, err := k.VerifyAccessToken(tok, now); err != nil {
				t.Fatal(err)
			}
			if n := len(k.verified.m); n > 8 {
				t.Fatalf("cache holds %d tokens, max 8", n)
			}
		}
		for _, tok := range toks { // forgotten ones are verified again
			if _, err := k.VerifyAccessToken(tok, now); err != nil {
				t.Errorf("after eviction: %v", err)
			}
		}
	})
}
