package token

import (
	"testing"
	"time"
)

// Run: go test -run '^$' -bench . -benchmem ./internal/token/

func BenchmarkSignAccessToken(b *testing.B) {
	clk := newFakeClock()
	k := loadKeys(b, newFakeKeyStore(), clk, KeyOptions{})
	c := claimsAt(clk.Now(), 10*time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.SignAccessToken(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignAccessTokenParallel(b *testing.B) {
	clk := newFakeClock()
	k := loadKeys(b, newFakeKeyStore(), clk, KeyOptions{})
	c := claimsAt(clk.Now(), 10*time.Minute)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := k.SignAccessToken(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyAccessToken measures introspection of a token seen for
// the first time (ECDSA verification) and again (the verified-token cache).
func BenchmarkVerifyAccessToken(b *testing.B) {
	clk := newFakeClock()
	k := loadKeys(b, newFakeKeyStore(), clk, KeyOptions{})
	tok, err := k.SignAccessToken(claimsAt(clk.Now(), 10*time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	now := clk.Now()
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k.verified.mu.Lock()
			clear(k.verified.m)
			k.verified.mu.Unlock()
			if _, err := k.VerifyAccessToken(tok, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("repeated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.VerifyAccessToken(tok, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkNewOpaque(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewOpaque(RefreshPrefix)
	}
}
