package resource_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/resource"
)

// An MCP server built with the official Go SDK, protected by RequireBearer,
// called by the SDK's client with an access token.
func Example() {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mcpURL := srv.URL + "/mcp"

	// A stand-in verifier keeps the example short; a real server uses
	// resource.NewJWTVerifier (see its example) or NewIntrospectionVerifier.
	verifier := resource.TokenVerifierFunc(func(ctx context.Context, token string) (*resource.TokenInfo, error) {
		if token != "demo-token" {
			return nil, resource.ErrInvalidToken
		}
		return &resource.TokenInfo{Subject: "alice", Scopes: []string{"mcp:tools"}, Expiry: time.Now().Add(time.Hour)}, nil
	})

	server := mcp.NewServer(&mcp.Implementation{Name: "hello", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "hello", Description: "Greet the token's subject."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			info := resource.TokenInfoFromContext(ctx) // set by RequireBearer
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello " + info.Subject}}}, nil, nil
		})
	// Stateless, so that each request's context (and token) reaches the tools.
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true})
	mux.Handle("/mcp", resource.RequireBearer(verifier, resource.Options{Resource: mcpURL, Scopes: []string{"mcp:tools"}})(mcpHandler))
	if err := resource.HandleMetadata(mux, oauth.ProtectedResourceMetadata{
		Resource:             mcpURL,
		AuthorizationServers: []string{"https://auth.example.com"},
		ScopesSupported:      []string{"mcp:tools"},
	}); err != nil {
		log.Fatal(err)
	}

	// Without a token: 401, and where MCP clients find the metadata.
	resp, err := srv.Client().Post(mcpURL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.ReplaceAll(resp.Header.Get("WWW-Authenticate"), srv.URL, "<origin>"))

	// With a token: the SDK client calls the tool.
	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1.0.0"}, nil)
	session, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:   mcpURL,
		HTTPClient: &http.Client{Transport: bearerTransport{"demo-token"}},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	res, err := session.CallTool(context.Background(), &mcp.CallToolParams{Name: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].(*mcp.TextContent).Text)
	// Output:
	// 401 Bearer scope="mcp:tools", resource_metadata="<origin>/.well-known/oauth-protected-resource/mcp"
	// hello alice
}

// bearerTransport sends a fixed access token, as an MCP client does once it
// is authorized.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// Wiring for JWT access tokens from mcpauth (or any RFC 9068 issuer), with
// per-tool scopes and a verified-token cache.
func ExampleNewJWTVerifier() {
	const mcpURL = "https://mcp.example.com/mcp"
	jwt, err := resource.NewJWTVerifier(resource.JWTOptions{
		Issuer:   "https://auth.example.com",
		Resource: mcpURL,
		Client:   &http.Client{Timeout: 10 * time.Second},
	})
	if err != nil {
		log.Fatal(err)
	}
	requireToken := resource.RequireBearer(resource.NewCache(jwt, resource.CacheOptions{}), resource.Options{
		Resource:  mcpURL,
		Scopes:    []string{"mcp:tools"},
		ScopesFor: resource.ToolScopes(map[string][]string{"delete_file": {"files:write"}}),
	})
	var mcpHandler http.Handler // mcp.NewStreamableHTTPHandler(...)
	mux := http.NewServeMux()
	mux.Handle("/mcp", requireToken(mcpHandler))
}
