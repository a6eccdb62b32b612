package sql

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

const (
	kickEvery      = 32          // committed batches after which the writer wakes the checkpointer
	checkpointIdle = time.Second // how often the checkpointer runs unwoken
	// restartFrames is the log length (4 KiB pages, 32 MiB) from which the
	// writer is asked to let the log start over, which bounds its size.
	restartFrames = 8192
)

// checkpointer copies committed pages from the write-ahead log into the
// database file (PRAGMA wal_checkpoint(PASSIVE)) on a connection of its
// own, so that commits do not wait for it. A passive checkpoint leaves the
// frames written while it ran, so under load the log would only grow; at
// restartFrames the writer copies the rest between two batches, and its
// next transaction starts the log over.
type checkpointer struct {
	db     *sql.DB
	conn   *sql.Conn
	kick   chan struct{} // writer -> checkpointer: many frames were written
	finish chan struct{} // checkpointer -> writer: copy the rest now
	quit   chan struct{}
	done   chan struct{}
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
