// Package token mints and checks what the authorization server hands out:
// JWT access tokens (RFC 9068) signed with ES256 (RFC 7518 §3.4), the signing
// keys behind them with scheduled rotation and their JWK Set (RFC 7517 §5),
// and opaque authorization codes and refresh tokens, which are random strings
// stored only as SHA-256 hashes (OAuth 2.1 §4.1.3, §4.3.1, RFC 7636 §4.6,
// RFC 9700 §4.14.2).
//
// # Signing keys
//
// Keys live in the store (store.SigningKey, PKCS#8 DER) so that every replica
// signs with the same key and verifies every other replica's tokens. Which
// key signs is a function of the stored records and the clock alone: the
// current key is the live key with the latest ActiveAt not after now (ties
// broken by kid). Replicas therefore switch keys at the same instant without
// talking to each other, and a scheduled rotation needs no writer at the
// moment it happens.
//
// A key goes through three published states:
//
//   - next: created with ActiveAt in the future, at least PublishLead ahead,
//     so resource servers that cached the JWK Set, and replicas that reload
//     it every MaintainInterval, know the key before any token carries it;
//   - current: signs until the next key's ActiveAt, which Maintain records as
//     its RetireAt;
//   - retired: still published and accepted until ExpireAt = RetireAt +
//     TokenLifetime + a 5 minute margin, so every token it signed expires
//     first. The margin covers a replica that keeps signing with a retired
//     key until its next Maintain, and clock skew between replicas.
//
// After ExpireAt a key leaves the JWK Set and verification; its record stays
// in the store (KeyStore has no delete).
//
// Key ids: the first key's kid is 16 random bytes, base64url. Every later
// key's kid is derived from its predecessor's (SHA-256 of a label and the
// predecessor's kid, 16 bytes, base64url), not the RFC 7638 thumbprint. Two
// replicas that decide at the same moment to create the successor of a key
// therefore try to create the same kid, the store refuses the second one
// (store.ErrConflict), and the loser reloads and uses the winner's key; no
// compare-and-swap is needed. The store must reject a duplicate kid rather
// than overwrite it.
//
// Not supported: algorithms other than ES256, revoking a compromised key
// before its tokens expire (Rotate keeps the old key published), audience
// arrays in access tokens (aud is the one canonical resource, RFC 9068 §2).
package token
