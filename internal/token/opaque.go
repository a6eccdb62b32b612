package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// Prefixes of opaque tokens. They make a leaked token recognisable (secret
// scanners, logs) and tell codes from refresh tokens at a glance.
const (
	CodePrefix    = "mca_c_" // authorization codes (RFC 6749 §4.1.2)
	RefreshPrefix = "mca_r_" // refresh tokens (RFC 6749 §1.5)
)

// opaqueBytes is the entropy of an opaque token: 256 bits, far above the
// 128 bits RFC 6749 §10.10 asks for.
const opaqueBytes = 32

// NewOpaque returns a new opaque token, prefix followed by 32 random bytes
// in base64url (43 characters), and its Hash, which is all the store keeps
// (SPEC F1, F8). Safe for concurrent use.
func NewOpaque(prefix string) (tok, hash string) {
	var r [opaqueBytes]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	b := make([]byte, 0, len(prefix)+base64.RawURLEncoding.EncodedLen(opaqueBytes))
	b = append(b, prefix...)
	b = base64.RawURLEncoding.AppendEncode(b, r[:])
	return string(b), hashBytes(b)
}

// Hash returns the lowercase hex SHA-256 of an opaque token, the form in
// which the store keeps codes, refresh tokens and other secrets.
func Hash(tok string) string {
	return hashBytes([]byte(tok))
}

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NewID returns 16 random bytes in base64url (22 characters): for jti
// claims (RFC 7519 §4.1.7) and refresh family ids, which are identifiers,
// not secrets.
func NewID() string {
	var r [16]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(r[:])
}
