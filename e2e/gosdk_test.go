package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
)

// goCallback is the Go client's loopback redirect URI. With
// --dev-auto-approve nothing has to listen there: the test reads the code
// from mcpauth's redirect.
const goCallback = "http://127.0.0.1:33419/callback"

// tokenRequest is one request to the token endpoint and its answer.
type tokenRequest struct {
	form   url.Values
	basic  bool // HTTP Basic client authentication was sent
	status int
}

// tokenLog records the token endpoint requests of the SDK's HTTP client.
type tokenLog struct {
	mu    sync.Mutex
	forms []tokenRequest
	next  http.RoundTripper
}

func (l *tokenLog) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") || r.GetBody == nil {
		return l.next.RoundTrip(r)
	}
	body, err := r.GetBody()
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(body)
	form, _ := url.ParseQuery(string(b))
	resp, err := l.next.RoundTrip(r)
	tr := tokenRequest{form: form, basic: r.Header.Get("Authorization") != ""}
	if err == nil {
		tr.status = resp.StatusCode
	}
	l.mu.Lock()
	l.forms = append(l.forms, tr)
	l.mu.Unlock()
	return resp, err
}

func (l *tokenLog) since(n int) []tokenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.forms[n:])
}

func (l *tokenLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.forms)
}

// expirableSource is the token source the handler builds after each code
// exchange (AuthorizationCodeHandlerConfig.NewTokenSource): the oauth2
// package's own refreshing source, plus expire, which makes it treat the
// current access token as expired so that the next request refreshes with
// the refresh token, as it would ten minutes later.
type expirableSource struct {
	mu   sync.Mutex
	ctx  context.Context
	cfg  *oauth2.Config
	src  oauth2.TokenSource
	last *oauth2.Token
}

func (s *expirableSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, err := s.src.Token()
	if err == nil {
		s.last = tok
	}
	return tok, err
}

func (s *expirableSource) current() *oauth2.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *expirableSource) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = s.cfg.TokenSource(s.ctx, &oauth2.Token{RefreshToken: s.last.RefreshToken, Expiry: time.Now().Add(-time.Minute)})
}

// autoApproveFetcher is the AuthorizationCodeFetcher: it opens the
// authorization URL the way a browser would and, since --dev-auto-approve
// skips login and consent, gets the redirect to the callback at once.
func autoApproveFetcher(urls *[]*url.URL, mu *sync.Mutex) auth.AuthorizationCodeFetcher {
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		u, err := url.Parse(args.URL)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		*urls = append(*urls, u)
		mu.Unlock()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		loc, err := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), goCallback) {
			return nil, fmt.Errorf("authorize: status %d, Location %q, body %q", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		q := loc.Query()
		if e := q.Get("error"); e != "" {
			return nil, fmt.Errorf("authorize: %s: %s", e, q.Get("error_description"))
		}
		return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
	}
}

// echo calls the echo tool and checks that it answers with text.
func echo(ctx context.Context, t *testing.T, session *mcp.ClientSession, text string) {
	t.Helper()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("echo result: %+v", res)
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != text {
		t.Errorf("echo answered %+v, want text %q", res.Content[0], text)
	}
}

// TestGoSDKClient runs the official MCP Go SDK client (auth.
// AuthorizationCodeHandler with a client ID metadata document) against
// `mcpauth serve --dev-allow-loopback --dev-auto-approve alice` and
// examples/mcpserver: authorization, tools, refresh, step-up, replay.
func TestGoSDKClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bins := buildBinaries(t)
	cert, caFile := localhostCert(t)
	clientID := serveMetadata(t, cert, map[string]any{
		"client_name":                "mcpauth e2e (Go SDK)",
		"redirect_uris":              []string{goCallback},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	st := startStack(t, bins, "--dev-allow-loopback", "--dev-auto-approve", "alice", "--cimd-ca-file", caFile)

	log := &tokenLog{next: http.DefaultTransport}
	httpClient := &http.Client{Transport: log, Timeout: 15 * time.Second}
	var (
		mu      sync.Mutex
		azURLs  []*url.URL
		sources []*expirableSource
	)
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: clientID},
		RedirectURL:                    goCallback,
		AuthorizationCodeFetcher:       autoApproveFetcher(&azURLs, &mu),
		Client:                         httpClient,
		NewTokenSource: func(ctx context.Context, cfg *oauth2.Config, tok *oauth2.Token) (oauth2.TokenSource, error) {
			s := &expirableSource{ctx: ctx, cfg: cfg, src: cfg.TokenSource(ctx, tok), last: tok}
			mu.Lock()
			sources = append(sources, s)
			mu.Unlock()
			return s, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	latest := func() *expirableSource {
		mu.Lock()
		defer mu.Unlock()
		if len(sources) == 0 {
			t.Fatal("no token was issued")
		}
		return sources[len(sources)-1]
	}
	authorizations := func() []*url.URL {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(azURLs)
	}

	client := mcp.NewClient(&mcp.Implementation{Name: "mcpauth-e2e-go", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: st.mcpURL, OAuthHandler: h,
		HTTPClient: &http.Client{Timeout: 15 * time.Second}, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer session.Close()

	var firstRefresh, rotated string
	t.Run("J1-J6 CIMD client authorizes and calls echo", func(t *testing.T) {
		az := authorizations()
		if len(az) != 1 {
			t.Fatalf("%d authorization requests, want 1", len(az))
		}
		q := az[0].Query()
		want := map[string]string{"client_id": clientID, "resource": st.mcpURL, "scope": scopeTools,
			"code_challenge_method": "S256", "redirect_uri": goCallback, "response_type": "code"}
		got := map[string]string{}
		for k := range want {
			got[k] = q.Get(k)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("authorization request (-want +got):\n%s", diff)
		}
		tools, err := session.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range tools.Tools {
			names = append(names, tl.Name)
		}
		slices.Sort(names)
		if diff := cmp.Diff([]string{"echo", "whoami"}, names); diff != "" {
			t.Errorf("tools (-want +got):\n%s", diff)
		}
		echo(ctx, t, session, "hello from Go")
		// golang.org/x/oauth2 does not know the client's auth method and
		// tries HTTP Basic first (client_id, empty secret). mcpauth refuses
		// it for a client registered with "none", and the same code then
		// succeeds in the form: a failed client authentication must not
		// consume the code (issue #4, /token).
		var exchanges []tokenRequest
		for _, tr := range log.since(0) {
			if tr.form.Get("grant_type") == "authorization_code" {
				exchanges = append(exchanges, tr)
			}
		}
		if n := len(exchanges); n == 0 || exchanges[n-1].status != http.StatusOK {
			t.Fatalf("code exchanges %+v, want the last one 200", exchanges)
		}
		for _, ex := range exchanges[:len(exchanges)-1] {
			if !ex.basic || ex.status != http.StatusUnauthorized && ex.status != http.StatusBadRequest ||
				ex.form.Get("code") != exchanges[len(exchanges)-1].form.Get("code") {
				t.Errorf("F before the successful exchange: %+v, want a refused Basic attempt with the same code", ex)
			}
		}
		tok := latest().current()
		if tok.RefreshToken == "" {
			t.Fatal("F no refresh token for a client with the refresh_token grant")
		}
		firstRefresh = tok.RefreshToken
	})

	t.Run("F refresh rotates the refresh token and the new access token works", func(t *testing.T) {
		src := latest()
		old := src.current()
		src.expire()
		n := log.len()
		echo(ctx, t, session, "after refresh")
		var grants []string
		for _, tr := range log.since(n) {
			grants = append(grants, tr.form.Get("grant_type"))
			if tr.form.Get("grant_type") == "refresh_token" && tr.form.Get("refresh_token") != old.RefreshToken {
				t.Error("the refresh did not use the refresh token")
			}
		}
		if !slices.Contains(grants, "refresh_token") {
			t.Fatalf("token requests %q, want a refresh_token grant", grants)
		}
		tok := src.current()
		if tok.AccessToken == old.AccessToken || tok.RefreshToken == "" || tok.RefreshToken == old.RefreshToken {
			t.Errorf("F tokens after refresh: access changed %v, refresh rotated %v", tok.AccessToken != old.AccessToken,
				tok.RefreshToken != "" && tok.RefreshToken != old.RefreshToken)
		}
		if scope, _ := tok.Extra("scope").(string); scope != scopeTools {
			t.Errorf("F8 refreshed scope %q, want %q", scope, scopeTools)
		}
		rotated = tok.RefreshToken
	})

	t.Run("H6 step-up: 403 insufficient_scope, re-authorization, whoami succeeds", func(t *testing.T) {
		before := len(authorizations())
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		az := authorizations()
		if len(az) != before+1 {
			t.Fatalf("%d authorization requests after the step-up, want %d", len(az), before+1)
		}
		scopes := strings.Fields(az[len(az)-1].Query().Get("scope"))
		slices.Sort(scopes)
		if diff := cmp.Diff([]string{scopeIdentity, scopeTools}, scopes); diff != "" {
			t.Errorf("step-up scope (-want +got):\n%s", diff)
		}
		if res.IsError {
			t.Fatalf("whoami: %+v", res)
		}
		var who struct {
			Subject  string   `json:"subject"`
			ClientID string   `json:"client_id"`
			Scopes   []string `json:"scopes"`
		}
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &who); err != nil {
			t.Fatal(err)
		}
		slices.Sort(who.Scopes)
		if who.ClientID != clientID || who.Subject == "" || !slices.Equal(who.Scopes, []string{scopeIdentity, scopeTools}) {
			t.Errorf("whoami = %+v", who)
		}
	})

	t.Run("F replay of a rotated-out refresh token fails and revokes its family", func(t *testing.T) {
		if firstRefresh == "" || rotated == "" {
			t.Fatal("an earlier step failed")
		}
		// In this order: the replay revokes the family, then its live token fails.
		for _, rt := range []struct{ name, token string }{{"the replayed refresh token", firstRefresh}, {"the refresh token of the revoked family", rotated}} {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt.token}, "client_id": {clientID}}
			if code, e := postToken(ctx, t, st.issuer, form); code != http.StatusBadRequest || e != "invalid_grant" {
				t.Errorf("%s: %d %q, want 400 invalid_grant", rt.name, code, e)
			}
		}
		// The step-up's tokens are another family and keep working.
		src := latest()
		src.expire()
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("whoami after refreshing the step-up family: %v %+v", err, res)
		}
	})
}
