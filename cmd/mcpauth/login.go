package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/internal/login"
)

const loginUsage = `Usage:
  mcpauth login MCP_URL [--client-id URL] [--scope S]... [--print-token] [--no-browser]
                        [--call TOOL [--arguments JSON]] [--token-dir DIR] [--callback-port N]
  mcpauth login --logout MCP_URL

Logs in to an MCP server the way an MCP client does (MCP 2025-11-25
authorization): discovers its authorization server from the 401 challenge and
the RFC 9728 / RFC 8414 metadata, registers (pre-registered credentials, then
the Client ID Metadata Document given with --client-id when the server
supports CIMD, then dynamic registration, else a loopback development client
http://localhost?redirect_uri=...&scope=... when no --client-id is given),
opens the browser for the
authorization code flow with PKCE through a redirect listener on 127.0.0.1,
stores the tokens (mode 0600, in the user's config directory), refreshes them
when needed, asks again for broader scopes when the server answers 403
insufficient_scope, and prints the server's tools.

Pre-registered credentials: --registered-client-id and --registered-issuer
(they are only ever sent to that issuer), with the secret, if any, in the
environment variable MCPAUTH_LOGIN_CLIENT_SECRET.

--conformance is for the MCP conformance suite only: the authorization request
is sent without a browser (the suite's server approves at once), and
pre-registered credentials are read from MCP_CONFORMANCE_CONTEXT.

Exit status: 0 logged in (and the tool call, if any, succeeded), 1 failure,
2 usage error.`

// loginFlags are the flags of `mcpauth login`.
type loginFlags struct {
	clientID, registeredID, registeredIssuer, tokenDir, call, arguments *string
	printToken, noBrowser, logout, conformance                          *bool
	timeout                                                             *time.Duration
	callbackPort                                                        *int
	scopes                                                              stringList
}

func runLogin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runLoginWith(ctx, args, getenv, stdout, stderr, nil)
}

// runLoginWith is runLogin with the browser step replaced when browser is
// not nil (tests).
func runLoginWith(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer,
	browser func(context.Context, string) error) error {
	// Server names, tool descriptions, tool results and error texts from
	// the servers are printed: they must not drive the terminal.
	stdout, stderr = newTermSafe(stdout), newTermSafe(stderr)
	fs := newFlagSet("login", loginUsage, stderr)
	f := loginFlags{
		clientID: fs.String("client-id", getenv("MCPAUTH_LOGIN_CLIENT_ID"),
			"URL of your client ID metadata document, used at servers that support CIMD (env MCPAUTH_LOGIN_CLIENT_ID)"),
		registeredID:     fs.String("registered-client-id", "", "pre-registered client_id at --registered-issuer"),
		registeredIssuer: fs.String("registered-issuer", "", "the issuer the pre-registered client belongs to"),
		tokenDir: fs.String("token-dir", getenv("MCPAUTH_TOKEN_DIR"),
			"directory for tokens and registrations (default: the user config directory + /mcpauth) (env MCPAUTH_TOKEN_DIR)"),
		call:        fs.String("call", "", "after login, call this tool"),
		arguments:   fs.String("arguments", "{}", "JSON object of arguments for --call"),
		printToken:  fs.Bool("print-token", false, "print only the access token on stdout (the tools go to stderr)"),
		noBrowser:   fs.Bool("no-browser", false, "print the authorization URL instead of opening a browser"),
		logout:      fs.Bool("logout", false, "forget the stored tokens of MCP_URL"),
		conformance: fs.Bool("conformance", false, "MCP conformance suite mode (see above)"),
		timeout:     fs.Duration("timeout", login.DefaultCallbackTimeout, "how long to wait for the browser to come back"),
		callbackPort: fs.Int("callback-port", 0,
			"port of the redirect listener on 127.0.0.1, for SSH forwarding and firewalls (default: a random port)"),
	}
	fs.Var(&f.scopes, "scope", "scope to request instead of the server's choice; repeatable, or space-separated")
	pos, err := interleaved(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError("login takes exactly one MCP server URL, got %d arguments", len(pos))
	}
	dir := *f.tokenDir
	if dir == "" {
		if dir, err = login.DefaultDir(); err != nil {
			return err
		}
	}
	store := login.FileStore{Dir: dir}
	if *f.logout {
		n, err := login.Forget(store, pos[0])
		if err != nil {
			return usageError("%v", err)
		}
		fmt.Fprintf(stderr, "Forgot %d stored session(s) for %s.\n", n, pos[0])
		return nil
	}
	opts, err := f.options(pos[0], getenv, store, stderr, browser)
	if err != nil {
		return err
	}
	var toolArgs map[string]any
	if *f.call != "" {
		if err := json.Unmarshal([]byte(*f.arguments), &toolArgs); err != nil {
			return usageError("--arguments must be a JSON object: %v", err)
		}
	}
	a, err := login.NewAuthorizer(opts)
	if err != nil {
		return usageError("%v", err)
	}
	out := stdout
	if *f.printToken {
		out = stderr
	}
	if err := connectAndList(ctx, a, out, *f.call, toolArgs); err != nil {
		if aerr := a.Err(); aerr != nil {
			if strings.Contains(err.Error(), aerr.Error()) {
				return aerr // the MCP client only repeats it
			}
			return fmt.Errorf("%w\n(MCP client: %v)", aerr, err)
		}
		return err
	}
	if *f.printToken {
		s := a.Session()
		if s == nil {
			return errors.New("the server did not ask for authorization, so there is no token to print")
		}
		fmt.Fprintln(stdout, s.AccessToken)
	}
	return nil
}

// options turns the flags into login.Options.
func (f *loginFlags) options(mcpURL string, getenv func(string) string, store login.Store, stderr io.Writer,
	browser func(context.Context, string) error) (login.Options, error) {
	opts := login.Options{
		MCPURL:              mcpURL,
		ClientIDMetadataURL: *f.clientID,
		Store:               store,
		Progress:            stderr,
		CallbackTimeout:     *f.timeout,
		CallbackPort:        *f.callbackPort,
	}
	if *f.callbackPort < 0 || *f.callbackPort > 65535 {
		return opts, usageError("--callback-port must be a port number from 1 to 65535, or 0 for a random port")
	}
	for _, s := range f.scopes {
		opts.Scopes = append(opts.Scopes, strings.Fields(s)...)
	}
	switch {
	case *f.registeredID != "" && *f.registeredIssuer == "":
		return opts, usageError("--registered-client-id needs --registered-issuer: credentials are never sent to another authorization server")
	case *f.registeredID != "":
		opts.Registered = &login.Credentials{Issuer: *f.registeredIssuer, ClientID: *f.registeredID,
			ClientSecret: getenv("MCPAUTH_LOGIN_CLIENT_SECRET")}
	}
	switch {
	case browser != nil:
		opts.OpenBrowser = browser
	case *f.conformance:
		opts.OpenBrowser = login.AutoApprove()
	case *f.noBrowser:
		opts.OpenBrowser = login.PrintURL(stderr)
	default:
		opts.OpenBrowser = login.SystemBrowser(stderr)
	}
	if *f.conformance {
		creds, err := conformanceCredentials(getenv("MCP_CONFORMANCE_CONTEXT"))
		if err != nil {
			return opts, usageError("MCP_CONFORMANCE_CONTEXT: %v", err)
		}
		if creds != nil {
			opts.Registered = creds
		}
	}
	return opts, nil
}

// conformanceCredentials reads the pre-registered client of the MCP
// conformance suite's auth/pre-registration scenario: a JSON object with
// client_id and client_secret. They apply to whichever issuer the scenario's
// server names (its port is random), which is why --conformance exists.
func conformanceCredentials(raw string) (*login.Credentials, error) {
	if raw == "" {
		return nil, nil
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return nil, err
	}
	if c.ClientID == "" {
		return nil, nil
	}
	return &login.Credentials{ClientID: c.ClientID, ClientSecret: c.ClientSecret}, nil
}

// connectAndList connects to the MCP server through a with the official Go
// SDK, prints the server and its tools to w, and calls tool when it is set.
func connectAndList(ctx context.Context, a *login.Authorizer, w io.Writer, tool string, args map[string]any) error {
	ctx, stop := conversationDeadline(ctx, a, mcpConversationTimeout)
	defer stop()
	err := connectAndListIn(ctx, a, w, tool, args)
	if err != nil && context.Cause(ctx) == errConversationTimeout {
		return fmt.Errorf("%s did not complete initialize, tools/list and any tools/call within %v, not counting the time spent authorizing: %w",
			a.MCPURL(), mcpConversationTimeout, errConversationTimeout)
	}
	return err
}

// mcpConversationTimeout bounds login's exchange with the MCP server, so that
// a server that never answers, or answers with the wrong JSON-RPC id, ends
// the command with an error. A variable for tests.
var mcpConversationTimeout = 2 * time.Minute

var errConversationTimeout = errors.New("the MCP server stopped answering")

// conversationDeadline returns a context canceled with
// errConversationTimeout once limit has passed, not counting the time a
// spends authorizing (the user may take minutes in the browser).
func conversationDeadline(parent context.Context, a *login.Authorizer, limit time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(min(limit/4, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if time.Since(start)-a.AuthorizationTime() > limit {
					cancel(errConversationTimeout)
					return
				}
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

func connectAndListIn(ctx context.Context, a *login.Authorizer, w io.Writer, tool string, args map[string]any) error {
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpauth-login", Version: moduleVersion(debug.ReadBuildInfo)}, nil)
	httpClient := &http.Client{
		Transport:     a,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             a.MCPURL(),
		HTTPClient:           httpClient,
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", a.MCPURL(), err)
	}
	defer session.Close()
	var tools []*mcp.Tool
	for t, err := range session.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("list tools: %w", err)
		}
		tools = append(tools, t)
	}
	var res *mcp.CallToolResult
	if tool != "" {
		if res, err = session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args}); err != nil {
			return fmt.Errorf("call %q: %w", tool, err)
		}
	}
	// Printed last, so the scopes shown include any step-up of the call.
	printLoginSummary(w, a, session.InitializeResult(), tools)
	if res == nil {
		return nil
	}
	fmt.Fprintf(w, "\n%s:\n", tool)
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			fmt.Fprintf(w, "  %s\n", t.Text)
		} else {
			b, _ := json.Marshal(c)
			fmt.Fprintf(w, "  %s\n", b)
		}
	}
	if res.IsError {
		return fmt.Errorf("tool %q reported an error", tool)
	}
	return nil
}

func printLoginSummary(w io.Writer, a *login.Authorizer, init *mcp.InitializeResult, tools []*mcp.Tool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MCP server\t%s\n", a.MCPURL())
	if init != nil && init.ServerInfo != nil {
		fmt.Fprintf(tw, "server\t%s %s\n", init.ServerInfo.Name, init.ServerInfo.Version)
	}
	if s := a.Session(); s != nil {
		fmt.Fprintf(tw, "issuer\t%s\n", s.Issuer)
		fmt.Fprintf(tw, "client\t%s (%s)\n", s.Client.ID, s.Client.Kind)
		fmt.Fprintf(tw, "scopes\t%s\n", strings.Join(s.Granted, " "))
		if !s.Expiry.IsZero() {
			fmt.Fprintf(tw, "expires\t%s\n", s.Expiry.Format(time.RFC3339))
		}
	} else {
		fmt.Fprintf(tw, "authorization\tnot required by the server\n")
	}
	tw.Flush()
	fmt.Fprintf(w, "\nTools (%d):\n", len(tools))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range tools {
		desc, _, _ := strings.Cut(t.Description, "\n")
		fmt.Fprintf(tw, "  %s\t%s\n", t.Name, desc)
	}
	tw.Flush()
}
