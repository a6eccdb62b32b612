package token

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/internal/store"
)

// newTestKEK returns a KEK of fresh random bytes.
func newTestKEK(t testing.TB) *KEK {
	t.Helper()
	kek, err := NewKEK(randomKey())
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

// TestKEKRoundTrip: with a KEK the stored keys are wrapped (no PKCS#8 in
// the store), and a second manager with the same KEK publishes the same
// keys and verifies the tokens the first signed.
func TestKEKRoundTrip(t *testing.T) {
	ks, clk, kek := newFakeKeyStore(), newFakeClock(), newTestKEK(t)
	k := loadKeys(t, ks, clk, KeyOptions{KEK: kek})
	tok, err := k.Signer().SignAccessToken(claimsAt(clk.Now(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range ks.keys {
		if !isWrapped(rec.PrivateKey) {
			t.Errorf("key %s stored unwrapped", rec.ID)
		}
		if _, err := x509.ParsePKCS8PrivateKey(rec.PrivateKey); err == nil {
			t.Errorf("key %s: the stored bytes parse as PKCS#8", rec.ID)
		}
	}
	k2 := loadKeys(t, ks, clk, KeyOptions{KEK: kek})
	if diff := cmp.Diff(string(k.JWKS()), string(k2.JWKS())); diff != "" {
		t.Errorf("JWKS after reload (-before +after):\n%s", diff)
	}
	if _, err := k2.VerifyAccessToken(tok, clk.Now()); err != nil {
		t.Errorf("token signed before the reload: %v", err)
	}
}

// TestKEKRefusals: a wrapped store does not load without its KEK, with
// another KEK, or with the wrapped keys swapped between two kids.
func TestKEKRefusals(t *testing.T) {
	kek := newTestKEK(t)
	wrapped := func(t *testing.T) *fakeKeyStore {
		ks := newFakeKeyStore()
		loadKeys(t, ks, newFakeClock(), KeyOptions{KEK: kek})
		return ks
	}
	swap := func(ks *fakeKeyStore) {
		var ids []string
		for id := range ks.keys {
			ids = append(ids, id)
		}
		a, b := ks.keys[ids[0]], ks.keys[ids[1]]
		a.PrivateKey, b.PrivateKey = b.PrivateKey, a.PrivateKey
		ks.keys[a.ID], ks.keys[b.ID] = a, b
	}
	for _, tc := range []struct {
		name   string
		kek    *KEK
		change func(*fakeKeyStore)
		want   error
	}{
		{"no KEK", nil, nil, ErrKEKRequired},
		{"another KEK", newTestKEK(t), nil, ErrKEKMismatch},
		{"rows swapped between kids", kek, swap, ErrKEKMismatch},
		{"truncated row", kek, func(ks *fakeKeyStore) {
			for id, rec := range ks.keys {
				rec.PrivateKey = rec.PrivateKey[:len(wrapPrefix)+4]
				ks.keys[id] = rec
			}
		}, ErrKEKMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := wrapped(t)
			if tc.change != nil {
				tc.change(ks)
			}
			k := NewKeys(ks, KeyOptions{KEK: tc.kek, Now: newFakeClock().Now})
			if err := k.Load(context.Background()); !errors.Is(err, tc.want) {
				t.Errorf("Load = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestKEKReadsLegacyPlainKeys: a KEK added to a store of plain keys reads
// them and wraps only the keys it creates.
func TestKEKReadsLegacyPlainKeys(t *testing.T) {
	ks, clk := newFakeKeyStore(), newFakeClock()
	k := loadKeys(t, ks, clk, KeyOptions{})
	plain := map[string]bool{}
	for id, rec := range ks.keys {
		if isWrapped(rec.PrivateKey) {
			t.Fatalf("key %s wrapped without a KEK", id)
		}
		plain[id] = true
	}
	k2 := loadKeys(t, ks, clk, KeyOptions{KEK: newTestKEK(t)})
	if diff := cmp.Diff(string(k.JWKS()), string(k2.JWKS())); diff != "" {
		t.Errorf("JWKS with the KEK (-plain +with KEK):\n%s", diff)
	}
	if err := k2.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, rec := range ks.keys {
		if got := isWrapped(rec.PrivateKey); got == plain[id] {
			t.Errorf("key %s: wrapped %v, want %v", id, got, !plain[id])
		}
	}
}

// TestRewrap: every key is re-encrypted and opens under the new KEK only;
// the wrong current KEK changes nothing.
func TestRewrap(t *testing.T) {
	a, b := newTestKEK(t), newTestKEK(t)
	ks := newFakeKeyStore()
	loadKeys(t, ks, newFakeClock(), KeyOptions{})
	list, _ := ks.ListSigningKeys(context.Background())
	plain := map[string][]byte{}
	for _, rec := range list {
		plain[rec.ID] = rec.PrivateKey
	}
	apply := func(t *testing.T, list []store.SigningKey, changes []store.KeyMaterial) []store.SigningKey {
		t.Helper()
		if len(changes) != len(list) {
			t.Fatalf("%d changes for %d keys", len(changes), len(list))
		}
		out := make([]store.SigningKey, len(list))
		for i, c := range changes {
			if c.ID != list[i].ID || !bytes.Equal(c.Old, list[i].PrivateKey) {
				t.Fatalf("change %d is for %s, want %s with its current bytes", i, c.ID, list[i].ID)
			}
			out[i] = list[i]
			out[i].PrivateKey = c.New
		}
		return out
	}
	steps := []struct {
		name     string
		from, to *KEK
	}{{"plain to A", nil, a}, {"A to B", a, b}, {"B to plain", b, nil}}
	for _, step := range steps {
		changes, err := Rewrap(list, step.from, step.to)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		list = apply(t, list, changes)
		for _, rec := range list {
			if isWrapped(rec.PrivateKey) != (step.to != nil) {
				t.Errorf("%s: key %s wrapped = %v", step.name, rec.ID, isWrapped(rec.PrivateKey))
			}
			got, err := step.to.unwrap(rec.ID, rec.PrivateKey)
			if err != nil || !bytes.Equal(got, plain[rec.ID]) {
				t.Errorf("%s: key %s does not open to the original: %v", step.name, rec.ID, err)
			}
			if step.to != nil {
				if _, err := step.from.unwrap(rec.ID, rec.PrivateKey); err == nil {
					t.Errorf("%s: key %s still opens under the old KEK", step.name, rec.ID)
				}
			}
		}
	}
	wrappedA := apply(t, list, must(Rewrap(list, nil, a)))
	for _, tc := range []struct {
		name string
		from *KEK
		want error
	}{{"from absent", nil, ErrKEKRequired}, {"from another KEK", b, ErrKEKMismatch}} {
		if _, err := Rewrap(wrappedA, tc.from, b); !errors.Is(err, tc.want) {
			t.Errorf("%s: Rewrap = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func randomKey() []byte {
	b := make([]byte, KEKSize)
	_, _ = rand.Read(b)
	return b
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestLoadKEK: the file's forms and its refusals.
func TestLoadKEK(t *testing.T) {
	key := randomKey()
	b64 := base64.StdEncoding.EncodeToString(key)
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // "" for success, else in the error
	}{
		{"raw 32 bytes", string(key), 0o600, ""},
		{"base64 with newline", b64 + "\n", 0o600, ""},
		{"base64 unpadded", strings.TrimRight(b64, "="), 0o400, ""},
		{"31 raw bytes", string(key[:31]), 0o600, "31 bytes that are not base64; write 32 random bytes"},
		{"base64 of 16 bytes", base64.StdEncoding.EncodeToString(key[:16]), 0o600, "base64 of 16 bytes; write 32 random bytes"},
		{"empty", "", 0o600, "the file is empty; write 32 random bytes"},
		{"readable by others", b64, 0o644, "mode 0644 lets group or others read it; run chmod 600"},
		{"readable by group", b64, 0o640, "mode 0640"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kek")
			if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			kek, err := LoadKEK(path)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("LoadKEK: %v", err)
			case tc.want == "":
				want, _ := NewKEK(key)
				w := want.wrap("kid", []byte("secret"))
				if got, err := kek.unwrap("kid", w); err != nil || string(got) != "secret" {
					t.Errorf("the loaded KEK is not the file's key: %v", err)
				}
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Errorf("LoadKEK = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := LoadKEK(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("LoadKEK of a missing file succeeded")
	}
}
