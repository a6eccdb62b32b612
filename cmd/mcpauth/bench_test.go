package main

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpauth/mcpauth/bench/loadgen"
)

// TestBenchAgainstServe runs the load tool (go run ./bench) in every mode
// against a real `mcpauth serve`, briefly: each mode completes requests,
// none fails, and the report carries latencies and CPU use.
func TestBenchAgainstServe(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "mcpauth.yaml", "clients:\n  - client_id: rs\n    secret: rs-secret-123456789012345678901234\n    introspect: true\n")
	base, _ := startServe(t, nil, "--addr", freeAddr(t), "--data", dir+"/data", "--config", cfg,
		"--dev-allow-loopback", "--dev-auto-approve", "admin", "--resource", "http://127.0.0.1:9/mcp")
	count := regexp.MustCompile(`: (\d+) (requests|flows) \(\d+ (requests|flows)/s\)(, \d+ token requests/s)?, 0 failures`)
	for _, mode := range []string{"flows", "token", "refresh", "introspect"} {
		t.Run(mode, func(t *testing.T) {
			var out strings.Builder
			err := loadgen.Run(context.Background(), []string{"--server", base, "--mode", mode, "--concurrency", "2",
				"--duration", "300ms", "--inputs", "20", "--server-pid", strconv.Itoa(os.Getpid()),
				"--introspect-client", "rs:rs-secret-123456789012345678901234"}, &out)
			if err != nil {
				t.Fatalf("bench --mode %s: %v\n%s", mode, err, out.String())
			}
			m := count.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("bench --mode %s report has no success count:\n%s", mode, out.String())
			}
			if n, _ := strconv.Atoi(m[1]); n == 0 || (mode == "token" || mode == "refresh") && n > 20 {
				t.Errorf("bench --mode %s completed %d, want 1 to 20 (the prepared inputs)", mode, n)
			}
			for _, want := range []string{"p50=", "p99=", "CPU generator", "CPU server"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("bench --mode %s report lacks %q:\n%s", mode, want, out.String())
				}
			}
		})
	}
	t.Run("refuses a server off loopback", func(t *testing.T) {
		err := loadgen.Run(context.Background(), []string{"--server", "http://192.0.2.1:8080"}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("bench --server http://192.0.2.1:8080 = %v, want a loopback error", err)
		}
	})
}
