package authserver

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/oauth"
)

// FuzzValidateRegistration checks the RFC 7591 request parser (RFC 7591 §2,
// §3.2.1, §3.2.2): it never panics, rejects with invalid_client_metadata or
// invalid_redirect_uri and a description, and what it accepts has a
// supported authentication method and redirect URIs and registers again,
// unchanged, when sent back (the response echoes the registered metadata).
// Seeds are in testdata/fuzz/FuzzValidateRegistration.
func FuzzValidateRegistration(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, method, err := validateRegistration(body)
		if err != nil {
			var oe *oauth.Error
			if !errors.As(err, &oe) || oe.Description == "" ||
				oe.Code != oauth.InvalidClientMetadata && oe.Code != oauth.InvalidRedirectURI {
				t.Fatalf("rejection %#v", err)
			}
			return
		}
		if !slices.Contains([]string{"none", "private_key_jwt", "client_secret_basic", "client_secret_post"}, method) ||
			method != doc.TokenEndpointAuthMethod || doc.ClientID != "" || len(doc.RedirectURIs) == 0 {
			t.Fatalf("accepted %+v with method %q", doc, method)
		}
		again, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		doc2, method2, err := validateRegistration(again)
		if err != nil || method2 != method {
			t.Fatalf("registered metadata %s refused: %v", again, err)
		}
		if diff := cmp.Diff(doc, doc2); diff != "" {
			t.Fatalf("registered metadata changed when sent again (-first +second):\n%s", diff)
		}
	})
}
