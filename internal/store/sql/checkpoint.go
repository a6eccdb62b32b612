package sql

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

const (
	// kickEvery is how many committed batches make the writer wake the
	// checkpointer.
	kickEvery = 32
	// checkpointIdle is how often the checkpointer runs without being woken.
	checkpointIdle = time.Second
	// restartFrames is the log length (4 KiB pages) from which the
	// checkpointer asks the writer to let the log start over; the log
	// file stays about this size (32 MiB) however long the load lasts.
	restartFrames = 8192
)

// checkpointer copies committed pages from the write-ahead log into the
// database file (PRAGMA wal_checkpoint(PASSIVE)) on a connection of its
// own, so that commits do not pay for it: SQLite's automatic checkpoint is
// off on the writer (wal_autocheckpoint=0). A passive checkpoint leaves the
// frames written while it ran, so under continuous load the log would only
// grow; once it is restartFrames long the checkpointer asks the writer to
// copy the rest between two batches, after which the writer's next
// transaction starts the log over from its beginning.
type checkpointer struct {
	db   *sql.DB
	conn *sql.Conn

	kick   chan struct{} // writer -> checkpointer: many frames were written
	finish chan struct{} // checkpointer -> writer: copy the rest now
	quit   chan struct{}
	done   chan struct{}
}

func newCheckpointer(db *sql.DB, conn *sql.Conn) *checkpointer {
	return &checkpointer{
		db:     db,
		conn:   conn,
		kick:   make(chan struct{}, 1),
		finish: make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// run is the checkpointer goroutine.
func (c *checkpointer) run() {
	defer close(c.done)
	tick := time.NewTicker(checkpointIdle)
	defer tick.Stop()
	for {
		select {
		case <-c.kick:
		case <-tick.C:
		case <-c.quit:
			return
		}
		// A failed checkpoint (another process's checkpoint holding the
		// lock, say) leaves the frames for the next one.
		if frames, err := walCheckpoint(c.conn); err == nil && frames >= restartFrames {
			select {
			case c.finish <- struct{}{}:
			default:
			}
		}
	}
}

// wake asks the checkpointer to run soon. It never blocks.
func (c *checkpointer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// stop ends the goroutine and closes the connection.
func (c *checkpointer) stop() error {
	close(c.quit)
	<-c.done
	return errors.Join(c.conn.Close(), c.db.Close())
}

// walCheckpoint runs a passive checkpoint on conn and returns how many
// frames the log holds.
func walCheckpoint(conn *sql.Conn) (frames int, err error) {
	var busy, checkpointed int
	err = conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &checkpointed)
	return frames, err
}
