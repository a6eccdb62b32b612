package cimd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestErrorFormatting(t *testing.T) {
	p1 := Problem{Reason: ReasonNoPath, Spec: "A3", Field: "client_id", Message: "client_id must have a path"}
	p2 := Problem{Reason: ReasonFragment, Spec: "A6", Message: "no fragment"}
	p3 := Problem{Reason: ReasonUserinfo, Spec: "A2", Message: "no userinfo"}
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"B12 one problem", newError(p1), "client_id must have a path"},
		{"B12 two problems", newError(p1, p2), "client_id must have a path (and 1 more problem)"},
		{"B12 three problems", newError(p1, p2, p3), "client_id must have a path (and 2 more problems)"},
		{"B12 no message falls back to the reason", &Error{Reason: ReasonFetch}, "fetch_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewErrorHeadlineAndProblems(t *testing.T) {
	p1 := Problem{Reason: ReasonClientSecret, Spec: "C4", Field: "client_secret", Message: "remove client_secret"}
	p2 := Problem{Reason: ReasonJWKS, Spec: "C7", Field: "jwks", Message: "add keys"}
	in := []Problem{p1, p2}
	e := newError(in...)
	in[0].Message = "changed by the caller"
	want := &Error{Reason: ReasonClientSecret, Spec: "C4", Message: "remove client_secret", Problems: []Problem{p1, p2}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("newError (-want +got):\n%s", diff)
	}
	if !e.Has(ReasonJWKS) || !e.Has(ReasonClientSecret) || e.Has(ReasonFetch) {
		t.Errorf("Has does not look at every problem")
	}
	if got := newError(); got.Reason != "" || got.Problems != nil {
		t.Errorf("newError() = %#v, want empty", got)
	}
}

func TestErrorUnwrapsAndConverts(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	e := newError(Problem{Reason: ReasonFetch, Spec: "B2", Message: "the client's server answered 404; serve the document with status 200"})
	e.Err = cause
	wrapped := fmt.Errorf("resolve %q: %w", "https://app.example/c", e)
	if !errors.Is(wrapped, cause) {
		t.Errorf("errors.Is does not reach the cause through %v", wrapped)
	}
	var got *Error
	if !errors.As(wrapped, &got) || got.Reason != ReasonFetch {
		t.Fatalf("errors.As did not find *Error")
	}
	if e.Error() != e.Message {
		t.Errorf("Error() = %q repeats the cause; want only the message", e.Error())
	}
	oe := e.OAuth()
	if oe.Code != "invalid_client" || oe.Description != e.Message {
		t.Errorf("OAuth() = %+v", oe)
	}
}

func TestProblemAndWarningJSON(t *testing.T) {
	b, err := json.Marshal([]any{
		Problem{Reason: ReasonRedirectURI, Spec: "C8", Field: "redirect_uris[0]", Message: "m"},
		Problem{Reason: ReasonInvalidJSON, Spec: "C1", Message: "m"},
		Warning{Code: WarnURIDropped, Spec: "C13", Message: "w"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"reason":"redirect_uri_invalid","spec":"C8","field":"redirect_uris[0]","message":"m"},` +
		`{"reason":"document_invalid_json","spec":"C1","message":"m"},` +
		`{"code":"uri_dropped","spec":"C13","message":"w"}]`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}
