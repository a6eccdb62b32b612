package resource

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingVerifier accepts every token except "bad", expiring after exp.
type countingVerifier struct {
	calls   atomic.Int32
	exp     time.Time
	release chan struct{} // if set, calls wait for it
}

func (v *countingVerifier) VerifyToken(ctx context.Context, token string) (*TokenInfo, error) {
	v.calls.Add(1)
	if v.release != nil {
		<-v.release
	}
	if token == "bad" {
		return nil, fmt.Errorf("%w: bad", ErrInvalidToken)
	}
	return &TokenInfo{Subject: token, Expiry: v.exp}, nil
}

func TestCache(t *testing.T) {
	clock := newFakeClock()
	t.Run("H8 hit within TTL, refetch after", func(t *testing.T) {
		v := &countingVerifier{exp: clock.Now().Add(time.Hour)}
		c := NewCache(v, CacheOptions{TTL: time.Minute, Now: clock.Now})
		for range 3 {
			if info, err := c.VerifyToken(context.Background(), "t1"); err != nil || info.Subject != "t1" {
				t.Fatalf("VerifyToken = %+v, %v", info, err)
			}
		}
		if got := v.calls.Load(); got != 1 {
			t.Fatalf("verifier called %d times, want 1", got)
		}
		clock.Advance(time.Minute)
		if _, err := c.VerifyToken(context.Background(), "t1"); err != nil {
			t.Fatal(err)
		}
		if got := v.calls.Load(); got != 2 {
			t.Fatalf("verifier called %d times after TTL, want 2", got)
		}
	})
	t.Run("H8 never past the token's exp", func(t *testing.T) {
		v := &countingVerifier{exp: clock.Now().Add(10 * time.Second)}
		c := NewCache(v, CacheOptions{TTL: time.Hour, Now: clock.Now})
		if _, err := c.VerifyToken(context.Background(), "t1"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second)
		_, _ = c.VerifyToken(context.Background(), "t1")
		if got := v.calls.Load(); got != 2 {
			t.Fatalf("verifier called %d times, want 2: the entry outlived exp", got)
		}
	})
	t.Run("H8 rejections not cached", func(t *testing.T) {
		v := &countingVerifier{exp: clock.Now().Add(time.Hour)}
		c := NewCache(v, CacheOptions{Now: clock.Now})
		for range 2 {
			if _, err := c.VerifyToken(context.Background(), "bad"); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v", err)
			}
		}
		if got, n := v.calls.Load(), c.Len(); got != 2 || n != 0 {
			t.Fatalf("calls = %d, entries = %d; want 2 and 0", got, n)
		}
	})
	t.Run("H8 bounded, oldest evicted first", func(t *testing.T) {
		v := &countingVerifier{exp: clock.Now().Add(time.Hour)}
		c := NewCache(v, CacheOptions{MaxEntries: 3, Now: clock.Now})
		for i := range 10 {
			if _, err := c.VerifyToken(context.Background(), fmt.Sprint("t", i)); err != nil {
				t.Fatal(err)
			}
		}
		if n := c.Len(); n != 3 {
			t.Fatalf("entries = %d, want 3", n)
		}
		before := v.calls.Load()
		_, _ = c.VerifyToken(context.Background(), "t9")
		_, _ = c.VerifyToken(context.Background(), "t0")
		if got := v.calls.Load() - before; got != 1 {
			t.Fatalf("verifier calls = %d, want 1 (t9 cached, t0 evicted)", got)
		}
	})
	t.Run("H8 concurrent misses share one verification", func(t *testing.T) {
		v := &countingVerifier{exp: clock.Now().Add(time.Hour), release: make(chan struct{})}
		c := NewCache(v, CacheOptions{Now: clock.Now})
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if _, err := c.VerifyToken(context.Background(), "shared"); err != nil {
					t.Error(err)
				}
			})
		}
		for v.calls.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		close(v.release)
		wg.Wait()
		if got := v.calls.Load(); got != 1 {
			t.Fatalf("verifier called %d times for one token, want 1", got)
		}
	})
	t.Run("H8 a cancelled caller returns without waiting", func(t *testing.T) {
		v := &countingVerifier{exp: clock.Now().Add(time.Hour), release: make(chan struct{})}
		defer close(v.release)
		c := NewCache(v, CacheOptions{Now: clock.Now})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.VerifyToken(ctx, "slow"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}
