package login

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDefaultDir: the token directory is the user config directory +
// /mcpauth, which on Unix systems other than macOS is $XDG_CONFIG_HOME, or
// $HOME/.config when it is unset; a relative $XDG_CONFIG_HOME, or no
// directory at all, is an error rather than a directory relative to
// wherever login happens to run. It sets the environment: not parallel.
func TestDefaultDir(t *testing.T) {
	switch runtime.GOOS {
	case "windows", "darwin", "ios", "plan9":
		t.Skipf("os.UserConfigDir does not use XDG_CONFIG_HOME on %s", runtime.GOOS)
	}
	xdg, home := t.TempDir(), t.TempDir()
	tests := []struct {
		name, xdg, home string
		want            string // "" for an error
	}{
		{"XDG_CONFIG_HOME", xdg, home, filepath.Join(xdg, "mcpauth")},
		{"HOME/.config without XDG_CONFIG_HOME", "", home, filepath.Join(home, ".config", "mcpauth")},
		{"relative XDG_CONFIG_HOME", "relative/config", home, ""},
		{"neither", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := DefaultDir()
			switch {
			case tt.want == "" && (err == nil || !strings.Contains(err.Error(), "user config directory")):
				t.Errorf("DefaultDir() = %q, %v; want an error naming the user config directory", got, err)
			case tt.want != "" && (err != nil || got != tt.want):
				t.Errorf("DefaultDir() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
