package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcpauth/mcpauth/internal/store"
)

// Defaults for the zero fields of [Options].
const (
	// DefaultMaxConns is enough connections for a replica's token endpoint
	// to keep several commits waiting on one WAL flush, which PostgreSQL
	// then makes durable together; several replicas stay well below
	// PostgreSQL's default max_connections of 100.
	DefaultMaxConns = 16
	// DefaultMaxConnLifetime recycles connections, so that the pool
	// follows a failover or a change of DNS.
	DefaultMaxConnLifetime = time.Hour
	// DefaultMaxConnIdleTime closes connections a quiet replica no longer
	// needs.
	DefaultMaxConnIdleTime = 5 * time.Minute
	// DefaultStatementTimeout bounds every statement; the store's are
	// single-row lookups and writes that take milliseconds.
	DefaultStatementTimeout = 5 * time.Second
	// DefaultConnectTimeout bounds establishing a connection, TLS and
	// authentication included.
	DefaultConnectTimeout = 5 * time.Second
)

// Options configures the connection pool. The zero value is ready to use.
type Options struct {
	// MaxConns is the most connections the pool opens. Zero means the
	// connection string's pool_max_conns, else DefaultMaxConns.
	MaxConns int32
	// MinIdleConns is how many idle connections the pool keeps open
	// ahead of demand. Zero means the connection string's
	// pool_min_idle_conns, else none.
	MinIdleConns int32
	// MaxConnLifetime is when a connection is closed and replaced. Zero
	// means the connection string's pool_max_conn_lifetime, else
	// DefaultMaxConnLifetime.
	MaxConnLifetime time.Duration
	// MaxConnIdleTime is when an idle connection is closed. Zero means the
	// connection string's pool_max_conn_idle_time, else
	// DefaultMaxConnIdleTime.
	MaxConnIdleTime time.Duration
	// StatementTimeout is the statement_timeout (and
	// idle_in_transaction_session_timeout) of every connection, in whole
	// milliseconds. Zero means the connection string's statement_timeout
	// parameter, else DefaultStatementTimeout; negative means none.
	StatementTimeout time.Duration
	// ConnectTimeout bounds one connection attempt. Zero means the
	// connection string's connect_timeout, else DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// NoMigrate makes Open check the schema instead of migrating it: it
	// fails with ErrSchemaTooOld unless Migrate (mcpauth migrate) has
	// brought it up to date, for deployments whose serving role may not
	// change the schema.
	NoMigrate bool
}

// DB is a store.Store on a PostgreSQL database. It is safe for concurrent
// use, also by several processes (replicas) sharing the database.
type DB struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*DB)(nil)

// Open connects to the PostgreSQL database that dsn names (a URL or
// key=value connection string), checks that it answers and applies the
// embedded migrations (or, with opts.NoMigrate, checks that they are
// applied). It fails with [ErrSchemaTooNew] if the schema was written by
// a newer mcpauth. The caller must Close the DB.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := poolConfig(dsn, opts)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	cc := cfg.ConnConfig
	db, err := open(ctx, cfg, opts.NoMigrate)
	if err != nil {
		return nil, fmt.Errorf("open postgres database %q on %s:%d as %q: %w", cc.Database, cc.Host, cc.Port, cc.User, err)
	}
	return db, nil
}

func open(ctx context.Context, cfg *pgxpool.Config, noMigrate bool) (*DB, error) {
	db, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if noMigrate {
		err = db.checkSchema(ctx)
	} else {
		err = db.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// connect opens the pool and checks that the database answers.
func connect(ctx context.Context, cfg *pgxpool.Config) (*DB, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := &DB{pool: pool}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// poolConfig parses dsn and applies opts and the defaults to it.
func poolConfig(dsn string, opts Options) (*pgxpool.Config, error) {
	// pgx leaves parameters it does not know in RuntimeParams, pool_*
	// included; pgxpool removes those after reading them, filling in its
	// own defaults. Parse once without the pool to learn which were given.
	given, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	inDSN := func(key string) bool { _, ok := given.RuntimeParams[key]; return ok }
	setInt32(&cfg.MaxConns, opts.MaxConns, DefaultMaxConns, inDSN("pool_max_conns"))
	setInt32(&cfg.MinIdleConns, opts.MinIdleConns, 0, inDSN("pool_min_idle_conns"))
	setDuration(&cfg.MaxConnLifetime, opts.MaxConnLifetime, DefaultMaxConnLifetime, inDSN("pool_max_conn_lifetime"))
	setDuration(&cfg.MaxConnIdleTime, opts.MaxConnIdleTime, DefaultMaxConnIdleTime, inDSN("pool_max_conn_idle_time"))
	// connect_timeout is pgconn's own; zero means none was given.
	setDuration(&cfg.ConnConfig.ConnectTimeout, opts.ConnectTimeout, DefaultConnectTimeout, cfg.ConnConfig.ConnectTimeout != 0)
	if cfg.MaxConnLifetimeJitter == 0 && cfg.MaxConnLifetime > 0 {
		// Replicas started together do not all reconnect at once.
		cfg.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10
	}

	params := cfg.ConnConfig.RuntimeParams
	switch st := opts.StatementTimeout; {
	case st < 0:
		params["statement_timeout"] = "0"
	case st > 0:
		params["statement_timeout"] = strconv.FormatInt(max(st.Milliseconds(), 1), 10)
	case params["statement_timeout"] == "":
		params["statement_timeout"] = strconv.FormatInt(DefaultStatementTimeout.Milliseconds(), 10)
	}
	if _, ok := params["idle_in_transaction_session_timeout"]; !ok {
		params["idle_in_transaction_session_timeout"] = params["statement_timeout"]
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "mcpauth"
	}
	return cfg, nil
}

// setInt32 sets *dst to opt if it is set, else to def unless the
// connection string gave a value (already in *dst).
func setInt32(dst *int32, opt, def int32, inDSN bool) {
	switch {
	case opt != 0:
		*dst = opt
	case !inDSN:
		*dst = def
	}
}

// setDuration is setInt32 for durations.
func setDuration(dst *time.Duration, opt, def time.Duration, inDSN bool) {
	switch {
	case opt != 0:
		*dst = opt
	case !inDSN:
		*dst = def
	}
}

// Ping reports whether the database answers (readiness).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close closes every connection, waiting for those in use to be
// released. Calls after the first do nothing.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// readAttempts is how often a read is tried before its error is returned.
const readAttempts = 3

// retryPause is the pause before the second attempt; it doubles after.
const retryPause = 20 * time.Millisecond

// retry runs the read fn until it succeeds, fails for good, or has been
// tried readAttempts times. Only reads may be retried: they are
// idempotent.
func retry(ctx context.Context, fn func() error) error {
	pause := retryPause
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == readAttempts || !transient(err) {
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

// transient reports whether a read that failed with err may succeed when
// tried again: the server refused it for a reason that passes, or the
// connection failed (the pool replaces a broken connection).
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", // serialization_failure
			"40P01", // deadlock_detected
			"57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now
			"0A000": // feature_not_supported: "cached plan must not change result type" after a migration
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface{ Scan(...any) error }

// get runs a read returning at most one row and scans it into dest.
func (db *DB) get(ctx context.Context, query string, args []any, dest ...any) error {
	return retry(ctx, func() error { return db.pool.QueryRow(ctx, query, args...).Scan(dest...) })
}

// list runs a read and scans every row with scan.
func list[T any](ctx context.Context, db *DB, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	var out []T
	err := retry(ctx, func() error {
		rows, err := db.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// exec runs a write, never retried, and returns how many rows it changed.
func (db *DB) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := db.pool.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

// change runs a write, never retried, that must change a row:
// store.ErrNotFound if it changed none.
func (db *DB) change(ctx context.Context, query string, args ...any) error {
	n, err := db.exec(ctx, query, args...)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// notFound maps pgx.ErrNoRows to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// conflict maps a unique violation (primary key included) to
// store.ErrConflict and leaves other errors alone.
func conflict(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

// ts is t as a query argument: NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeCol scans a timestamptz column into a time.Time in UTC, NULL into
// the zero time.
type timeCol struct{ t *time.Time }

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (c timeCol) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*c.t = time.Time{}
	case v.InfinityModifier != pgtype.Finite:
		return fmt.Errorf("timestamptz is %v, want a finite time", v.InfinityModifier)
	default:
		*c.t = v.Time.UTC()
	}
	return nil
}

// tcol is a scan destination for a timestamptz column.
func tcol(t *time.Time) timeCol { return timeCol{t} }

// blob is b as a NOT NULL bytea argument: pgx sends a nil slice as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
