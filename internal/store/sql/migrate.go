package sql

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// Schema version errors, for errors.Is.
var (
	// ErrSchemaTooNew is returned by Open and Migrate for a newer schema.
	ErrSchemaTooNew = errors.New("database schema is newer than this mcpauth")
	// ErrSchemaTooOld is returned by OpenPostgres with Options.NoMigrate
	// for a schema that lacks migrations this mcpauth needs.
	ErrSchemaTooOld = errors.New("database schema is older than this mcpauth")
)

// Migrate applies the embedded migrations the database lacks in one
// transaction (see the package documentation); it is idempotent, bounded
// by ctx rather than the statement timeout, and fails with
// [ErrSchemaTooNew] for a version this code does not know.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := readMigrations(db.d.schema.migrations)
	if err == nil {
		err = db.write(ctx, func(t *tx) error { return apply(t, ms) })
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// apply applies the migrations of ms that the database lacks.
func apply(t *tx, ms []migration) error {
	v := t.d.schema
	if v.lock != nil {
		if err := v.lock(t); err != nil {
			return err
		}
	}
	if err := t.c.script(v.create); err != nil {
		return fmt.Errorf("create %s: %w", v.table, err)
	}
	var current int
	if err := t.get("SELECT coalesce(max(version), 0) FROM "+v.table, nil, &current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if err := tooNew(current, len(ms)); err != nil {
		return err
	}
	for _, m := range ms[current:] {
		if err := t.c.script(m.SQL); err != nil {
			return fmt.Errorf("apply %s: %w", m.Name, err)
		}
		if _, err := t.exec(v.record, m.Version, m.Name, time.Now()); err != nil {
			return fmt.Errorf("record %s: %w", m.Name, err)
		}
	}
	return nil
}

// SchemaVersion returns the number of the last migration applied to the
// database, 0 for an empty one.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.get(ctx, "SELECT coalesce(max(version), 0) FROM "+db.d.schema.table, nil, &v)
	switch {
	case err != nil && db.d.missingTable != nil && db.d.missingTable(err):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// checkSchema fails unless the schema is at the version this code knows.
func (db *DB) checkSchema(ctx context.Context) error {
	ms, err := readMigrations(db.d.schema.migrations)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	current, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if err := tooNew(current, len(ms)); err != nil {
		return err
	}
	if current < len(ms) {
		return fmt.Errorf("%w: the database has schema version %d, this mcpauth needs %d; run mcpauth migrate",
			ErrSchemaTooOld, current, len(ms))
	}
	return nil
}

// tooNew returns ErrSchemaTooNew, explained, if current is beyond known.
func tooNew(current, known int) error {
	if current > known {
		return fmt.Errorf("%w: the database has schema version %d, this mcpauth knows up to %d; run a newer mcpauth, or restore a backup taken before the upgrade",
			ErrSchemaTooNew, current, known)
	}
	return nil
}

// migration is one numbered schema migration.
type migration struct {
	Version int
	Name    string // file name, NNNN_name.sql
	SQL     string
}

// readMigrations reads the migrations in the top directory of fsys. Their
// file names are NNNN_name.sql, numbered 1, 2, 3, ... without gaps; any
// other file is an error.
func readMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries { // sorted by name
		name := e.Name()
		digits, label, _ := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(digits)
		if e.IsDir() || path.Ext(name) != ".sql" || len(digits) != 4 || strings.Trim(digits, "0123456789") != "" ||
			err != nil || label == "" {
			return nil, fmt.Errorf("migration %q: name must be NNNN_name.sql", name)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %q: want version %d", name, len(ms)+1)
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{Version: v, Name: name, SQL: string(text)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations")
	}
	return ms, nil
}
