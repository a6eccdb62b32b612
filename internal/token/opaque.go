package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"
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

// stampLen is the length of the issue time at the front of an opaque
// token's body: 8 bytes of big-endian Unix microseconds in base64url.
const stampLen = 11

// NewOpaque returns a new opaque token and its Hash, which is all the store
// keeps (OAuth 2.1 §4.1.3, §4.3.1, RFC 7636 §4.6, RFC 9700 §4.14.2). The token
// is prefix, its issue time (stampLen characters), a '.', and 32 random bytes
// in base64url (43 characters). The time is not a secret (the holder knows when
// it got the token); it makes the store keys of tokens issued close together
// sort together, so that a database index takes new keys at its end rather than
// at random places, and a commit writes a few pages instead of one per token.
// Safe for concurrent use.
func NewOpaque(prefix string) (tok, hash string) {
	var r [opaqueBytes]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	var stamp [8]byte
	binary.BigEndian.PutUint64(stamp[:], uint64(time.Now().UnixMicro()))
	b := make([]byte, 0, len(prefix)+stampLen+1+base64.RawURLEncoding.EncodedLen(opaqueBytes))
	b = append(b, prefix...)
	b = base64.RawURLEncoding.AppendEncode(b, stamp[:])
	b = append(b, '.')
	b = base64.RawURLEncoding.AppendEncode(b, r[:])
	return string(b), key(stamp[:], b)
}

// Hash returns the store key of an opaque token. For a token made by
// NewOpaque it is the issue time in hex (16 characters) followed by the
// lowercase hex SHA-256 of the whole token; for any other string (tokens
// issued before times were added, garbage) the hex SHA-256 alone, so keys
// stored by earlier versions still match.
func Hash(tok string) string {
	if dot := strings.LastIndexByte(tok, '.'); dot >= stampLen {
		var stamp [9]byte // decoding 11 characters may need the room
		if n, err := base64.RawURLEncoding.Strict().Decode(stamp[:], []byte(tok[dot-stampLen:dot])); err == nil && n == 8 {
			return key(stamp[:8], []byte(tok))
		}
	}
	return hashBytes([]byte(tok))
}

func key(stamp, tok []byte) string {
	sum := sha256.Sum256(tok)
	k := make([]byte, 0, 2*(len(stamp)+len(sum)))
	k = hex.AppendEncode(k, stamp)
	k = hex.AppendEncode(k, sum[:])
	return string(k)
}

// Digest returns the lowercase hex SHA-256 of b: for values that are not
// tokens (a registration's metadata, say).
func Digest(b []byte) string { return hashBytes(b) }

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NewSortableID returns an identifier whose order follows its creation
// time: 16 hex characters of Unix microseconds, then 12 random bytes in
// base64url. For values that become database keys (refresh families), for
// the same reason as NewOpaque's time.
func NewSortableID() string {
	var stamp [8]byte
	binary.BigEndian.PutUint64(stamp[:], uint64(time.Now().UnixMicro()))
	var r [12]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	b := make([]byte, 0, 16+16)
	b = hex.AppendEncode(b, stamp[:])
	b = base64.RawURLEncoding.AppendEncode(b, r[:])
	return string(b)
}

// NewID returns 16 random bytes in base64url (22 characters): for jti
// claims (RFC 7519 §4.1.7) and refresh family ids, which are identifiers,
// not secrets.
func NewID() string {
	var r [16]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(r[:])
}
