package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/token"
)

// writeKEK writes a key encryption key file of 32 random bytes in base64.
func writeKEK(t *testing.T, name string) string {
	t.Helper()
	b := make([]byte, token.KEKSize)
	_, _ = rand.Read(b)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveJWKS starts serve on data with extra args, returns its /jwks and
// stops it.
func serveJWKS(t *testing.T, data string, args ...string) string {
	t.Helper()
	s := startServed(t, append([]string{"--addr", freeAddr(t), "--data", data}, args...)...)
	code, jwks := get(t, s.base+"/jwks")
	if code != 200 {
		t.Fatalf("/jwks: %d %s", code, jwks)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, s.logs)
	}
	return jwks
}

// serveRefused runs serve on data with extra args and returns the error it
// stops with; it fails the test if serve starts.
func serveRefused(t *testing.T, data string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut syncBuffer
	err := run(ctx, append([]string{"serve", "--addr", freeAddr(t), "--data", data}, args...), func(string) string { return "" },
		strings.NewReader(""), &out, &errOut)
	if err == nil || strings.Contains(out.String(), "listening on") {
		t.Fatalf("serve %q started; want a refusal (err %v)", args, err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") {
		t.Errorf("the refusal is more than one line: %q", msg)
	}
	return err.Error()
}

// privateScalars returns the private scalar (d, RFC 7518 §6.2.2.1) of every
// stored key, read with kek (nil: stored plain).
func privateScalars(t *testing.T, data string, kek *token.KEK) (scalars [][]byte, verify func(string) error) {
	t.Helper()
	db, err := openStore(t.Context(), "", data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys := token.NewKeys(db, token.KeyOptions{KEK: kek})
	if err := keys.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	changes, err := token.Rewrap(must(db.ListSigningKeys(t.Context())), kek, nil) // decrypts, changes nothing
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		k, err := x509.ParsePKCS8PrivateKey(c.New)
		if err != nil {
			t.Fatal(err)
		}
		d, err := k.(*ecdsa.PrivateKey).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		scalars = append(scalars, d)
	}
	return scalars, func(tok string) error { _, err := keys.VerifyAccessToken(tok, time.Now()); return err }
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// storedScalars returns how many of scalars occur anywhere in the SQLite
// database file or its write-ahead log.
func storedScalars(t *testing.T, data string, scalars [][]byte) int {
	t.Helper()
	var files [][]byte
	for _, name := range []string{"mcpauth.db", "mcpauth.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(data, name)); err == nil {
			files = append(files, b)
		}
	}
	n := 0
	for _, d := range scalars {
		for _, f := range files {
			if bytes.Contains(f, d) {
				n++
				break
			}
		}
	}
	return n
}

// TestKeysRewrap: a store of plain keys is encrypted with KEK A, then moved
// to KEK B. After each step serve publishes the same JWK Set, a token signed
// before the first step still verifies, no private scalar is left in the
// database file or its log, and serve without the right KEK refuses to start
// in one line naming the flag.
func TestKeysRewrap(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	jwks := serveJWKS(t, data)
	scalars, _ := privateScalars(t, data, nil)
	if n := storedScalars(t, data, scalars); n != len(scalars) || n == 0 {
		t.Fatalf("the scan finds %d of %d plain private scalars in the store; the check cannot work", n, len(scalars))
	}
	db, err := openStore(t.Context(), "", data)
	if err != nil {
		t.Fatal(err)
	}
	keys := token.NewKeys(db, token.KeyOptions{})
	if err := keys.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := keys.Signer().SignAccessToken(token.AccessClaims{Issuer: "http://127.0.0.1", Subject: "admin", ClientID: "https://client.example/c.json",
		Audience: "https://mcp.example/mcp", Scope: "mcp", JTI: token.NewID(), FamilyID: "f", IssuedAt: now, ExpiresAt: now.Add(time.Hour), AuthTime: now})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	a, b := writeKEK(t, "kek-a"), writeKEK(t, "kek-b")
	for _, step := range []struct {
		name   string
		args   []string
		kek    string // serve's --key-encryption-key-file afterwards
		others []string
	}{
		{"plain to A", []string{"--to", a}, a, nil},
		{"A to B", []string{"--from", a, "--to", b}, b, []string{a}},
	} {
		out, errOut, code := runCmd(t, append([]string{"keys", "rewrap", "--data", data}, step.args...)...)
		if code != 0 || !strings.Contains(out, "rewrapped 2 signing key(s)") {
			t.Fatalf("%s: keys rewrap: exit %d\n%s%s", step.name, code, out, errOut)
		}
		if n := storedScalars(t, data, scalars); n != 0 {
			t.Errorf("%s: %d plain private scalars left in the database file or its log", step.name, n)
		}
		kek, err := token.LoadKEK(step.kek)
		if err != nil {
			t.Fatal(err)
		}
		after, verify := privateScalars(t, data, kek)
		if !slices.EqualFunc(after, scalars, bytes.Equal) {
			t.Errorf("%s: the keys changed", step.name)
		}
		if err := verify(tok); err != nil {
			t.Errorf("%s: the token signed before: %v", step.name, err)
		}
		if got := serveJWKS(t, data, "--key-encryption-key-file", step.kek); got != jwks {
			t.Errorf("%s: /jwks = %s\nwant the original %s", step.name, got, jwks)
		}
		if msg := serveRefused(t, data); !strings.Contains(msg, "--key-encryption-key-file FILE") {
			t.Errorf("%s: serve without the KEK: %q; want the flag named", step.name, msg)
		}
		for _, other := range step.others {
			if msg := serveRefused(t, data, "--key-encryption-key-file", other); !strings.Contains(msg, "not the key the signing keys are encrypted with") {
				t.Errorf("%s: serve with the old KEK: %q", step.name, msg)
			}
		}
	}
	// Wrong --from changes nothing.
	if _, errOut, code := runCmd(t, "keys", "rewrap", "--data", data, "--from", a, "--to", b); code == 0 || !strings.Contains(errOut, "--from "+a+" is not the key") {
		t.Errorf("rewrap with the wrong --from: exit %d %s", code, errOut)
	}
	if _, errOut, code := runCmd(t, "keys", "list", "--data", data); code == 0 || !strings.Contains(errOut, "--key-encryption-key-file") {
		t.Errorf("keys list without the KEK: exit %d %s", code, errOut)
	}
	if out, errOut, code := runCmd(t, "keys", "list", "--data", data, "--key-encryption-key-file", b); code != 0 || !strings.Contains(out, "ES256") {
		t.Errorf("keys list with the KEK: exit %d %s%s", code, out, errOut)
	}
}

// TestKeyEncryptionKeyFileRefusals: serve refuses a KEK file of the wrong
// length or mode before it creates anything, and rewrap needs a direction.
func TestKeyEncryptionKeyFileRefusals(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))), 0o600); err != nil {
		t.Fatal(err)
	}
	open := writeKEK(t, "open")
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{short, "--key-encryption-key-file: key encryption key file " + short + ": base64 of 16 bytes; write 32 random bytes"},
		{open, "mode 0644 lets group or others read it; run chmod 600 " + open},
	} {
		data := filepath.Join(t.TempDir(), "data")
		if msg := serveRefused(t, data, "--key-encryption-key-file", tc.file); !strings.Contains(msg, tc.want) {
			t.Errorf("serve with %s: %q, want %q", tc.file, msg, tc.want)
		}
		if _, err := os.Stat(data); err == nil {
			t.Errorf("serve with %s created the data directory", tc.file)
		}
	}
	if _, errOut, code := runCmd(t, "keys", "rewrap", "--data", t.TempDir()); code != 2 || !strings.Contains(errOut, "needs --from FILE, --to FILE or both") {
		t.Errorf("rewrap without a direction: exit %d %s", code, errOut)
	}
}
