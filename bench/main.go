// Command bench drives complete OAuth flows against a running mcpauth server
// and reports throughput, latency and CPU use (package loadgen). It serves
// its own client metadata document on loopback, so the server must run with
// --dev-allow-loopback and --dev-auto-approve (consent remembered, no pages):
//
//	mcpauth serve --dev-allow-loopback --dev-auto-approve admin --resource http://127.0.0.1:9/mcp
//	go run ./bench --server http://127.0.0.1:8080 --concurrency 8 --duration 10s
//
// Modes: flows (authorize -> code exchange -> refresh, all timed),
// token (code exchanges only, codes prepared first), refresh (refresh grants
// only), introspect (needs --introspect-client ID:SECRET of a static client
// with introspect: true). --server-pid PID adds the server's CPU use during
// the run. Traffic goes only to the given server, which must be on loopback.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/mcpauth/mcpauth/bench/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := loadgen.Run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
