package e2e_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Scopes of examples/mcpserver: echo needs the first, whoami both.
const (
	scopeTools    = "mcp:tools"
	scopeIdentity = "mcp:identity"
)

// binaries are the paths of the mcpauth and mcpserver binaries under test.
type binaries struct{ mcpauth, mcpserver string }

// buildBinaries returns E2E_MCPAUTH_BIN and E2E_MCPSERVER_BIN when set (make
// e2e builds them), and otherwise builds both into a temporary directory.
func buildBinaries(t *testing.T) binaries {
	t.Helper()
	b := binaries{mcpauth: os.Getenv("E2E_MCPAUTH_BIN"), mcpserver: os.Getenv("E2E_MCPSERVER_BIN")}
	if b.mcpauth != "" && b.mcpserver != "" {
		return b
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binaries under test: %v", err)
	}
	dir := t.TempDir()
	b = binaries{mcpauth: filepath.Join(dir, "mcpauth"), mcpserver: filepath.Join(dir, "mcpserver")}
	for out, pkg := range map[string]string{b.mcpauth: "../cmd/mcpauth", b.mcpserver: "../examples/mcpserver"} {
		cmd := exec.Command(goBin, "build", "-o", out, pkg)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	return b
}

// syncBuffer collects a process's output for waiting and error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// proc is a process under test, stopped (SIGTERM, then SIGKILL after 10 s)
// when the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// childEnv is our environment without MCPAUTH_* variables, so a developer's
// settings never reach a process under test.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCPAUTH_") {
			env = append(env, kv)
		}
	}
	return env
}

func start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = childEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out)
		}
	})
	return p
}

// waitFor returns the first match of re in the output, failing the test
// after 20 s or when the process exits first.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			if m := re.FindStringSubmatch(p.out.String()); m != nil {
				return m
			}
			t.Fatalf("%s exited before printing %s:\n%s", p.name, re, p.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s printed no %s within 20 s:\n%s", p.name, re, p.out)
	return nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// stack is a running examples/mcpserver protected by `mcpauth serve`.
type stack struct {
	issuer, mcpURL string
}

// startStack adds user alice and starts both servers on 127.0.0.1.
func startStack(t *testing.T, b binaries, serveArgs ...string) stack {
	t.Helper()
	data := t.TempDir()
	add := exec.Command(b.mcpauth, "users", "add", "alice", "--password-stdin", "--data", data)
	add.Env = childEnv()
	add.Stdin = strings.NewReader("correct horse battery staple e2e\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("mcpauth users add: %v\n%s", err, out)
	}
	// The issuer's port is chosen first: the MCP server must know the issuer,
	// and mcpauth the MCP server's URL.
	port := freePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", port)
	mcp := start(t, "mcpserver", b.mcpserver, "--addr", "127.0.0.1:0", "--issuer", issuer)
	mcpURL := mcp.waitFor(t, regexp.MustCompile(`MCP URL: (\S+)`))[1]
	args := append([]string{"serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--issuer", issuer, "--data", data,
		"--resource", mcpURL + "=" + scopeTools + "," + scopeIdentity}, serveArgs...)
	as := start(t, "mcpauth serve", b.mcpauth, args...)
	as.waitFor(t, regexp.MustCompile(`listening on http://127\.0\.0\.1:\d+`))
	return stack{issuer: issuer, mcpURL: mcpURL}
}

// localhostCert makes a self-signed P-256 certificate for localhost, valid
// for a day, and writes it as a PEM file for --cimd-ca-file.
func localhostCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "localhost.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// serveMetadata serves the client ID metadata document at
// https://localhost:PORT/oauth/client.json and returns that URL.
func serveMetadata(t *testing.T, cert tls.Certificate, doc map[string]any) string {
	t.Helper()
	var clientID string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/client.json" {
			http.NotFound(w, r)
			return
		}
		body := map[string]any{"client_id": clientID}
		for k, v := range doc {
			body[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	clientID = "https://localhost:" + u.Port() + "/oauth/client.json"
	return clientID
}

// postToken sends a form to the token endpoint and returns the status and
// the JSON error code, if any.
func postToken(ctx context.Context, t *testing.T, issuer string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error
}
