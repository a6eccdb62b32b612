package sql

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrBackupUnsupported is returned by [DB.Backup] on PostgreSQL, whose
// backups are pg_dump's job.
var ErrBackupUnsupported = errors.New("backup copies a SQLite database; back up PostgreSQL with pg_dump")

// Backup writes a consistent copy of the SQLite database to a new file at
// path, created with mode 0600, while other connections and processes keep
// reading and writing. It refuses a path that exists. The copy is VACUUM
// INTO on a connection of its own: one read transaction, so in WAL mode it is the
// snapshot of the last commit before it began, and writers do not wait for
// it. The file is synced before Backup returns; on failure it is removed.
func (db *DB) Backup(ctx context.Context, path string) (err error) {
	if db.w == nil {
		return ErrBackupUnsupported
	}
	// An absolute path is never read as a "file:" URI.
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("backup to %q: %w", path, err)
	}
	// VACUUM INTO accepts an empty file: creating it here refuses an
	// existing one and sets the mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("backup to %q: the file exists; choose a new name", path)
		}
		return fmt.Errorf("backup to %q: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("backup to %q: %w", path, cerr)
		}
		if err != nil {
			_ = os.Remove(abs) // the error says why; a partial copy is no backup
		}
	}()
	if err := db.vacuumInto(ctx, abs); err != nil {
		return fmt.Errorf("backup to %q: %w", path, err)
	}
	// VACUUM INTO writes without syncing.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup to %q: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(abs)); err == nil {
		_ = d.Sync() // the directory entry; not every file system supports it
		d.Close()
	}
	return nil
}

// vacuumInto runs VACUUM INTO path on a connection of its own: the read
// pool's are query_only, which refuses it.
func (db *DB) vacuumInto(ctx context.Context, path string) error {
	c, err := stdsql.Open("sqlite", dsn(db.file, backupRole))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetMaxOpenConns(1)
	_, err = c.ExecContext(ctx, "VACUUM INTO ?", path)
	return err
}
