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
	p1 := Problem{Reason: ReasonNoPath, Ref: refClientIDURL, Field: "client_id", Message: "client_id must have a path"}
	p2 := Problem{Reason: ReasonFragment, Ref: refClientIDURL, Message: "no fragment"}
	p3 := Problem{Reason: ReasonUserinfo, Ref: refClientIDURL, Message: "no userinfo"}
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
	p1 := Problem{Reason: ReasonClientSecret, Ref: refCredentials, Field: "client_secret", Message: "remove client_secret"}
	p2 := Problem{Reason: ReasonJWKS, Ref: refClientMetadata, Field: "jwks", Message: "add keys"}
	in := []Problem{p1, p2}
	e := newError(in...)
	in[0].Message = "changed by the caller"
	want := &Error{Reason: ReasonClientSecret, Ref: refCredentials, Message: "remove client_secret", Problems: []Problem{p1, p2}}
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
	e := newError(Problem{Reason: ReasonFetch, Ref: refCIMD + " §5", Message: "the client's server answered 404; serve the document with status 200"})
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
		Problem{Reason: ReasonRedirectURI, Ref: refRedirectURIs, Field: "redirect_uris[0]", Message: "m"},
		Problem{Reason: ReasonInvalidJSON, Ref: refDocument, Message: "m"},
		Warning{Code: WarnURIDropped, Ref: refSSRF, Message: "w"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"reason":"redirect_uri_invalid","ref":"draft-ietf-oauth-client-id-metadata-document-02 §4.2","field":"redirect_uris[0]","message":"m"},` +
		`{"reason":"document_invalid_json","ref":"draft-ietf-oauth-client-id-metadata-document-02 §4","message":"m"},` +
		`{"code":"uri_dropped","ref":"draft-ietf-oauth-client-id-metadata-document-02 §8.6","message":"w"}]`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}
