package token

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"testing"
)

func TestNewOpaque(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		format *regexp.Regexp
	}{
		{"F1 authorization code", CodePrefix, regexp.MustCompile(`^mca_c_[A-Za-z0-9_-]{43}$`)},
		{"F8 refresh token", RefreshPrefix, regexp.MustCompile(`^mca_r_[A-Za-z0-9_-]{43}$`)},
		{"no prefix", "", regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 2000
			seen := make(map[string]bool, n)
			for range n {
				tok, hash := NewOpaque(tt.prefix)
				if !tt.format.MatchString(tok) {
					t.Fatalf("token %q does not match %s", tok, tt.format)
				}
				sum := sha256.Sum256([]byte(tok))
				if want := hex.EncodeToString(sum[:]); hash != want || Hash(tok) != want {
					t.Fatalf("hash of %q = %q, Hash = %q, want hex SHA-256 %q", tok, hash, Hash(tok), want)
				}
				if seen[tok] {
					t.Fatalf("token %q issued twice", tok)
				}
				seen[tok] = true
			}
		})
	}
}

func TestNewID(t *testing.T) {
	format := regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
	seen := map[string]bool{}
	for range 2000 {
		id := NewID()
		if !format.MatchString(id) || seen[id] {
			t.Fatalf("NewID = %q: wrong format or repeated", id)
		}
		seen[id] = true
	}
}

func TestHashKnownValue(t *testing.T) {
	// SHA-256 of "abc" (FIPS 180-2 appendix B.1).
	if got, want := Hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("Hash(abc) = %s, want %s", got, want)
	}
}
