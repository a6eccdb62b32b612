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

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/authserver"
	"github.com/mcpauth/mcpauth/internal/safehttp"
	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/store/postgres"
	"github.com/mcpauth/mcpauth/internal/store/sqlite"
	"github.com/mcpauth/mcpauth/internal/token"
)

const serveUsage = `Usage: mcpauth serve [flags]

Runs the authorization server. With no flags it listens on 127.0.0.1:8080 with
issuer http://localhost:8080 and keeps its data in ./mcpauth-data.
Every flag has an MCPAUTH_* environment fallback; --config adds a YAML file
for structured settings (trust policy, static clients, resources, lifetimes).`

// policyReloadInterval bounds how long a `mcpauth clients block` takes to
// reach a running server (the issue asks for at most 5 s).
const policyReloadInterval = 2 * time.Second

func newServeFlags(stderr io.Writer) *serveFlags {
	fs := newFlagSet("serve", serveUsage, stderr)
	sf := &serveFlags{fs: fs}
	sf.addr = fs.String("addr", "127.0.0.1:8080", "listen address (env MCPAUTH_ADDR)")
	sf.issuer = fs.String("issuer", "", "issuer URL; https, or http on a loopback host (env MCPAUTH_ISSUER; default http://localhost:PORT)")
	sf.data = fs.String("data", "./mcpauth-data", "data directory: SQLite database (env MCPAUTH_DATA)")
	sf.config = fs.String("config", "", "YAML configuration file (env MCPAUTH_CONFIG)")
	sf.logFormat = fs.String("log-format", "text", "log format: text or json (env MCPAUTH_LOG_FORMAT)")
	sf.devLoop = fs.Bool("dev-allow-loopback", false, "development only: accept and fetch CIMD client_ids on loopback hosts; needs a loopback --addr (env MCPAUTH_DEV_ALLOW_LOOPBACK)")
	sf.devAuto = fs.String("dev-auto-approve", "", "development only, with --dev-allow-loopback: skip login and consent as USER (env MCPAUTH_DEV_AUTO_APPROVE)")
	sf.caFile = fs.String("cimd-ca-file", "", "PEM bundle of extra CAs trusted for client metadata hosts (env MCPAUTH_CIMD_CA_FILE)")
	sf.store = fs.String("store", "", "database: a postgres:// URL for replicas sharing one PostgreSQL; empty means SQLite in --data (env MCPAUTH_STORE)")
	sf.storeMaxConns = fs.Int("store-max-conns", 0, "PostgreSQL: connections per replica (env MCPAUTH_STORE_MAX_CONNS; default the URL's pool_max_conns, else 16)")
	sf.storeTimeout = fs.Duration("store-statement-timeout", 0, "PostgreSQL: statement timeout (env MCPAUTH_STORE_STATEMENT_TIMEOUT; default the URL's statement_timeout, else 5s)")
	sf.dcr = fs.Bool("enable-dcr", false, "enable RFC 7591 dynamic client registration (deprecated fallback; env MCPAUTH_ENABLE_DCR)")
	fs.Var(&sf.proxies, "trusted-proxy", "a load balancer or reverse proxy (IP or CIDR, repeatable) whose X-Forwarded-For names the client for rate limits (env MCPAUTH_TRUSTED_PROXIES, comma-separated)")
	fs.Var(&sf.resources, "resource", "an MCP server this issuer protects, URL or URL=scope1,scope2 (repeatable; env MCPAUTH_RESOURCE, space-separated)")
	return sf
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sf := newServeFlags(stderr)
	if err := parseFlags(sf.fs, args, stdout); err != nil {
		return err
	}
	if sf.fs.NArg() > 0 {
		return usageError("serve takes no arguments, got %q", sf.fs.Args())
	}
	cfg, err := resolveConfig(sf, getenv)
	if err != nil {
		return usageError("%v", err)
	}
	logger := newLogger(cfg.LogFormat, stderr)

	db, err := openStoreWith(ctx, cfg.Store, cfg.Data, postgres.Options{MaxConns: int32(cfg.StoreMaxConns), StatementTimeout: cfg.StoreStatementTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.DevAutoApprove != "" {
		// Checked before the first start creates admin, so that a refused
		// start leaves no user behind.
		users, err := db.ListUsers(ctx)
		if err != nil {
			return fmt.Errorf("dev-auto-approve: list users: %w", err)
		}
		known := slices.ContainsFunc(users, func(u store.User) bool { return u.Name == cfg.DevAutoApprove }) ||
			len(users) == 0 && cfg.DevAutoApprove == "admin" // created just below
		if !known {
			return usageError("dev-auto-approve %q: no such user; name an existing user (mcpauth users list) or add it with: mcpauth users add %s --password-stdin (with the same --data or --store as serve)",
				cfg.DevAutoApprove, cfg.DevAutoApprove)
		}
	}
	if err := ensureAdmin(ctx, db, stdout); err != nil {
		return err
	}
	keys := token.NewKeys(db, token.KeyOptions{TokenLifetime: cfg.lifetimes().AccessToken, Logger: logger})
	if err := keys.Load(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	roots, err := safehttp.LoadRootCAs(cfg.CIMDCAFile)
	if err != nil {
		return usageError("cimd-ca-file: %v", err)
	}
	policy, err := buildPolicy(ctx, cfg, db)
	if err != nil {
		return err
	}
	resolver, err := cimd.NewResolver(cimd.Options{Policy: policy, AllowLoopback: cfg.DevAllowLoopback, RootCAs: roots, Logger: logger,
		Cache: cimdCacheFor(db, logger)})
	if err != nil {
		return err
	}
	fetch, err := safehttp.New(safehttp.Options{AllowLoopback: cfg.DevAllowLoopback, RootCAs: roots, Logger: logger})
	if err != nil {
		return err
	}
	logos, err := safehttp.New(safehttp.Options{MaxBodyBytes: 64 << 10, AllowLoopback: cfg.DevAllowLoopback, RootCAs: roots, Logger: logger})
	if err != nil {
		return err
	}
	proxies, _ := cfg.trustedProxies() // validated with the rest of the configuration
	as, err := authserver.New(authserver.Options{Issuer: cfg.Issuer, Resources: cfg.authResources(),
		StaticClients: cfg.staticClients(), EnableDCR: cfg.EnableDCR, DevAutoApprove: cfg.DevAutoApprove, TrustedProxies: proxies,
		Lifetimes: cfg.lifetimes(), Store: db, Resolver: resolver, Keys: keys, Fetch: fetch, LogoFetch: logos, Logger: logger})
	if err != nil {
		return usageError("%v", err)
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

	var ready atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !ready.Load() || db.Ping(pctx) != nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("/", as)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 32 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	go every(bg, policyReloadInterval, func() {
		if p, err := buildPolicy(bg, cfg, db); err == nil {
			resolver.SetPolicy(p)
		} else {
			logger.Error("reload trust policy", "err", err)
		}
	})
	go every(bg, time.Minute, func() {
		if err := keys.Maintain(bg); err != nil {
			logger.Error("signing key maintenance", "err", err)
		}
	})
	go every(bg, 10*time.Minute, func() {
		if n, err := db.DeleteExpired(bg, time.Now()); err != nil {
			logger.Error("collect expired rows", "err", err)
		} else if n > 0 {
			logger.Info("collected expired rows", "rows", n)
		}
	})

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready.Store(true)
	fmt.Fprintf(stdout, "mcpauth: listening on http://%s, issuer %s\n", ln.Addr(), cfg.Issuer)
	logger.Info("listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer)

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

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// openStore opens the store: PostgreSQL when storeURL is a postgres:// or
// postgresql:// URL (pool settings ride in it as pool_max_conns and the
// like), else the SQLite database in the data directory (created with mode
// 0700). Both refuse a schema newer than this binary knows.
func openStore(ctx context.Context, storeURL, dir string) (store.Store, error) {
	return openStoreWith(ctx, storeURL, dir, postgres.Options{})
}

// openStoreWith is openStore with PostgreSQL pool settings (zero fields take
// the URL's pool_* values, then the defaults).
func openStoreWith(ctx context.Context, storeURL, dir string, pg postgres.Options) (store.Store, error) {
	switch {
	case strings.HasPrefix(storeURL, "postgres://"), strings.HasPrefix(storeURL, "postgresql://"):
		return postgres.Open(ctx, storeURL, pg)
	case storeURL != "" && storeURL != "sqlite":
		return nil, usageError("store %q: use a postgres:// URL, or leave it empty for SQLite in --data", redactURL(storeURL))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %q: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %q: %w", dir, err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "mcpauth.db"))
	if err != nil {
		return nil, err
	}
	return db, nil
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

// ensureAdmin creates user admin with a random password on first start.
func ensureAdmin(ctx context.Context, db store.Store, stdout io.Writer) error {
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
	fmt.Fprintf(stdout, "mcpauth: created user admin with password %s\n", pw)
	fmt.Fprintf(stdout, "mcpauth: this password is shown once; add users with: mcpauth users add NAME --password-stdin\n")
	return nil
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
