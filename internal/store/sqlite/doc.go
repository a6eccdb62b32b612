// Package sqlite is the embedded store.Store backend: one SQLite database
// file, opened with the pure-Go driver modernc.org/sqlite (no cgo).
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL, so every commit
// syncs the write-ahead log to stable storage before it returns: a method
// that returns nil has made its write durable, also across a power loss,
// and a response that promises a token can be written right after it.
//
// # Writes: one writer, group commit
//
// Every write goes through a single connection owned by one goroutine. A
// write waiting while a commit is in progress joins the next transaction
// together with the other writes that queued up meanwhile; each runs inside
// its own SAVEPOINT, so a failing write is undone alone, and every caller
// hears back only after the commit that holds its write. One fsync thus
// makes a whole batch durable, which is what lets the token endpoint reach
// thousands of durable writes per second on a disk where one fsync takes a
// millisecond or more. Transactions begin with BEGIN IMMEDIATE and the
// connection waits on busy_timeout, so several processes may share one
// database file (on a local file system; SQLite's WAL does not work over
// network file systems).
//
// SQLite's automatic checkpoint would copy the log into the database file
// inside a commit every thousand pages, stalling every write queued behind
// it. It is off on the writer; a checkpointer goroutine on a connection of
// its own does that copying while the writer goes on, and every few
// thousand pages the writer copies the small rest between two batches so
// that the log starts over instead of growing.
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
// # Schema
//
// Numbered migrations are embedded (migrations/NNNN_name.sql) and applied
// by Open in one transaction each; the versions applied are recorded in
// the schema_version table. Open refuses a database whose schema is newer
// than this code knows ([ErrSchemaTooNew]). Times are stored as UTC
// microseconds since the Unix epoch and come back in UTC; a zero time.Time
// is stored as NULL.
//
// New database files (and SQLite's -wal and -shm files, which take the
// database file's mode) are created with mode 0600.
package sqlite
