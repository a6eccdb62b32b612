package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/accesslog"
	"github.com/mcpauth/mcpauth/internal/authserver"
	"github.com/mcpauth/mcpauth/internal/safehttp"
	"github.com/mcpauth/mcpauth/internal/store"
	sqlstore "github.com/mcpauth/mcpauth/internal/store/sql"
	"github.com/mcpauth/mcpauth/internal/token"
	"go.opentelemetry.io/otel/trace"
)

const serveUsage = `Usage: mcpauth serve [flags]

Runs the authorization server. With no flags it listens on 127.0.0.1:8080 with
issuer http://localhost:8080 and keeps its data in ./mcpauth-data.
Every flag has an MCPAUTH_* environment fallback; --config adds a YAML file
for structured settings (trust policy, static clients, resources, lifetimes).`

// policyReloadInterval bounds how long a `mcpauth clients block` takes to
// reach a running server (the issue asks for at most 5 s).
const policyReloadInterval = 2 * time.Second

// runServe is `mcpauth serve`.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runServeWith(ctx, args, getenv, stdout, stderr, defaultServeIntervals())
}

// runServeWith is runServe with the periods of its background work, which
// tests shorten. Each step is a function below, in the order they run.
func runServeWith(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, iv serveIntervals) (err error) {
	cfg, err := loadServeConfig(args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	defer func() { err = logExit(err, logger, cfg.LogFormat) }()
	// Bound first, so that a port in use leaves nothing behind: no data
	// directory, no database, no keys, no admin.
	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close() // closed already once served; here for the steps that fail first
	kek, err := loadKEK("--key-encryption-key-file", cfg.KeyEncryptionKeyFile)
	if err != nil {
		return err
	}
	hooks, stopMetrics, err := startMetrics(cfg.MetricsAddr, logger)
	if err != nil {
		return err
	}
	defer stopMetrics()
	tp, stopTracing, err := startTracing(ctx, getenv, "mcpauth", logger)
	if err != nil {
		return err
	}
	defer stopTracing()

	db, err := openStoreWith(ctx, cfg.Store, cfg.Data, sqlstore.Options{MaxConns: int32(cfg.StoreMaxConns), StatementTimeout: cfg.StoreStatementTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.DevAutoApprove != "" {
		// Checked before the first start creates admin, so that a refused
		// start leaves no user behind.
		if err := checkAutoApproveUser(ctx, db, cfg.DevAutoApprove); err != nil {
			return err
		}
	}
	if err := ensureAdmin(ctx, db, adminPasswordTo{terminal: isTerminal(stdout), stdout: stdout, dataDir: cfg.Data, logger: logger}); err != nil {
		return err
	}
	keys, err := newKeyManager(ctx, cfg, db, kek, logger)
	if err != nil {
		return err
	}
	as, resolver, err := newServer(ctx, cfg, db, keys, logger, hooks, tp)
	if err != nil {
		return err
	}
	var ready atomic.Bool
	srv := newHTTPServer(accesslog.Handler(logger, newMux(as, db, &ready, logger)), logger)
	stopBackground := startBackground(ctx, cfg, db, keys, resolver, logger, iv)
	defer stopBackground()
	return serveUntilDone(ctx, srv, ln, &ready, cfg.Issuer, stdout, logger, cfg.LogFormat)
}

// serveIntervals are the periods of serve's background work.
type serveIntervals struct {
	policyReload time.Duration // trust policy and stored blocks re-read
	keyMaintain  time.Duration // token.Keys.Maintain: keys reloaded, rotated, expired
	collect      time.Duration // expired rows deleted
}

// defaultServeIntervals are the periods serve runs with.
func defaultServeIntervals() serveIntervals {
	return serveIntervals{policyReload: policyReloadInterval, keyMaintain: token.MaintainInterval, collect: 10 * time.Minute}
}

// loadServeConfig parses serve's command line and resolves the
// configuration; every mistake is a usage error (exit 2).
func loadServeConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (Config, error) {
	sf := newServeFlags(stderr)
	if err := parseFlags(sf.fs, args, stdout); err != nil {
		return Config{}, err
	}
	if sf.fs.NArg() > 0 {
		return Config{}, usageError("serve takes no arguments, got %q", sf.fs.Args())
	}
	cfg, err := resolveConfig(sf, getenv)
	if err != nil {
		return Config{}, usageError("%v", err)
	}
	return cfg, nil
}

// listen opens the listening socket, before anything is created on disk.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (--addr): %w", addr, err)
	}
	return ln, nil
}

// checkAutoApproveUser refuses a --dev-auto-approve user that does not
// exist; admin counts on a first start, which creates it.
func checkAutoApproveUser(ctx context.Context, db store.Store, name string) error {
	users, err := db.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("dev-auto-approve: list users: %w", err)
	}
	known := slices.ContainsFunc(users, func(u store.User) bool { return u.Name == name }) ||
		len(users) == 0 && name == "admin" // created by ensureAdmin next
	if !known {
		return usageError("dev-auto-approve %q: no such user; name an existing user (mcpauth users list) or add it with: mcpauth users add %s --password-stdin (with the same --data or --store as serve)",
			name, name)
	}
	return nil
}

// newKeyManager loads the signing keys, creating them on first start;
// kek, when not nil, encrypts them at rest.
func newKeyManager(ctx context.Context, cfg Config, db store.Store, kek *token.KEK, logger *slog.Logger) (*token.Keys, error) {
	keys := token.NewKeys(db, token.KeyOptions{TokenLifetime: cfg.lifetimes().AccessToken, Logger: logger, KEK: kek})
	if err := keys.Load(ctx); err != nil {
		return nil, keyLoadError(err, cfg.KeyEncryptionKeyFile)
	}
	return keys, nil
}

// loadKEK reads the key encryption key file that flag names; nil when
// path is empty.
func loadKEK(flag, path string) (*token.KEK, error) {
	if path == "" {
		return nil, nil
	}
	kek, err := token.LoadKEK(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return kek, nil
}

// keyLoadError is the one-line message of a failed key load, naming the
// flag when the keys are encrypted and it is missing or wrong.
func keyLoadError(err error, kekFile string) error {
	switch {
	case errors.Is(err, token.ErrKEKRequired):
		return fmt.Errorf("signing keys are encrypted at rest: give their key with --key-encryption-key-file FILE (or MCPAUTH_KEY_ENCRYPTION_KEY_FILE): %w", err)
	case errors.Is(err, token.ErrKEKMismatch):
		return fmt.Errorf("--key-encryption-key-file %s: not the key the signing keys are encrypted with: %w", kekFile, err)
	}
	return fmt.Errorf("signing keys: %w", err)
}

// newServer builds the authorization server with its CIMD resolver (whose
// trust policy startBackground reloads) and outbound fetchers, and logs the
// warnings about the configuration.
func newServer(ctx context.Context, cfg Config, db store.Store, keys *token.Keys, logger *slog.Logger, hooks metricsHooks, tp trace.TracerProvider) (*authserver.Server, *cimd.Resolver, error) {
	roots, err := safehttp.LoadRootCAs(cfg.CIMDCAFile)
	if err != nil {
		return nil, nil, usageError("cimd-ca-file: %v", err)
	}
	policy, err := buildPolicy(ctx, cfg, db)
	if err != nil {
		return nil, nil, err
	}
	resolver, err := cimd.NewResolver(cimd.Options{Policy: policy, AllowLoopback: cfg.DevAllowLoopback, RootCAs: roots, Logger: logger,
		LoopbackClients: cfg.Trust.loopbackClients(), Cache: cimdCacheFor(db, logger), OnCache: hooks.cimdCache, OnFetch: hooks.cimdFetch})
	if err != nil {
		return nil, nil, err
	}
	fetch, err := safehttp.New(safehttp.Options{AllowLoopback: cfg.DevAllowLoopback, RootCAs: roots, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	logos, err := safehttp.New(safehttp.Options{MaxBodyBytes: 64 << 10, AllowLoopback: cfg.DevAllowLoopback, RootCAs: roots, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	proxies, _ := cfg.trustedProxies() // validated with the rest of the configuration
	as, err := authserver.New(authserver.Options{Issuer: cfg.Issuer, Resources: cfg.authResources(),
		StaticClients: cfg.staticClients(), EnableDCR: cfg.EnableDCR, DevAutoApprove: cfg.DevAutoApprove, TrustedProxies: proxies,
		Lifetimes: cfg.lifetimes(), Store: db, Resolver: resolver, Keys: keys, Fetch: fetch, LogoFetch: logos, Logger: logger, Observer: hooks.server,
		TracerProvider: tp})
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	if cfg.DevAllowLoopback {
		logger.Warn("development mode: loopback client_ids are accepted and fetched (--dev-allow-loopback); never use this in production")
	}
	if cfg.DevAutoApprove != "" {
		logger.Warn("development mode: login and consent are skipped", "user", cfg.DevAutoApprove)
	}
	if len(cfg.Resources) == 0 {
		logger.Warn("no --resource configured: any https resource a client names is accepted (and shown on the consent page)")
	}
	return as, resolver, nil
}

// newMux serves as under / next to /healthz and /readyz. /readyz answers
// like the proxy's (readyHandler): ready while the server takes requests
// (not yet, or no longer once shutting down) and the store answers a ping
// and still takes writes.
func newMux(as http.Handler, db store.Store, ready *atomic.Bool, logger *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /readyz", readyHandler(logger,
		readyCheck{reason: "not serving (starting or shutting down)", check: func(context.Context) error {
			if !ready.Load() {
				return errors.New("the server is not taking requests")
			}
			return nil
		}},
		readyCheck{reason: "database not reachable or refusing writes", check: db.Ping},
	))
	mux.Handle("/", as)
	return mux
}

// newHTTPServer is the HTTP server, with its timeouts and header limit,
// that serves h on the listener.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 32 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
}

// startBackground starts serve's periodic work: the trust policy reload,
// signing key maintenance and the collection of expired rows. It goes on
// through a shutdown (in-flight requests still need keys) until the
// returned function stops it.
func startBackground(ctx context.Context, cfg Config, db store.Store, keys *token.Keys, resolver *cimd.Resolver, logger *slog.Logger, iv serveIntervals) (stop func()) {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	go every(bg, iv.policyReload, func() {
		if p, err := buildPolicy(bg, cfg, db); err == nil {
			resolver.SetPolicy(p)
		} else {
			logger.Error("reload trust policy", "err", err)
		}
	})
	go every(bg, iv.keyMaintain, func() {
		if err := keys.Maintain(bg); err != nil {
			logger.Error("signing key maintenance", "err", err)
		}
	})
	go every(bg, iv.collect, func() {
		if n, err := db.DeleteExpired(bg, time.Now()); err != nil {
			logger.Error("collect expired rows", "err", err)
		} else if n > 0 {
			logger.Info("collected expired rows", "rows", n)
		}
	})
	return stopBG
}

// serveUntilDone serves on ln until ctx ends or the server fails, then
// stops taking requests (/readyz answers 503 first) and finishes the
// in-flight ones within 20 s.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener, ready *atomic.Bool, issuer string, stdout io.Writer, logger *slog.Logger, logFormat string) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready.Store(true)
	announce(stdout, logger, logFormat, "mcpauth", fmt.Sprintf("listening on http://%s, issuer %s", ln.Addr(), issuer), "addr", ln.Addr().String(), "issuer", issuer)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	ready.Store(false)
	logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// every runs f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// openStore opens the store: PostgreSQL when storeURL is a postgres:// or
// postgresql:// URL (pool settings ride in it as pool_max_conns and the
// like), else the SQLite database in the data directory (created with mode
// 0700). Both refuse a schema newer than this binary knows.
func openStore(ctx context.Context, storeURL, dir string) (store.Store, error) {
	return openStoreWith(ctx, storeURL, dir, sqlstore.Options{})
}

// openStoreWith is openStore with PostgreSQL pool settings (zero fields take
// the URL's pool_* values, then the defaults).
func openStoreWith(ctx context.Context, storeURL, dir string, pg sqlstore.Options) (store.Store, error) {
	switch {
	case isPostgresURL(storeURL):
		return sqlstore.OpenPostgres(ctx, storeURL, pg)
	case storeURL != "" && storeURL != "sqlite":
		return nil, usageError("store %q: use a postgres:// URL, or leave it empty for SQLite in --data", redactURL(storeURL))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %q: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %q: %w", dir, err)
	}
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "mcpauth.db"))
	if err != nil {
		return nil, err
	}
	return db, nil
}

// isPostgresURL reports whether storeURL names a PostgreSQL store.
func isPostgresURL(storeURL string) bool {
	return strings.HasPrefix(storeURL, "postgres://") || strings.HasPrefix(storeURL, "postgresql://")
}

// buildPolicy merges the configured trust policy with the stored blocks.
func buildPolicy(ctx context.Context, cfg Config, db store.Store) (*cimd.Policy, error) {
	blocks, err := db.ListBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	deny := append([]string(nil), cfg.Trust.Deny...)
	for _, b := range blocks {
		deny = append(deny, b.Pattern)
	}
	return cimd.NewPolicy(cimd.PolicyConfig{Allow: cfg.Trust.Allow, Deny: deny, AllowlistOnly: cfg.Trust.AllowlistOnly})
}

// initialAdminPasswordFile is the file, in the data directory, that holds
// the first user's password when stdout is not a terminal.
const initialAdminPasswordFile = "initial-admin-password"

// adminPasswordTo is where ensureAdmin shows the password it chose: on
// stdout when that is a terminal, else in the data directory's
// initialAdminPasswordFile (mode 0600), with a log line naming the file.
// The password never goes to the log, which may be collected as JSON.
type adminPasswordTo struct {
	terminal bool
	stdout   io.Writer
	dataDir  string
	logger   *slog.Logger
}

// ensureAdmin creates user admin with a random password on first start.
func ensureAdmin(ctx context.Context, db store.Store, to adminPasswordTo) error {
	users, err := db.ListUsers(ctx)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return nil
	}
	pw := randomPassword()
	if err := db.CreateUser(ctx, store.User{ID: newUserID(), Name: "admin", PasswordHash: authserver.HashPassword(pw), CreatedAt: time.Now()}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil // a replica starting at the same time on the same database created it
		}
		return fmt.Errorf("create admin user: %w", err)
	}
	if to.terminal {
		fmt.Fprintf(to.stdout, "mcpauth: created user admin with password %s\n", pw)
		fmt.Fprintf(to.stdout, "mcpauth: this password is shown once; add users with: mcpauth users add NAME --password-stdin\n")
		return nil
	}
	path := filepath.Join(to.dataDir, initialAdminPasswordFile)
	if err := writeSecretFile(path, pw+"\n"); err != nil {
		// Nobody could sign in as admin: take it back, so that the next
		// start tries again.
		if derr := db.DeleteUser(ctx, "admin"); derr != nil {
			return errors.Join(err, fmt.Errorf("delete admin user after: %w", derr))
		}
		return err
	}
	to.logger.Info("created user admin; its password is in the file (delete the file once you have it; add users with: mcpauth users add NAME --password-stdin)",
		"path", path)
	return nil
}

// writeSecretFile writes content to path with mode 0600, creating its
// directory with mode 0700 if needed.
func writeSecretFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("initial admin password: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("initial admin password: %w", err)
	}
	_, err = io.WriteString(f, content)
	err = errors.Join(err, f.Chmod(0o600), f.Close())
	if err != nil {
		return fmt.Errorf("initial admin password %s: %w", path, err)
	}
	return nil
}

// isTerminal reports whether w is a terminal (a tty, or a Cygwin/MSYS
// pty on Windows); a pipe, a file or /dev/null is not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func randomPassword() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newUserID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "u_" + base64.RawURLEncoding.EncodeToString(b)
}

// redactURL hides a password in a connection URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
