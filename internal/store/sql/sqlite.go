package sql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeoutMillis is how long a connection waits for a lock held by
// another process sharing the database before it fails with SQLITE_BUSY.
const busyTimeoutMillis = 5000

// OpenSQLite opens the SQLite database at path, creating the file with
// mode 0600 if it does not exist, and applies the embedded migrations. It
// fails with [ErrSchemaTooNew] if the database was written by a newer
// mcpauth. The caller must Close the DB.
func OpenSQLite(ctx context.Context, path string) (_ *DB, err error) {
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(closers) {
				c()
			}
			err = fmt.Errorf("open database %q: %w", path, err)
		}
	}()
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, errors.New(`need a plain file path (no ":memory:", "file:" URI, '?' or '#')`)
	}
	// Create the file ourselves so that it (and the -wal and -shm files,
	// which SQLite creates with the database file's mode) is private.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}

	single := func(role role) (*sql.DB, *sql.Conn, error) {
		db, err := sql.Open("sqlite", dsn(path, role))
		if err != nil {
			return nil, nil, err
		}
		db.SetMaxOpenConns(1)
		conn, err := db.Conn(ctx)
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		return db, conn, nil
	}

	wdb, wconn, err := single(writerRole)
	if err != nil {
		return nil, err
	}
	w := newWriter(wdb, wconn)
	closers = append(closers, w.closeConn)
	d := sqliteDialect()
	// Before the writer goroutine starts, the migrations run on this one.
	now := func(ctx context.Context, fn func(*tx) error) error {
		return w.doNow(ctx, func(w *writer) error { return fn(&tx{w, d}) })
	}
	if err := migrate(ctx, d, now); err != nil {
		return nil, err
	}

	cdb, cconn, err := single(checkpointerRole)
	if err != nil {
		return nil, err
	}
	closers = append(closers, cdb.Close, cconn.Close)
	w.ckpt = newCheckpointer(cdb, cconn)

	rdb, err := sql.Open("sqlite", dsn(path, readerRole))
	if err != nil {
		return nil, err
	}
	closers = append(closers, rdb.Close)
	n := max(4, 2*runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	db := &DB{d: d, w: w, r: rdb, closeConns: func() error { return errors.Join(w.ckpt.stop(), w.stop()) }}
	if err := db.Ping(ctx); err != nil {
		return nil, err
	}
	go w.ckpt.run()
	go w.run()
	return db, nil
}

// role is what a connection is for.
type role int

const (
	writerRole role = iota
	checkpointerRole
	readerRole
)

// writerCacheKiB is the writer's page cache: the pages that every write
// touches (index roots and the newest leaves) stay in memory.
const writerCacheKiB = 32 << 10

// dsn is the modernc.org/sqlite data source name for a connection to path.
// Every connection waits busy_timeout for locks and enforces foreign keys.
// The writer sets WAL mode (persistent in the file), commits with
// synchronous=FULL (COMMIT returns once the log is synced) and leaves
// checkpoints to the checkpointer, which syncs the database file with
// synchronous=FULL too; readers are query_only.
func dsn(path string, r role) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMillis))
	q.Add("_pragma", "foreign_keys(1)")
	switch r {
	case writerRole:
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -writerCacheKiB))
	case checkpointerRole:
		q.Add("_pragma", "synchronous(FULL)")
	case readerRole:
		q.Add("_pragma", "query_only(1)")
	}
	return path + "?" + q.Encode()
}
