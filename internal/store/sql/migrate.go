package sql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// Schema version errors, for errors.Is.
var (
	// ErrSchemaTooNew is returned by Open and Migrate for a database whose
	// schema was written by a newer mcpauth than this one.
	ErrSchemaTooNew = errors.New("database schema is newer than this mcpauth")
	// ErrSchemaTooOld is returned by OpenPostgres with Options.NoMigrate
	// for a schema that lacks migrations this mcpauth needs.
	ErrSchemaTooOld = errors.New("database schema is older than this mcpauth")
)

// Migrate applies the embedded migrations the database lacks, all in one
// transaction, and records each in the version table. It is idempotent;
// Open calls it (unless Options.NoMigrate is set). On PostgreSQL it holds
// an advisory lock for the schema meanwhile, so replicas migrating at once
// apply each migration once, and it is bounded by ctx, not by the
// statement timeout. It fails with [ErrSchemaTooNew] if the database has a
// version this code does not know.
func (db *DB) Migrate(ctx context.Context) error { return migrate(ctx, db.d, db.write) }

// migrate applies the dialect's migrations in a transaction run by write.
func migrate(ctx context.Context, d *dialect, write func(context.Context, func(*tx) error) error) error {
	ms, err := store.ReadMigrations(d.schema.migrations)
	if err == nil {
		err = write(ctx, func(t *tx) error { return apply(t, ms) })
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// apply applies the migrations of ms that the database lacks.
func apply(t *tx, ms []store.Migration) error {
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
	ms, err := store.ReadMigrations(db.d.schema.migrations)
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
