package resource

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// FuzzToolScopes checks that ToolScopes never loses a tool a strict JSON-RPC
// reader (exact member names, last duplicate wins, as the MCP Go SDK reads
// them) would call, and always puts the body back unchanged.
func FuzzToolScopes(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"secret"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"secret"}}]`,
		`{"method":"tools/call","params":{"NAME":"secret"},"Method":"ping"}`,
		`{"method":"tools/call","params":{"n\u0061me":"secret"}}`,
		`not json`,
	} {
		f.Add(s)
	}
	scopesFor := ToolScopes(map[string][]string{"secret": {"s"}})
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "https://mcp.example.com/mcp", strings.NewReader(body))
		got := scopesFor(r)
		rest, err := io.ReadAll(r.Body)
		if err != nil || string(rest) != body {
			t.Fatalf("body not restored: %q, %v", rest, err)
		}
		var msg struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		var exact map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &exact) != nil {
			return
		}
		if json.Unmarshal(exact["method"], &msg.Method) != nil || msg.Method != "tools/call" {
			return
		}
		var params map[string]json.RawMessage
		if json.Unmarshal(exact["params"], &params) != nil || json.Unmarshal(params["name"], &msg.Params.Name) != nil {
			return
		}
		if msg.Params.Name == "secret" && !slices.Contains(got, "s") {
			t.Fatalf("body %q calls tool secret but ToolScopes returned %q", body, got)
		}
	})
}

// FuzzJWTVerifier feeds arbitrary tokens to a verifier whose keys are
// already cached: it must never panic, every rejection must be an
// invalid_token, and only the genuine token may pass. go-jose decodes
// base64url leniently (stray low bits, line breaks), so "genuine" means
// segments that decode to the genuine token's bytes.
func FuzzJWTVerifier(f *testing.F) {
	is := newTestIssuer(f)
	key := newES256Key(f, "k1")
	is.publish(key)
	v := is.verifier(f, nil)
	valid := key.mint(f, is.claims("mcp"), nil)
	if _, err := v.VerifyToken(context.Background(), valid); err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(unsignedToken(f, map[string]any{"alg": "none", "typ": "at+jwt"}, is.claims("mcp"), ""))
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	f.Add("a.b.c")
	// The same signature with a stray bit after its last byte.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	f.Add(valid[:len(valid)-1] + string(alphabet[strings.IndexByte(alphabet, valid[len(valid)-1])^1]))
	f.Fuzz(func(t *testing.T, token string) {
		_, err := v.VerifyToken(context.Background(), token)
		switch {
		case err == nil && !sameJWS(token, valid):
			t.Fatalf("accepted a token that was never issued: %q", token)
		case err != nil && !errors.Is(err, ErrInvalidToken):
			t.Fatalf("rejection %v does not wrap ErrInvalidToken", err)
		}
	})
}

// sameJWS reports whether the dot-separated segments of a and b decode to
// the same bytes.
func sameJWS(a, b string) bool {
	sa, sb := strings.Split(a, "."), strings.Split(b, ".")
	if len(sa) != len(sb) {
		return false
	}
	for i := range sa {
		da, errA := base64.RawURLEncoding.DecodeString(sa[i])
		db, errB := base64.RawURLEncoding.DecodeString(sb[i])
		if errA != nil || errB != nil || !bytes.Equal(da, db) {
			return false
		}
	}
	return true
}
