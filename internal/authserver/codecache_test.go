package authserver

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

func TestCodeCacheBounds(t *testing.T) {
	var cc codeCache
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	put := func(i int, exp time.Time) { cc.put(store.Code{Hash: fmt.Sprint(i), ExpiresAt: exp}, now) }
	for i := range maxRecentCodes {
		put(i, now.Add(time.Duration(i%2)*time.Minute)) // half of them already expired
	}
	put(-1, now.Add(time.Minute)) // full: the expired half is swept, then -1 is kept
	if _, ok := cc.take("-1"); !ok {
		t.Fatalf("a code put into a full cache with expired entries was not kept")
	}
	if got := len(cc.codes); got != maxRecentCodes/2 {
		t.Errorf("cache holds %d codes after the sweep, want %d (the unexpired ones)", got, maxRecentCodes/2)
	}
	if _, ok := cc.take("0"); ok {
		t.Errorf("an expired code survived the sweep")
	}
	if c, ok := cc.take("1"); !ok || c.Hash != "1" {
		t.Errorf("take(1) = %v, %v; want the unexpired code", c, ok)
	}
	if _, ok := cc.take("1"); ok {
		t.Errorf("a code was taken twice")
	}
	// Full of unexpired codes: a new one is not kept, and the next sweep
	// waits a second.
	for i := range maxRecentCodes {
		put(maxRecentCodes+i, now.Add(time.Minute))
	}
	put(-2, now.Add(time.Minute))
	if _, ok := cc.take("-2"); ok {
		t.Errorf("a code was kept in a cache full of unexpired codes")
	}
	if len(cc.codes) > maxRecentCodes {
		t.Errorf("cache grew to %d codes, bound %d", len(cc.codes), maxRecentCodes)
	}
}
