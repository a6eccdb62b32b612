package sql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Defaults for the zero fields of [Options].
const (
	// DefaultMaxConns lets several commits share one WAL flush, and several
	// replicas stay well below PostgreSQL's default max_connections of 100.
	DefaultMaxConns = 16
	// DefaultMaxConnLifetime recycles connections, so that the pool
	// follows a failover or a change of DNS.
	DefaultMaxConnLifetime = time.Hour
	// DefaultMaxConnIdleTime closes connections a quiet replica no longer needs.
	DefaultMaxConnIdleTime = 5 * time.Minute
	// DefaultStatementTimeout bounds every statement; the store's take
	// milliseconds.
	DefaultStatementTimeout = 5 * time.Second
	// DefaultConnectTimeout bounds a connection attempt, TLS and auth included.
	DefaultConnectTimeout = 5 * time.Second
)

// Options configures the connection pool. The zero value is ready to use:
// a zero field takes the connection string's parameter (pool_max_conns,
// pool_min_idle_conns, pool_max_conn_lifetime, pool_max_conn_idle_time,
// statement_timeout, connect_timeout), else its Default constant (no idle
// connections for MinIdleConns).
type Options struct {
	MaxConns        int32         // the most connections the pool opens
	MinIdleConns    int32         // idle connections kept open ahead of demand
	MaxConnLifetime time.Duration // when a connection is closed and replaced
	MaxConnIdleTime time.Duration // when an idle connection is closed
	// StatementTimeout is the statement_timeout (and
	// idle_in_transaction_session_timeout) of every connection, in whole
	// milliseconds; negative means none.
	StatementTimeout time.Duration
	ConnectTimeout   time.Duration // bounds one connection attempt
	// NoMigrate makes Open check the schema instead of migrating it: it
	// fails with ErrSchemaTooOld unless Migrate (mcpauth migrate) has
	// brought it up to date, for deployments whose serving role may not
	// change the schema.
	NoMigrate bool
}

// migrationLockClass is the first key of Migrate's advisory lock ("mcpa");
// the second is a hash of the schema, so schemas do not wait for each other.
const migrationLockClass = 0x6d637061

// consumeInOne writes a consumption as one statement: the claim in a WITH
// clause, and each insert selecting from the claimed row, so that it
// inserts nothing unless the claim changed a row. Foreign keys are checked
// at the end of the statement.
func consumeInOne(c consumption) (string, []any) {
	if len(c.inserts) == 0 {
		return c.claim, c.args
	}
	q := "WITH claimed AS (" + c.claim + " RETURNING 1)"
	args := slices.Clone(c.args)
	for i, r := range c.inserts {
		values := make([]string, len(r.args))
		for j, a := range r.args {
			values[j] = "?" + pgCast(a) // PostgreSQL types a parameter in a SELECT list as text
		}
		insert := "INSERT INTO " + r.into + " SELECT " + strings.Join(values, ", ") + " FROM claimed"
		if i < len(c.inserts)-1 {
			q += fmt.Sprintf(",\ninsert%d AS (%s)", i, insert)
		} else {
			q += "\n" + insert
		}
		args = append(args, r.args...)
	}
	return q, args
}

// pgCast is the cast that gives a parameter holding v its column's type,
// or "" for a type the store does not insert this way.
func pgCast(v any) string {
	switch v.(type) {
	case string:
		return "::text"
	case time.Time:
		return "::timestamptz"
	case []byte:
		return "::bytea"
	case int, int32, int64:
		return "::bigint"
	case bool:
		return "::boolean"
	}
	return ""
}

// sqlState returns the SQLSTATE of a server error in err's chain, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// lockSchema takes the migration lock of the current schema for the
// transaction, waiting without statement_timeout for another replica's
// migration.
func lockSchema(t *tx) error {
	if _, err := t.exec("SET LOCAL statement_timeout = 0"); err != nil {
		return err
	}
	var schema *string
	var searchPath string
	if err := t.get("SELECT current_schema(), current_setting('search_path')", nil, &schema, &searchPath); err != nil {
		return err
	}
	if schema == nil {
		return fmt.Errorf("search_path %q names no schema that exists; create the schema first", searchPath)
	}
	if _, err := t.exec("SELECT pg_advisory_xact_lock(?, hashtext(?))", migrationLockClass, *schema); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	return nil
}

// OpenPostgres connects to the database that dsn names (a URL or key=value
// connection string) and applies the migrations (with opts.NoMigrate,
// checks that they are applied); [ErrSchemaTooNew] if the schema was
// written by a newer mcpauth. The caller must Close the DB.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := poolConfig(dsn, opts)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db, err := connect(ctx, cfg)
	if err == nil {
		check := db.Migrate
		if opts.NoMigrate {
			check = db.checkSchema
		}
		if err = check(ctx); err != nil {
			db.Close()
		}
	}
	if err != nil {
		cc := cfg.ConnConfig
		return nil, fmt.Errorf("open postgres database %q on %s:%d as %q: %w", cc.Database, cc.Host, cc.Port, cc.User, err)
	}
	return db, nil
}

// connect opens the pool (pgxpool; database/sql borrows its connections)
// and checks that the database answers.
func connect(ctx context.Context, cfg *pgxpool.Config) (*DB, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := stdlib.OpenDBFromPool(pool)
	db := &DB{d: postgresDialect(), r: r, closeConns: func() error { pool.Close(); return nil }}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// poolConfig parses dsn and applies opts and the defaults to it.
func poolConfig(dsn string, opts Options) (*pgxpool.Config, error) {
	// pgxpool removes the pool_* parameters it reads, filling in its own
	// defaults; pgx alone keeps them in RuntimeParams, so we see which were given.
	given, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	inDSN := func(key string) bool { _, ok := given.RuntimeParams[key]; return ok }
	set(&cfg.MaxConns, opts.MaxConns, DefaultMaxConns, inDSN("pool_max_conns"))
	set(&cfg.MinIdleConns, opts.MinIdleConns, 0, inDSN("pool_min_idle_conns"))
	set(&cfg.MaxConnLifetime, opts.MaxConnLifetime, DefaultMaxConnLifetime, inDSN("pool_max_conn_lifetime"))
	set(&cfg.MaxConnIdleTime, opts.MaxConnIdleTime, DefaultMaxConnIdleTime, inDSN("pool_max_conn_idle_time"))
	// connect_timeout is pgconn's own; zero means none was given.
	set(&cfg.ConnConfig.ConnectTimeout, opts.ConnectTimeout, DefaultConnectTimeout, cfg.ConnConfig.ConnectTimeout != 0)
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

// set sets *dst to opt if it is set, else to def unless the connection
// string gave a value (already in *dst).
func set[T int32 | time.Duration](dst *T, opt, def T, inDSN bool) {
	switch {
	case opt != 0:
		*dst = opt
	case !inDSN:
		*dst = def
	}
}

// transient reports whether a read that failed with err may succeed when
// tried again: the server's reason passes, or the connection broke.
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
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}
