// Command mcpserver is a small MCP server (Streamable HTTP, official MCP Go
// SDK) protected by package resource: every request needs an access token
// for this server from the configured authorization server, such as
// `mcpauth serve`.
//
// It has two tools. echo needs only the base scope mcp:tools; whoami also
// needs mcp:identity, so a client authorized with the base scope gets a 403
// insufficient_scope step-up challenge when it calls whoami (RFC 6750 §3.1,
// MCP 2025-11-25 Authorization §Runtime Insufficient Scope Errors).
//
//	go run ./examples/mcpserver --addr 127.0.0.1:8081 --issuer http://localhost:8080
//
// prints the MCP URL to give to an MCP client. Flags: --addr, --issuer,
// --resource-url (default http://<addr>/mcp; set it when clients reach the
// server through another URL, such as a TLS-terminating proxy).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/resource"
)

// Scopes of the example server.
const (
	// ScopeTools is needed for every request (announced in 401 challenges
	// and in the metadata's scopes_supported).
	ScopeTools = "mcp:tools"
	// ScopeIdentity is needed by the whoami tool only.
	ScopeIdentity = "mcp:identity"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mcpserver:", err)
		os.Exit(1)
	}
}

// run parses args, listens, prints the MCP URL to stdout and serves until
// ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mcpserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	issuer := fs.String("issuer", "http://localhost:8080", "issuer identifier of the authorization server")
	resourceURL := fs.String("resource-url", "", "public URL of the MCP endpoint (default http://<addr>/mcp)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %q: %w", *addr, err)
	}
	defer ln.Close()
	if *resourceURL == "" {
		*resourceURL = "http://" + ln.Addr().String() + "/mcp"
	}
	h, mcpURL, err := newHandler(config{
		Issuer:   *issuer,
		Resource: *resourceURL,
		Client:   &http.Client{Timeout: 10 * time.Second},
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Stateless Streamable HTTP has no long-lived streams: each response
		// ends with its request.
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	fmt.Fprintf(stdout, "MCP server for issuer %s\nMCP URL: %s\n", *issuer, mcpURL)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// config holds what newHandler needs.
type config struct {
	Issuer   string       // authorization server issuer
	Resource string       // public URL of the MCP endpoint
	Client   *http.Client // for the issuer's metadata and JWKS
}

// newHandler returns the whole HTTP surface of the server (the protected MCP
// endpoint and its protected resource metadata) and the canonical MCP URL.
func newHandler(cfg config) (http.Handler, string, error) {
	mcpURL, err := oauth.CanonicalResource(cfg.Resource)
	if err != nil {
		return nil, "", fmt.Errorf("--resource-url: %w", err)
	}
	u, err := url.Parse(mcpURL)
	if err != nil {
		return nil, "", fmt.Errorf("--resource-url: %w", err)
	}
	jwt, err := resource.NewJWTVerifier(resource.JWTOptions{Issuer: cfg.Issuer, Resource: mcpURL, Client: cfg.Client})
	if err != nil {
		return nil, "", err
	}
	requireToken := resource.RequireBearer(resource.NewCache(jwt, resource.CacheOptions{}), resource.Options{
		Resource:  mcpURL,
		Scopes:    []string{ScopeTools},
		ScopesFor: resource.ToolScopes(map[string][]string{"whoami": {ScopeIdentity}}),
	})

	mux := http.NewServeMux()
	if err := resource.HandleMetadata(mux, oauth.ProtectedResourceMetadata{
		Resource:             mcpURL,
		AuthorizationServers: []string{cfg.Issuer},
		ScopesSupported:      []string{ScopeTools},
		ResourceName:         "mcpauth example MCP server",
	}); err != nil {
		return nil, "", err
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	// Stateless: each request carries its own token, and the SDK passes the
	// request context, with the verified TokenInfo, to the tool handlers.
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newMCPServer() }, &mcp.StreamableHTTPOptions{Stateless: true})
	mux.Handle(path, requireToken(mcpHandler))
	return mux, mcpURL, nil
}

// EchoInput is the input of the echo tool.
type EchoInput struct {
	Text string `json:"text" jsonschema:"the text to echo back"`
}

// Identity is the output of the whoami tool.
type Identity struct {
	Subject  string   `json:"subject"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

func newMCPServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpauth-example", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo the text back (needs scope " + ScopeTools + ")."}, echo)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Tell who the access token was issued to (needs scope " + ScopeIdentity + ")."}, whoami)
	return s
}

func echo(_ context.Context, _ *mcp.CallToolRequest, in EchoInput) (*mcp.CallToolResult, any, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
}

func whoami(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, Identity, error) {
	// RequireBearer already answered 403 with a step-up challenge if the
	// scope is missing (ToolScopes above); checking again here keeps the
	// tool safe if it is ever mounted without that rule.
	if err := resource.RequireScopes(ctx, ScopeIdentity); err != nil {
		return nil, Identity{}, err
	}
	info := resource.TokenInfoFromContext(ctx)
	return nil, Identity{Subject: info.Subject, ClientID: info.ClientID, Scopes: info.Scopes}, nil
}
