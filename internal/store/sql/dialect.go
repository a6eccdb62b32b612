package sql

import (
	stdsql "database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mcpauth/mcpauth/internal/store"
)

// dialect is what differs between SQLite and PostgreSQL (see the package
// documentation).
type dialect struct {
	name     string // SQLite or Postgres
	numbered bool   // placeholders are $1, $2, ... (PostgreSQL)
	micros   bool   // times are integer microseconds since the epoch (SQLite)
	prepare  bool   // reads are prepared once per connection (SQLite; pgx caches its own)
	// isConflict reports a unique violation; transient, a failed read worth
	// another try (nil: none); missingTable (optional), a missing table.
	isConflict, transient, missingTable func(error) bool
	// consumeInOne, if set, writes a consumption as one statement; else
	// it is a transaction (SQLite allows no writes in WITH).
	consumeInOne    func(consumption) (string, []any)
	schema          schema
	numberedQueries sync.Map // query with ? -> with $n (numbered)
}

// schema is a dialect's migrations and the table that records them.
type schema struct {
	migrations fs.FS           // the embedded NNNN_name.sql files
	table      string          // records the versions applied
	create     string          // creates table
	record     string          // inserts version, file name, time (SQLite keeps no name)
	lock       func(*tx) error // if set, runs first in the migration transaction
}

// sub is the directory dir of the embedded fsys.
func sub(fsys embed.FS, dir string) fs.FS {
	s, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // only a bad constant gets here; every test would fail
	}
	return s
}

// query is q with the dialect's placeholders: on PostgreSQL, each ?
// numbered $1, $2, ... (once per query; the result is cached).
func (d *dialect) query(q string) string {
	if !d.numbered || !strings.Contains(q, "?") {
		return q
	}
	if n, ok := d.numberedQueries.Load(q); ok {
		return n.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
		} else {
			b.WriteRune(r)
		}
	}
	d.numberedQueries.Store(q, b.String())
	return b.String()
}

// args converts arguments to what the database stores: a zero time.Time
// is NULL, a time is UTC microseconds on SQLite, and a nil []byte is an
// empty one (the columns are NOT NULL; drivers send nil as NULL).
func (d *dialect) args(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case time.Time:
			if !a.IsZero() {
				out[i] = a
				if d.micros {
					out[i] = a.UnixMicro()
				}
			}
		case []byte:
			if a == nil {
				a = []byte{}
			}
			out[i] = a
		default:
			out[i] = a
		}
	}
	return out
}

// wrap maps sql.ErrNoRows to store.ErrNotFound and a unique violation to
// store.ErrConflict, and leaves other errors alone.
func (d *dialect) wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, stdsql.ErrNoRows):
		return store.ErrNotFound
	case d.isConflict(err):
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

//go:embed migrations/sqlite/*.sql
var sqliteMigrations embed.FS

// sqliteDialect is SQLite's; its writes go through the single writer (DB.w).
func sqliteDialect() *dialect {
	return &dialect{name: SQLite, micros: true, prepare: true, isConflict: sqliteConflict, schema: schema{
		migrations: sub(sqliteMigrations, "migrations/sqlite"),
		table:      "schema_version",
		create:     "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",
		record:     "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?3)", // ?2, the name, is not kept
	}}
}

// sqliteConflict reports a primary-key or unique-constraint violation.
func sqliteConflict(err error) bool {
	var e *msqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return true
		}
	}
	return false
}

//go:embed migrations/postgres/*.sql
var postgresMigrations embed.FS

// postgresDialect is PostgreSQL's.
func postgresDialect() *dialect {
	return &dialect{name: Postgres, numbered: true, transient: transient, consumeInOne: consumeInOne,
		isConflict:   func(err error) bool { return sqlState(err) == "23505" }, // unique_violation
		missingTable: func(err error) bool { return sqlState(err) == "42P01" }, // undefined_table
		schema: schema{
			migrations: sub(postgresMigrations, "migrations/postgres"),
			table:      "schema_migrations",
			create: `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer NOT NULL PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`,
			record: "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			lock:   lockSchema,
		}}
}
