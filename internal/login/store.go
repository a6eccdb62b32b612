// This file keeps tokens per (MCP server, issuer) and dynamic registrations
// per issuer on disk (MCP 2025-11-25 "Authorization": separate registration
// state per authorization server, RFC 9728 §7.6).
package login

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ErrNotFound is returned by a Store when nothing is stored under a key.
var ErrNotFound = errors.New("login: not found")

// Session is what a successful authorization leaves behind for one MCP
// server and one authorization server: the tokens, and what is needed to
// refresh them without discovering again. It holds secrets; it is written
// only to files of mode 0600.
type Session struct {
	// MCPURL is the canonical MCP server URL (oauth.CanonicalResource).
	MCPURL string `json:"mcp_url"`
	// Resource is the RFC 8707 resource the tokens were requested for.
	Resource string `json:"resource"`
	// Issuer is the authorization server's issuer identifier.
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	// Client is the client the tokens were issued to.
	Client Client `json:"client"`

	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// Requested are the scopes asked for; Granted the scopes the token
	// response named (RFC 6749 §5.1: the requested ones when it named none).
	Requested []string  `json:"requested_scopes,omitempty"`
	Granted   []string  `json:"granted_scopes,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Client is an OAuth client identity at one authorization server.
type Client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret,omitempty"`
	// AuthMethod is the token endpoint authentication method (RFC 7591 §2):
	// none, client_secret_basic or client_secret_post.
	AuthMethod string `json:"token_endpoint_auth_method"`
	// Kind says where the client came from: preregistered, cimd, dcr or loopback.
	Kind string `json:"kind"`
}

// Registration is an RFC 7591 dynamic registration made at one
// authorization server, reused by later logins to the same issuer while the
// redirect URI it names can be listened on again.
type Registration struct {
	Issuer      string    `json:"issuer"`
	RedirectURI string    `json:"redirect_uri"`
	Client      Client    `json:"client"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	CreatedAt   time.Time `json:"created_at"`
}

// Store keeps sessions and registrations. Implementations are safe for
// concurrent use by several processes as far as whole records go: a record
// is replaced atomically, never half-written.
type Store interface {
	// LoadSession returns the most recently updated session for the MCP
	// server, whatever its issuer, or ErrNotFound.
	LoadSession(mcpURL string) (*Session, error)
	// SaveSession creates or replaces the session for (s.MCPURL, s.Issuer).
	SaveSession(s *Session) error
	// DeleteSessions removes every session of the MCP server and returns
	// how many there were.
	DeleteSessions(mcpURL string) (int, error)
	// LoadRegistration returns the dynamic registration at issuer, or
	// ErrNotFound.
	LoadRegistration(issuer string) (*Registration, error)
	// SaveRegistration creates or replaces the registration at r.Issuer.
	SaveRegistration(r *Registration) error
}

// FileStore is a Store in a directory: sessions/<mcp>-<issuer>.json and
// clients/<issuer>.json, where each name part is a SHA-256 prefix of the URL.
// Directories are created with mode 0700 and files written with mode 0600
// through a temporary file and a rename. The zero value is not usable; set
// Dir.
type FileStore struct {
	Dir string
}

var _ Store = FileStore{}

// DefaultDir returns os.UserConfigDir()/mcpauth, the directory
// `mcpauth login` keeps its tokens in.
func DefaultDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory: %w", err)
	}
	return filepath.Join(d, "mcpauth"), nil
}

func keyPart(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

func (f FileStore) sessionGlob(mcpURL string) string {
	return filepath.Join(f.Dir, "sessions", keyPart(mcpURL)+"-*.json")
}

// LoadSession implements Store.
func (f FileStore) LoadSession(mcpURL string) (*Session, error) {
	paths, err := filepath.Glob(f.sessionGlob(mcpURL))
	if err != nil {
		return nil, err
	}
	var best *Session
	for _, p := range paths {
		var s Session
		if err := readJSON(p, &s); err != nil {
			return nil, err
		}
		if s.MCPURL == mcpURL && (best == nil || s.UpdatedAt.After(best.UpdatedAt)) {
			best = &s
		}
	}
	if best == nil {
		return nil, ErrNotFound
	}
	return best, nil
}

// SaveSession implements Store.
func (f FileStore) SaveSession(s *Session) error {
	name := keyPart(s.MCPURL) + "-" + keyPart(s.Issuer) + ".json"
	return writeJSON(filepath.Join(f.Dir, "sessions"), name, s)
}

// DeleteSessions implements Store.
func (f FileStore) DeleteSessions(mcpURL string) (int, error) {
	paths, err := filepath.Glob(f.sessionGlob(mcpURL))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range paths {
		var s Session
		if err := readJSON(p, &s); err != nil || s.MCPURL != mcpURL {
			continue
		}
		if err := os.Remove(p); err != nil {
			return n, fmt.Errorf("remove %q: %w", p, err)
		}
		n++
	}
	return n, nil
}

// LoadRegistration implements Store.
func (f FileStore) LoadRegistration(issuer string) (*Registration, error) {
	var r Registration
	if err := readJSON(filepath.Join(f.Dir, "clients", keyPart(issuer)+".json"), &r); err != nil {
		return nil, err
	}
	if r.Issuer != issuer {
		return nil, ErrNotFound
	}
	return &r, nil
}

// SaveRegistration implements Store.
func (f FileStore) SaveRegistration(r *Registration) error {
	return writeJSON(filepath.Join(f.Dir, "clients"), keyPart(r.Issuer)+".json", r)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read %q: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %q: %w", path, err)
	}
	return nil
}

// writeJSON writes v to dir/name atomically with mode 0600, creating dir
// (and its parent) with mode 0700 and tightening an existing dir to 0700.
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %q: %w", dir, err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("chmod %q: %w", d, err)
		}
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %q: %w", dir, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %q: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %q: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %q: %w", tmp.Name(), err)
	}
	dst := filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("write %q: %w", dst, err)
	}
	return nil
}
