package token

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// fakeKeyStore is an in-memory KeyStore with the contract of a real backend:
// a duplicate kid is store.ErrConflict, records are copied in and out.
type fakeKeyStore struct {
	mu      sync.Mutex
	keys    map[string]store.SigningKey
	creates int
	updates int

	// Hooks, called without the lock held. nil means none.
	beforeCreate func(k store.SigningKey)
	afterList    func()
	listErr      error
	createErr    error
	updateErr    error
}

func newFakeKeyStore() *fakeKeyStore {
	return &fakeKeyStore{keys: map[string]store.SigningKey{}}
}

func (f *fakeKeyStore) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	if f.beforeCreate != nil {
		f.beforeCreate(k)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		return f.createErr
	}
	if _, ok := f.keys[k.ID]; ok {
		return fmt.Errorf("insert %q: %w", k.ID, store.ErrConflict)
	}
	k.PrivateKey = slices.Clone(k.PrivateKey)
	f.keys[k.ID] = k
	f.creates++
	return nil
}

func (f *fakeKeyStore) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	f.mu.Lock()
	if f.listErr != nil {
		f.mu.Unlock()
		return nil, f.listErr
	}
	out := make([]store.SigningKey, 0, len(f.keys))
	for _, k := range f.keys {
		k.PrivateKey = slices.Clone(k.PrivateKey)
		out = append(out, k)
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b store.SigningKey) int { return a.ActiveAt.Compare(b.ActiveAt) })
	if f.afterList != nil {
		f.afterList()
	}
	return out, nil
}

func (f *fakeKeyStore) UpdateSigningKey(_ context.Context, k store.SigningKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.updateErr != nil {
		return f.updateErr
	}
	if _, ok := f.keys[k.ID]; !ok {
		return fmt.Errorf("update %q: %w", k.ID, store.ErrNotFound)
	}
	k.PrivateKey = slices.Clone(k.PrivateKey)
	f.keys[k.ID] = k
	f.updates++
	return nil
}

// get returns one stored record.
func (f *fakeKeyStore) get(t *testing.T, kid string) store.SigningKey {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[kid]
	if !ok {
		t.Fatalf("key %q not in store", kid)
	}
	return k
}

// future returns the kids of stored keys not yet active at now and not expired.
func (f *fakeKeyStore) future(now time.Time) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, k := range f.keys {
		if k.ActiveAt.After(now) && (k.ExpireAt.IsZero() || now.Before(k.ExpireAt)) {
			out = append(out, k.ID)
		}
	}
	slices.Sort(out)
	return out
}

// fakeClock is a settable clock shared by several Keys.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
