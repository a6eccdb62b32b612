package resource

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestToolScopes(t *testing.T) {
	scopesFor := ToolScopes(map[string][]string{
		"whoami": {"profile:read"},
		"delete": {"files:write", "admin"},
	})
	all := []string{"files:write", "admin", "profile:read"}
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"s":"` + strings.Repeat("x", MaxToolCallPeek) + `"}}}`
	tests := []struct {
		name   string
		method string
		body   string
		want   []string
	}{
		{"H6 tools/call of a scoped tool", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`, []string{"profile:read"}},
		{"H6 tools/call of an unscoped tool", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`, nil},
		{"H6 other method", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil},
		{"H6 initialize", "POST", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"name":"whoami"}}`, nil},
		{"H6 GET stream", "GET", ``, nil},
		{"H6 batch needs the scopes of every call", "POST", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete"}}]`, []string{"profile:read", "files:write", "admin"}},
		{"H6 duplicate name members all count", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"whoami"}}`, []string{"profile:read"}},
		{"H6 name member in another case counts", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"delete","name":"echo"}}`, []string{"files:write", "admin"}},
		{"H6 method member in another case counts", "POST", `{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"whoami"}}`, []string{"profile:read"}},
		{"H6 duplicate method members", "POST", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"whoami"}}`, []string{"profile:read"}},
		{"H6 escaped member name", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"whoami"}}`, []string{"profile:read"}},
		{"H6 invalid JSON needs every scope", "POST", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"whoami"}`, all},
		{"H6 oversized body needs every scope", "POST", big, all},
		{"H6 params not an object", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["whoami"]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "https://mcp.example.com/mcp", strings.NewReader(tt.body))
			got := scopesFor(r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("scopes (-want +got):\n%s", diff)
			}
			rest, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(rest) != tt.body {
				t.Fatalf("body not restored: got %d bytes, want %d", len(rest), len(tt.body))
			}
		})
	}
}
