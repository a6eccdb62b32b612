package oauth

import (
	"fmt"
	"strings"
)

// Error codes from RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7591 §3.2.2
// and RFC 8707 §2.
const (
	InvalidRequest          = "invalid_request"
	InvalidClient           = "invalid_client"
	InvalidGrant            = "invalid_grant"
	UnauthorizedClient      = "unauthorized_client"
	UnsupportedGrantType    = "unsupported_grant_type"
	UnsupportedResponseType = "unsupported_response_type"
	InvalidScope            = "invalid_scope"
	AccessDenied            = "access_denied"
	ServerError             = "server_error"
	TemporarilyUnavailable  = "temporarily_unavailable"
	InvalidTarget           = "invalid_target"
	InvalidToken            = "invalid_token"
	InsufficientScope       = "insufficient_scope"
	ConsentRequired         = "consent_required"
	LoginRequired           = "login_required"
	InvalidRedirectURI      = "invalid_redirect_uri"
	InvalidClientMetadata   = "invalid_client_metadata"
)

// Error is an OAuth error response (RFC 6749 §5.2). Code is one of the Err*
// constants; Description is a sentence a human can act on; URI optionally
// points at documentation. Error is a plain value and safe to copy.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	URI         string `json:"error_uri,omitempty"`
}

// Error implements the error interface as "code: description".
func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Description)
}

// NewError returns an *Error with the given code and a formatted
// description, made to fit RFC 6749 §5.2 (see DescriptionText).
func NewError(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: DescriptionText(fmt.Sprintf(format, args...))}
}

// DescriptionText returns s in the characters RFC 6749 §5.2 allows in an
// error_description (printable ASCII without '"' and '\'), so that strict
// clients accept it and it fits a quoted WWW-Authenticate parameter: "§"
// becomes "section", a double quote a single one, a backslash a slash,
// "…" three dots, and any other character outside the set '?'.
func DescriptionText(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	afterSection := false
	for _, r := range s {
		if afterSection && r != ' ' {
			b.WriteByte(' ')
		}
		afterSection = r == '§'
		switch {
		case r == '§':
			b.WriteString("section")
		case r == '…':
			b.WriteString("...")
		case r == '"':
			b.WriteByte('\'')
		case r == '\\':
			b.WriteByte('/')
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}
