package main

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
}

// TestVersion: version prints what the build information says.
func TestVersion(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "-compiler", Value: "gc"}, {Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo // nil: no build information
		want string
	}{
		{"released", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
			Settings: append(vcs, debug.BuildSetting{Key: "vcs.modified", Value: "false"})},
			"mcpauth v1.2.3 (revision 0123456789abcdef0123456789abcdef01234567, 2026-12-01T10:00:00Z; go1.26.0)\n"},
		{"checkout with changes", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"},
			Settings: append(vcs, debug.BuildSetting{Key: "vcs.modified", Value: "true"})},
			"mcpauth (devel) (revision 0123456789abcdef0123456789abcdef01234567, 2026-12-01T10:00:00Z, modified; go1.26.0)\n"},
		{"no VCS information", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			"mcpauth (devel) (go1.26.0)\n"},
		{"no build information", nil, "mcpauth unknown (no build information in the binary)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			read := func() (*debug.BuildInfo, bool) { return tc.info, tc.info != nil }
			if err := runVersion(nil, read, &out, &errOut); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("version output (-want +got):\n%s", diff)
			}
		})
	}
	// run reads the binary's own build information.
	out, _, code := runCmd(t, "version")
	if code != 0 || out != "mcpauth "+versionString(debug.ReadBuildInfo)+"\n" {
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
