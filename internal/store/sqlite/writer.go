package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// maxBatch caps how many writes share one transaction, so that one commit
// stays short even under a flood of writes.
const maxBatch = 128

// errClosed is returned by writes attempted after Close.
var errClosed = errors.New("sqlite: database is closed")

// writer owns the database's only writing connection. Writes are handed to
// its goroutine, which runs them back to back in one transaction, each in
// its own savepoint, and commits them together (group commit): see the
// package documentation.
type writer struct {
	db   *sql.DB
	conn *sql.Conn
	ckpt *checkpointer

	batches int // committed, for waking the checkpointer

	stmts map[string]*sql.Stmt // prepared on conn; used only by the writer goroutine
	batch []*writeOp           // reused between batches

	ops  chan *writeOp // unbuffered: a write is either taken by the goroutine or not sent
	quit chan struct{}
	done chan struct{}
}

// writeOp is one write waiting for, or running in, a batch.
type writeOp struct {
	ctx    context.Context
	fn     func(*wtx) error
	err    error
	result chan error
}

// wtx is the write transaction a write runs in. It is valid only during the
// write's call and must not be used from another goroutine.
type wtx struct{ w *writer }

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

// do runs fn in a write transaction. It returns nil only once the
// transaction holding fn's writes has committed durably. If fn fails, its
// writes are undone and its error is returned; if the commit fails, nothing
// of fn is committed and the commit error is returned. ctx is honoured
// until the write is taken into a batch; from then on do waits for the
// commit, so that its answer is always the truth about durability.
func (w *writer) do(ctx context.Context, fn func(*wtx) error) error {
	if err := ctx.Err(); err != nil {
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

// doNow runs fn in a transaction of its own on the calling goroutine. It is
// for Open, before the writer goroutine starts.
func (w *writer) doNow(ctx context.Context, fn func(*wtx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, result: make(chan error, 1)}
	w.commitBatch(op)
	return <-op.result
}

// run is the writer goroutine.
func (w *writer) run() {
	defer close(w.done)
	for {
		select {
		case op := <-w.ops:
			w.commitBatch(op)
			if w.batches++; w.batches%kickEvery == 0 {
				w.ckpt.wake()
			}
		case <-w.ckpt.finish:
			// Between batches no frame is being written, so this copies
			// the rest of the log and the next write starts it over.
			_, _ = walCheckpoint(w.conn) // on failure the next round retries
		case <-w.quit:
			return
		}
	}
}

// commitBatch runs first and every write queued behind it (up to maxBatch)
// in one transaction, commits, and reports to each caller.
func (w *writer) commitBatch(first *writeOp) {
	if _, err := w.exec("BEGIN IMMEDIATE"); err != nil {
		first.result <- fmt.Errorf("begin write transaction: %w", err)
		return
	}
	batch := w.batch[:0]
	var lost error // set when the transaction as a whole is gone
	for op := first; op != nil; op = w.next(len(batch)) {
		batch = append(batch, op)
		if op.err = op.ctx.Err(); op.err != nil {
			continue
		}
		if _, err := w.exec("SAVEPOINT op"); err != nil {
			lost = err
			break
		}
		op.err = op.fn(&wtx{w})
		if op.err == nil {
			if _, err := w.exec("RELEASE op"); err != nil {
				lost = err
				break
			}
			continue
		}
		// Undo this write alone. If SQLite already rolled back the whole
		// transaction (disk full, I/O error), the savepoint is gone.
		if _, err := w.exec("ROLLBACK TO op"); err != nil {
			lost = err
			break
		}
		if _, err := w.exec("RELEASE op"); err != nil {
			lost = err
			break
		}
	}
	if lost == nil {
		if _, err := w.exec("COMMIT"); err != nil {
			lost = err
		}
	}
	if lost != nil {
		// Nothing of this batch is durable, and what the writes observed
		// (a code already used, say) was never committed: every caller gets
		// the failure.
		_, _ = w.exec("ROLLBACK") // the transaction may be gone already
		lost = fmt.Errorf("commit write transaction: %w", lost)
		for _, op := range batch {
			op.err = lost
		}
	}
	for i, op := range batch {
		op.result <- op.err
		batch[i] = nil
	}
	w.batch = batch[:0]
}

// next returns a write that is already waiting, or nil if none is or the
// batch is full.
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

// stop ends the writer goroutine after the batch in progress and closes the
// connection.
func (w *writer) stop() error {
	close(w.quit)
	<-w.done
	return w.closeConn()
}

// closeConn closes the prepared statements and the connection. It is also
// used by Open before the goroutine starts.
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

// exec runs a statement on the writer's connection. Statements run without
// the caller's context: interrupting a statement inside the shared
// transaction would roll back the other writes of the batch.
func (w *writer) exec(query string, args ...any) (sql.Result, error) {
	s, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(context.Background(), args...)
}

// exec runs a statement in the transaction.
func (t *wtx) exec(query string, args ...any) (sql.Result, error) {
	return t.w.exec(query, args...)
}

// execN runs a statement in the transaction and returns the number of rows
// it changed.
func (t *wtx) execN(query string, args ...any) (int64, error) {
	res, err := t.w.exec(query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// script runs several statements (a migration) unprepared in the
// transaction.
func (t *wtx) script(text string) error {
	_, err := t.w.conn.ExecContext(context.Background(), text)
	return err
}

// row runs a query that returns at most one row in the transaction.
func (t *wtx) row(query string, args ...any) *sql.Row {
	s, err := t.w.stmt(query)
	if err != nil {
		// Unprepared, the query reports the same error through the Row.
		return t.w.conn.QueryRowContext(context.Background(), query, args...)
	}
	return s.QueryRowContext(context.Background(), args...)
}
