package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mcpauth/mcpauth/internal/store"
)

// Schema version errors, for errors.Is.
var (
	// ErrSchemaTooNew is returned by Open and Migrate for a schema written
	// by a newer mcpauth than this one.
	ErrSchemaTooNew = errors.New("database schema is newer than this mcpauth")
	// ErrSchemaTooOld is returned by Open with Options.NoMigrate for a
	// schema that lacks migrations this mcpauth needs.
	ErrSchemaTooOld = errors.New("database schema is older than this mcpauth")
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockClass is the first key of the advisory lock that Migrate
// holds ("mcpa"); the second is a hash of the schema migrated, so that
// installations in different schemas of one database do not wait for
// each other.
const migrationLockClass = 0x6d637061

// migration is one numbered schema change.
// migration is a numbered schema migration (store.ReadMigrations reads them).
type migration = store.Migration

// migrations returns the embedded migrations in order.
func migrations() ([]migration, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return readMigrations(sub)
}

// readMigrations reads the migration files of fsys (store.ReadMigrations).
func readMigrations(fsys fs.FS) ([]migration, error) { return store.ReadMigrations(fsys) }

// Migrate applies the embedded migrations the schema lacks, in one
// transaction, and records each in schema_migrations. It holds an
// advisory lock for the schema meanwhile, so replicas migrating at once
// apply each migration once; a replica that waited finds the work done.
// It is idempotent; Open calls it unless Options.NoMigrate is set.
// Migrations are bounded by ctx, not by the statement timeout. It fails
// with [ErrSchemaTooNew] if the schema has a version this code does not
// know.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := db.migrate(ctx, ms); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// migrate applies the migrations of ms that the schema lacks.
func (db *DB) migrate(ctx context.Context, ms []migration) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// The lock waits for another replica's migration, which may take
		// longer than a statement may.
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return err
		}
		var schema *string
		var searchPath string
		if err := tx.QueryRow(ctx, "SELECT current_schema(), current_setting('search_path')").Scan(&schema, &searchPath); err != nil {
			return err
		}
		if schema == nil {
			return fmt.Errorf("search_path %q names no schema that exists; create the schema first", searchPath)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", migrationLockClass, *schema); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer NOT NULL PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		current, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if err := tooNew(current, len(ms)); err != nil {
			return err
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
				return fmt.Errorf("record %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the number of the last migration applied to the
// schema, 0 for an empty one.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := retry(ctx, func() error {
		var err error
		v, err = schemaVersion(ctx, db.pool)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// querier is a pool, connection or transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schemaVersion reads the schema's version; a schema without
// schema_migrations has version 0.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// checkSchema fails unless the schema is at the version this code knows.
func (db *DB) checkSchema(ctx context.Context) error {
	ms, err := migrations()
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
