package sql

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// walSyncer makes committed batches durable. The writer commits with
// synchronous=NORMAL, which writes a transaction's pages to the
// write-ahead log without waiting for them to reach stable storage, and
// hands the batch to the syncer, which syncs the log file and only then
// tells the batch's callers their outcome. Meanwhile the writer runs the
// next batch's statements; it commits that batch only once the sync has
// ended, so the disk sees one commit's writes, then their flush, then the
// next commit's. The writer's CPU work and the disk's flush overlap
// instead of taking turns.
type walSyncer struct {
	path  string
	f     *os.File   // the log, opened on first sync
	fid   fileID     // f's identity
	stale []*os.File // replaced log files, closed by stop

	mu     sync.Mutex
	failed error // sticky: after a failed sync nothing more is called durable

	todo   chan []*writeOp // writer -> syncer: a committed batch
	synced chan struct{}   // syncer -> writer: that batch is reported
	done   chan struct{}
}

func newWALSyncer(dbPath string) *walSyncer {
	return &walSyncer{
		path:   dbPath + "-wal",
		todo:   make(chan []*writeOp),
		synced: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// hand gives the syncer a committed batch. The writer hands at most one
// batch at a time and waits for synced before it commits the next.
func (s *walSyncer) hand(batch []*writeOp) { s.todo <- batch }

// run is the syncer goroutine. It ends when stop closes todo.
func (s *walSyncer) run() {
	defer close(s.done)
	for batch := range s.todo {
		report(batch, s.sync())
		s.synced <- struct{}{}
	}
}

// sync flushes the write-ahead log to stable storage. A failure is final:
// the kernel may have dropped the pages it could not write, so a later
// sync that succeeds would not prove them durable.
func (s *walSyncer) sync() error {
	if err := s.err(); err != nil {
		return err
	}
	if err := s.syncLog(); err != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.failed = fmt.Errorf("sync write-ahead log %s: %w (writes are refused until mcpauth restarts)", s.path, err)
		return s.failed
	}
	return nil
}

// err is the failure that stopped durable writes, or nil.
func (s *walSyncer) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *walSyncer) syncLog() error {
	// SQLite keeps the log file while a connection is open; checking that
	// it is still the file we hold keeps the sync honest even if it were
	// replaced behind our back. The check asks for the inode number alone
	// (see fileID): asking for timestamps would make every sync write the
	// log's inode too.
	cur, err := pathID(s.path)
	if err != nil {
		return err
	}
	if s.f != nil && !s.fid.same(cur) {
		// Not closed here: on POSIX, closing any descriptor of a file
		// drops the process's locks on it. stop closes it.
		s.stale = append(s.stale, s.f)
		s.f = nil
	}
	if s.f == nil {
		f, err := os.Open(s.path)
		if err != nil {
			return err
		}
		id, err := openID(f)
		if err != nil {
			s.stale = append(s.stale, f) // not closed here, as above
			return err
		}
		s.f, s.fid = f, id
	}
	return datasync(s.f)
}

// stop ends the goroutine and closes the log files it opened. The writer
// must have stopped handing batches.
func (s *walSyncer) stop() error {
	close(s.todo)
	<-s.done
	var errs []error
	for _, f := range append(s.stale, s.f) {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	s.f, s.stale = nil, nil
	return errors.Join(errs...)
}
