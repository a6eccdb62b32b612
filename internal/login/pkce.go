// This file makes the per-authorization secrets: the PKCE code verifier and
// S256 challenge (RFC 7636 §4.1, §4.2) and the state value (RFC 6749 §10.12).
package login

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// randomToken returns 32 random bytes in base64url without padding: 43
// characters from the RFC 7636 §4.1 unreserved set.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b)
}

// s256 returns the RFC 7636 §4.2 S256 code challenge of verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
