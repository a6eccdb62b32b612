package cimd

import (
	"strings"
	"unicode"
)

// MaxDisplayNameRunes is the longest name DisplayName returns, in runes,
// counting the "…" that marks a cut (CIMD §8.8, §9.2,
// CIMD §8.5).
const MaxDisplayNameRunes = 64

// DisplayName returns the client_name to show a user: with control,
// format (bidi overrides and isolates, zero-width characters), private-use
// and invisible filler characters removed, runs of whitespace collapsed to
// one space, stacked combining marks limited, trimmed, and cut to
// MaxDisplayNameRunes runes ending in "…" (CIMD §8.8, §9.2,
// CIMD §8.5). When nothing is left it returns host, which the
// consent screen shows next to the name anyway (CIMD §8.5,
// MCP 2025-11-25 Authorization §Localhost Redirect URI Risks). The result is
// plain text: HTML-escape it when rendering.
func (d *Document) DisplayName(host string) string {
	if name := sanitizeName(d.ClientName); name != "" {
		return name
	}
	return host
}

// maxCombiningRun is how many combining marks may follow one base rune.
const maxCombiningRun = 3

// sanitizeName implements DisplayName for a non-empty result.
func sanitizeName(s string) string {
	var b strings.Builder
	runes, marks, space := 0, 0, false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case invisibleRune(r):
			continue
		case unicode.In(r, unicode.Mn, unicode.Me):
			if marks++; marks > maxCombiningRun || runes == 0 {
				continue
			}
		default:
			marks = 0
		}
		if space && runes > 0 {
			b.WriteByte(' ')
			runes++
		}
		space = false
		b.WriteRune(r)
		runes++
	}
	out := b.String()
	if runes <= MaxDisplayNameRunes {
		return out
	}
	cut, n := 0, 0
	for i := range out {
		if n == MaxDisplayNameRunes-1 {
			cut = i
			break
		}
		n++
	}
	return strings.TrimRight(out[:cut], " ") + "…"
}

// invisibleRune reports whether r renders as nothing or changes how the
// text around it is ordered: control (Cc), format (Cf, which holds the
// bidi controls U+202A-U+202E and U+2066-U+2069, the zero-width characters
// U+200B-U+200F and U+2060, and U+FEFF), surrogates, private use,
// noncharacters, and letters that render blank (Hangul fillers, the
// braille blank).
func invisibleRune(r rune) bool {
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0', '\u2800', '\ufffc', '\ufffd':
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Cs, unicode.Co) || r&0xfffe == 0xfffe || r >= 0xfdd0 && r <= 0xfdef
}
