package sqlite

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// ErrSchemaTooNew is returned by Open and Migrate for a database whose
// schema was written by a newer version of mcpauth than this one.
var ErrSchemaTooNew = errors.New("database schema is newer than this mcpauth")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
// migration is a numbered schema migration (store.ReadMigrations reads them).
type migration = store.Migration

// migrations returns the embedded migrations in order.
func migrations() ([]migration, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return parseMigrations(sub)
}

// parseMigrations reads the migration files of fsys (store.ReadMigrations).
func parseMigrations(fsys fs.FS) ([]migration, error) { return store.ReadMigrations(fsys) }

// Migrate applies the embedded migrations the database lacks, all in one
// transaction, and records each in schema_version. It is idempotent; Open
// calls it. It fails with [ErrSchemaTooNew] if the database has a version
// this code does not know.
func (db *DB) Migrate(ctx context.Context) error {
	return db.w.do(ctx, migrate)
}

// migrate is Migrate inside a write transaction.
func (w *writer) migrate(ctx context.Context) error {
	return w.doNow(ctx, migrate)
}

func migrate(t *wtx) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return apply(t, ms)
}

// apply applies the migrations of ms that the database lacks.
func apply(t *wtx, ms []migration) error {
	if err := t.script(`CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := t.row("SELECT coalesce(max(version), 0) FROM schema_version").Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("%w: the database has schema version %d, this mcpauth knows up to %d; run a newer mcpauth, or restore a backup taken before the upgrade",
			ErrSchemaTooNew, current, len(ms))
	}
	for _, m := range ms[current:] {
		if err := t.script(m.SQL); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := t.exec("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
			m.Version, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
	}
	return nil
}
