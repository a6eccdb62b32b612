package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestErrorFormatsAndUnwraps(t *testing.T) {
	e := NewError(InvalidTarget, "resource %q is not served here", "https://x/mcp")
	if got, want := e.Error(), `invalid_target: resource 'https://x/mcp' is not served here`; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("token: %w", e)
	var oe *Error
	if !errors.As(wrapped, &oe) || oe.Code != InvalidTarget {
		t.Fatalf("errors.As did not find the oauth.Error in %v", wrapped)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"error":"invalid_target","error_description":"resource 'https://x/mcp' is not served here"}`; got != want {
		t.Fatalf("JSON = %s, want %s", got, want)
	}
	if got := (&Error{Code: InvalidClient}).Error(); got != "invalid_client" {
		t.Fatalf("bare code Error() = %q", got)
	}
}

// TestDescriptionText: error descriptions keep to the characters RFC 6749
// §5.2 allows (%x20-21 / %x23-5B / %x5D-7E), readably.
func TestDescriptionText(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, fine.":               "plain text, fine.",
		"PKCE (RFC 7636 §4.1)":            "PKCE (RFC 7636 section 4.1)",
		"see § 2":                         "see section 2",
		`grant_type "x" is not supported`: "grant_type 'x' is not supported",
		`back\slash and tab	and é…`:       "back/slash and tab?and ?...",
		"NUL \x00 and invalid \xff":       "NUL ? and invalid ?",
	} {
		if got := DescriptionText(in); got != want {
			t.Errorf("DescriptionText(%q) = %q, want %q", in, got, want)
		}
		if e := NewError(InvalidRequest, "%s", in); e.Description != DescriptionText(in) {
			t.Errorf("NewError kept %q", e.Description)
		}
	}
}
