package sqlite

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// ErrSchemaTooNew is returned by Open and Migrate for a database whose
// schema was written by a newer version of mcpauth than this one.
var ErrSchemaTooNew = errors.New("database schema is newer than this mcpauth")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order.
func migrations() ([]migration, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return parseMigrations(sub)
}

// parseMigrations reads the migrations in the top directory of fsys. Their
// file names are NNNN_name.sql, numbered 1, 2, 3, ... without gaps.
func parseMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries { // sorted by name
		name := e.Name()
		num, rest, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 || strings.Trim(num, "0123456789") != "" ||
			rest == ".sql" || path.Ext(name) != ".sql" || e.IsDir() {
			return nil, fmt.Errorf("migration %q: name must be NNNN_name.sql", name)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %q: want version %d", name, len(ms)+1)
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(text)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations")
	}
	return ms, nil
}

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
		if err := t.script(m.sql); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
		if _, err := t.exec("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
			m.version, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.name, err)
		}
	}
	return nil
}
