package cimd

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestMemoryCacheLRUByteBound(t *testing.T) {
	ctx := context.Background()
	e := func(i int) *Entry {
		return &Entry{ClientID: fmt.Sprintf("https://c%d.example/c.json", i), Body: make([]byte, 1000)}
	}
	one := e(0).size()
	c := newMemoryCache(3 * one)
	for i := range 3 {
		if err := c.Put(ctx, e(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Touch entry 0 so that entry 1 is the least recently used.
	if _, err := c.Get(ctx, e(0).ClientID); err != nil {
		t.Fatalf("Get entry 0: %v", err)
	}
	if err := c.Put(ctx, e(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, e(1).ClientID); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("least recently used entry 1 survived: err=%v", err)
	}
	for _, i := range []int{0, 2, 3} {
		if _, err := c.Get(ctx, e(i).ClientID); err != nil {
			t.Errorf("entry %d evicted: %v", i, err)
		}
	}
	if c.Bytes() > 3*one || c.Len() != 3 {
		t.Errorf("cache holds %d entries, %d bytes; want 3 entries within %d bytes", c.Len(), c.Bytes(), 3*one)
	}
	// Replacing an entry does not double count it.
	if err := c.Put(ctx, e(3)); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 3 || c.Bytes() != 3*one {
		t.Errorf("after replace: %d entries, %d bytes", c.Len(), c.Bytes())
	}
	if err := c.Delete(ctx, e(3).ClientID); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "https://never.example/x"); err != nil {
		t.Errorf("deleting a missing entry: %v", err)
	}
	if c.Len() != 2 {
		t.Errorf("after delete: %d entries", c.Len())
	}
	// An entry larger than the whole cache is not stored and evicts nothing.
	big := &Entry{ClientID: "https://big.example/c.json", Body: make([]byte, 10*one)}
	if err := c.Put(ctx, big); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, big.ClientID); !errors.Is(err, ErrCacheMiss) || c.Len() != 2 {
		t.Errorf("oversized entry stored or evicted others: err=%v len=%d", err, c.Len())
	}
}
