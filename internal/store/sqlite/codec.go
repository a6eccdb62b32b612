package sqlite

import (
	"errors"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// ts is t as stored: UTC microseconds since the Unix epoch, or NULL for
// the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeCol scans a column written by ts into a time.Time (UTC).
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("time column holds %T, want INTEGER", v)
	}
	return nil
}

// tcol is a sql.Scanner destination for a time column.
func tcol(t *time.Time) timeCol { return timeCol{t} }

// conflict maps a primary-key or unique-constraint violation to
// store.ErrConflict and leaves other errors alone.
func conflict(err error) error {
	var e *msqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		}
	}
	return err
}
