package token

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNewOpaque(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		format *regexp.Regexp
	}{
		{"F1 authorization code", CodePrefix, regexp.MustCompile(`^mca_c_[A-Za-z0-9_-]{11}\.[A-Za-z0-9_-]{43}$`)},
		{"F8 refresh token", RefreshPrefix, regexp.MustCompile(`^mca_r_[A-Za-z0-9_-]{11}\.[A-Za-z0-9_-]{43}$`)},
		{"no prefix", "", regexp.MustCompile(`^[A-Za-z0-9_-]{11}\.[A-Za-z0-9_-]{43}$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 2000
			seen := make(map[string]bool, n)
			before := time.Now()
			prev := ""
			for range n {
				tok, hash := NewOpaque(tt.prefix)
				if !tt.format.MatchString(tok) {
					t.Fatalf("token %q does not match %s", tok, tt.format)
				}
				sum := sha256.Sum256([]byte(tok))
				if !strings.HasSuffix(hash, hex.EncodeToString(sum[:])) || len(hash) != 16+64 || Hash(tok) != hash {
					t.Fatalf("key of %q = %q, Hash = %q, want 16 hex characters of time then the hex SHA-256", tok, hash, Hash(tok))
				}
				stamp, err := strconv.ParseUint(hash[:16], 16, 64)
				if err != nil || time.UnixMicro(int64(stamp)).Before(before.Truncate(time.Microsecond)) || time.UnixMicro(int64(stamp)).After(time.Now()) {
					t.Fatalf("key %q does not start with the issue time (%v..now)", hash, before)
				}
				if hash[:16] < prev {
					t.Fatalf("key %q sorts before the previous token's time %q", hash, prev)
				}
				prev = hash[:16]
				if seen[tok] {
					t.Fatalf("token %q issued twice", tok)
				}
				seen[tok] = true
			}
		})
	}
}

// Tokens issued before the time was added, and strings that only look
// like tokens, keep the plain SHA-256 key, so stored keys still match.
func TestHashWithoutTime(t *testing.T) {
	for _, tok := range []string{
		"mca_r_" + strings.Repeat("A", 43), // the earlier format
		"",
		"abc",
		"mca_r_short.x",
		"mca_r_!!!!!!!!!!!." + strings.Repeat("A", 43), // not base64url
		"mca_r_AAAAAAAAAAB." + strings.Repeat("A", 43), // 11 characters with non-zero trailing bits
		"https://client.example/app.json",
	} {
		sum := sha256.Sum256([]byte(tok))
		if got, want := Hash(tok), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("Hash(%q) = %q, want the plain SHA-256 %q", tok, got, want)
		}
	}
}

func TestNewSortableID(t *testing.T) {
	format := regexp.MustCompile(`^[0-9a-f]{16}[A-Za-z0-9_-]{16}$`)
	seen := map[string]bool{}
	prev := ""
	for range 2000 {
		id := NewSortableID()
		if !format.MatchString(id) || seen[id] || id[:16] < prev {
			t.Fatalf("NewSortableID = %q: wrong format, repeated, or out of time order", id)
		}
		seen[id], prev = true, id[:16]
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
