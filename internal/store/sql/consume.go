package sql

import (
	"context"
	"fmt"
	"strings"

	"github.com/mcpauth/mcpauth/internal/store"
)

// consumption is a write that consumes a single-use row (a code, a refresh
// token) and creates rows from it, all or nothing: the inserts run only if
// claim changed the row.
type consumption struct {
	what    string // the value consumed, for errors: "the code"
	claim   string // UPDATE ... WHERE <unused, live, of family>, no RETURNING
	args    []any  // claim's
	inserts []row  // in the order their foreign keys need
	// explain selects, for a claim that changed nothing, whether the value
	// was used (or its family revoked), whether it is live, and its family.
	explain     string
	explainArgs []any
	family      string // the family the caller expects the value to have
}

// row is a row to insert: "table (columns)" and one value per column.
type row struct {
	into string
	args []any
}

// insert inserts r.
func (t *tx) insert(r row) error {
	values := strings.TrimSuffix(strings.Repeat("?, ", len(r.args)), ", ")
	_, err := t.exec("INSERT INTO "+r.into+" VALUES ("+values+")", r.args...)
	return err
}

// consume runs c as one statement (dialect.consumeInOne) or else as one
// transaction. A claim that changes nothing writes nothing and is
// explained (see whyNot).
func (db *DB) consume(ctx context.Context, c consumption) error {
	if one := db.d.consumeInOne; one != nil {
		query, args := one(c)
		n, err := db.exec(ctx, query, args...)
		if err != nil || n > 0 {
			return err
		}
		// A statement of its own, which sees the consumption that won
		// (PostgreSQL reads what committed before the statement began).
		return c.whyNot(func(dest ...any) error { return db.get(ctx, c.explain, c.explainArgs, dest...) })
	}
	return db.write(ctx, func(t *tx) error {
		n, err := t.exec(c.claim, c.args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return c.whyNot(func(dest ...any) error { return t.get(c.explain, c.explainArgs, dest...) })
		}
		for _, r := range c.inserts {
			if err := t.insert(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// whyNot explains why c's claim changed nothing, running c.explain with
// get: used is store.ErrAlreadyUsed (a replay, even past expiry); absent
// or expired is store.ErrNotFound; a family other than c.family is the
// caller's mistake.
func (c consumption) whyNot(get func(dest ...any) error) error {
	var used, live bool
	var family string
	switch err := get(&used, &live, &family); {
	case err != nil:
		return err
	case used:
		return store.ErrAlreadyUsed
	case !live:
		return fmt.Errorf("expired: %w", store.ErrNotFound)
	case family != c.family:
		return fmt.Errorf("family %q is not the family %q of %s", c.family, family, c.what)
	default:
		// Only a change between two statements gets here, such as a
		// concurrent consumption that rolled back.
		return fmt.Errorf("%s changed while it was consumed; try again", c.what)
	}
}
