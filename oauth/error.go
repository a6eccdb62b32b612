package oauth

import (
	"fmt"
	"strings"
)

// ErrorCode is the value of the "error" member of an OAuth error response
// (RFC 6749 §5.2). The constants below are the codes mcpauth sends; each is
// named after its wire value in CamelCase, without a prefix, so that names
// starting with Err stay reserved for error values.
type ErrorCode string

// Error codes from RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7591 §3.2.2,
// RFC 8707 §2 and OpenID Connect Core §3.1.2.6.
const (
	InvalidRequest          ErrorCode = "invalid_request"
	InvalidClient           ErrorCode = "invalid_client"
	InvalidGrant            ErrorCode = "invalid_grant"
	UnauthorizedClient      ErrorCode = "unauthorized_client"
	UnsupportedGrantType    ErrorCode = "unsupported_grant_type"
	UnsupportedResponseType ErrorCode = "unsupported_response_type"
	InvalidScope            ErrorCode = "invalid_scope"
	AccessDenied            ErrorCode = "access_denied"
	ServerError             ErrorCode = "server_error"
	TemporarilyUnavailable  ErrorCode = "temporarily_unavailable"
	InvalidTarget           ErrorCode = "invalid_target"
	InvalidToken            ErrorCode = "invalid_token"
	InsufficientScope       ErrorCode = "insufficient_scope"
	ConsentRequired         ErrorCode = "consent_required"
	LoginRequired           ErrorCode = "login_required"
	InvalidRedirectURI      ErrorCode = "invalid_redirect_uri"
	InvalidClientMetadata   ErrorCode = "invalid_client_metadata"
)

// Error is an OAuth error response (RFC 6749 §5.2). Code is one of the
// ErrorCode constants; Description is a sentence a human can act on; URI optionally
// points at documentation. Error is a plain value and safe to copy.
type Error struct {
	Code        ErrorCode `json:"error"`
	Description string    `json:"error_description,omitempty"`
	URI         string    `json:"error_uri,omitempty"`
}

// Error implements the error interface as "code: description".
func (e *Error) Error() string {
	if e.Description == "" {
		return string(e.Code)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Description)
}

// NewError returns an *Error with the given code and a formatted
// description, made to fit RFC 6749 §5.2 (see DescriptionText).
func NewError(code ErrorCode, format string, args ...any) *Error {
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
