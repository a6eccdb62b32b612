package sql

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// Dialect names, as [DB.Dialect] returns them.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DB is a store.Store on a SQLite database file or a PostgreSQL database,
// safe for concurrent use, also by several processes sharing the database.
type DB struct {
	d          *dialect
	r          *stdsql.DB   // reads; on PostgreSQL, writes too
	w          *writer      // SQLite's only writing connection; nil on PostgreSQL
	file       string       // SQLite's database file
	rstmts     sync.Map     // query -> *stdsql.Stmt prepared on r (dialect.prepare)
	closeConns func() error // closes what the dialect opened besides r
	closeOnce  sync.Once
	closeErr   error
}

var _ store.Store = (*DB)(nil)

// Dialect returns SQLite or Postgres.
func (db *DB) Dialect() string { return db.d.name }

// Ping reports whether the database answers a query (readiness) and, on
// SQLite, can still make writes durable.
func (db *DB) Ping(ctx context.Context) error {
	if db.w != nil {
		if err := db.w.stopped(); err != nil {
			return err
		}
	}
	var one int
	if err := db.get(ctx, "SELECT 1", nil, &one); err != nil {
		return fmt.Errorf("ping %s: %w", db.d.name, err)
	}
	return nil
}

// Close waits for the writes in progress, then closes every connection.
// Writes attempted after Close fail; calls after the first do nothing.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		err := db.closeConns()
		db.rstmts.Range(func(_, v any) bool {
			v.(*stdsql.Stmt).Close()
			return true
		})
		db.closeErr = errors.Join(err, db.r.Close())
	})
	return db.closeErr
}

// txConn runs the statements of a write: the SQLite *writer, or a
// PostgreSQL transaction or single statement (ctxConn).
type txConn interface {
	exec(query string, args ...any) (stdsql.Result, error)
	row(query string, args ...any) *stdsql.Row
	script(text string) error
}

// ctxConn runs statements with a context on a *sql.Tx, or on a *sql.DB
// where each statement is a transaction of its own.
type ctxConn struct {
	ctx context.Context
	q   interface {
		ExecContext(context.Context, string, ...any) (stdsql.Result, error)
		QueryRowContext(context.Context, string, ...any) *stdsql.Row
	}
}

func (c ctxConn) exec(query string, args ...any) (stdsql.Result, error) {
	return c.q.ExecContext(c.ctx, query, args...)
}

func (c ctxConn) row(query string, args ...any) *stdsql.Row {
	return c.q.QueryRowContext(c.ctx, query, args...)
}

func (c ctxConn) script(text string) error {
	_, err := c.q.ExecContext(c.ctx, text)
	return err
}

// tx is a write in the dialect's terms. It is valid only during the
// function it is passed to.
type tx struct {
	c txConn
	d *dialect
}

// exec runs a statement and returns how many rows it changed.
func (t *tx) exec(query string, args ...any) (int64, error) {
	res, err := t.c.exec(t.d.query(query), t.d.args(args)...)
	if err != nil {
		return 0, t.d.wrap(err)
	}
	return res.RowsAffected()
}

// get runs a query (or a statement with RETURNING) for at most one row and
// scans it into dest: store.ErrNotFound if there is none.
func (t *tx) get(query string, args []any, dest ...any) error {
	return t.d.wrap(t.c.row(t.d.query(query), t.d.args(args)...).Scan(dest...))
}

// write runs fn as one transaction, never retried, and returns nil once it
// has committed durably. On SQLite fn joins the writer's next batch and may
// run twice, so it only sets its own results.
func (db *DB) write(ctx context.Context, fn func(*tx) error) error {
	if db.w != nil {
		return db.w.do(ctx, func(w *writer) error { return fn(&tx{w, db.d}) })
	}
	t, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(&tx{ctxConn{ctx, t}, db.d}); err != nil {
		_ = t.Rollback() // fn's error says why; the transaction ends either way
		return err
	}
	return t.Commit()
}

// writeOne is write for an fn of one statement: on PostgreSQL the
// statement is its own transaction, without the round trips of BEGIN and
// COMMIT.
func (db *DB) writeOne(ctx context.Context, fn func(*tx) error) error {
	if db.w != nil {
		return db.write(ctx, fn)
	}
	return fn(&tx{ctxConn{ctx, db.r}, db.d})
}

// exec runs one write statement and returns how many rows it changed.
func (db *DB) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := db.writeOne(ctx, func(t *tx) error {
		var err error
		n, err = t.exec(query, args...)
		return err
	})
	return n, err
}

// change runs one write statement that must change a row:
// store.ErrNotFound if it changed none.
func (db *DB) change(ctx context.Context, query string, args ...any) error {
	n, err := db.exec(ctx, query, args...)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

const (
	readAttempts = 3                     // tries of a read whose error is transient
	retryPause   = 20 * time.Millisecond // before the second try; doubles after
)

// retry runs the read fn until it succeeds, fails for good, or has been
// tried readAttempts times. Only reads are idempotent, so only they retry.
func retry(ctx context.Context, transient func(error) bool, fn func() error) error {
	pause := retryPause
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == readAttempts || transient == nil || !transient(err) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause *= 2
	}
}

// stmt returns query prepared on the read pool, or nil when the dialect
// does not prepare reads or the preparation failed (the query then reports
// the error when it runs unprepared).
func (db *DB) stmt(ctx context.Context, query string) *stdsql.Stmt {
	if !db.d.prepare {
		return nil
	}
	if s, ok := db.rstmts.Load(query); ok {
		return s.(*stdsql.Stmt)
	}
	s, err := db.r.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := db.rstmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*stdsql.Stmt)
	}
	return s
}

// get runs a read returning at most one row and scans it into dest:
// store.ErrNotFound if there is none. Transient failures are retried.
func (db *DB) get(ctx context.Context, query string, args []any, dest ...any) error {
	query, args = db.d.query(query), db.d.args(args)
	return retry(ctx, db.d.transient, func() error {
		var row *stdsql.Row
		if s := db.stmt(ctx, query); s != nil {
			row = s.QueryRowContext(ctx, args...)
		} else {
			row = db.r.QueryRowContext(ctx, query, args...)
		}
		return db.d.wrap(row.Scan(dest...))
	})
}

// list runs a read and scans every row into the destinations dest returns
// for a new element. Transient failures are retried.
func list[T any](ctx context.Context, db *DB, what string, dest func(*T) []any, query string, args ...any) ([]T, error) {
	query, args = db.d.query(query), db.d.args(args)
	var out []T
	err := retry(ctx, db.d.transient, func() error {
		out = nil
		var rows *stdsql.Rows
		var err error
		if s := db.stmt(ctx, query); s != nil {
			rows, err = s.QueryContext(ctx, args...)
		} else {
			rows, err = db.r.QueryContext(ctx, query, args...)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v T
			if err := rows.Scan(dest(&v)...); err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// one runs a read for at most one row and scans it into a new T:
// store.ErrNotFound if there is none.
func one[T any](ctx context.Context, db *DB, dest func(*T) []any, query string, args ...any) (T, error) {
	var v T
	if err := db.get(ctx, query, args, dest(&v)...); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// wrapf is nil for a nil err, else err prefixed with what failed.
func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// timeCol scans a time column (SQLite's integer microseconds or
// PostgreSQL's timestamptz; NULL is the zero time) into a UTC time.Time.
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("time column holds %T, want an integer or a timestamp", v)
	}
	return nil
}

// tcol is a scan destination for a time column.
func tcol(t *time.Time) timeCol { return timeCol{t} }
