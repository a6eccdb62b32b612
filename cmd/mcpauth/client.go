package main

import (
	"context"
	"fmt"
	"io"
)

const clientUsage = `Usage:
  mcpauth client check URL [--json] [--dev-allow-loopback] [--cimd-ca-file FILE]

Tools for client authors and operators.`

func runClient(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, clientUsage)
		return &exitError{code: 2}
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, clientUsage)
		return nil
	default:
		fmt.Fprintln(stderr, clientUsage)
		return usageError("unknown client command %q", args[0])
	}
}
