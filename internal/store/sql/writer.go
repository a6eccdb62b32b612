package sql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// maxBatch caps how many writes share one transaction, so commits stay short.
const maxBatch = 128

// errClosed is returned by writes attempted after Close.
var errClosed = errors.New("sqlite: database is closed")

// ErrWritesStopped is wrapped by the error of every write, and of Ping,
// once a write to the database file failed at the disk (an I/O error, a
// full disk, a failed sync or COMMIT); the failed batch was rolled back.
var ErrWritesStopped = errors.New("sqlite: writes refused until restart after a write to the database failed")

// writer owns the database's only writing connection; its goroutine runs
// queued writes in one transaction (group commit, see the package
// documentation). As a txConn it is valid only during a write's function.
type writer struct {
	db      *sql.DB
	conn    *sql.Conn
	ckpt    *checkpointer
	batches int                   // committed, for waking the checkpointer
	stopErr atomic.Pointer[error] // set once by stopWrites: writes are refused from then on
	stmts   map[string]*sql.Stmt  // prepared on conn; used only by the writer goroutine
	ops     chan *writeOp         // unbuffered: a write is either taken by the goroutine or not sent
	quit    chan struct{}
	done    chan struct{}
}

// writeOp is one write waiting for, or running in, a batch.
type writeOp struct {
	ctx    context.Context
	fn     func(*writer) error
	err    error
	result chan error
}

func newWriter(db *sql.DB, conn *sql.Conn) *writer {
	return &writer{
		db:    db,
		conn:  conn,
		stmts: make(map[string]*sql.Stmt),
		ops:   make(chan *writeOp),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// do runs fn in a write transaction and returns nil only once it has
// committed durably; if fn fails, its writes are undone. ctx is honoured
// until the write joins a batch; then do waits for the truth.
func (w *writer) do(ctx context.Context, fn func(*writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.stopped(); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, fn: fn, result: make(chan error, 1)}
	select {
	case w.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return errClosed
	}
	return <-op.result
}

// run is the writer goroutine.
func (w *writer) run() {
	defer close(w.done)
	for {
		select {
		case op := <-w.ops:
			batch, committed := w.runBatch(op)
			for _, op := range batch {
				op.result <- op.err
			}
			if committed {
				if w.batches++; w.batches%kickEvery == 0 {
					w.ckpt.wake()
				}
			}
		case <-w.ckpt.finish:
			// Between batches this copies the rest of the log, so the
			// next write starts it over.
			if w.stopped() == nil {
				_, _ = walCheckpoint(w.conn) // on failure the next round retries
			}
		case <-w.quit:
			return
		}
	}
}

// runBatch runs first and the writes queued behind it (up to maxBatch) in
// one transaction and commits it. It returns the batch, each write's
// outcome in its err, and whether it committed. A failed write makes the
// batch run again with savepoints (which copy every page a write touches);
// a disk failure or a failure of the transaction's own statements stops
// writes (see stopWrites).
func (w *writer) runBatch(first *writeOp) (batch []*writeOp, committed bool) {
	batch = make([]*writeOp, 0, 8)
	if err := w.stopped(); err != nil {
		first.err = err
		return append(batch, first), false
	}
	var lost error // the transaction is gone: nothing of the batch commits
	fatal := false // ... and writes stop
	begin := func() {
		if _, err := w.exec("BEGIN IMMEDIATE"); err != nil {
			// Typically SQLITE_BUSY after busy_timeout; nothing was written.
			lost, fatal = err, diskFailure(err)
		}
	}
	begin()
	retry := false
	for op := first; op != nil; {
		batch = append(batch, op)
		if lost != nil {
			break
		}
		if op.err = op.ctx.Err(); op.err == nil {
			if op.err = op.fn(w); op.err != nil {
				if diskFailure(op.err) {
					lost, fatal = op.err, true
				} else {
					retry = true
				}
				break
			}
		}
		op = w.next(len(batch))
	}
	if retry {
		_, _ = w.exec("ROLLBACK") // SQLite may have rolled back already
		begin()
		for _, op := range batch {
			if lost != nil {
				break
			}
			if err := w.runOne(op); err != nil {
				lost, fatal = err, true
			}
		}
	}
	if lost == nil {
		_, err := w.exec("COMMIT")
		if err == nil {
			return batch, true
		}
		lost, fatal = fmt.Errorf("commit: %w", err), true
	}
	// Nothing of the batch is committed: every caller gets the failure. A
	// failed COMMIT has rolled back already; this is for the other cases.
	_, _ = w.exec("ROLLBACK")
	err := fmt.Errorf("write transaction lost: %w", lost)
	if fatal {
		err = w.stopWrites(lost)
	}
	for _, op := range batch {
		op.err = err
	}
	return batch, false
}

// stopWrites stops writes for good after cause and returns the error every
// write gets from now on. Its TRUNCATE checkpoint, best effort, removes the
// failed batch's frames from the log (see the package documentation).
func (w *writer) stopWrites(cause error) error {
	err := fmt.Errorf("%w: %w", ErrWritesStopped, cause)
	if !w.stopErr.CompareAndSwap(nil, &err) {
		return *w.stopErr.Load()
	}
	_, _ = w.exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// stopped returns the error that stopped writes, or nil.
func (w *writer) stopped() error {
	if err := w.stopErr.Load(); err != nil {
		return *err
	}
	return nil
}

// diskFailure reports whether err is an I/O error (a failed write, read or
// sync), a full disk, or a corrupt or foreign file: what the file holds is
// then no longer known, so the writer stops.
func diskFailure(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}

// runOne runs op in a savepoint, setting op.err to its outcome. It returns
// an error only if the transaction as a whole is lost.
func (w *writer) runOne(op *writeOp) error {
	if op.err = op.ctx.Err(); op.err != nil {
		return nil
	}
	if _, err := w.exec("SAVEPOINT op"); err != nil {
		return err
	}
	if op.err = op.fn(w); op.err == nil {
		_, err := w.exec("RELEASE op")
		return err
	}
	if diskFailure(op.err) {
		return op.err
	}
	// Undo this write alone.
	if _, err := w.exec("ROLLBACK TO op"); err != nil {
		return err
	}
	_, err := w.exec("RELEASE op")
	return err
}

// next returns a write already waiting to join the batch, or nil when the
// batch should commit now.
func (w *writer) next(n int) *writeOp {
	if n >= maxBatch {
		return nil
	}
	select {
	case op := <-w.ops:
		return op
	default:
		return nil
	}
}

// stop ends the goroutine after the batch in progress and closes the connection.
func (w *writer) stop() error {
	close(w.quit)
	<-w.done
	return w.closeConn()
}

// closeConn closes the prepared statements and the connection.
func (w *writer) closeConn() error {
	for q, s := range w.stmts {
		s.Close()
		delete(w.stmts, q)
	}
	return errors.Join(w.conn.Close(), w.db.Close())
}

// stmt returns query prepared on the writer's connection.
func (w *writer) stmt(query string) (*sql.Stmt, error) {
	if s, ok := w.stmts[query]; ok {
		return s, nil
	}
	s, err := w.conn.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = s
	return s, nil
}

// exec runs a statement on the writer's connection, without the caller's
// context: interrupting it would roll back the batch's other writes.
func (w *writer) exec(query string, args ...any) (sql.Result, error) {
	s, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(context.Background(), args...)
}

// script runs several statements (a migration) unprepared.
func (w *writer) script(text string) error {
	_, err := w.conn.ExecContext(context.Background(), text)
	return err
}

// row runs a query that returns at most one row.
func (w *writer) row(query string, args ...any) *sql.Row {
	s, err := w.stmt(query)
	if err != nil {
		// Unprepared, the query reports the same error through the Row.
		return w.conn.QueryRowContext(context.Background(), query, args...)
	}
	return s.QueryRowContext(context.Background(), args...)
}
