// Package sql is the store.Store on a SQL database: one implementation,
// written against database/sql, for two dialects. [OpenSQLite] opens the
// embedded default, one SQLite database file (modernc.org/sqlite, no cgo);
// [OpenPostgres] opens a PostgreSQL database that several replicas share
// (pgx's pool through github.com/jackc/pgx/v5/stdlib).
//
// Every method is written once, with ? placeholders and time.Time
// arguments. The dialect value holds what differs: placeholders ($n on
// PostgreSQL); times (integer microseconds on SQLite, timestamptz on
// PostgreSQL; zero is NULL, read back in UTC); unique violations
// (store.ErrConflict); which read failures are retried; the migrations;
// and the write path: SQLite's single writer goroutine, or PostgreSQL
// transactions (or single statements) on the pool.
//
// # Single-use values
//
// Codes, refresh tokens and pending authorization requests are consumed by
// one conditional UPDATE or DELETE whose affected-row count decides the
// winner, together with the inserts of what the consumption creates: on
// SQLite in one transaction of the writer; on PostgreSQL in one statement,
// the UPDATE in a WITH clause (SQLite allows no writes there). On
// PostgreSQL concurrent callers queue on the row lock; when the winner
// commits, the others' WHERE clause is re-checked against the new row and
// no longer matches, so exactly one succeeds, also across replicas.
//
// # SQLite: durability and group commit
//
// The database runs in WAL mode and the writer commits with
// synchronous=FULL, so COMMIT returns only once the log is synced: a
// method that returns nil has made its write durable, also across a power
// loss. While a COMMIT waits for its sync, new writes queue and the next
// transaction takes all of them (up to maxBatch). A batch runs without
// savepoints first; when a write fails it is rolled back and run again with
// each write in a savepoint, so a write's function may run twice and only
// sets its own results. Transactions begin with BEGIN IMMEDIATE and wait on
// busy_timeout, so several processes may share a file (on a local file
// system). Reads use a pool of read-only connections, which never wait for
// the writer. New files are created with mode 0600.
//
// # SQLite: when the disk fails
//
// An I/O error, full disk or corrupt file, a failed COMMIT, or a failure
// of the transaction's own statements stops writes until restart: the
// batch's callers, every later write and Ping get an error wrapping
// [ErrWritesStopped]. It is final because after a failed sync the kernel
// may drop the pages it could not write and report the next sync as a
// success, so nothing written afterwards could be shown durable.
//
//   - A batch reported as failed is never seen by a reader, in any process:
//     SQLite publishes a commit in the -shm index only after its sync, and
//     a failed COMMIT rolls back to the last commit the index holds.
//   - Every write acknowledged before the failure was synced, so it stays.
//   - The failed batch's frames stay in the log past that commit, and
//     recovery after a crash would take them back. So the writer runs a
//     TRUNCATE checkpoint right after the failure, and a clean Close
//     deletes the log. If the process dies before either succeeds, the
//     batch may reappear, as with any database whose fsync failed.
//
// SQLite's automatic checkpoint, which would sync the database file while
// every write waits, is off; a checkpointer goroutine copies the log on a
// connection of its own (BenchmarkRedeemCode: 147 against 169 µs/op).
//
// # PostgreSQL: connections, retries, failures
//
// Pool settings come from [Options], else the connection string's pool_*
// parameters, else the Default* constants. Every connection runs with
// statement_timeout and idle_in_transaction_session_timeout, so a stuck
// query or a replica frozen in a transaction cannot hold locks forever.
// Behind a pooler in transaction mode (PgBouncer), add
// default_query_exec_mode=exec to the connection string. A commit is
// durable when it returns (synchronous_commit).
//
// Reads are retried a few times on failures a second attempt may not meet
// (SQLSTATE class 40, 57P01-57P03, 0A000 after a migration, a broken
// connection). Writes are never retried: if a connection breaks after a
// write was sent, nobody knows whether it committed, and retrying a
// single-use write would turn success into store.ErrAlreadyUsed.
//
// # Schema
//
// Numbered migrations are embedded per dialect (migrations/DIALECT/
// NNNN_name.sql) and applied by [DB.Migrate] in one write transaction,
// recorded in schema_version (SQLite) or schema_migrations (PostgreSQL).
// On PostgreSQL the transaction holds an advisory lock per schema, so
// replicas starting at once apply each migration once. A newer schema is
// refused ([ErrSchemaTooNew]); with [Options.NoMigrate] an older one too
// ([ErrSchemaTooOld]). PostgreSQL tables live in the first schema of
// search_path, and ordered text columns use COLLATE "C" (byte order
// whatever the locale).
package sql
