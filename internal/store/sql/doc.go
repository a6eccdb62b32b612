// Package sql is the store.Store on a SQL database: one implementation,
// written against database/sql, for two dialects. [OpenSQLite] opens the
// embedded default, one SQLite database file (modernc.org/sqlite, no cgo);
// [OpenPostgres] opens a PostgreSQL database that several replicas share
// (pgx's pool through its database/sql driver, github.com/jackc/pgx/v5/stdlib).
//
// Every method is written once, with ? placeholders and time.Time
// arguments. A small dialect value holds what really differs: $n
// placeholders on PostgreSQL; times stored as integer microseconds since
// the Unix epoch on SQLite and as timestamptz on PostgreSQL (microseconds
// both; a zero time.Time is NULL, and times come back in UTC); how a
// unique violation is recognised (it is store.ErrConflict); which read
// failures are worth another try; the migrations and the table recording
// them; and the write path: on SQLite every write goes through one writer
// goroutine, on PostgreSQL through a transaction on the pool (a write of
// one statement is its own transaction).
//
// Single-use values (codes, refresh tokens, pending authorization
// requests) are consumed by one conditional UPDATE or DELETE whose
// affected-row count decides the winner, together with the inserts of
// what the consumption creates: on SQLite in one transaction of the
// writer; on PostgreSQL in one statement, the UPDATE in a WITH clause
// (SQLite allows no writes there), which saves the round trips of a
// transaction. Each method is written once; the dialect composes the
// statement (see consumption). On PostgreSQL concurrent callers
// on one value queue on its row lock; when the winner commits, PostgreSQL
// re-checks the others' WHERE clause against the new row, which no longer
// matches, so exactly one succeeds, also across replicas.
//
// The sections Durability, Writes and Reads below are about SQLite; on
// PostgreSQL a commit is durable when it returns (synchronous_commit).
//
// # Durability
//
// The database runs in WAL mode. A method that returns nil has made its
// write durable, also across a power loss: the write-ahead log has been
// synced (fdatasync) after the commit that holds it, so a response that
// promises a token can be written right after it.
//
// # Writes: one writer, group commit, pipelined syncs
//
// Every write goes through a single connection owned by one goroutine. A
// write that arrives while a batch is being built or synced joins the next
// transaction together with the other writes that queued up meanwhile. The
// writer commits with synchronous=NORMAL (the pages reach the log file but
// are not flushed) and hands the batch to a syncer goroutine, which syncs
// the log and only then reports to the batch's callers; meanwhile the
// writer already runs the next batch's statements, and commits it once that
// sync is over. One flush thus covers a whole batch, and the writer's CPU
// work overlaps the disk's flush. A failed sync is final: every later write
// fails and Ping reports it, since the kernel may have dropped what it
// could not write.
//
// Writes run without savepoints first (a savepoint copies every page a
// write touches). When one fails, the transaction is rolled back and the
// batch runs again with each write in its own SAVEPOINT, so a failing write
// is undone alone; a write's function may therefore run twice and only sets
// its own results. Readers may see a committed batch a moment before its
// sync ends; nothing is promised to a client before it ends.
//
// Transactions begin with BEGIN IMMEDIATE and the connection waits on
// busy_timeout, so several processes may share one database file (on a
// local file system; SQLite's WAL does not work over network file systems).
//
// Codes, refresh tokens and refresh families have time-ordered keys
// (internal/token), so a batch's inserts land on the last pages of each
// index rather than on one random page per row: fewer pages to write and
// flush per commit.
//
// SQLite's automatic checkpoint would copy the log into the database file
// inside a commit every thousand pages, stalling every write queued behind
// it. It is off on the writer; a checkpointer goroutine on a connection of
// its own does that copying while the writer goes on, and every few
// thousand pages the writer copies the small rest between two batches so
// that the log starts over instead of growing.
//
// # Reads
//
// Reads use a separate pool of read-only connections, which in WAL mode
// never wait for the writer. Statements are prepared once per connection.
//
// New database files (and SQLite's -wal and -shm files, which take the
// database file's mode) are created with mode 0600.
//
// # PostgreSQL: connections
//
// [OpenPostgres] takes a connection string, as a URL
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
// Statements are prepared once per connection and cached (pgx's default
// mode). Behind a pooler in transaction mode, such as PgBouncer, add
// default_query_exec_mode=exec to the connection string.
//
// # PostgreSQL: retries and failures
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
// connection failed, and [DB.Ping] (readiness) fails; a write is one
// transaction, so nothing is half-written. The pool reconnects by itself
// when the database is back.
//
// # Schema
//
// Numbered migrations are embedded per dialect
// (migrations/sqlite/NNNN_name.sql and migrations/postgres/NNNN_name.sql,
// plain SQL, read by store.ReadMigrations) and applied by [DB.Migrate],
// which the Open functions call (OpenPostgres not with
// [Options.NoMigrate]), all in one write transaction. The versions applied
// are recorded in schema_version (SQLite) or schema_migrations
// (PostgreSQL). On PostgreSQL the transaction holds an advisory lock for
// the current schema: replicas starting at once apply each migration
// exactly once, the others wait and find the work done. A schema newer
// than this code knows is refused ([ErrSchemaTooNew]); with NoMigrate,
// OpenPostgres also refuses one that is older ([ErrSchemaTooOld]).
// PostgreSQL tables live in the first schema of search_path (public unless
// the connection string sets search_path), and text columns that lists
// are ordered by use COLLATE "C", so that the order is byte by byte
// whatever the database's locale.
//
// # Tests
//
// The PostgreSQL tests run against a real server on the loopback
// interface: the connection string in MCPAUTH_TEST_POSTGRES, or
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable; a host that is
// not a loopback address is refused. Each test creates a schema of its own
// and drops it at the end. When the server is unreachable, the tests fail
// if the CI environment variable is set (CI=true), and are skipped with a
// message saying so otherwise.
package sql
