package login

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpauth/mcpauth/oauth"
)

// TestDiscoveryOrder runs whole authorizations against every metadata
// layout and checks which well-known URLs were asked for, in order.
func TestDiscoveryOrder(t *testing.T) {
	tests := []struct {
		name      string
		as        func(*fakeAS)
		rs        func(*fakeRS)
		wantRS    []string // PRM requests to the MCP server's origin
		wantAS    []string // metadata requests to the authorization server
		wantResrc func(rs *fakeRS) string
	}{
		{
			name:   "J2 resource_metadata from WWW-Authenticate at a custom location",
			rs:     func(rs *fakeRS) { rs.prmAt = "custom" },
			wantRS: []string{"/custom/prm.json"},
			wantAS: []string{"/.well-known/oauth-authorization-server"},
		},
		{
			name:   "J2 path-inserted PRM without a header; root never asked",
			rs:     func(rs *fakeRS) { rs.inHeader = false },
			wantRS: []string{"/.well-known/oauth-protected-resource/mcp"},
			wantAS: []string{"/.well-known/oauth-authorization-server"},
		},
		{
			name:      "J2 root PRM after the path-inserted one is missing; resource is the origin",
			rs:        func(rs *fakeRS) { rs.inHeader = false; rs.prmAt = "root" },
			wantRS:    []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"},
			wantAS:    []string{"/.well-known/oauth-authorization-server"},
			wantResrc: func(rs *fakeRS) string { return rs.srv.URL },
		},
		{
			name:   "J4 issuer without path: openid-configuration second",
			as:     func(as *fakeAS) { as.metadataAt = "/.well-known/openid-configuration" },
			wantRS: []string{"/.well-known/oauth-protected-resource/mcp"},
			wantAS: []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"},
		},
		{
			name:   "J4 issuer with path: RFC 8414 path-inserted first",
			as:     func(as *fakeAS) { as.issuerPath = "/tenant1" },
			wantRS: []string{"/.well-known/oauth-protected-resource/mcp"},
			wantAS: []string{"/.well-known/oauth-authorization-server/tenant1"},
		},
		{
			name: "J4 issuer with path: OpenID path-inserted second",
			as: func(as *fakeAS) {
				as.issuerPath = "/tenant1"
				as.metadataAt = "/.well-known/openid-configuration/tenant1"
			},
			wantRS: []string{"/.well-known/oauth-protected-resource/mcp"},
			wantAS: []string{"/.well-known/oauth-authorization-server/tenant1", "/.well-known/openid-configuration/tenant1"},
		},
		{
			name: "J4 issuer with path: OpenID path-appended third",
			as: func(as *fakeAS) {
				as.issuerPath = "/tenant1"
				as.metadataAt = "/tenant1/.well-known/openid-configuration"
			},
			wantRS: []string{"/.well-known/oauth-protected-resource/mcp"},
			wantAS: []string{"/.well-known/oauth-authorization-server/tenant1", "/.well-known/openid-configuration/tenant1",
				"/tenant1/.well-known/openid-configuration"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.as)
			rs := newFakeRS(t, as, tt.rs)
			a := newTestAuthorizer(t, rs, nil)
			status, err := call(t, a, rs.mcpURL(), "tools/list")
			if err != nil || status != http.StatusOK {
				t.Fatalf("call: status %d, err %v", status, err)
			}
			rsPaths, _ := rs.snapshot()
			var gotRS []string
			for _, p := range rsPaths {
				if p != "/mcp" {
					gotRS = append(gotRS, p)
				}
			}
			if diff := cmp.Diff(tt.wantRS, gotRS); diff != "" {
				t.Errorf("PRM requests (-want +got):\n%s", diff)
			}
			asPaths, auth, _, _, _ := as.snapshot()
			var gotAS []string
			for _, p := range asPaths {
				if strings.Contains(p, "/.well-known/") {
					gotAS = append(gotAS, p)
				}
			}
			if diff := cmp.Diff(tt.wantAS, gotAS); diff != "" {
				t.Errorf("metadata requests (-want +got):\n%s", diff)
			}
			wantResource := rs.mcpURL()
			if tt.wantResrc != nil {
				wantResource = tt.wantResrc(rs)
			}
			if got := auth[0].Get("resource"); got != wantResource {
				t.Errorf("resource = %q, want %q", got, wantResource)
			}
		})
	}
}

// TestDiscoveryRefusals checks the conditions under which the client must
// stop before any authorization request.
func TestDiscoveryRefusals(t *testing.T) {
	tests := []struct {
		name    string
		as      func(*fakeAS)
		rs      func(*fakeRS)
		opts    func(*Options)
		wantErr error
		wantMsg string
	}{
		{name: "J4 issuer mismatch", as: func(as *fakeAS) {
			as.issuerEdit = func(string) string { return "https://evil.example" }
		}, wantErr: ErrIssuerMismatch},
		{name: "J4 issuer differs by a trailing slash", as: func(as *fakeAS) {
			as.issuerEdit = func(s string) string { return s + "/" }
		}, wantErr: ErrIssuerMismatch},
		{name: "J4 issuer differs in case", as: func(as *fakeAS) { as.issuerEdit = strings.ToUpper }, wantErr: ErrIssuerMismatch},
		{name: "J5 code_challenge_methods_supported absent", as: func(as *fakeAS) { as.pkce = nil }, wantErr: ErrNoPKCE},
		{name: "J5 plain only", as: func(as *fakeAS) { as.pkce = []string{"plain"} }, wantErr: ErrNoPKCE},
		{name: "J2 PRM names another resource", rs: func(rs *fakeRS) { rs.prmResource = "https://other.example/mcp" }, wantErr: ErrResourceMismatch},
		{name: "attack 61 root PRM names another path", rs: func(rs *fakeRS) {
			rs.inHeader, rs.prmAt = false, "root"
			rs.prmResource = "http://127.0.0.1:1/other"
		}, wantErr: ErrResourceMismatch},
		{name: "J2 no PRM anywhere", rs: func(rs *fakeRS) { rs.inHeader, rs.prmAt = false, "none" }, wantMsg: "no protected resource metadata"},
		{name: "J4 no AS metadata anywhere", as: func(as *fakeAS) { as.metadataAt = "/nowhere" }, wantMsg: "no authorization server metadata"},
		{name: "J6 a client_id without CIMD support, no DCR, no credentials", as: func(as *fakeAS) { as.dcr = false },
			opts: func(o *Options) { o.ClientIDMetadataURL = "https://app.example/client.json" }, wantErr: ErrNoRegistration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.as)
			rs := newFakeRS(t, as, tt.rs)
			a := newTestAuthorizer(t, rs, tt.opts)
			_, err := call(t, a, rs.mcpURL(), "tools/list")
			if err == nil {
				t.Fatal("call succeeded")
			}
			if tt.wantErr != nil && !errors.Is(a.Err(), tt.wantErr) {
				t.Errorf("Err() = %v, want %v", a.Err(), tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(a.Err().Error(), tt.wantMsg) {
				t.Errorf("Err() = %v, want it to contain %q", a.Err(), tt.wantMsg)
			}
			if _, auth, _, _, _ := as.snapshot(); len(auth) != 0 {
				t.Errorf("%d authorization requests were made", len(auth))
			}
		})
	}
}

// TestJ11URLsFromMetadata checks that URLs learned from metadata are held
// to the J11 rules before anything is sent to them.
func TestJ11URLsFromMetadata(t *testing.T) {
	tests := []struct {
		name string
		prm  oauth.ProtectedResourceMetadata
	}{
		{"J11 authorization server over http on a public host", oauth.ProtectedResourceMetadata{AuthorizationServers: []string{"http://as.example"}}},
		{"J11 authorization server javascript:", oauth.ProtectedResourceMetadata{AuthorizationServers: []string{"javascript:alert(1)"}}},
		{"J11 authorization server file:", oauth.ProtectedResourceMetadata{AuthorizationServers: []string{"file:///etc/passwd"}}},
		{"J11 authorization server with userinfo", oauth.ProtectedResourceMetadata{AuthorizationServers: []string{"https://u:p@as.example"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mcpURL string
			srv := newPRMServer(t, func() oauth.ProtectedResourceMetadata {
				md := tt.prm
				md.Resource = mcpURL
				return md
			})
			mcpURL = srv.URL + "/mcp"
			a, err := NewAuthorizer(Options{MCPURL: mcpURL, OpenBrowser: AutoApprove()})
			if err != nil {
				t.Fatal(err)
			}
			_, err = call(t, a, mcpURL, "initialize")
			if err == nil || !errors.Is(a.Err(), ErrURLRefused) {
				t.Fatalf("err %v, Err() %v; want ErrURLRefused", err, a.Err())
			}
		})
	}
}

// TestAddressPolicyDial checks that the discovery client never connects to
// an address the policy refuses: the resolver and dialer are injected and
// record attempts.
func TestAddressPolicyDial(t *testing.T) {
	tests := []struct {
		name     string
		mcpHost  []string // addresses of the MCP server
		resolved string   // what the metadata host resolves to
		wantDial bool
	}{
		{"J11 link-local metadata address from a public server", []string{"203.0.113.7"}, "169.254.169.254", false},
		{"J11 link-local even from a loopback server", []string{"127.0.0.1"}, "169.254.169.254", false},
		{"J11 private address from a public server", []string{"203.0.113.7"}, "10.0.0.5", false},
		{"J11 loopback from a public server", []string{"203.0.113.7"}, "127.0.0.1", false},
		{"J11 loopback from a private server", []string{"10.1.1.1"}, "127.0.0.1", false},
		{"J11 private from a private server", []string{"10.1.1.1"}, "10.0.0.5", true},
		{"J11 public from a public server", []string{"203.0.113.7"}, "198.51.100.9", true},
		{"J11 IPv4-mapped loopback from a public server", []string{"203.0.113.7"}, "::ffff:127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dialled []string
			opts := Options{MCPURL: "https://mcp.example/mcp", OpenBrowser: AutoApprove()}
			opts.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
				if host == "mcp.example" {
					var out []netip.Addr
					for _, s := range tt.mcpHost {
						out = append(out, netip.MustParseAddr(s))
					}
					return out, nil
				}
				return []netip.Addr{netip.MustParseAddr(tt.resolved)}, nil
			}
			opts.dial = func(_ context.Context, network, address string) (net.Conn, error) {
				dialled = append(dialled, address)
				return nil, errors.New("test dialer: no connection")
			}
			a, err := NewAuthorizer(opts)
			if err != nil {
				t.Fatal(err)
			}
			var md oauth.ProtectedResourceMetadata
			err = a.getJSON(context.Background(), "metadata", "https://meta.example/.well-known/x", &md)
			if err == nil {
				t.Fatal("getJSON succeeded")
			}
			if got := len(dialled) > 0; got != tt.wantDial {
				t.Errorf("dialled %q, want a dial: %v (err %v)", dialled, tt.wantDial, err)
			}
			if !tt.wantDial && !errors.Is(err, ErrURLRefused) {
				t.Errorf("err = %v, want ErrURLRefused", err)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"J11 https", "https://as.example/authorize", true},
		{"J11 http on 127.0.0.1", "http://127.0.0.1:8080/authorize", true},
		{"J11 http on localhost", "http://localhost:8080/authorize", true},
		{"J11 http on ::1", "http://[::1]:8080/authorize", true},
		{"J11 http on a public host", "http://as.example/authorize", false},
		{"J11 http on a private address", "http://10.0.0.1/authorize", false},
		{"J11 javascript:", "javascript:alert(1)", false},
		{"J11 data:", "data:text/html,<script>alert(1)</script>", false},
		{"J11 file:", "file:///etc/passwd", false},
		{"J11 vbscript:", "vbscript:msgbox(1)", false},
		{"J11 relative", "/authorize", false},
		{"J11 scheme-relative", "//as.example/authorize", false},
		{"J11 userinfo", "https://user@as.example/authorize", false},
		{"J11 fragment", "https://as.example/authorize#x", false},
		{"J11 empty fragment", "https://as.example/authorize#", false},
		{"J11 whitespace", "https://as.example/a b", false},
		{"J11 newline", "https://as.example/a\nb", false},
		{"J11 backslash", "https://as.example\\@evil.example/", false},
		{"J11 too long", "https://as.example/" + strings.Repeat("a", maxURLLength), false},
		{"J11 localhost lookalike over http", "http://localhost.evil.example/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkURL("test URL", tt.url)
			if (err == nil) != tt.ok {
				t.Errorf("checkURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrURLRefused) {
				t.Errorf("error %v does not wrap ErrURLRefused", err)
			}
		})
	}
}

func TestAddrPolicy(t *testing.T) {
	public := policyFor([]netip.Addr{netip.MustParseAddr("203.0.113.1")})
	private := policyFor([]netip.Addr{netip.MustParseAddr("192.168.1.2")})
	loop := policyFor([]netip.Addr{netip.MustParseAddr("::1")})
	tests := []struct {
		name   string
		addr   string
		policy addrPolicy
		ok     bool
	}{
		{"J11 public from public", "198.51.100.1", public, true},
		{"J11 cloud metadata", "169.254.169.254", loop, false},
		{"J11 IPv6 link-local", "fe80::1", loop, false},
		{"J11 unspecified", "0.0.0.0", loop, false},
		{"J11 this network", "0.1.2.3", loop, false},
		{"J11 broadcast", "255.255.255.255", loop, false},
		{"J11 multicast", "224.0.0.1", loop, false},
		{"J11 RFC 1918 from public", "10.0.0.1", public, false},
		{"J11 CGNAT from public", "100.64.0.1", public, false},
		{"J11 ULA from public", "fd00::1", public, false},
		{"J11 RFC 1918 from private", "10.0.0.1", private, true},
		{"J11 loopback from private", "127.0.0.1", private, false},
		{"J11 loopback from loopback", "127.0.0.1", loop, true},
		{"J11 private from loopback", "172.16.0.1", loop, true},
		{"J11 mapped loopback from public", "::ffff:127.0.0.1", public, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.check(netip.MustParseAddr(tt.addr))
			if (err == nil) != tt.ok {
				t.Errorf("check(%s) = %v, want ok %v", tt.addr, err, tt.ok)
			}
		})
	}
}

func TestSelectScopes(t *testing.T) {
	tests := []struct {
		name                                      string
		override, challenged, supported, previous []string
		want                                      []string
	}{
		{"J7 challenge scope first", nil, []string{"a"}, []string{"a", "b"}, nil, []string{"a"}},
		{"J7 all scopes_supported without a challenge scope", nil, nil, []string{"a", "b"}, nil, []string{"a", "b"}},
		{"J7 omitted when nothing is defined", nil, nil, nil, nil, nil},
		{"J7 step-up union keeps earlier scopes", nil, []string{"b", "c"}, nil, []string{"a", "b"}, []string{"a", "b", "c"}},
		{"J7 --scope overrides the selection", []string{"x"}, []string{"a"}, []string{"a", "b"}, nil, []string{"x"}},
		{"J7 previous scopes kept on re-authorization", nil, nil, []string{"z"}, []string{"a"}, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := selectScopes(tt.override, tt.challenged, tt.supported, tt.previous)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if slices.Contains(got, "") {
				t.Error("empty scope")
			}
		})
	}
}
