// Package postgres is the store.Store backend for several mcpauth
// replicas sharing one PostgreSQL database, with the driver
// github.com/jackc/pgx/v5 and its connection pool pgxpool.
//
// # Connections
//
// [Open] takes a PostgreSQL connection string, as a URL
// (postgres://user@host:5432/db?sslmode=verify-full) or as key=value
// pairs, and [Options]. Pool settings come from Options, else from the
// connection string's pool_* parameters, else from the defaults
// ([DefaultMaxConns] connections, recycled after [DefaultMaxConnLifetime]
// or [DefaultMaxConnIdleTime] idle). Every connection runs with
// statement_timeout ([DefaultStatementTimeout] unless set otherwise), so a
// query stuck behind a lock or a slow disk fails instead of holding a
// request forever, and with idle_in_transaction_session_timeout set to the
// same value, so a replica frozen inside a transaction cannot hold its
// locks. A connection attempt gives up after [DefaultConnectTimeout].
//
// Statements are prepared once per connection and cached (pgx's default
// mode). Behind a pooler in transaction mode, such as PgBouncer, add
// default_query_exec_mode=exec to the connection string.
//
// # Single use
//
// Single-use values are consumed in one SQL statement each, which is its
// own transaction: a data-modifying WITH clause marks the code or refresh
// token used (UPDATE ... WHERE used_at IS NULL ... RETURNING) and the
// statement's INSERTs create the family and the next refresh token from
// the row it returns. Concurrent callers on one value queue on its row
// lock; when the winner commits, PostgreSQL re-checks the others' WHERE
// clause against the new row, which no longer matches, so exactly one
// succeeds. A failing insert (a unique violation, SQLSTATE 23505, is
// store.ErrConflict) aborts the whole statement and nothing is written.
// Only when nothing matched does a second, read-only query tell
// store.ErrAlreadyUsed from store.ErrNotFound.
//
// # Retries and failures
//
// Reads are retried a few times, with a short pause, on failures that a
// second attempt may not meet: a serialization failure or deadlock
// (SQLSTATE class 40), a server shutting down or starting up (57P01-57P03),
// a cached plan invalidated by a migration (0A000), or a broken
// connection, which the pool replaces. Writes are never retried: if a
// connection breaks after a write was sent, nobody can tell whether it
// committed, and retrying a single-use write would turn the caller's
// success into store.ErrAlreadyUsed. When the database is down, every
// method fails with an error that says what it was doing and why the
// connection failed, and [DB.Ping] (readiness) fails; a statement is
// atomic, so nothing is half-written. The pool reconnects by itself when
// the database is back.
//
// # Schema
//
// Numbered migrations are embedded (migrations/NNNN_name.sql, plain SQL)
// and applied by [DB.Migrate], which Open calls unless
// [Options.NoMigrate] is set, all in one transaction that holds a
// PostgreSQL advisory lock for the current schema: replicas starting at
// once apply each migration exactly once, the others wait and find the
// work done. The versions applied are recorded in schema_migrations. Open
// and Migrate refuse a schema newer than this code knows
// ([ErrSchemaTooNew]); with NoMigrate, Open also refuses one that is older
// ([ErrSchemaTooOld]). Tables live in the first schema of search_path
// (public unless the connection string sets search_path).
//
// Times are timestamptz (microseconds; a zero time.Time is NULL) and come
// back in UTC. Text columns that lists are ordered by use COLLATE "C", so
// that the order is byte by byte whatever the database's locale.
//
// # Tests
//
// The tests run against a real PostgreSQL server on the loopback
// interface: the connection string in MCPAUTH_TEST_POSTGRES, or
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable; a host that is
// not a loopback address is refused. Each test
// creates a schema of its own and drops it at the end, so runs do not
// interfere. When the server is unreachable, the tests fail if the CI
// environment variable is set (CI=true, as in continuous integration),
// and are skipped with a message saying so otherwise, so that a developer
// machine without PostgreSQL still runs the other packages' tests.
//
// DB is safe for concurrent use, also by several processes sharing one
// database.
package postgres
