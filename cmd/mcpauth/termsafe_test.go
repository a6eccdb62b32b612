package main

import (
	"bytes"
	"testing"
)

// TestTermSafe: text from servers cannot drive the terminal (escape
// sequences, bidirectional overrides) when mcpauth prints it.
func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttext\nnext line\n":                         "plain\ttext\nnext line\n",
		"Café ünïcode 漢字":                                  "Café ünïcode 漢字",
		"\x1b]0;PWNED\x07\x1b[2Jtitle":                     "]0;PWNED[2Jtitle",
		"\x1b]8;;https://evil.example\x1b\\link":           "]8;;https://evil.example\\link",
		"evil\u202egnp.exe \u2066x\u2069 \u200f":           "evilgnp.exe x ",
		"C1 \u009b31m and DEL \x7f and CR \r and NUL \x00": "C1 31m and DEL  and CR  and NUL ",
		"bad \xff byte":                                    "bad \ufffd byte",
	} {
		var b bytes.Buffer
		if n, err := newTermSafe(&b).Write([]byte(in)); err != nil || n != len(in) {
			t.Errorf("Write(%q) = %d, %v", in, n, err)
		}
		if b.String() != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, b.String(), want)
		}
	}
	// A rune cut between two writes comes through whole.
	var b bytes.Buffer
	w := newTermSafe(&b)
	s := []byte("漢字")
	_, _ = w.Write(s[:2])
	_, _ = w.Write(s[2:])
	if b.String() != "漢字" {
		t.Errorf("split rune: %q", b.String())
	}
}
