package sql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/store/storetest"
)

// openTemp opens a new database in a temporary directory, closed at the
// end of the test.
func openTemp(tb testing.TB) (*DB, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "mcpauth.db")
	return openAt(tb, path), path
}

// openAt opens the database at path, closed at the end of the test.
func openAt(tb testing.TB, path string) *DB {
	tb.Helper()
	db, err := OpenSQLite(context.Background(), path)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := openTemp(t)
		return db
	})
}

func TestFileModes(t *testing.T) {
	db, path := openTemp(t)
	// Open wrote the schema; one more write makes sure the WAL is in use.
	if err := db.PutBlock(t.Context(), store.Block{Pattern: "evil.example", CreatedAt: time.Now()}); err != nil {
		t.Fatalf("PutBlock: %v", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		t.Run(filepath.Base(p)+" is 0600", func(t *testing.T) {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("mode of %s = %v, want -rw-------", filepath.Base(p), got)
			}
		})
	}
}

func TestSQLitePragmas(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	want := map[string]string{
		"journal_mode":       "wal",
		"synchronous":        "2", // FULL: COMMIT syncs the log
		"foreign_keys":       "1",
		"busy_timeout":       fmt.Sprint(busyTimeoutMillis),
		"query_only":         "0",
		"wal_autocheckpoint": "0", // the checkpointer's job
		"cache_size":         fmt.Sprint(-writerCacheKiB),
	}
	t.Run("writer connection", func(t *testing.T) {
		got := map[string]string{}
		err := db.w.do(ctx, func(tx *writer) error {
			for name := range want {
				var v string
				if err := tx.row("PRAGMA " + name).Scan(&v); err != nil {
					return err
				}
				got[name] = v
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read pragmas: %v", err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("writer pragmas (-want +got):\n%s", d)
		}
	})
	t.Run("checkpointer connection syncs", func(t *testing.T) {
		var sync string
		if err := db.w.ckpt.conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatalf("PRAGMA synchronous: %v", err)
		}
		if sync != "2" {
			t.Errorf("checkpointer synchronous = %s, want 2 (FULL)", sync)
		}
	})
	t.Run("reader connections are query-only", func(t *testing.T) {
		want := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": want["busy_timeout"], "query_only": "1"}
		got := map[string]string{}
		for name := range want {
			var v string
			if err := db.get(ctx, "PRAGMA "+name, nil, &v); err != nil {
				t.Fatalf("PRAGMA %s: %v", name, err)
			}
			got[name] = v
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("reader pragmas (-want +got):\n%s", d)
		}
		if _, err := db.r.ExecContext(ctx, "DELETE FROM users"); err == nil {
			t.Errorf("a write through the read pool succeeded")
		}
	})
}

func TestSQLiteMigrate(t *testing.T) {
	ms, err := readMigrations(sqliteDialect().schema.migrations)
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	versions := func(t *testing.T, path string) []int {
		t.Helper()
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		rows, err := raw.QueryContext(t.Context(), "SELECT version FROM schema_version ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var vs []int
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return vs
	}
	var all []int
	for _, m := range ms {
		all = append(all, m.Version)
	}

	t.Run("idempotent, data kept across reopen", func(t *testing.T) {
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "mcpauth.db")
		db, err := OpenSQLite(ctx, path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		u := store.User{ID: "u1", Name: "alice", PasswordHash: "h", CreatedAt: time.Now()}
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		for range 2 {
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("Migrate on a current database: %v", err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		db, err = OpenSQLite(ctx, path)
		if err != nil {
			t.Fatalf("Open again: %v", err)
		}
		defer db.Close()
		if _, err := db.GetUserByName(ctx, "alice"); err != nil {
			t.Errorf("GetUserByName after reopen: %v", err)
		}
		if got := versions(t, path); !slices.Equal(got, all) {
			t.Errorf("schema_version = %v, want %v", got, all)
		}
	})

	t.Run("newer schema is refused", func(t *testing.T) {
		ctx := t.Context()
		db, path := openTemp(t)
		raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		newer := len(ms) + 1
		if _, err := raw.ExecContext(ctx, "INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", newer); err != nil {
			t.Fatalf("bump schema version: %v", err)
		}
		err = db.Migrate(ctx)
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Errorf("Migrate = %v, want ErrSchemaTooNew", err)
		}
		_, err = OpenSQLite(ctx, path)
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
		}
		if want := fmt.Sprintf("schema version %d", newer); !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not name the version (%q)", err, want)
		}
		if got := versions(t, path); !slices.Equal(got, append(all, newer)) {
			t.Errorf("schema_version = %v after the refusal, want %v", got, append(all, newer))
		}
	})
}

func TestFailedMigrationChangesNothing(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	ms, err := readMigrations(sqliteDialect().schema.migrations)
	if err != nil {
		t.Fatal(err)
	}
	n := len(ms)
	bad := append(ms, migration{Version: n + 1, Name: "x_ok.sql", SQL: "CREATE TABLE x (a INTEGER)"},
		migration{Version: n + 2, Name: "y_bad.sql", SQL: "CREATE TABLE y (a INTEGER); INSERT INTO nowhere VALUES (1)"})
	if err := db.write(ctx, func(t *tx) error { return apply(t, bad) }); err == nil {
		t.Fatalf("applying a failing migration succeeded")
	}
	var version, tables int
	if err := db.get(ctx, "SELECT max(version) FROM schema_version", nil, &version); err != nil {
		t.Fatal(err)
	}
	if err := db.get(ctx, "SELECT count(*) FROM sqlite_schema WHERE name IN ('x', 'y')", nil, &tables); err != nil {
		t.Fatal(err)
	}
	if version != n || tables != 0 {
		t.Errorf("after a failed migration: schema version %d and %d of its tables, want %d and none", version, tables, n)
	}
}

func TestOpenSQLiteRefusesNonFilePaths(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=memory", "x.db#frag"} {
		t.Run(fmt.Sprintf("%q", path), func(t *testing.T) {
			db, err := OpenSQLite(t.Context(), path)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded, want an error", path)
			}
		})
	}
}

// TestTwoProcesses shares one file between two DBs, as two mcpauth
// processes would: their writers serialize on SQLite's lock.
func TestSQLiteTwoProcesses(t *testing.T) {
	ctx := t.Context()
	a, path := openTemp(t)
	b, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("Open a second time: %v", err)
	}
	defer b.Close()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	code := store.Code{Hash: "code-1", ClientID: "c", UserID: "u1", FamilyID: "fam-1", AuthTime: now, ExpiresAt: now.Add(time.Minute)}
	if err := a.CreateCode(ctx, code); err != nil {
		t.Fatalf("CreateCode: %v", err)
	}
	t.Run("F2 redemptions through both: exactly one wins", func(t *testing.T) {
		errs := make([]error, 20)
		var wg sync.WaitGroup
		for i := range errs {
			db := a
			if i%2 == 1 {
				db = b
			}
			wg.Go(func() {
				f := store.Family{ID: "fam-1", ClientID: "c", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				rt := store.RefreshToken{Hash: fmt.Sprintf("rt-%d", i), FamilyID: "fam-1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				errs[i] = db.RedeemCode(ctx, "code-1", now, f, &rt)
			})
		}
		wg.Wait()
		var ok, used int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrAlreadyUsed):
				used++
			}
		}
		if ok != 1 || used != len(errs)-1 {
			t.Errorf("%d succeeded and %d got ErrAlreadyUsed, want 1 and %d: %v", ok, used, len(errs)-1, errs)
		}
	})
	t.Run("a write through one is read through the other", func(t *testing.T) {
		if err := b.PutBlock(ctx, store.Block{Pattern: "evil.example", CreatedAt: now}); err != nil {
			t.Fatalf("PutBlock: %v", err)
		}
		got, err := a.ListBlocks(ctx)
		if err != nil || len(got) != 1 {
			t.Errorf("ListBlocks = %v, %v; want the block", got, err)
		}
	})
}

func TestSQLiteClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpauth.db")
	db, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := db.PutBlock(t.Context(), store.Block{Pattern: "x", CreatedAt: time.Now()}); !errors.Is(err, errClosed) {
		t.Errorf("PutBlock after Close = %v, want %v", err, errClosed)
	}
}

func TestCanceledContextWritesNothing(t *testing.T) {
	db, _ := openTemp(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.PutBlock(ctx, store.Block{Pattern: "x", CreatedAt: time.Now()}); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutBlock = %v, want context.Canceled", err)
	}
	got, err := db.ListBlocks(t.Context())
	if err != nil || len(got) != 0 {
		t.Errorf("ListBlocks = %v, %v; want none", got, err)
	}
}

// TestCheckpointRestartsLog checks what the checkpointer relies on: once a
// passive checkpoint has copied the whole log, the writer's next
// transaction starts the log over instead of making it longer.
func TestCheckpointRestartsLog(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	// A read transaction open meanwhile pins the log, so that the
	// background checkpointer cannot let it start over during the writes.
	rconn, err := db.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rconn.Close()
	rtx, err := rconn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRowContext(ctx, "SELECT count(*) FROM blocks").Scan(&n); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := db.PutBlock(ctx, store.Block{Pattern: fmt.Sprintf("host%d.example", i), CreatedAt: time.Now()}); err != nil {
			t.Fatalf("PutBlock: %v", err)
		}
	}
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Copy everything; retry while the background checkpointer holds the
	// checkpoint lock.
	var frames, checkpointed int
	for range 100 {
		var busy int
		if err := db.w.ckpt.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &checkpointed); err != nil {
			t.Fatalf("wal_checkpoint: %v", err)
		}
		if busy == 0 && frames == checkpointed {
			break
		}
	}
	if frames != checkpointed || frames < 200 {
		t.Fatalf("checkpoint copied %d of %d frames, want all of at least 200", checkpointed, frames)
	}
	if err := db.PutBlock(ctx, store.Block{Pattern: "after.example", CreatedAt: time.Now()}); err != nil {
		t.Fatalf("PutBlock: %v", err)
	}
	after, err := walCheckpoint(db.w.ckpt.conn)
	if err != nil {
		t.Fatalf("wal_checkpoint: %v", err)
	}
	if after >= frames {
		t.Errorf("log is %d frames after one more write, was %d: it did not start over", after, frames)
	}
}
