package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresURL returns a URL whose search_path is a fresh schema on the local
// PostgreSQL, dropped when the test ends. Unreachable PostgreSQL fails the
// test under CI=true (CI must start it) and skips it elsewhere.
func postgresURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MCPAUTH_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatalf("PostgreSQL is unreachable and CI=%s makes that a failure: %v", ci, err)
		}
		t.Skipf("PostgreSQL is unreachable (set CI=true to make this a failure): %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "mcpauth_cmd_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	return base + "&search_path=" + schema
}

func TestPostgresMigrateUsersAndServe(t *testing.T) {
	dsn := postgresURL(t)
	out, errOut, code := runCmd(t, "migrate", "--store", dsn)
	if code != 0 || !strings.Contains(out, "schema is at version") {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	// With --store, users go to PostgreSQL; the data directory only gets
	// the first user's password (stdout is not a terminal here).
	data := filepath.Join(t.TempDir(), "data")
	base, _ := startServe(t, map[string]string{"MCPAUTH_STORE": dsn, "MCPAUTH_STORE_MAX_CONNS": "4"},
		"--addr", freeAddr(t), "--data", data, "--store-statement-timeout", "3s")
	adminPassword(t, data) // first start on an empty PostgreSQL creates admin
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("readyz on PostgreSQL: %d %s", code, body)
	}
	o, e, code := runCmd(t, "users", "list", "--store", dsn)
	if code != 0 || !strings.Contains(o, "admin") {
		t.Errorf("users list --store: %d %s %s", code, o, e)
	}
	if _, err := os.Stat(filepath.Join(data, "mcpauth.db")); !os.IsNotExist(err) {
		t.Errorf("--store postgres must not create a SQLite database (stat: %v)", err)
	}
	if _, e, code := runCmd(t, "migrate", "--store", "mysql://x"); code != 2 || !strings.Contains(e, "postgres://") {
		t.Errorf("unknown store scheme: exit %d %s", code, e)
	}
}
