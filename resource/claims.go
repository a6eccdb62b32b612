// This file decodes the claims shared by JWT access tokens (RFC 9068 §2.2,
// RFC 7519 §4.1) and introspection responses (RFC 7662 §2.2), and applies
// the checks both need (OAuth 2.1 §5.2, RFC 8707 §2).

package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// claims holds the members of a JWT claims set or an introspection response
// that verification uses.
type claims struct {
	Active   bool        `json:"active"` // introspection only
	Iss      string      `json:"iss"`
	Sub      string      `json:"sub"`
	Aud      audience    `json:"aud"`
	Exp      numericDate `json:"exp"`
	Nbf      numericDate `json:"nbf"`
	Iat      numericDate `json:"iat"`
	Jti      string      `json:"jti"`
	ClientID string      `json:"client_id"`
	Azp      string      `json:"azp"`
	Scope    scopeList   `json:"scope"`
	Scp      scopeList   `json:"scp"`
	// TokenType is the introspection token_type (RFC 7662 §2.2).
	TokenType string `json:"token_type"`
}

// check applies the issuer (when want is not empty), audience and time
// checks. resource is canonical.
func (c *claims) check(now time.Time, issuer, resource string, leeway time.Duration, requireExp bool) error {
	if issuer != "" && c.Iss != issuer {
		return fmt.Errorf("%w: issuer %q is not the trusted issuer %q", ErrInvalidToken, c.Iss, issuer)
	}
	if !audienceIncludes(c.Aud, resource) {
		return fmt.Errorf("%w: audience %q does not include %q (OAuth 2.1 section 5.2, RFC 8707 section 2)", ErrInvalidToken, []string(c.Aud), resource)
	}
	return checkTimes(now, time.Time(c.Exp), time.Time(c.Nbf), time.Time(c.Iat), leeway, requireExp)
}

// tokenInfo builds the TokenInfo of checked claims; raw is the JSON they
// were decoded from.
func (c *claims) tokenInfo(raw []byte) *TokenInfo {
	info := &TokenInfo{
		Issuer:   c.Iss,
		Subject:  c.Sub,
		ClientID: c.ClientID,
		Scopes:   c.Scope,
		Audience: c.Aud,
		Expiry:   time.Time(c.Exp),
		IssuedAt: time.Time(c.Iat),
		ID:       c.Jti,
		Claims:   raw,
	}
	if info.ClientID == "" {
		info.ClientID = c.Azp
	}
	if info.Scopes == nil {
		info.Scopes = c.Scp
	}
	return info
}

// audience is the aud claim: one string or an array of strings (RFC 7519
// §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	return unmarshalStrings(b, (*[]string)(a), func(s string) []string { return []string{s} })
}

// scopeList is a scope claim: a space-separated string (RFC 9068 §2.2.3,
// RFC 7662 §2.2) or, as some servers send scp, an array of strings.
type scopeList []string

func (s *scopeList) UnmarshalJSON(b []byte) error {
	return unmarshalStrings(b, (*[]string)(s), strings.Fields)
}

// unmarshalStrings decodes null, an array of strings, or one string that
// split turns into a list.
func unmarshalStrings(b []byte, dst *[]string, split func(string) []string) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*dst = nil
		return nil
	case len(b) > 1 && b[0] == '"' && bytes.IndexByte(b, '\\') < 0:
		// A string without escapes: the decoder has checked the literal, so
		// its bytes between the quotes are the value.
		*dst = split(string(b[1 : len(b)-1]))
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*dst = split(s)
		return nil
	}
	return json.Unmarshal(b, dst)
}

// maxNumericDate is 9999-12-31T23:59:59Z, the latest date accepted.
const maxNumericDate = 253402300799

// numericDate is a JSON number of seconds since the epoch (RFC 7519 §2),
// possibly with a fraction. The zero value means absent.
type numericDate time.Time

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*d = numericDate{}
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || f > maxNumericDate || math.IsNaN(f) {
		return fmt.Errorf("NumericDate %s: want a non-negative number of seconds", b)
	}
	sec, frac := math.Modf(f)
	*d = numericDate(time.Unix(int64(sec), int64(frac*1e9)))
	return nil
}
