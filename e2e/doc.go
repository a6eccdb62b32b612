// Package e2e holds the end-to-end tests of mcpauth with real third-party MCP
// clients. It has no code of its own.
//
// The Go tests (package e2e_test, run by `go test ./...`) drive the official
// MCP Go SDK client (github.com/modelcontextprotocol/go-sdk/auth
// AuthorizationCodeHandler with a client ID metadata document) against the
// real `mcpauth serve` and examples/mcpserver binaries. The Node tests beside
// them (test/*.test.js, run by `make e2e`) drive the TypeScript MCP SDK
// through the real login and consent pages; scripts/screenshot.js renders
// the consent page with headless Chromium for docs/consent-localhost.png.
//
// Every process they start listens on 127.0.0.1 and is stopped when the test
// ends (MCP authorization 2025-11-25; RFC 6749, RFC 7636, RFC 8707, RFC 9207).
package e2e
