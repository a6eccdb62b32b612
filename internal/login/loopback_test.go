package login

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLoopbackClient: without a registration endpoint or a client_id
// metadata URL, the client is the loopback development client
// http://localhost?redirect_uri=...&scope=... (AT Protocol OAuth, Localhost
// Client Development); when the server refuses it, the error says in one
// line what to pass instead.
func TestLoopbackClient(t *testing.T) {
	tests := []struct {
		name    string
		as      func(*fakeAS)
		scopes  []string
		wantErr bool
	}{
		{name: "no scope", as: func(as *fakeAS) { as.dcr = false }},
		{name: "with scopes", as: func(as *fakeAS) { as.dcr = false }, scopes: []string{"read", "write"}},
		{name: "refused", as: func(as *fakeAS) { as.dcr = false; as.errorParam = "unauthorized_client" }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.as)
			rs := newFakeRS(t, as, nil)
			a := newTestAuthorizer(t, rs, func(o *Options) { o.Scopes = tt.scopes })
			status, err := call(t, a, rs.mcpURL(), "tools/list")
			_, auth, _, regs, _ := as.snapshot()
			if len(auth) != 1 || len(regs) != 0 {
				t.Fatalf("%d authorization requests and %d registrations, want 1 and 0", len(auth), len(regs))
			}
			want := url.Values{"redirect_uri": {auth[0].Get("redirect_uri")}}
			if len(tt.scopes) > 0 {
				want.Set("scope", strings.Join(tt.scopes, " "))
			}
			if got := auth[0].Get("client_id"); got != "http://localhost?"+want.Encode() {
				t.Errorf("client_id = %q, want http://localhost?%s", got, want.Encode())
			}
			if !tt.wantErr {
				if err != nil || status != http.StatusOK {
					t.Fatalf("status %d, err %v (%v)", status, err, a.Err())
				}
				return
			}
			if a.Err() == nil || !strings.HasSuffix(a.Err().Error(), "\n"+loopbackHint) {
				t.Errorf("Err() = %v, want it to end with the hint line", a.Err())
			}
		})
	}
}
