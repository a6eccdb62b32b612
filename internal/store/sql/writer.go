package sql

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
// its own savepoint, and commits them together (group commit); the
// syncer then makes the commit durable while the writer already runs the
// next batch (see the package documentation).
type writer struct {
	db   *sql.DB
	conn *sql.Conn
	ckpt *checkpointer
	log  *walSyncer

	batches int  // committed, for waking the checkpointer
	syncing bool // a committed batch is with the syncer

	stmts map[string]*sql.Stmt // prepared on conn; used only by the writer goroutine

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

func newWriter(db *sql.DB, conn *sql.Conn, log *walSyncer) *writer {
	return &writer{
		db:    db,
		conn:  conn,
		log:   log,
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

// doNow runs fn in a transaction of its own on the calling goroutine and
// syncs it. It is for Open, before the writer goroutine starts.
func (w *writer) doNow(ctx context.Context, fn func(*wtx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, result: make(chan error, 1)}
	batch, committed := w.runBatch(op)
	var err error
	if committed {
		err = w.log.sync()
	}
	report(batch, err)
	return op.err
}

// run is the writer goroutine.
func (w *writer) run() {
	defer close(w.done)
	for {
		select {
		case op := <-w.ops:
			batch, committed := w.runBatch(op)
			if !committed {
				report(batch, nil) // nothing was written: no sync to wait for
				continue
			}
			w.log.hand(batch)
			w.syncing = true
			if w.batches++; w.batches%kickEvery == 0 {
				w.ckpt.wake()
			}
		case <-w.log.synced:
			w.syncing = false
		case <-w.ckpt.finish:
			// Between batches no frame is being written, so this copies
			// the rest of the log and the next write starts it over.
			w.waitSynced()
			_, _ = walCheckpoint(w.conn) // on failure the next round retries
		case <-w.quit:
			w.waitSynced()
			return
		}
	}
}

// waitSynced waits until the syncer has finished the batch it holds.
func (w *writer) waitSynced() {
	if w.syncing {
		<-w.log.synced
		w.syncing = false
	}
}

// runBatch runs first and the writes queued behind it (up to maxBatch) in
// one transaction and commits it, without waiting for the commit to reach
// stable storage. While the syncer still flushes the previous batch, writes
// that arrive keep joining this one: its commit would have to wait for that
// flush anyway, as the log takes one commit's pages at a time. It returns
// the batch, each write's outcome in its err, and whether the transaction
// committed; the caller reports the outcomes once the commit is durable.
//
// Writes first run without savepoints, which would copy every page they
// touch. When one fails, the part of it that ran may have written, so the
// transaction is rolled back and the batch runs again with each write in a
// savepoint of its own, which undoes a failed write alone. A write's
// function may therefore run twice; store methods only set their own
// results in it.
func (w *writer) runBatch(first *writeOp) (batch []*writeOp, committed bool) {
	batch = make([]*writeOp, 0, 8)
	lost := w.begin()
	failed := false
	for op := first; op != nil; {
		batch = append(batch, op)
		if lost != nil {
			break
		}
		if op.err = op.ctx.Err(); op.err == nil {
			if op.err = op.fn(&wtx{w}); op.err != nil {
				failed = true
				break
			}
		}
		op = w.next(len(batch))
	}
	if failed {
		_, _ = w.exec("ROLLBACK") // SQLite may have rolled back already
		lost = w.begin()
		for _, op := range batch {
			if lost != nil {
				break
			}
			lost = w.runOne(op)
		}
	}
	if lost == nil {
		w.waitSynced()
		if _, err := w.exec("COMMIT"); err != nil {
			lost = err
		}
	}
	if lost != nil {
		// Nothing of this batch is durable, and what the writes observed
		// (a code already used, say) was never committed: every caller gets
		// the failure.
		_, _ = w.exec("ROLLBACK") // the transaction may be gone already
		lost = fmt.Errorf("write transaction lost (begin, savepoint or commit failed): %w", lost)
		for _, op := range batch {
			op.err = lost
		}
	}
	return batch, lost == nil
}

func (w *writer) begin() error {
	_, err := w.exec("BEGIN IMMEDIATE")
	return err
}

// runOne runs op in a savepoint of the batch's transaction, setting op.err
// to its outcome. It returns an error only if the transaction as a whole is
// lost.
func (w *writer) runOne(op *writeOp) error {
	if op.err = op.ctx.Err(); op.err != nil {
		return nil
	}
	if _, err := w.exec("SAVEPOINT op"); err != nil {
		return err
	}
	if op.err = op.fn(&wtx{w}); op.err == nil {
		_, err := w.exec("RELEASE op")
		return err
	}
	// Undo this write alone. If SQLite already rolled back the whole
	// transaction (disk full, I/O error), the savepoint is gone.
	if _, err := w.exec("ROLLBACK TO op"); err != nil {
		return err
	}
	_, err := w.exec("RELEASE op")
	return err
}

// next returns a write to add to the batch: one already waiting, or, while
// the previous batch is still being synced, the next to arrive before that
// sync ends. It returns nil when the batch should commit now.
func (w *writer) next(n int) *writeOp {
	if n >= maxBatch {
		return nil
	}
	if w.syncing {
		select {
		case op := <-w.ops:
			return op
		case <-w.log.synced:
			w.syncing = false
		}
	}
	select {
	case op := <-w.ops:
		return op
	default:
		return nil
	}
}

// report tells each write of a batch its outcome: its own error, or else
// err (the batch's sync failure).
func report(batch []*writeOp, err error) {
	for _, op := range batch {
		if op.err == nil {
			op.err = err
		}
		op.result <- op.err
	}
}

// stop ends the writer goroutine after the batch in progress and closes the
// connection.
func (w *writer) stop() error {
	close(w.quit)
	<-w.done
	return errors.Join(w.log.stop(), w.closeConn())
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
