package authserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/store"
	sqlstore "github.com/mcpauth/mcpauth/internal/store/sql"
	"github.com/mcpauth/mcpauth/internal/token"
)

// benchServer is a Server on a real SQLite store, called in-process. Its
// one CIMD client is fetched once from a loopback TLS server and then
// served from the resolver's cache (the clock stands still).
type benchServer struct {
	s      *Server
	db     *sqlstore.DB
	client string
	now    time.Time
}

func newBenchServer(b *testing.B) *benchServer {
	b.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	keys := token.NewKeys(db, token.KeyOptions{Now: clock, PublishLead: -1})
	if err := keys.Load(ctx); err != nil {
		b.Fatal(err)
	}
	docs := &docServer{}
	docs.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=86400")
		_ = json.NewEncoder(w).Encode(clientDoc(docs.srv.URL + r.URL.Path))
	}))
	b.Cleanup(docs.srv.Close)
	resolver, err := cimd.NewResolver(cimd.Options{AllowLoopback: true, RootCAs: docs.pool(), Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Issuer: "http://127.0.0.1:9", Store: db, Resolver: resolver, Keys: keys, Now: clock,
		Resources:     []Resource{{URL: testResource, Scopes: []string{"read", "write"}}},
		StaticClients: []StaticClient{{ClientID: testRSClient, SecretHash: token.Hash(testRSSecret), Introspect: true}}})
	if err != nil {
		b.Fatal(err)
	}
	bs := &benchServer{s: s, db: db, client: docs.srv.URL + "/client.json", now: now}
	if _, err := s.loadClient(ctx, bs.client); err != nil { // warm the document cache
		b.Fatal(err)
	}
	return bs
}

// newCode stores an authorization code as /authorize would.
func (bs *benchServer) newCode(b *testing.B, p pkce) string {
	code, hash := token.NewOpaque(token.CodePrefix)
	err := bs.db.CreateCode(context.Background(), store.Code{Hash: hash, ClientID: bs.client, UserID: "user",
		RedirectURI: testRedirect, CodeChallenge: p.challenge, Resource: testResource, Scopes: "read",
		FamilyID: token.NewID(), AuthTime: bs.now, ExpiresAt: bs.now.Add(5 * time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	return code
}

// post calls the handler in-process and returns the recorder.
func (bs *benchServer) post(b *testing.B, path string, form url.Values, basic bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(testRSClient, testRSSecret)
	}
	rec := httptest.NewRecorder()
	bs.s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec
}

func (bs *benchServer) exchange(b *testing.B, code string, p pkce) tokenResult {
	rec := bs.post(b, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {p.verifier}, "client_id": {bs.client}, "resource": {testResource}}, false)
	var tr tokenResult
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		b.Fatal(err)
	}
	return tr
}

// BenchmarkTokenCodeExchange measures POST /token with grant_type
// authorization_code for a CIMD public client: PKCE check, JWT signing, and
// the code, family and refresh token written in one transaction.
func BenchmarkTokenCodeExchange(b *testing.B) {
	bs := newBenchServer(b)
	p := newPKCE()
	codes := make([]string, b.N)
	for i := range codes {
		codes[i] = bs.newCode(b, p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		bs.exchange(b, codes[i], p)
	}
}

// BenchmarkTokenRefresh measures POST /token with grant_type refresh_token:
// each iteration rotates the token the previous one returned.
func BenchmarkTokenRefresh(b *testing.B) {
	bs := newBenchServer(b)
	p := newPKCE()
	rt := bs.exchange(b, bs.newCode(b, p), p).RefreshToken
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec := bs.post(b, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {bs.client}}, false)
		var tr tokenResult
		if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
			b.Fatal(err)
		}
		rt = tr.RefreshToken
	}
}

// BenchmarkIntrospect measures POST /introspect of an access token by a
// resource server authenticated with client_secret_basic.
func BenchmarkIntrospect(b *testing.B) {
	bs := newBenchServer(b)
	p := newPKCE()
	at := bs.exchange(b, bs.newCode(b, p), p).AccessToken
	form := url.Values{"token": {at}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec := bs.post(b, "/introspect", form, true)
		if !strings.Contains(rec.Body.String(), `"active":true`) {
			b.Fatalf("inactive: %s", rec.Body)
		}
	}
}
