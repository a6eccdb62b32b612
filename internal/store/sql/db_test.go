package sql

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDialectQuery(t *testing.T) {
	const q = "UPDATE codes SET used_at = ? WHERE hash = ? AND expires_at > ?"
	tests := []struct {
		d    *dialect
		q    string
		want string
	}{
		{sqliteDialect(), q, q},
		{postgresDialect(), q, "UPDATE codes SET used_at = $1 WHERE hash = $2 AND expires_at > $3"},
		{postgresDialect(), "SELECT 1", "SELECT 1"},
	}
	for _, tt := range tests {
		if got := tt.d.query(tt.q); got != tt.want {
			t.Errorf("%s: query(%q) = %q, want %q", tt.d.name, tt.q, got, tt.want)
		}
	}
}

func TestDialectArgs(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	in := []any{"s", 7, at, time.Time{}, []byte(nil), []byte("b")}
	tests := []struct {
		d    *dialect
		want []any
	}{
		{sqliteDialect(), []any{"s", 7, at.UnixMicro(), nil, []byte{}, []byte("b")}},
		{postgresDialect(), []any{"s", 7, at, nil, []byte{}, []byte("b")}},
	}
	for _, tt := range tests {
		got := tt.d.args(in)
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s: args (-want +got):\n%s", tt.d.name, d)
		}
		if b := got[4].([]byte); b == nil {
			t.Errorf("%s: a nil []byte is sent as NULL", tt.d.name)
		}
	}
	if in[2] != any(at) || in[4].([]byte) != nil {
		t.Errorf("args changed the caller's slice: %v", in)
	}
}

func TestTimeColumn(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	tests := []struct {
		name    string
		v       any
		want    time.Time
		wantErr bool
	}{
		{"NULL", nil, time.Time{}, false},
		{"SQLite microseconds", at.UnixMicro(), at, false},
		{"PostgreSQL timestamptz in another zone", at.In(time.FixedZone("x", 3600)), at, false},
		{"text", "2026-03-01", time.Time{}, true},
	}
	for _, tt := range tests {
		got := time.Unix(1, 0)
		err := tcol(&got).Scan(tt.v)
		if (err != nil) != tt.wantErr || (!tt.wantErr && (!got.Equal(tt.want) || got.Location() != time.UTC)) {
			t.Errorf("%s: Scan = %v, %v; want %v (UTC), error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestEmbeddedMigrations: each dialect's migrations are numbered from 1,
// and both dialects have the same schema versions.
func TestEmbeddedMigrations(t *testing.T) {
	var counts []int
	for _, d := range []*dialect{sqliteDialect(), postgresDialect()} {
		ms, err := readMigrations(d.schema.migrations)
		if err != nil {
			t.Fatalf("%s migrations: %v", d.name, err)
		}
		for i, m := range ms {
			if m.Version != i+1 || m.SQL == "" {
				t.Errorf("%s migration %d is %s, version %d", d.name, i, m.Name, m.Version)
			}
		}
		counts = append(counts, len(ms))
	}
	if counts[0] != counts[1] {
		t.Errorf("SQLite has %d migrations, PostgreSQL %d; want the same schema versions", counts[0], counts[1])
	}
}
