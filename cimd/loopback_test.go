package cimd

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoopbackClient(t *testing.T) {
	base := Document{GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: "none", ApplicationType: "native"}
	with := func(id string, redirects []string, scope string) *Document {
		d := base
		d.ClientID, d.RedirectURIs, d.Scope = id, redirects, scope
		return &d
	}
	ok := []struct {
		id   string
		want *Document
	}{
		{"http://localhost", with("http://localhost", []string{"http://127.0.0.1/", "http://[::1]/"}, "")},
		{"http://localhost/", with("http://localhost/", []string{"http://127.0.0.1/", "http://[::1]/"}, "")},
		{"http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A8123%2Fcallback&scope=read+write",
			with("http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A8123%2Fcallback&scope=read+write", []string{"http://127.0.0.1:8123/callback"}, "read write")},
		{"http://localhost/?redirect_uri=http://[::1]/cb&redirect_uri=http://localhost:9/cb",
			with("http://localhost/?redirect_uri=http://[::1]/cb&redirect_uri=http://localhost:9/cb", []string{"http://[::1]/cb", "http://localhost:9/cb"}, "")},
	}
	for _, tc := range ok {
		t.Run("A13 "+tc.id, func(t *testing.T) {
			c, err := LoopbackClient(tc.id)
			if err != nil {
				t.Fatalf("LoopbackClient: %v", err)
			}
			if diff := cmp.Diff(tc.want, c.Document); diff != "" {
				t.Errorf("document (-want +got):\n%s", diff)
			}
			if !c.Loopback || c.Tier != TierUnverified || c.Fingerprint == "" || c.ID.String() != tc.id || !c.ID.DevLoopback() {
				t.Errorf("client = %+v", c)
			}
			if !c.Document.AllowsRedirectURI(strings.Replace(c.Document.RedirectURIs[0], ":8123", "", 1)) {
				t.Errorf("redirect URI %s not matched on another port", c.Document.RedirectURIs[0])
			}
		})
	}

	bad := []struct{ id, field, want string }{
		{"http://localhost:8080", "client_id", "exactly http://localhost"},
		{"https://localhost", "client_id", "exactly http://localhost"},
		{"http://127.0.0.1", "client_id", "exactly http://localhost"},
		{"http://localhost/client.json", "client_id", "exactly http://localhost"},
		{"http://localhost?redirect_uri=http://127.0.0.1/#x", "client_id", "fragment"},
		{"http://localhost?redirect_uri=%zz", "client_id", "URL encoding"},
		{"http://localhost?client_name=Evil", "client_id", "only redirect_uri and scope"},
		{"http://localhost?scope=a&scope=b", "scope", "at most once"},
		{"http://localhost?redirect_uri=https://attacker.example/cb", "redirect_uri[0]", "127.0.0.1, [::1] or localhost"},
		{"http://localhost?redirect_uri=http://127.0.0.1/&redirect_uri=http://192.168.1.2/cb", "redirect_uri[1]", "127.0.0.1, [::1] or localhost"},
		{"http://localhost?redirect_uri=http://127.0.0.1/*", "redirect_uri[0]", "wildcard"},
		{"http://localhost?redirect_uri=com.example.app:/cb", "redirect_uri[0]", "127.0.0.1, [::1] or localhost"},
		{"http://localhost? ", "client_id", "space"},
	}
	for _, tc := range bad {
		t.Run("A13 "+tc.id, func(t *testing.T) {
			_, err := LoopbackClient(tc.id)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("LoopbackClient = %v, want *Error", err)
			}
			if ce.Problems[0].Field != tc.field || !strings.Contains(ce.Message, tc.want) {
				t.Errorf("error = %s %q, want field %s and %q", ce.Problems[0].Field, ce.Message, tc.field, tc.want)
			}
			if o := ce.OAuth(); o.Code != "invalid_client" {
				t.Errorf("OAuth code = %s", o.Code)
			}
		})
	}
}

func TestResolveLoopbackClient(t *testing.T) {
	const id = "http://localhost?redirect_uri=http://127.0.0.1/cb"
	fetched := func(context.Context, string, string) ([]netip.Addr, error) {
		t.Error("a loopback development client caused a lookup")
		return nil, errors.New("no lookups")
	}
	tests := []struct {
		name       string
		on         bool
		policy     PolicyConfig
		wantReason Reason
		wantTier   Tier
	}{
		{"on", true, PolicyConfig{}, "", TierUnverified},
		{"an allow rule does not verify it", true, PolicyConfig{Allow: []string{"localhost"}}, "", TierUnverified},
		{"a deny rule blocks it", true, PolicyConfig{Deny: []string{"localhost"}}, ReasonBlocked, ""},
		{"off", false, PolicyConfig{}, ReasonLoopbackDisabled, ""},
	}
	for _, tc := range tests {
		t.Run("A13 "+tc.name, func(t *testing.T) {
			p, err := NewPolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewResolver(Options{Policy: p, LoopbackClients: tc.on, LookupNetIP: fetched})
			if err != nil {
				t.Fatal(err)
			}
			c, err := r.Resolve(context.Background(), id)
			var ce *Error
			switch {
			case tc.wantReason == "" && err != nil:
				t.Fatalf("Resolve: %v", err)
			case tc.wantReason == "":
				if c.Tier != tc.wantTier || !c.Loopback || c.Document.RedirectURIs[0] != "http://127.0.0.1/cb" {
					t.Errorf("client = %+v", c)
				}
			case !errors.As(err, &ce) || ce.Reason != tc.wantReason:
				t.Errorf("Resolve error = %v, want reason %s", err, tc.wantReason)
			}
		})
	}
}
