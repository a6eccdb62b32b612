package sql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// TestBackupDuringWrites: a backup taken while a goroutine writes in a loop
// is a valid database (integrity_check), private, and holds every row
// written before it began.
func TestBackupDuringWrites(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	user := func(i int) store.User {
		return store.User{ID: fmt.Sprintf("id-%d", i), Name: fmt.Sprintf("user-%d", i), PasswordHash: "h", CreatedAt: time.Now()}
	}
	const before = 200
	for i := range before {
		if err := db.CreateUser(ctx, user(i)); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
	}
	stop, done := make(chan struct{}), make(chan error, 1)
	written := make(chan struct{}, 1)
	go func() {
		for i := before; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := db.CreateUser(context.Background(), user(i)); err != nil {
				done <- err
				return
			}
			select {
			case written <- struct{}{}:
			default:
			}
		}
	}()
	<-written // the writer is running when the backup begins
	path := filepath.Join(t.TempDir(), "backup.db")
	err := db.Backup(ctx, path)
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatalf("concurrent write: %v", werr)
	}
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("backup mode = %v, want -rw-------", got)
	}
	// Open the copy as a plain SQLite database, not through OpenSQLite,
	// which would migrate it.
	copyDB, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	var check string
	if err := copyDB.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v; want ok", check, err)
	}
	var n int
	if err := copyDB.QueryRow("SELECT count(*) FROM users WHERE name IN ("+placeholders(before)+")", names(before)...).Scan(&n); err != nil {
		t.Fatalf("count users: %v", err)
	}
	if n != before {
		t.Errorf("backup holds %d of the %d users written before it began", n, before)
	}
}

func placeholders(n int) string {
	s := "?"
	for range n - 1 {
		s += ",?"
	}
	return s
}

func names(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%d", i)
	}
	return out
}

// TestBackupRefusesExistingFile: an existing file, even an empty one, is
// left as it was.
func TestBackupRefusesExistingFile(t *testing.T) {
	db, _ := openTemp(t)
	for _, content := range []string{"", "precious"} {
		path := filepath.Join(t.TempDir(), "backup.db")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		err := db.Backup(t.Context(), path)
		if err == nil {
			t.Fatalf("Backup over a file holding %q succeeded", content)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("Backup changed the existing file: %q, want %q", got, content)
		}
	}
}

// TestBackupPostgres: PostgreSQL backups are pg_dump's; nothing is written.
func TestBackupPostgres(t *testing.T) {
	db := testServer(t).open(t, Options{})
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := db.Backup(t.Context(), path); !errors.Is(err, ErrBackupUnsupported) {
		t.Errorf("Backup on PostgreSQL = %v, want ErrBackupUnsupported", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Backup on PostgreSQL created %s (stat: %v)", path, err)
	}
}
