package gateway

import "testing"

func TestMCPMethodLabel(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`, "tools/call"},
		{` {"jsonrpc":"2.0","method":"notifications/initialized"}`, "notifications/initialized"},
		{`{"jsonrpc":"2.0","id":1,"method":"https://attacker.example/?user=alice"}`, "other"},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, "other"},
		{`[{"jsonrpc":"2.0","id":1,"method":"tools/call"}]`, "other"},
		{`not json`, "other"},
		{``, "other"},
	} {
		if got := mcpMethod([]byte(tc.body)); got != tc.want {
			t.Errorf("mcpMethod(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
