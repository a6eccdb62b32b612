package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestErrorFormatsAndUnwraps(t *testing.T) {
	e := NewError(ErrInvalidTarget, "resource %q is not served here", "https://x/mcp")
	if got, want := e.Error(), `invalid_target: resource "https://x/mcp" is not served here`; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("token: %w", e)
	var oe *Error
	if !errors.As(wrapped, &oe) || oe.Code != ErrInvalidTarget {
		t.Fatalf("errors.As did not find the oauth.Error in %v", wrapped)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"error":"invalid_target","error_description":"resource \"https://x/mcp\" is not served here"}`; got != want {
		t.Fatalf("JSON = %s, want %s", got, want)
	}
	if got := (&Error{Code: ErrInvalidClient}).Error(); got != "invalid_client" {
		t.Fatalf("bare code Error() = %q", got)
	}
}
