package main

import (
	"io"
	"unicode"
	"unicode/utf8"
)

// termSafe is a writer for text that comes partly from servers (server
// names, tool names and descriptions, tool results, client documents) and
// goes to a terminal. It drops the characters that control a terminal or
// reorder text: C0 controls other than newline and tab (ESC starts escape
// sequences that set the window title, clear the screen or hide links),
// DEL, C1 controls, and the bidirectional formatting characters (U+202A to
// U+202E, U+2066 to U+2069, U+200E, U+200F, U+061C), and writes U+FFFD for
// bytes that are not UTF-8. mcpauth's own output uses none of these.
type termSafe struct {
	w       io.Writer
	pending []byte // the start of a rune cut by the previous Write
}

func newTermSafe(w io.Writer) *termSafe { return &termSafe{w: w} }

func (t *termSafe) Write(p []byte) (int, error) {
	in := p
	if len(t.pending) > 0 {
		in = append(t.pending, p...)
		t.pending = nil
	}
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		if !utf8.FullRune(in[i:]) {
			t.pending = append([]byte(nil), in[i:]...)
			break
		}
		r, size := utf8.DecodeRune(in[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = utf8.AppendRune(out, utf8.RuneError)
		case r == '\n' || r == '\t':
			out = append(out, byte(r))
		case unicode.IsControl(r) || isBidiControl(r):
		default:
			out = append(out, in[i:i+size]...)
		}
		i += size
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}
