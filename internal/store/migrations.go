package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migration is one numbered schema migration of a SQL backend.
type Migration struct {
	Version int
	Name    string // file name, NNNN_name.sql
	SQL     string
}

// ReadMigrations reads the migrations in the top directory of fsys. Their
// file names are NNNN_name.sql, numbered 1, 2, 3, ... without gaps; any
// other file is an error. Both SQL backends embed theirs and read them here.
func ReadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var ms []Migration
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
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(text)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations")
	}
	return ms, nil
}
