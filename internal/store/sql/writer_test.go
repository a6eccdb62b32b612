package sql

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// testWriter is a second writer on db's file whose batches the test runs
// itself: writes queued in its (buffered) ops join the batch runBatch
// starts, deterministically.
func testWriter(t *testing.T, path string) *writer {
	t.Helper()
	wdb, err := sql.Open("sqlite", dsn(path, writerRole))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := wdb.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	log := newWALSyncer(path)
	go log.run()
	w := newWriter(wdb, conn, log)
	w.ops = make(chan *writeOp, 8)
	t.Cleanup(func() {
		if err := errors.Join(log.stop(), w.closeConn()); err != nil {
			t.Errorf("close test writer: %v", err)
		}
	})
	return w
}

// TestFailedWriteIsUndoneAlone: writes run without savepoints first; when
// one fails after writing, the batch runs again with savepoints, so its
// writes are undone and the others' kept.
func TestFailedWriteIsUndoneAlone(t *testing.T) {
	db, path := openTemp(t)
	w := testWriter(t, path)
	ctx := t.Context()
	runs := map[string]int{}
	put := func(pattern string, fail error) *writeOp {
		return &writeOp{ctx: ctx, result: make(chan error, 1), fn: func(tx *wtx) error {
			runs[pattern]++
			if _, err := tx.exec("INSERT INTO blocks (pattern, reason, created_at) VALUES (?, '', 0)", pattern); err != nil {
				return err
			}
			return fail
		}}
	}
	boom := errors.New("boom")
	a, c, b := put("a.example", nil), put("c.example", nil), put("b.example", boom)
	w.ops <- c
	w.ops <- b
	batch, committed := w.runBatch(a)
	if !committed || len(batch) != 3 {
		t.Fatalf("runBatch: committed %v with %d writes, want a committed batch of 3", committed, len(batch))
	}
	if err := w.log.sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	report(batch, nil)
	for op, want := range map[*writeOp]error{a: nil, b: boom, c: nil} {
		if got := <-op.result; !errors.Is(got, want) {
			t.Errorf("outcome %v, want %v", got, want)
		}
	}
	blocks, err := db.ListBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, bl := range blocks {
		got = append(got, bl.Pattern)
	}
	if want := []string{"a.example", "c.example"}; !slices.Equal(got, want) {
		t.Errorf("blocks after the batch = %v, want %v (the failed write undone alone)", got, want)
	}
	if runs["a.example"] != 2 || runs["b.example"] != 2 || runs["c.example"] != 2 {
		t.Errorf("runs = %v, want each write run twice (once fast, once in a savepoint)", runs)
	}
}

// TestBatchWithoutFailureRunsOnce: the fast path runs each write once.
func TestBatchWithoutFailureRunsOnce(t *testing.T) {
	_, path := openTemp(t)
	w := testWriter(t, path)
	runs := 0
	op := func() *writeOp {
		return &writeOp{ctx: t.Context(), result: make(chan error, 1), fn: func(tx *wtx) error {
			runs++
			_, err := tx.exec("INSERT INTO blocks (pattern, reason, created_at) VALUES (?, '', 0)", strings.Repeat("x", runs)+".example")
			return err
		}}
	}
	w.ops <- op()
	batch, committed := w.runBatch(op())
	if !committed || len(batch) != 2 || runs != 2 {
		t.Errorf("runBatch: committed %v, %d writes, %d runs; want true, 2, 2", committed, len(batch), runs)
	}
}

// TestSyncFailureIsFinal: when the log cannot be synced, the writes of
// that batch and every later one fail, and Ping says so (readiness).
func TestSyncFailureIsFinal(t *testing.T) {
	db, path := openTemp(t)
	ctx := t.Context()
	put := func(p string) error {
		return db.PutBlock(ctx, store.Block{Pattern: p, CreatedAt: time.Now()})
	}
	if err := put("before.example"); err != nil {
		t.Fatalf("PutBlock: %v", err)
	}
	// The log file disappears from under the process (as on a failing
	// disk): the syncer cannot prove anything durable any more.
	if err := os.Rename(path+"-wal", filepath.Join(filepath.Dir(path), "moved-wal")); err != nil {
		t.Fatal(err)
	}
	err := put("during.example")
	if err == nil || !strings.Contains(err.Error(), "sync write-ahead log") {
		t.Fatalf("PutBlock with the log gone = %v, want a sync error", err)
	}
	if err := os.Rename(filepath.Join(filepath.Dir(path), "moved-wal"), path+"-wal"); err != nil {
		t.Fatal(err)
	}
	if err := put("after.example"); err == nil || !strings.Contains(err.Error(), "refused until mcpauth restarts") {
		t.Errorf("PutBlock after a failed sync = %v, want the sticky failure", err)
	}
	if err := db.Ping(context.Background()); err == nil {
		t.Errorf("Ping after a failed sync = nil, want the failure")
	}
}

// TestSyncerFollowsReplacedLog: the syncer flushes the file now at the
// log's path. A log replaced behind its back (a new inode at the path) is
// opened and synced instead of the one it held, which is kept open until
// stop so that no lock on the file is dropped.
func TestSyncerFollowsReplacedLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	if err := os.WriteFile(path+"-wal", []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newWALSyncer(path)
	go s.run()
	if err := s.sync(); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	first := s.f
	if err := s.sync(); err != nil || s.f != first {
		t.Fatalf("sync of an unchanged log = %v, file changed %v; want the same file kept", err, s.f != first)
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "new"), path+"-wal"); err != nil {
		t.Fatal(err)
	}
	if err := s.sync(); err != nil {
		t.Fatalf("sync after the log was replaced: %v", err)
	}
	if s.f == first || !slices.Contains(s.stale, first) {
		t.Fatalf("after replacement the syncer holds the old file (%v) or lost it (stale %d)", s.f == first, len(s.stale))
	}
	held, err := s.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(held, cur) {
		t.Errorf("the syncer holds %v, not the file at the log's path", held.Name())
	}
	if err := s.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if _, err := first.Stat(); err == nil {
		t.Errorf("the replaced log's descriptor is still open after stop")
	}
}
