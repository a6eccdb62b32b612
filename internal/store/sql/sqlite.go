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

// busyTimeoutMillis is how long a connection waits for another process's
// lock before it fails with SQLITE_BUSY.
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
	cdb, cconn, err := single(checkpointerRole)
	if err != nil {
		return nil, err
	}
	closers = append(closers, cdb.Close, cconn.Close)
	w.ckpt = &checkpointer{db: cdb, conn: cconn, kick: make(chan struct{}, 1), finish: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{})}

	rdb, err := sql.Open("sqlite", dsn(path, readerRole))
	if err != nil {
		return nil, err
	}
	closers = append(closers, rdb.Close)
	n := max(4, 2*runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	db := &DB{d: sqliteDialect(), w: w, r: rdb, file: path, closeConns: func() error { return errors.Join(w.ckpt.stop(), w.stop()) }}
	if err := db.Ping(ctx); err != nil {
		return nil, err
	}
	go w.ckpt.run()
	go w.run()
	closers = []func() error{db.Close} // which now closes everything
	if err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	return db, nil
}

// role is what a connection is for.
type role int

const (
	writerRole role = iota
	checkpointerRole
	readerRole
	backupRole // VACUUM INTO, which the readers' query_only refuses
)

// writerCacheKiB is the writer's page cache: the pages that every write
// touches (index roots and the newest leaves) stay in memory.
const writerCacheKiB = 32 << 10

// dsn is the modernc.org/sqlite data source name for a connection to path
// in role r. The writer sets WAL mode (persistent in the file) and leaves
// checkpoints to the checkpointer.
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
