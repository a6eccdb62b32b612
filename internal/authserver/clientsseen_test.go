package authserver

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/mcpauth/mcpauth/internal/store"
)

// TestMadeUpClientIDsAreNotRecorded: `mcpauth clients list` shows the
// clients whose document the server accepted. A client_id URL with no
// valid document behind it, which anyone can send without signing in, is
// answered with an error and leaves no row behind (no table of junk
// clients, RFC 7591 §5; abuse control, MCP SEP-991 §Best Practices), while a
// real client is listed.
func TestMadeUpClientIDsAreNotRecorded(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	real := h.publishClient("/real.json", nil)
	exchange := func(clientID string) tokenResult {
		return h.token(url.Values{"grant_type": {"authorization_code"}, "code": {"mca_c_x"}, "code_verifier": {"v"},
			"client_id": {clientID}}, nil)
	}
	if tr := exchange(real); tr.Error != "invalid_grant" {
		t.Fatalf("real client with a made-up code: %d %s, want invalid_grant", tr.Status, tr.Error)
	}
	for i := range 5 {
		id := h.docs.url(fmt.Sprintf("/made-up-%d.json", i))
		if tr := exchange(id); tr.Error != "invalid_client" {
			t.Fatalf("client_id with no document: %d %s, want invalid_client", tr.Status, tr.Error)
		}
	}
	seen, err := h.db.ListClientsSeen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].ClientID != real || seen[0].LastResult != store.SeenOK {
		t.Errorf("clients seen = %+v, want only %s with result ok", seen, real)
	}
}
