package sql

import (
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
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
	w := newWriter(wdb, conn)
	w.ops = make(chan *writeOp, 8)
	t.Cleanup(func() {
		if err := w.closeConn(); err != nil {
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
		return &writeOp{ctx: ctx, result: make(chan error, 1), fn: func(tx *writer) error {
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
	for op, want := range map[*writeOp]error{a: nil, b: boom, c: nil} {
		if got := op.err; !errors.Is(got, want) {
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
		return &writeOp{ctx: t.Context(), result: make(chan error, 1), fn: func(tx *writer) error {
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
