// Command mcpauth is the mcpauth authorization server for MCP servers and its
// companion tools. main only calls run; every subcommand and all wiring live
// in this package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitError carries a process exit code. Its message, if any, was already
// printed (or is printed by exitCode).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError reports a command-line mistake: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "mcpauth:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "mcpauth:", err)
	return 1
}

const rootUsage = `mcpauth: an OAuth 2.1 authorization server for MCP, built on Client ID Metadata Documents.

Usage:
  mcpauth <command> [flags]

Commands:
  serve              run the authorization server (zero configuration: SQLite in ./mcpauth-data)
  proxy              protect an existing Streamable HTTP MCP server: OAuth in front, identity headers behind
  users              add, list and remove local accounts
  clients            list the CIMD clients seen; block and unblock abusive ones
  keys               rotate, list and rewrap (encrypt) signing keys
  migrate            apply database migrations (SQLite in --data, or --store postgres://...)
  backup --to FILE   copy the SQLite store while serve runs
  client check URL   fetch and validate a client ID metadata document as the server would
  client serve-metadata
                     serve a client ID metadata document on loopback for local development
  login MCP_URL      log in to an MCP server as a client would, store the tokens, list its tools
  version            print the version

Run "mcpauth <command> --help" for the flags of a command.
`

// run is the whole program: it parses args (without the program name) and
// dispatches to a subcommand. getenv supplies MCPAUTH_* fallbacks.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, rootUsage)
		return &exitError{code: 2}
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, rootUsage)
		return nil
	case "version", "--version":
		return runVersion(args[1:], debug.ReadBuildInfo, stdout, stderr)
	case "client":
		return runClient(ctx, args[1:], getenv, stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "proxy":
		return runProxy(ctx, args[1:], getenv, stdout, stderr)
	case "users":
		return runUsers(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "clients":
		return runClients(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], getenv, stdout, stderr)
	case "login":
		return runLogin(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], getenv, stdout, stderr)
	default:
		fmt.Fprint(stderr, rootUsage)
		return usageError("unknown command %q", args[0])
	}
}

// runVersion is `mcpauth version`: the module version and the VCS
// revision, time and modified flag the Go toolchain recorded in the binary,
// as readBuildInfo (debug.ReadBuildInfo) reports them.
func runVersion(args []string, readBuildInfo func() (*debug.BuildInfo, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Usage: mcpauth version\n\nPrints the mcpauth version: the module version, VCS revision and Go version the binary was built from.", stderr)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "mcpauth %s\n", versionString(readBuildInfo))
	return nil
}

// versionString is "VERSION (revision REV, TIME, modified; GOVERSION)":
// the main module's version ("(devel)" for a build from a checkout), and
// the vcs.* settings that are present.
func versionString(readBuildInfo func() (*debug.BuildInfo, bool)) string {
	bi, ok := readBuildInfo()
	if !ok {
		return "unknown (no build information in the binary)"
	}
	version := moduleVersion(readBuildInfo)
	var vcs []string
	for _, key := range []string{"vcs.revision", "vcs.time", "vcs.modified"} {
		for _, s := range bi.Settings {
			switch {
			case s.Key != key || s.Value == "":
			case key == "vcs.revision":
				vcs = append(vcs, "revision "+s.Value)
			case key == "vcs.modified":
				if s.Value == "true" {
					vcs = append(vcs, "modified")
				}
			default:
				vcs = append(vcs, s.Value)
			}
		}
	}
	details := bi.GoVersion
	if len(vcs) > 0 {
		details = strings.Join(vcs, ", ") + "; " + details
	}
	return version + " (" + details + ")"
}

// moduleVersion is the main module's version in the build information:
// "v1.2.3" when installed with go install at a version, "(devel)" for a
// build from a checkout, "unknown" without build information.
func moduleVersion(readBuildInfo func() (*debug.BuildInfo, bool)) string {
	if bi, ok := readBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
