package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
}

func TestVersion(t *testing.T) {
	out, _, code := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "mcpauth ") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"nosuch"}, {"client"}, {"client", "nosuch"}, {"version", "--nosuch"}} {
		_, errOut, code := runCmd(t, args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if errOut == "" {
			t.Errorf("%q: nothing on stderr", args)
		}
	}
}

func TestHelpOnEverySubcommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"version", "--help"}, {"client", "--help"}} {
		out, _, code := runCmd(t, args...)
		if code != 0 || !strings.Contains(out, "Usage") && !strings.Contains(out, "usage") {
			t.Errorf("%q: exit %d, out %q", args, code, out)
		}
	}
}

// TestFlagHelpPrintedOnce: a command's --help prints its usage once, on
// stdout; a wrong flag prints the problem and the usage once, on stderr.
func TestFlagHelpPrintedOnce(t *testing.T) {
	for _, cmd := range [][]string{{"serve"}, {"proxy"}, {"login"}, {"client", "check"}, {"users", "add"}} {
		out, errOut, code := runCmd(t, append(cmd, "--help")...)
		if code != 0 || strings.Count(out, "Usage:") != 1 || errOut != "" {
			t.Errorf("%q --help: exit %d, %d usages on stdout, stderr %q; want exit 0, one usage, empty stderr", cmd, code, strings.Count(out, "Usage:"), errOut)
		}
		out, errOut, code = runCmd(t, append(cmd, "--no-such-flag")...)
		if code != 2 || strings.Count(errOut, "Usage:") != 1 || !strings.Contains(errOut, "no-such-flag") || out != "" {
			t.Errorf("%q --no-such-flag: exit %d, %d usages on stderr, stdout %q; want exit 2, the problem and one usage on stderr", cmd, code, strings.Count(errOut, "Usage:"), out)
		}
	}
}
