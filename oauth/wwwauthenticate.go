// This file builds and parses WWW-Authenticate challenges: RFC 9110 §11.6.1
// (syntax), RFC 6750 §3 (Bearer parameters) and RFC 9728 §5.1
// (resource_metadata).

package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Bearer challenge parameter names (RFC 6750 §3, RFC 9728 §5.1).
const (
	ParamRealm            = "realm"
	ParamError            = "error"
	ParamErrorDescription = "error_description"
	ParamErrorURI         = "error_uri"
	ParamScope            = "scope"
	ParamResourceMetadata = "resource_metadata"
)

// A Challenge is one authentication challenge of a WWW-Authenticate header
// (RFC 9110 §11.6.1), such as
//
//	Bearer error="insufficient_scope", scope="files:read", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp"
//
// A challenge carries either Token68 or Params, never both. Scheme and
// parameter names are case-insensitive (RFC 9110 §11.1, §11.2); Param looks
// names up that way, and the parser keeps them as written.
type Challenge struct {
	Scheme  string
	Token68 string
	Params  []AuthParam
}

// An AuthParam is one name=value parameter of a Challenge.
type AuthParam struct {
	Name  string
	Value string
}

// Param returns the value of the named parameter, compared without regard to
// case, and whether it is present.
func (c Challenge) Param(name string) (string, bool) {
	for _, p := range c.Params {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// String formats c as a WWW-Authenticate field value. Every parameter value
// is written as a quoted-string (RFC 6750 §3 requires it for its parameters);
// `"` and `\` are escaped. Bytes that cannot appear where they stand (a
// non-tchar in the scheme or a name, a control character other than tab or
// DEL in a value) are dropped, so the result is always one safe header line.
func (c Challenge) String() string {
	var b strings.Builder
	writeFiltered(&b, c.Scheme, isTChar)
	if c.Token68 != "" {
		b.WriteByte(' ')
		writeFiltered(&b, c.Token68, func(ch byte) bool { return ch == '=' || isToken68Char(ch) })
		return b.String()
	}
	for i, p := range c.Params {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		writeFiltered(&b, p.Name, isTChar)
		b.WriteString(`="`)
		for j := 0; j < len(p.Value); j++ {
			switch ch := p.Value[j]; {
			case ch == '"' || ch == '\\':
				b.WriteByte('\\')
				b.WriteByte(ch)
			case ch == '\t' || ch >= ' ' && ch != 0x7f:
				b.WriteByte(ch)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

// writeFiltered writes the bytes of s that keep reports true for.
func writeFiltered(b *strings.Builder, s string, keep func(byte) bool) {
	for i := 0; i < len(s); i++ {
		if keep(s[i]) {
			b.WriteByte(s[i])
		}
	}
}

// ErrMalformedChallenge is wrapped by every error of ParseChallenges.
var ErrMalformedChallenge = errors.New("malformed WWW-Authenticate")

// ParseWWWAuthenticate parses every WWW-Authenticate field of h (RFC 9110
// §11.6.1 allows several fields and several challenges per field) and returns
// the challenges in order. Clients use it to read resource_metadata and scope
// from a 401 or 403 (RFC 9728 §5.1, MCP 2025-11-25 Authorization §Scope
// Selection Strategy).
func ParseWWWAuthenticate(h http.Header) ([]Challenge, error) {
	var all []Challenge
	for _, v := range h.Values("WWW-Authenticate") {
		cs, err := ParseChallenges(v)
		if err != nil {
			return nil, err
		}
		all = append(all, cs...)
	}
	return all, nil
}

// ParseChallenges parses one WWW-Authenticate field value into its
// challenges (RFC 9110 §11.6.1):
//
//	challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// Empty list elements are skipped (RFC 9110 §5.6.1). A parameter name that
// occurs twice in one challenge is an error (RFC 9110 §11.2, RFC 6750 §3).
// Errors wrap ErrMalformedChallenge. ParseChallenges is the inverse of
// Challenge.String for every challenge whose scheme and names are tokens
// and whose values hold no control characters other than tab.
func ParseChallenges(s string) ([]Challenge, error) {
	p := challengeParser{s: s}
	var out []Challenge
	p.skipListSeparators()
	for !p.done() {
		c, err := p.challenge()
		if err != nil {
			return nil, fmt.Errorf("%w: %v at byte %d of %q", ErrMalformedChallenge, err, p.i, s)
		}
		out = append(out, c)
		p.skipListSeparators()
	}
	return out, nil
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) done() bool { return p.i >= len(p.s) }

func (p *challengeParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

// skipWS skips optional whitespace (OWS, BWS) and reports how much it skipped.
func (p *challengeParser) skipWS() int {
	start := p.i
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
	return p.i - start
}

// skipListSeparators skips whitespace and empty list elements.
func (p *challengeParser) skipListSeparators() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *challengeParser) token() string {
	start := p.i
	for !p.done() && isTChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) challenge() (Challenge, error) {
	c := Challenge{Scheme: p.token()}
	if c.Scheme == "" {
		return c, fmt.Errorf("want an auth-scheme")
	}
	if p.skipWS() == 0 || p.done() || p.peek() == ',' {
		if !p.done() && p.peek() != ',' {
			return c, fmt.Errorf("want a space after the scheme")
		}
		return c, nil
	}
	if t68, ok := p.token68(); ok {
		c.Token68 = t68
		return c, nil
	}
	for {
		name := p.token()
		if name == "" {
			return c, fmt.Errorf("want a parameter name")
		}
		if _, dup := c.Param(name); dup {
			return c, fmt.Errorf("parameter %q repeated", name)
		}
		p.skipWS()
		if p.peek() != '=' {
			return c, fmt.Errorf("want = after %q", name)
		}
		p.i++
		p.skipWS()
		value, err := p.value()
		if err != nil {
			return c, err
		}
		c.Params = append(c.Params, AuthParam{Name: name, Value: value})
		p.skipWS()
		if p.done() {
			return c, nil
		}
		if p.peek() != ',' {
			return c, fmt.Errorf("want , between parameters")
		}
		// After a comma comes another parameter of this challenge, an empty
		// list element, or the scheme of the next challenge: a token not
		// followed by "=".
		p.skipListSeparators()
		if p.done() {
			return c, nil
		}
		save := p.i
		p.token()
		p.skipWS()
		isParam := p.peek() == '='
		p.i = save
		if !isParam {
			return c, nil
		}
	}
}

// token68 consumes a token68 (RFC 9110 §11.2) if one stands alone here: it
// must be followed by the end of the field or a comma.
func (p *challengeParser) token68() (string, bool) {
	start := p.i
	j := p.i
	for j < len(p.s) && isToken68Char(p.s[j]) {
		j++
	}
	if j == start {
		return "", false
	}
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	end := j
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	if j < len(p.s) && p.s[j] != ',' {
		return "", false
	}
	p.i = j
	return p.s[start:end], true
}

func (p *challengeParser) value() (string, error) {
	if p.peek() != '"' {
		v := p.token()
		if v == "" {
			return "", fmt.Errorf("want a token or quoted-string value")
		}
		return v, nil
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		ch := p.s[p.i]
		p.i++
		switch {
		case ch == '"':
			return b.String(), nil
		case ch == '\\':
			if p.done() || !isQuotable(p.s[p.i]) {
				return "", fmt.Errorf("bad quoted-pair")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case isQuotable(ch):
			b.WriteByte(ch)
		default:
			return "", fmt.Errorf("byte %#x in quoted-string", ch)
		}
	}
	return "", fmt.Errorf("unterminated quoted-string")
}

// isTChar reports whether c is a tchar (RFC 9110 §5.6.2).
func isTChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken68Char reports whether c may appear in a token68 before its "="
// padding (RFC 9110 §11.2).
func isToken68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// isQuotable reports whether c may appear in a quoted-string, directly or as
// a quoted-pair: HTAB, SP, VCHAR or obs-text (RFC 9110 §5.6.4).
func isQuotable(c byte) bool {
	return c == '\t' || c >= ' ' && c != 0x7f
}
