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
// The database runs in WAL mode and the writer commits with
// synchronous=FULL: COMMIT returns only once SQLite has synced (fsync) the
// write-ahead log that holds the transaction. A method that returns nil
// has made its write durable, also across a power loss, so a response that
// promises a token can be written right after it.
//
// # Writes: one writer, group commit
//
// Every write goes through a single connection owned by one goroutine.
// While a COMMIT waits for its sync, the writes that arrive queue up; the
// next transaction takes all of them (up to maxBatch), so one sync covers
// a whole batch. Syncing is SQLite's own; nothing outside SQLite touches
// its files.
//
// Writes run without savepoints first (a savepoint copies every page a
// write touches). When one fails, the transaction is rolled back and the
// batch runs again with each write in its own SAVEPOINT, so a failing write
// is undone alone; a write's function may therefore run twice and only sets
// its own results.
//
// # When the disk fails
//
// A failed COMMIT (the log could not be written or synced), an I/O error,
// full disk or corrupt file reported by a write's statements, or a failure
// of the transaction's own statements stops writes until the process
// restarts: the batch's callers, every later write and Ping (readiness)
// get an error wrapping [ErrWritesStopped], which the callers log. It is
// final because after a failed sync the kernel may have dropped the pages
// it could not write and report the next sync as a success: nothing
// written afterwards could be shown durable.
//
// What is guaranteed, and why:
//
//   - A batch reported as failed is never seen by a reader, in this process
//     or another sharing the file, and nothing later builds on it. SQLite
//     makes a commit visible by updating the log's index (the -shm file)
//     only after the sync succeeded; on a failed COMMIT it rolls the
//     transaction back and resets its view of the log to the last commit
//     the index holds. The writer issues ROLLBACK for the other cases and
//     never commits again.
//   - Every write acknowledged before the failure stays durable: it was
//     synced before it was acknowledged.
//   - After a restart the failed batch is gone as long as the log was reset
//     before the process ended. Its frames, the commit frame too when only
//     the sync failed, stay in the log file past the last commit the index
//     holds, and SQLite's recovery, which rebuilds the index from the file
//     when a database is opened after a crash, would take them back. So
//     the writer runs a TRUNCATE checkpoint right after the failure (it
//     copies the acknowledged commits into the database file, syncs it and
//     empties the log), and a clean Close checkpoints and deletes the log.
//     Both need the disk to work again; if the process dies or the power
//     fails before either succeeded, a batch whose sync failed may be
//     there after the restart, as with any database whose fsync failed.
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
// and sync it on the writer's connection right after the commit that
// crosses a thousand pages, while every write queues behind it; with
// synchronous=FULL that is one more sync of a larger file in the writes'
// path. It is off on the writer; a checkpointer goroutine on a connection
// of its own does that copying while the writer goes on, and every few
// thousand pages the writer copies the small rest between two batches so
// that the log starts over instead of growing. Measured against the
// automatic checkpoint (6 interleaved rounds on the noisy 2-core
// development machine), BenchmarkRedeemCode was faster with the
// checkpointer in all 6 (median 147 against 169 µs/op), and
// BenchmarkRotateRefreshToken, which writes fewer pages, slower in 4
// (median 159 against 142 µs/op); the code exchange writes more and
// matters more, so the checkpointer stays.
//
// Single-use values (codes, refresh tokens, pending authorization
// requests) are consumed by one conditional UPDATE or DELETE whose
// affected-row count decides the winner, inside the transaction that
// inserts what the consumption creates.
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
