package token

// JWT profile for OAuth 2.0 access tokens, RFC 9068; JWS compact
// serialization, RFC 7515 §7.1; ES256, RFC 7518 §3.4.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Sentinel errors of VerifyAccessToken and SignAccessToken.
var (
	// ErrInvalid is wrapped by every rejection of VerifyAccessToken.
	ErrInvalid = errors.New("token: invalid access token")
	// ErrExpired is wrapped, together with ErrInvalid, when the token's exp
	// has passed (RFC 7519 §4.1.4).
	ErrExpired = errors.New("token: access token expired")
	// ErrNoKey means Load has not succeeded yet.
	ErrNoKey = errors.New("token: no signing key loaded")
)

// TypeAccessToken is the JOSE typ of access tokens (RFC 9068 §2.1).
const TypeAccessToken = "at+jwt"

// maxTokenBytes bounds the access tokens VerifyAccessToken parses; ours are
// well under 1 KiB.
const maxTokenBytes = 8 << 10

// AccessClaims is the claim set of an access token (RFC 9068 §2.2). Times
// have second precision on the wire (NumericDate, RFC 7519 §2).
type AccessClaims struct {
	Issuer   string // iss, REQUIRED
	Subject  string // sub, REQUIRED: the user id
	ClientID string // client_id, REQUIRED (RFC 8693 §4.3)
	Audience string // aud, REQUIRED: the canonical resource (RFC 9068 §2); one value, never an array
	Scope    string // scope (RFC 9068 §2.2.3), space-separated; omitted when empty
	JTI      string // jti, REQUIRED
	FamilyID string // sid: the refresh family, so revoking it deactivates the token at introspection; omitted when empty

	IssuedAt  time.Time // iat, REQUIRED
	ExpiresAt time.Time // exp, REQUIRED, after IssuedAt
	AuthTime  time.Time // auth_time (RFC 9068 §2.2.1); omitted when zero
}

// accessPayload is the JSON form of AccessClaims, members in RFC 9068 §2.2 order.
type accessPayload struct {
	Issuer    string `json:"iss"`
	Expiry    int64  `json:"exp"`
	Audience  string `json:"aud"`
	Subject   string `json:"sub"`
	ClientID  string `json:"client_id"`
	IssuedAt  int64  `json:"iat"`
	JTI       string `json:"jti"`
	Scope     string `json:"scope,omitempty"`
	AuthTime  int64  `json:"auth_time,omitempty"`
	SID       string `json:"sid,omitempty"`
	NotBefore int64  `json:"nbf,omitempty"` // never written; honoured when read
}

// joseHeader is the protected header (RFC 7515 §4.1).
type joseHeader struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit,omitempty"`
	B64  json.RawMessage `json:"b64,omitempty"` // RFC 7797; refused when read
}

// Signer is one ES256 signing key. It is immutable and safe for concurrent
// use; its LogValue shows the kid only.
type Signer struct {
	kid      string
	priv     *ecdsa.PrivateKey
	der      []byte    // PKCS#8, as stored
	header   []byte    // base64url of the JOSE header
	activeAt time.Time // signs from then
}

// newSigner parses a stored PKCS#8 P-256 key.
func newSigner(kid string, der []byte) (*Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", kid, err)
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %q: not a P-256 ECDSA key, as ES256 needs", kid)
	}
	h, err := json.Marshal(joseHeader{Alg: Algorithm, Typ: TypeAccessToken, Kid: kid})
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", kid, err)
	}
	return &Signer{kid: kid, priv: priv, der: der, header: base64.RawURLEncoding.AppendEncode(nil, h)}, nil
}

// at returns s with ActiveAt t, s itself when unchanged.
func (s *Signer) at(t time.Time) *Signer {
	if s.activeAt.Equal(t) {
		return s
	}
	c := *s
	c.activeAt = t
	return &c
}

// KeyID returns the kid the signer puts in the JOSE header.
func (s *Signer) KeyID() string { return s.kid }

// LogValue implements slog.LogValuer without key material.
func (s *Signer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", s.kid), slog.String("alg", Algorithm))
}

// SignAccessToken returns c as a JWS compact serialization with the header
// {"alg":"ES256","typ":"at+jwt","kid":...} (RFC 9068 §2.1) and the claims of
// RFC 9068 §2.2 plus sid. It refuses a claim set missing a required claim.
func (s *Signer) SignAccessToken(c AccessClaims) (string, error) {
	if err := c.check(); err != nil {
		return "", err
	}
	p := accessPayload{
		Issuer:   c.Issuer,
		Expiry:   c.ExpiresAt.Unix(),
		Audience: c.Audience,
		Subject:  c.Subject,
		ClientID: c.ClientID,
		IssuedAt: c.IssuedAt.Unix(),
		JTI:      c.JTI,
		Scope:    c.Scope,
		SID:      c.FamilyID,
	}
	if !c.AuthTime.IsZero() {
		p.AuthTime = c.AuthTime.Unix()
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode access token claims: %w", err)
	}
	buf := make([]byte, 0, len(s.header)+2+base64.RawURLEncoding.EncodedLen(len(payload))+base64.RawURLEncoding.EncodedLen(64))
	buf = append(buf, s.header...)
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, payload)
	sig, err := s.sign(buf)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, sig[:])
	return string(buf), nil
}

// sign returns the ES256 signature of input as R || S (RFC 7518 §3.4).
func (s *Signer) sign(input []byte) ([64]byte, error) {
	hash := sha256.Sum256(input)
	der, err := ecdsa.SignASN1(rand.Reader, s.priv, hash[:])
	if err != nil {
		return [64]byte{}, fmt.Errorf("sign access token with %q: %w", s.kid, err)
	}
	return derToRaw(der)
}

func (c AccessClaims) check() error {
	missing := func(name string) error {
		return fmt.Errorf("access token claims: %s is required (RFC 9068 §2.2)", name)
	}
	switch {
	case c.Issuer == "":
		return missing("iss")
	case c.Subject == "":
		return missing("sub")
	case c.ClientID == "":
		return missing("client_id")
	case c.Audience == "":
		return missing("aud")
	case c.JTI == "":
		return missing("jti")
	case c.IssuedAt.IsZero():
		return missing("iat")
	case !c.ExpiresAt.After(c.IssuedAt):
		return fmt.Errorf("access token claims: exp %s must be after iat %s", c.ExpiresAt, c.IssuedAt)
	}
	return nil
}

// SignAccessToken signs c with the current key; see Signer.SignAccessToken.
func (k *Keys) SignAccessToken(c AccessClaims) (string, error) {
	s := k.Signer()
	if s == nil {
		return "", ErrNoKey
	}
	return s.SignAccessToken(c)
}

// VerifyAccessToken checks an access token for introspection (RFC 7662 §2.2)
// and returns its claims: JWS compact form, alg exactly ES256 (so none and
// HS256 are refused whatever key they name), typ at+jwt or
// application/at+jwt (RFC 9068 §4), no crit or b64 header, a kid naming a
// published key that has not expired, a valid signature in canonical
// base64url, the required claims present, exp after now and nbf, if
// present, not after now. Every rejection wraps ErrInvalid; an expired token
// also wraps ErrExpired. FuzzVerifyDifferential holds this parser to
// go-jose's verdict.
//
// A token whose signature checked out is remembered (by its SHA-256, up to
// a bounded number of tokens), so a resource server introspecting the same
// token on every request costs a hash and a lookup; the key and time checks
// still run on every call.
//
// It does not check iss or aud, nor whether the token or its family was
// revoked: that is the caller's job.
func (k *Keys) VerifyAccessToken(tok string, now time.Time) (AccessClaims, error) {
	st := k.state.Load()
	if st == nil {
		return invalid("%v", ErrNoKey)
	}
	if len(tok) > maxTokenBytes {
		return invalid("longer than %d bytes", maxTokenBytes)
	}
	sum := sha256.Sum256([]byte(tok))
	v, ok := k.verified.get(sum)
	if !ok {
		var err error
		if v, err = st.verify(tok); err != nil {
			return AccessClaims{}, err
		}
		k.verified.put(sum, v, now)
	}
	return v.valid(st, now)
}

func invalid(format string, args ...any) (AccessClaims, error) {
	return AccessClaims{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// verifiedToken is what a good signature established about a token; time
// and key expiry are checked separately, on every use.
type verifiedToken struct {
	claims    AccessClaims
	kid       string
	notBefore time.Time
}

// verify checks everything about tok that does not depend on the time.
func (st *keySet) verify(tok string) (verifiedToken, error) {
	fail := func(format string, args ...any) (verifiedToken, error) {
		_, err := invalid(format, args...)
		return verifiedToken{}, err
	}
	h, rest, ok1 := strings.Cut(tok, ".")
	p, sigText, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sigText, ".") {
		return fail("not a JWS compact serialization (three dot-separated parts)")
	}
	var hdr joseHeader
	if err := decodeJSON(h, &hdr); err != nil {
		return fail("header: %v", err)
	}
	if hdr.Alg != Algorithm {
		return fail("alg %q, want %s", hdr.Alg, Algorithm)
	}
	if !strings.EqualFold(hdr.Typ, TypeAccessToken) && !strings.EqualFold(hdr.Typ, "application/"+TypeAccessToken) {
		return fail("typ %q, want %s (RFC 9068 §4)", hdr.Typ, TypeAccessToken)
	}
	if hdr.Crit != nil || hdr.B64 != nil {
		return fail("crit and b64 headers not supported (RFC 7515 §4.1.11, RFC 7797)")
	}
	pub, ok := st.public[hdr.Kid]
	if !ok {
		return fail("unknown kid %q", hdr.Kid)
	}
	var raw [64]byte
	if base64.RawURLEncoding.DecodedLen(len(sigText)) != len(raw) {
		return fail("signature is not %d bytes", len(raw))
	}
	var canon [86]byte // the only encoding of raw without padding or stray bits
	if n, err := base64.RawURLEncoding.Decode(raw[:], []byte(sigText)); err != nil || n != len(raw) {
		return fail("signature is not %d bytes of base64url", len(raw))
	}
	if base64.RawURLEncoding.Encode(canon[:], raw[:]); string(canon[:]) != sigText {
		return fail("signature is not in canonical base64url")
	}
	hash := sha256.Sum256([]byte(tok[:len(h)+1+len(p)]))
	if !ecdsa.VerifyASN1(pub.key, hash[:], rawToDER(raw)) {
		return fail("bad signature")
	}
	var ap accessPayload
	if err := decodeJSON(p, &ap); err != nil {
		return fail("claims: %v", err)
	}
	c := AccessClaims{
		Issuer:    ap.Issuer,
		Subject:   ap.Subject,
		ClientID:  ap.ClientID,
		Audience:  ap.Audience,
		Scope:     ap.Scope,
		JTI:       ap.JTI,
		FamilyID:  ap.SID,
		IssuedAt:  unixTime(ap.IssuedAt),
		ExpiresAt: unixTime(ap.Expiry),
		AuthTime:  unixTime(ap.AuthTime),
	}
	if err := c.check(); err != nil {
		return fail("%v", err)
	}
	return verifiedToken{claims: c, kid: hdr.Kid, notBefore: unixTime(ap.NotBefore)}, nil
}

// valid checks what changes with time: the signing key is still published
// and unexpired, exp has not passed and nbf has.
func (v verifiedToken) valid(st *keySet, now time.Time) (AccessClaims, error) {
	pub, ok := st.public[v.kid]
	if !ok {
		return invalid("unknown kid %q", v.kid)
	}
	if !pub.expireAt.IsZero() && !now.Before(pub.expireAt) {
		return invalid("key %q expired at %s", v.kid, pub.expireAt.Format(time.RFC3339))
	}
	if !now.Before(v.claims.ExpiresAt) {
		return AccessClaims{}, fmt.Errorf("%w: %w at %s", ErrInvalid, ErrExpired, v.claims.ExpiresAt.Format(time.RFC3339))
	}
	if !v.notBefore.IsZero() && now.Before(v.notBefore) {
		return invalid("not valid before %s", v.notBefore.Format(time.RFC3339))
	}
	return v.claims, nil
}

// verifiedCacheSize bounds the tokens VerifyAccessToken remembers: a few
// megabytes at most.
const verifiedCacheSize = 16 << 10

// verifiedCache remembers tokens whose signature checked out, by SHA-256.
type verifiedCache struct {
	mu  sync.RWMutex
	max int // 0 means verifiedCacheSize
	m   map[[32]byte]verifiedToken
}

func (c *verifiedCache) get(sum [32]byte) (verifiedToken, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[sum]
	return v, ok
}

// put adds v; when full it first forgets expired tokens and then, if still
// full, an arbitrary half.
func (c *verifiedCache) put(sum [32]byte, v verifiedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.max
	if limit <= 0 {
		limit = verifiedCacheSize
	}
	if c.m == nil {
		c.m = make(map[[32]byte]verifiedToken)
	}
	if len(c.m) >= limit {
		for key, old := range c.m {
			if !now.Before(old.claims.ExpiresAt) {
				delete(c.m, key)
			}
		}
		for key := range c.m {
			if len(c.m) < limit/2 {
				break
			}
			delete(c.m, key)
		}
	}
	c.m[sum] = v
}

func decodeJSON(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return fmt.Errorf("base64url: %w", err)
	}
	return json.Unmarshal(b, v)
}

func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// derToRaw converts an ASN.1 ECDSA-Sig-Value (SEQUENCE of two INTEGERs, as
// ecdsa.SignASN1 writes it) to the fixed 64-byte R || S of RFC 7518 §3.4.
func derToRaw(der []byte) ([64]byte, error) {
	var out [64]byte
	bad := fmt.Errorf("ecdsa signature: malformed DER (%d bytes)", len(der))
	if len(der) < 2 || der[0] != 0x30 || int(der[1]) != len(der)-2 || der[1] >= 0x80 {
		return out, bad
	}
	rest := der[2:]
	for i := range 2 {
		if len(rest) < 2 || rest[0] != 0x02 || int(rest[1]) > len(rest)-2 {
			return out, bad
		}
		n := int(rest[1])
		v := rest[2 : 2+n]
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > 32 {
			return out, bad
		}
		copy(out[i*32+32-len(v):(i+1)*32], v)
		rest = rest[2+n:]
	}
	if len(rest) != 0 {
		return out, bad
	}
	return out, nil
}

// rawToDER is the inverse of derToRaw.
func rawToDER(raw [64]byte) []byte {
	der := make([]byte, 2, 72)
	der[0] = 0x30
	for i := range 2 {
		v := raw[i*32 : (i+1)*32]
		for len(v) > 1 && v[0] == 0 {
			v = v[1:]
		}
		pad := v[0] >= 0x80
		n := len(v)
		if pad {
			n++
		}
		der = append(der, 0x02, byte(n))
		if pad {
			der = append(der, 0)
		}
		der = append(der, v...)
	}
	der[1] = byte(len(der) - 2)
	return der
}
