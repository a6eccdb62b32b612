package main

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// The deployment files (Dockerfile, deploy/compose.yaml,
// deploy/mcpauth.service) start serve with flags and MCPAUTH_* variables;
// these tests read each file and give its arguments and environment to the
// real serve configuration loader, so a renamed flag or variable, or a value
// serve refuses, fails here rather than in a container.

// deployConfig is the part of serve's configuration the deployment files set.
type deployConfig struct {
	Addr, Issuer, Data, Store, LogFormat string
	TrustedProxies                       []string
}

// loadDeployConfig runs serve's configuration loader on args and env, and
// checks that every MCPAUTH_* name in env is one of serve's variables.
func loadDeployConfig(t *testing.T, file string, args []string, env map[string]string) deployConfig {
	t.Helper()
	known := map[string]bool{"MCPAUTH_CONFIG": true}
	for _, s := range serveSettings(&Config{}) {
		known[s.env] = true
	}
	for name := range env {
		if strings.HasPrefix(name, "MCPAUTH_") && !known[name] {
			t.Errorf("%s: %s is not a variable of mcpauth serve", file, name)
		}
	}
	var stderr strings.Builder
	c, err := loadServeConfig(args, func(k string) string { return env[k] }, io.Discard, &stderr)
	if err != nil {
		t.Fatalf("%s: serve %q refuses: %v %s", file, args, err, stderr.String())
	}
	return deployConfig{Addr: c.Addr, Issuer: c.Issuer, Data: c.Data, Store: c.Store, LogFormat: c.LogFormat, TrustedProxies: c.TrustedProxies}
}

// readRepoFile reads a file at the repository's root.
func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDockerfileCommand(t *testing.T) {
	text := readRepoFile(t, "Dockerfile")
	var entry, cmd []string
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "ENTRYPOINT "); ok {
			if err := json.Unmarshal([]byte(v), &entry); err != nil {
				t.Fatalf("ENTRYPOINT: %v", err)
			}
		}
		if v, ok := strings.CutPrefix(line, "CMD "); ok {
			if err := json.Unmarshal([]byte(v), &cmd); err != nil {
				t.Fatalf("CMD: %v", err)
			}
		}
	}
	if diff := cmp.Diff([]string{"mcpauth"}, entry); diff != "" {
		t.Errorf("ENTRYPOINT (-want +got):\n%s", diff)
	}
	if len(cmd) == 0 || cmd[0] != "serve" {
		t.Fatalf("CMD %q: want serve ...", cmd)
	}
	got := loadDeployConfig(t, "Dockerfile", cmd[1:], nil)
	want := deployConfig{Addr: "0.0.0.0:8080", Issuer: "http://localhost:8080", Data: "/data", LogFormat: "text"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Dockerfile CMD configuration (-want +got):\n%s", diff)
	}
	for _, want := range []string{"USER 65532:65532", "VOLUME /data", "FROM scratch", "/etc/ssl/certs/ca-certificates.crt"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func TestComposeReplicas(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Networks    yaml.Node         `yaml:"networks"`
		} `yaml:"services"`
		Configs map[string]struct {
			Content string `yaml:"content"`
		} `yaml:"configs"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "deploy/compose.yaml")), &compose); err != nil {
		t.Fatal(err)
	}
	var proxy struct {
		Mcpauth struct {
			Address string `yaml:"ipv4_address"`
		} `yaml:"mcpauth"`
	}
	networks := compose.Services["caddy"].Networks
	if err := networks.Decode(&proxy); err != nil {
		t.Fatalf("caddy networks: %v", err)
	}
	defaulted := regexp.MustCompile(`^\$\{[A-Z_]+:-(.*)\}$`) // compose's ${VAR:-default}
	for _, name := range []string{"mcpauth1", "mcpauth2"} {
		env := map[string]string{}
		for k, v := range compose.Services[name].Environment {
			env[k] = defaulted.ReplaceAllString(v, "$1")
		}
		got := loadDeployConfig(t, "deploy/compose.yaml "+name, nil, env)
		want := deployConfig{
			Addr: "0.0.0.0:8080", Issuer: "http://localhost:8080", Data: "/data", LogFormat: "json",
			Store:          "postgres://mcpauth:mcpauth@postgres:5432/mcpauth?sslmode=disable",
			TrustedProxies: []string{proxy.Mcpauth.Address},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s configuration (-want +got):\n%s", name, diff)
		}
		if !strings.Contains(compose.Configs["caddyfile"].Content, name+":8080") {
			t.Errorf("the Caddyfile does not send requests to %s:8080", name)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	text := readRepoFile(t, "deploy/mcpauth.service")
	var args []string
	env := map[string]string{}
	state := ""
	for _, line := range strings.Split(text, "\n") {
		key, value, _ := strings.Cut(line, "=")
		switch key {
		case "ExecStart":
			args = strings.Fields(value)
		case "Environment":
			k, v, _ := strings.Cut(value, "=")
			env[k] = v
		case "StateDirectory":
			state = value
		}
	}
	if len(args) < 2 || args[0] != "/usr/local/bin/mcpauth" || args[1] != "serve" {
		t.Fatalf("ExecStart %q: want /usr/local/bin/mcpauth serve ...", args)
	}
	got := loadDeployConfig(t, "deploy/mcpauth.service", args[2:], env)
	want := deployConfig{Addr: "127.0.0.1:8080", Issuer: "http://localhost:8080", Data: "/var/lib/" + state, LogFormat: "json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unit configuration (-want +got):\n%s", diff)
	}
}
