package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupWhileServing: backup copies the store of a running serve; a
// serve started on the copy (the restore docs/operations.md describes)
// has the same users and signing keys.
func TestBackupWhileServing(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base, _ := startServe(t, nil, "--addr", freeAddr(t), "--data", data)
	to := filepath.Join(t.TempDir(), "mcpauth-backup.db")
	out, errOut, code := runCmd(t, "backup", "--data", data, "--to", to)
	if code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	fi, err := os.Stat(to)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want -rw-------", fi.Mode().Perm())
	}

	// A second backup to the same file is refused and leaves it alone.
	before, _ := os.ReadFile(to)
	if _, errOut, code := runCmd(t, "backup", "--data", data, "--to", to); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("backup over an existing file: exit %d, stderr %q; want 1 and a message that it exists", code, errOut)
	}
	if after, _ := os.ReadFile(to); string(after) != string(before) {
		t.Error("a refused backup changed the existing file")
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to, filepath.Join(restored, "mcpauth.db")); err != nil {
		t.Fatal(err)
	}
	base2, out2 := startServe(t, nil, "--addr", freeAddr(t), "--data", restored)
	if strings.Contains(out2.String(), "created user admin") {
		t.Errorf("serve on the restored store created a first user again:\n%s", out2)
	}
	_, jwks := get(t, base+"/jwks")
	if code, jwks2 := get(t, base2+"/jwks"); code != 200 || jwks2 != jwks {
		t.Errorf("restored /jwks = %d %s\nwant the original %s", code, jwks2, jwks)
	}
	if o, e, code := runCmd(t, "users", "list", "--data", restored); code != 0 || !strings.Contains(o, "admin") {
		t.Errorf("users list on the restored store: exit %d %s%s", code, o, e)
	}
}

func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	to := filepath.Join(dir, "b.db")
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"PostgreSQL", []string{"--store", "postgres://mcpauth@127.0.0.1:1/none", "--to", to}, 1, "pg_dump"},
		{"no --to", []string{"--data", dir}, 2, "--to"},
		{"no database", []string{"--data", filepath.Join(dir, "missing"), "--to", to}, 1, "no database"},
		{"argument", []string{"--to", to, "extra"}, 2, "no arguments"},
	}
	for _, tt := range tests {
		out, errOut, code := runCmd(t, append([]string{"backup"}, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.contains) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want exit %d and one line with %q", tt.name, code, errOut, out, tt.code, tt.contains)
		}
	}
	if _, err := os.Stat(to); !os.IsNotExist(err) {
		t.Errorf("a refused backup created %s (stat: %v)", to, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("backup created the missing data directory (stat: %v)", err)
	}
}
