package sql

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestReadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []int  // versions, or nil for an error
		wantErr string // what the error says, if anything in particular
	}{
		{"in order", fstest.MapFS{"0002_b.sql": file("B"), "0001_a.sql": file("A")}, []int{1, 2}, ""},
		{"gap", fstest.MapFS{"0001_a.sql": file("A"), "0003_c.sql": file("C")}, nil, "want version 2"},
		{"not starting at 1", fstest.MapFS{"0002_b.sql": file("B")}, nil, "want version 1"},
		{"duplicate number", fstest.MapFS{"0001_a.sql": file("A"), "0001_b.sql": file("B")}, nil, "want version 2"},
		{"no name", fstest.MapFS{"0001.sql": file("A")}, nil, "NNNN_name.sql"},
		{"empty name", fstest.MapFS{"0001_.sql": file("A")}, nil, "NNNN_name.sql"},
		{"three digits", fstest.MapFS{"001_a.sql": file("A")}, nil, "NNNN_name.sql"},
		{"not SQL", fstest.MapFS{"0001_a.txt": file("A")}, nil, "NNNN_name.sql"},
		{"sign", fstest.MapFS{"+001_a.sql": file("A")}, nil, "NNNN_name.sql"},
		{"empty", fstest.MapFS{}, nil, "no migrations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := readMigrations(tt.fsys)
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readMigrations: err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readMigrations: %v", err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("versions = %v, want %v", got, tt.want)
			}
		})
	}
}
