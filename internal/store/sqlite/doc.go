// Package sqlite is the embedded store.Store backend: one SQLite database
// file, opened with the pure-Go driver modernc.org/sqlite (no cgo).
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
