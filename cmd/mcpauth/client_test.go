package main

import (
	"encoding/json"
	"encoding/pem"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// checkServer serves client metadata documents over https on loopback and
// returns the server plus a CA file trusting it.
func checkServer(t *testing.T, docs map[string]func(w http.ResponseWriter)) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h(w)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

func jsonDoc(body string, headers ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		_, _ = w.Write([]byte(body))
	}
}

func TestClientCheckGolden(t *testing.T) {
	var base string
	docs := map[string]func(w http.ResponseWriter){}
	srv, ca := checkServer(t, docs)
	base = srv.URL
	docs["/good.json"] = jsonDoc(`{"client_id":"`+base+`/good.json","client_name":"Good Client",
		"redirect_uris":["http://localhost/callback","http://127.0.0.1/callback"],
		"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}`,
		"Cache-Control", "max-age=600", "ETag", `"v1"`)
	docs["/bad.json"] = jsonDoc(`{"client_id":"https://impersonated.example/client.json","client_secret":"s3cret",
		"redirect_uris":["javascript:alert(1)"],"token_endpoint_auth_method":"client_secret_basic"}`)
	docs["/html.json"] = func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>hello</html>"))
	}
	tests := []struct {
		name, path string
		code       int
	}{
		{"accepted", "/good.json", 0},
		{"rejected-document", "/bad.json", 1},
		{"rejected-content-type", "/html.json", 1},
		{"rejected-not-found", "/missing.json", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCmd(t, "client", "check", base+tt.path, "--dev-allow-loopback", "--cimd-ca-file", ca)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			port := base[strings.LastIndex(base, ":")+1:]
			got := strings.ReplaceAll(out, port, "PORT")
			golden := filepath.Join("testdata", "check", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/mcpauth -run TestClientCheckGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestClientCheckJSON(t *testing.T) {
	docs := map[string]func(w http.ResponseWriter){}
	srv, ca := checkServer(t, docs)
	docs["/c.json"] = jsonDoc(`{"client_id":"` + srv.URL + `/c.json","redirect_uris":["http://127.0.0.1/cb"],"client_secret":""}`)
	out, _, code := runCmd(t, "client", "check", "--json", "--dev-allow-loopback", "--cimd-ca-file", ca, srv.URL+"/c.json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (attack 26: empty client_secret)", code)
	}
	var rep struct {
		Accepted bool `json:"accepted"`
		Problems []struct {
			Reason, Ref, Message string
		} `json:"problems"`
		Cache *struct {
			LifetimeSeconds int64 `json:"lifetime_seconds"`
		} `json:"cache"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if rep.Accepted || len(rep.Problems) == 0 || rep.Problems[0].Ref != "draft-ietf-oauth-client-id-metadata-document-02 §4.1" {
		t.Errorf("report: %+v", rep)
	}
	if rep.Cache == nil || rep.Cache.LifetimeSeconds != 300 {
		t.Errorf("decision 3: default lifetime 300 s expected, got %+v", rep.Cache)
	}
}

func TestClientCheckUsageAndStrictMode(t *testing.T) {
	if _, _, code := runCmd(t, "client", "check"); code != 2 {
		t.Errorf("no URL: exit %d, want 2", code)
	}
	if _, _, code := runCmd(t, "client", "check", "https://a.example/c.json", "https://b.example/c.json"); code != 2 {
		t.Errorf("two URLs: exit %d, want 2", code)
	}
	if _, _, code := runCmd(t, "client", "check", "--cimd-ca-file", "/nonexistent/ca.pem", "https://a.example/c.json"); code != 2 {
		t.Errorf("missing CA file: exit %d, want 2", code)
	}
	out, _, code := runCmd(t, "client", "check", "--help")
	if code != 0 || !strings.Contains(out, "--dev-allow-loopback") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	// Without the development flag a loopback client is refused before any fetch.
	docs := map[string]func(w http.ResponseWriter){}
	srv, ca := checkServer(t, docs)
	fetched := false
	docs["/c.json"] = func(w http.ResponseWriter) { fetched = true }
	out, _, code = runCmd(t, "client", "check", "--cimd-ca-file", ca, srv.URL+"/c.json")
	if code != 1 || fetched {
		t.Errorf("B5 strict mode: exit %d, fetched %v\n%s", code, fetched, out)
	}
	// A syntactically invalid client_id is a rejection (exit 1), not a usage error.
	out, _, code = runCmd(t, "client", "check", "http://client.example.com/cimd.json")
	if code != 1 || !strings.Contains(out, "<client_id_not_https>") {
		t.Errorf("attack 1: exit %d\n%s", code, out)
	}
}

// TestClientCheckHostileText: a document's text cannot drive the terminal
// of whoever checks it (escape sequences, bidirectional overrides), and
// client_name is shown as the consent page would show it (CIMD §8.8, §9.2,
// docs/security.md attack 32).
func TestClientCheckHostileText(t *testing.T) {
	docs := map[string]func(w http.ResponseWriter){}
	srv, ca := checkServer(t, docs)
	id := srv.URL + "/ansi.json"
	docs["/ansi.json"] = jsonDoc(`{"client_id":"` + id + `","client_name":"Nice\u001b]0;PWNED\u0007\u001b[2J \u202eppa",
		"redirect_uris":["http://127.0.0.1/callback"],"scope":"read"}`)
	out, errOut, _ := runCmd(t, "client", "check", id, "--dev-allow-loopback", "--cimd-ca-file", ca)
	if strings.ContainsAny(out+errOut, "\x1b\x07\u202e") {
		t.Errorf("client check printed terminal controls:\n%q", out+errOut)
	}
	if !strings.Contains(out, "client_name") || !strings.Contains(out, "PWNED") {
		t.Errorf("client check did not print the (cleaned) name:\n%s", out)
	}
}
