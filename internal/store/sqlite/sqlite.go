package sqlite

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
	"sync"

	"github.com/mcpauth/mcpauth/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeoutMillis is how long a connection waits for a lock held by
// another process sharing the database before it fails with SQLITE_BUSY.
const busyTimeoutMillis = 5000

// DB is a store.Store on one SQLite database file. It is safe for
// concurrent use, also by several processes opening the same file.
type DB struct {
	w *writer // the only connection that writes
	r *sql.DB // read-only connection pool

	rstmts sync.Map // query -> *sql.Stmt prepared on r

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*DB)(nil)

// Open opens the SQLite database at path, creating the file with mode 0600
// if it does not exist, and applies the embedded migrations. It fails with
// [ErrSchemaTooNew] if the database was written by a newer mcpauth. The
// caller must Close the DB.
func Open(ctx context.Context, path string) (*DB, error) {
	db, err := open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	return db, nil
}

func open(ctx context.Context, path string) (_ *DB, err error) {
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

	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(closers) {
				c()
			}
		}
	}()
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
	if err := w.migrate(ctx); err != nil {
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
	db := &DB{w: w, r: rdb}
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

// Ping reports whether the database answers a query and still takes
// writes: after a write failed at the disk it returns an error wrapping
// [ErrWritesStopped].
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.stopped(); err != nil {
		return err
	}
	var one int
	if err := db.row(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close stops the writer, waiting for the batch in progress to commit, and
// closes every connection. Writes attempted after Close fail.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		err := errors.Join(db.w.ckpt.stop(), db.w.stop())
		db.rstmts.Range(func(_, v any) bool {
			v.(*sql.Stmt).Close()
			return true
		})
		db.closeErr = errors.Join(err, db.r.Close())
	})
	return db.closeErr
}

// rstmt returns the statement for query prepared on the read pool.
func (db *DB) rstmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := db.rstmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.rstmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// row runs a query that returns at most one row on the read pool.
func (db *DB) row(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := db.rstmt(ctx, query)
	if err != nil {
		// Unprepared, the query reports the same error through the Row.
		return db.r.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// rows runs a query on the read pool.
func (db *DB) rows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := db.rstmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// notFound maps sql.ErrNoRows to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// list runs a query on the read pool and scans every row with scan.
func list[T any](ctx context.Context, db *DB, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.rows(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
