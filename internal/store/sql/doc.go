// Package sqlite is the embedded store.Store backend: one SQLite database
// file, opened with the pure-Go driver modernc.org/sqlite (no cgo).
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
package sql
