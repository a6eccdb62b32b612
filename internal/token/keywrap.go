package token

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/mcpauth/mcpauth/internal/store"
)

// KEKSize is the length of a key encryption key: AES-256.
const KEKSize = 32

// wrapPrefix starts every wrapped private key: a version, so that wrapped
// and plain (PKCS#8 DER, which starts with 0x30) rows are told apart, and
// a later format can be added beside this one.
const wrapPrefix = "mcpauth-kw1:"

// Errors of unwrapping, for callers that name their flag in the message.
var (
	// ErrKEKRequired: a stored key is wrapped and no KEK was given.
	ErrKEKRequired = errors.New("the signing key is encrypted at rest and no key encryption key was given")
	// ErrKEKMismatch: a wrapped key does not open under the KEK given
	// (another KEK, or the row was altered or copied from another kid).
	ErrKEKMismatch = errors.New("the signing key does not decrypt with the key encryption key given (a different key, or the row was altered or copied from another key id)")
)

// A KEK is a key encryption key: it wraps signing keys at rest with
// AES-256-GCM (NIST SP 800-38D), a random 96-bit nonce per wrap and the
// version prefix and key id as additional data, so a wrapped key copied to
// another row does not open.
type KEK struct {
	aead cipher.AEAD
}

// NewKEK returns the KEK of 32 key bytes.
func NewKEK(key []byte) (*KEK, error) {
	if len(key) != KEKSize {
		return nil, fmt.Errorf("a key encryption key is %d bytes, not %d", KEKSize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("key encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key encryption key: %w", err)
	}
	return &KEK{aead: aead}, nil
}

// LoadKEK reads a KEK file: exactly 32 bytes, or their standard base64
// (padded or not) with surrounding white space. On Unix a file that group
// or others may read or write is refused, as ssh refuses such a private key.
func LoadKEK(path string) (*KEK, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key encryption key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key encryption key file: %w", err)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("key encryption key file %s: mode %#o lets group or others read it; run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("key encryption key file %s: %w", path, err)
	}
	key, err := parseKEK(b)
	if err != nil {
		return nil, fmt.Errorf("key encryption key file %s: %w", path, err)
	}
	return NewKEK(key)
}

// parseKEK returns the 32 key bytes of a KEK file's content.
func parseKEK(b []byte) ([]byte, error) {
	if len(b) == KEKSize {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("the file is empty; write %d random bytes, raw or base64 (head -c 32 /dev/urandom | base64)", KEKSize)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KEKSize {
				return nil, fmt.Errorf("base64 of %d bytes; write %d random bytes, raw or base64 (head -c 32 /dev/urandom | base64)", len(key), KEKSize)
			}
			return key, nil
		}
	}
	return nil, fmt.Errorf("%d bytes that are not base64; write %d random bytes, raw or base64 (head -c 32 /dev/urandom | base64)", len(b), KEKSize)
}

// additionalData binds a wrapped key to its format and its kid.
func additionalData(kid string) []byte {
	return append([]byte(wrapPrefix), kid...)
}

// wrap encrypts a private key for the row kid: prefix || nonce || sealed.
func (k *KEK) wrap(kid string, plain []byte) []byte {
	out := make([]byte, len(wrapPrefix)+k.aead.NonceSize(), len(wrapPrefix)+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	copy(out, wrapPrefix)
	nonce := out[len(wrapPrefix):]
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	return k.aead.Seal(out, nonce, plain, additionalData(kid))
}

// isWrapped reports whether stored bytes are a wrapped key.
func isWrapped(stored []byte) bool {
	return bytes.HasPrefix(stored, []byte(wrapPrefix))
}

// unwrap returns the private key of a stored row: the bytes themselves
// when plain, else decrypted with k (ErrKEKRequired when k is nil).
func (k *KEK) unwrap(kid string, stored []byte) ([]byte, error) {
	if !isWrapped(stored) {
		return stored, nil
	}
	if k == nil {
		return nil, fmt.Errorf("signing key %q: %w", kid, ErrKEKRequired)
	}
	rest := stored[len(wrapPrefix):]
	if len(rest) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, fmt.Errorf("signing key %q: %w", kid, ErrKEKMismatch)
	}
	nonce, sealed := rest[:k.aead.NonceSize()], rest[k.aead.NonceSize():]
	plain, err := k.aead.Open(nil, nonce, sealed, additionalData(kid))
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", kid, ErrKEKMismatch)
	}
	return plain, nil
}

// sealedKeyStore wraps private keys on their way into a KeyStore (when it
// has a KEK) and unwraps them on their way out: the key manager sees only
// PKCS#8.
type sealedKeyStore struct {
	KeyStore
	kek *KEK // nil: new keys are stored plain, wrapped rows are refused
}

func (s sealedKeyStore) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	if s.kek != nil {
		k.PrivateKey = s.kek.wrap(k.ID, k.PrivateKey)
	}
	return s.KeyStore.CreateSigningKey(ctx, k)
}

func (s sealedKeyStore) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	all, err := s.KeyStore.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].PrivateKey, err = s.kek.unwrap(all[i].ID, all[i].PrivateKey); err != nil {
			return nil, err
		}
	}
	return all, nil
}

// Rewrap returns the new stored bytes of every key in keys: decrypted with
// from (nil: the keys are plain; plain rows are accepted with a from too,
// as a server with a KEK keeps legacy plain rows) and encrypted with to
// (nil: stored plain). Every result is checked before it is returned: it
// decrypts under to to the same bytes, which parse as an ES256 key. It
// changes nothing; the caller stores the result in one transaction.
func Rewrap(keys []store.SigningKey, from, to *KEK) ([]store.KeyMaterial, error) {
	out := make([]store.KeyMaterial, 0, len(keys))
	for _, rec := range keys {
		plain, err := from.unwrap(rec.ID, rec.PrivateKey)
		if err != nil {
			return nil, err
		}
		if _, err := newSigner(rec.ID, plain); err != nil {
			return nil, err
		}
		stored := plain
		if to != nil {
			stored = to.wrap(rec.ID, plain)
		}
		if back, err := to.unwrap(rec.ID, stored); err != nil || !bytes.Equal(back, plain) {
			return nil, fmt.Errorf("signing key %q: the rewrapped key does not decrypt to the original: %v", rec.ID, err)
		}
		out = append(out, store.KeyMaterial{ID: rec.ID, Old: slices.Clone(rec.PrivateKey), New: stored})
	}
	return out, nil
}
