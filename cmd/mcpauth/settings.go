package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// A setting is one row of a command's configuration table: the names it has
// on the command line, in the environment and in the YAML file, how its
// text is read and checked, its help text and its default. A table gives
// every row its value the same way (flag, else environment variable, else
// file, else default) and reports a bad value from any of them in one form,
// naming where it came from and what to write:
//
//	--store-max-conns "0": write a number of connections from 1 to 1000
//	MCPAUTH_STORE_MAX_CONNS "0": write a number of connections from 1 to 1000
//	config mcpauth.yaml: line 3: store_max_conns "0": write a number of connections from 1 to 1000
type setting struct {
	flag string // command-line name without dashes; "" when there is no flag
	env  string // environment variable; "" when there is none
	key  string // YAML key, dotted inside a section (lifetimes.code); "" when the file does not hold it
	def  string // default, as written on the command line; "" for none
	// help is the flag's help text; the environment variable and the YAML
	// key are added from the row, the default by the flag package. A `word` in backquotes names
	// the flag's value in the usage (flag.PrintDefaults).
	help    string
	boolean bool // a flag given without a value means true
	// list makes the setting a list: the flag is repeatable, the environment
	// variable holds items separated by any of these characters, and the
	// YAML value is a sequence. "" for a single value.
	list string
	// set reads one value (one item of a list) into the configuration; its
	// error says what to write instead.
	set func(string) error
}

// table is a command's settings bound to its flag set.
type table struct {
	fs *flag.FlagSet
	// config names the YAML file (--config); it has no YAML key and is
	// read before the others. Zero when the command has no file.
	config setting
	rows   []setting
}

// newTable registers a flag for config, when it has one, and every row
// that has one.
func newTable(flags *flag.FlagSet, config setting, rows ...setting) *table {
	for _, r := range append([]setting{config}, rows...) {
		switch {
		case r.flag == "":
		case r.boolean:
			flags.Var(new(boolText), r.flag, r.usage())
		case r.list != "":
			flags.Var(new(stringList), r.flag, r.usage())
		default:
			flags.String(r.flag, r.def, r.usage())
		}
	}
	return &table{fs: flags, config: config, rows: rows}
}

// commandFlags is a command's flag set and configuration table, bound to
// the configuration C that the table fills.
type commandFlags[C any] struct {
	fs    *flag.FlagSet
	table *table
	cfg   C
}

// newCommandFlags registers a command's flags: --config, whose
// environment variable is configEnv, and the rows settings binds to C.
func newCommandFlags[C any](name, usage, configEnv string, stderr io.Writer, settings func(*C) []setting) *commandFlags[C] {
	f := &commandFlags[C]{fs: newFlagSet(name, usage, stderr)}
	f.table = newTable(f.fs, setting{flag: "config", env: configEnv, help: "YAML configuration file"}, settings(&f.cfg)...)
	return f
}

// resolve reads the YAML file that --config names, if any (its structured
// sections into the configuration), then gives every row its value, and
// returns the configuration. Call it once, after parsing the flags.
func (f *commandFlags[C]) resolve(getenv func(string) string) (C, error) {
	var file *fileSettings
	if p := f.table.pickOne(f.table.config, getenv); p.text != "" {
		var err error
		if file, err = loadYAML(p.text, f.table, &f.cfg); err != nil {
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) { // the file could not be read
				return f.cfg, fmt.Errorf("%s %q: %w", p.where, p.text, err)
			}
			return f.cfg, err
		}
	}
	err := f.table.resolve(getenv, file)
	return f.cfg, err
}

// usage is the flag's help: the row's text and where else it can be set.
func (r setting) usage() string {
	var notes []string
	if r.list != "" {
		notes = append(notes, "repeatable")
	}
	if r.env != "" {
		e := "env " + r.env
		switch {
		case strings.Contains(r.list, ","):
			e += ", comma-separated"
		case r.list != "":
			e += ", space-separated"
		}
		notes = append(notes, e)
	}
	if r.key != "" {
		notes = append(notes, "YAML "+r.key)
	}
	if len(notes) == 0 {
		return r.help
	}
	return r.help + " (" + strings.Join(notes, "; ") + ")"
}

// boolText is a boolean flag's text as given; the table reads it, so that
// --flag=maybe is reported like a bad MCPAUTH_* value.
type boolText struct{ v string }

func (b *boolText) String() string     { return b.v }
func (b *boolText) Set(v string) error { b.v = v; return nil }
func (b *boolText) IsBoolFlag() bool   { return true }

// stringList is a repeatable flag's values in order.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// valueAt is one value of a setting and where it was written, for messages.
type valueAt struct {
	where string // --addr, MCPAUTH_ADDR, config FILE: line 3: addr
	text  string
}

// resolve gives every row its value from the first layer that has one: the
// command line, the environment (a non-empty variable), the file, the
// default. Only that value is read: a bad environment variable does not
// matter when the flag is given.
func (t *table) resolve(getenv func(string) string, file *fileSettings) error {
	for _, r := range t.rows {
		vals, err := t.pick(r, getenv, file)
		if err != nil {
			return err
		}
		for _, v := range vals {
			if err := r.set(v.text); err != nil {
				return fmt.Errorf("%s %q: %w", v.where, v.text, err)
			}
		}
	}
	return nil
}

// pick returns the values of r from the layer that wins.
func (t *table) pick(r setting, getenv func(string) string, file *fileSettings) ([]valueAt, error) {
	if r.flag != "" && t.given(r.flag) {
		where := "--" + r.flag
		if l, ok := t.fs.Lookup(r.flag).Value.(*stringList); ok {
			var vals []valueAt
			for _, v := range *l {
				vals = append(vals, valueAt{where, v})
			}
			return vals, nil
		}
		return []valueAt{{where, t.fs.Lookup(r.flag).Value.String()}}, nil
	}
	if v := getenv(r.env); r.env != "" && v != "" {
		if r.list == "" {
			return []valueAt{{r.env, v}}, nil
		}
		vals := []valueAt{}
		for _, item := range strings.FieldsFunc(v, func(c rune) bool { return strings.ContainsRune(r.list, c) }) {
			vals = append(vals, valueAt{r.env, item})
		}
		return vals, nil
	}
	if vals, ok, err := file.values(r); ok || err != nil {
		return vals, err
	}
	if r.def != "" {
		return []valueAt{{"default of --" + r.flag, r.def}}, nil
	}
	return nil, nil
}

// given reports whether the named flag was on the command line.
func (t *table) given(name string) bool {
	set := false
	t.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// pickOne returns the winning value of a single-valued row that the file
// cannot set (--config, which must be known before the file is read) and
// where it came from; zero when no layer sets it.
func (t *table) pickOne(r setting, getenv func(string) string) valueAt {
	if r.flag == "" && r.env == "" {
		return valueAt{}
	}
	vals, _ := t.pick(r, getenv, nil) // no file layer: no error
	if len(vals) == 0 {
		return valueAt{}
	}
	return vals[len(vals)-1]
}

// fileSettings are the values of a table's keys in a YAML file, by key.
type fileSettings struct {
	path  string
	nodes map[string]*yaml.Node
}

// values returns the file's values of r, if the file sets it; a YAML null
// (key:) sets nothing.
func (f *fileSettings) values(r setting) ([]valueAt, bool, error) {
	if f == nil || r.key == "" || f.nodes[r.key] == nil {
		return nil, false, nil
	}
	n := f.nodes[r.key]
	where := func(n *yaml.Node) string { return fmt.Sprintf("config %s: line %d: %s", f.path, n.Line, r.key) }
	scalar := func(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag != "!!null" }
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil, false, nil
	case r.list == "" && scalar(n):
		return []valueAt{{where(n), n.Value}}, true, nil
	case r.list == "":
		return nil, false, fmt.Errorf("%s: write a single value, not a list or mapping", where(n))
	case n.Kind != yaml.SequenceNode:
		return nil, false, fmt.Errorf("%s: write a list such as [a, b]", where(n))
	}
	vals := []valueAt{}
	for _, item := range n.Content {
		if !scalar(item) {
			return nil, false, fmt.Errorf("%s: each item is a single value", where(item))
		}
		vals = append(vals, valueAt{where(item), item.Value})
	}
	return vals, true, nil
}

// loadYAML reads the YAML file at path: the structured sections into
// sections, a struct whose fields that the table holds are tagged yaml:"-",
// and the table's own keys into the returned fileSettings. An unknown key,
// a key set twice and a value of the wrong type are errors naming the key
// and its line.
func loadYAML[T any](path string, t *table, sections *T) (*fileSettings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // named by the caller with the flag or variable that gave path
	}
	var doc struct {
		Sections T                    `yaml:",inline"`
		Table    map[string]yaml.Node `yaml:",inline"` // the table's keys, read from root below
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty config
		return nil, fmt.Errorf("config %s: %s", path, explainYAMLError(err, b))
	}
	*sections = doc.Sections
	f := &fileSettings{path: path, nodes: map[string]*yaml.Node{}}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return f, nil // the decoder took it, so it is empty
	}
	top := root.Content[0]
	keys := append(t.sectionKeys(""), yamlKeys(reflect.TypeFor[T]())...)
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch {
		case t.hasKey(k.Value):
			f.nodes[k.Value] = v
		case len(t.sectionKeys(k.Value)) > 0:
			if err := f.section(t, k, v); err != nil {
				return nil, fmt.Errorf("config %s: %w", path, err)
			}
		case !slices.Contains(keys, k.Value):
			return nil, fmt.Errorf("config %s: line %d: unknown key %q at the top level; the keys there are %s", path, k.Line, k.Value, strings.Join(keys, ", "))
		}
	}
	return f, nil
}

// section reads a mapping whose keys are all the table's (lifetimes).
func (f *fileSettings) section(t *table, k, v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %s: write a mapping such as %s: VALUE", v.Line, k.Value, t.sectionKeys(k.Value)[0])
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		sk, sv := v.Content[i], v.Content[i+1]
		full := k.Value + "." + sk.Value
		switch {
		case f.nodes[full] != nil:
			return fmt.Errorf("line %d: %s is set twice; keep one", sk.Line, full)
		case !t.hasKey(full):
			return fmt.Errorf("line %d: %s is not a setting; use %s", sk.Line, full, strings.Join(t.sectionKeys(k.Value), ", "))
		}
		f.nodes[full] = sv
	}
	return nil
}

// hasKey reports whether a row has the YAML key.
func (t *table) hasKey(key string) bool {
	return slices.ContainsFunc(t.rows, func(r setting) bool { return r.key == key })
}

// sectionKeys lists, in row order, the keys the table has inside section
// ("" for the top level, where a section counts once by its name).
func (t *table) sectionKeys(section string) []string {
	var keys []string
	for _, r := range t.rows {
		k := r.key
		if section != "" {
			var ok bool
			if k, ok = strings.CutPrefix(k, section+"."); !ok {
				continue
			}
		}
		k, _, _ = strings.Cut(k, ".")
		if k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// text stores the value as given.
func text(dst *string) func(string) error {
	return checkedText(dst, nil)
}

// checkedText stores the value when check, if any, finds nothing wrong;
// check's error says what to write.
func checkedText(dst *string, check func(string) error) func(string) error {
	return func(v string) error {
		if check != nil {
			if err := check(v); err != nil {
				return err
			}
		}
		*dst = v
		return nil
	}
}

// oneOf stores one of the options.
func oneOf(dst *string, options ...string) func(string) error {
	return checkedText(dst, func(v string) error {
		if !slices.Contains(options, v) {
			return fmt.Errorf("use %s", strings.Join(options, " or "))
		}
		return nil
	})
}

// boolean reads true or false, also written 1, yes, on or 0, no, off.
func boolean(dst *bool) func(string) error {
	return func(v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "true", "yes", "on":
			*dst = true
		case "0", "false", "no", "off":
			*dst = false
		default:
			return errors.New("use true or false")
		}
		return nil
	}
}

// whole reads a whole number from lo to hi; fix says what to write.
func whole[T ~int | ~int64](dst *T, lo, hi T, fix string) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || T(n) < lo || T(n) > hi || int64(T(n)) != n {
			return errors.New(fix)
		}
		*dst = T(n)
		return nil
	}
}

// positiveDuration reads a Go duration above zero and, when max is not 0,
// at most max (why says where that bound comes from).
func positiveDuration[D ~int64](dst *D, example string, max time.Duration, why string) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err != nil || d <= 0:
			return fmt.Errorf("write a positive duration such as %s", example)
		case max > 0 && d > max:
			return fmt.Errorf("at most %v (%s)", max, why)
		}
		*dst = D(d)
		return nil
	}
}

// items appends each item that check, if any, accepts.
func items(dst *[]string, check func(string) error) func(string) error {
	return func(v string) error {
		if check != nil {
			if err := check(v); err != nil {
				return err
			}
		}
		*dst = append(*dst, v)
		return nil
	}
}
