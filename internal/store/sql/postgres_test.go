package sql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/store/storetest"
)

// testDSNEnv names the variable holding the test server's connection
// string; defaultTestDSN is used when it is empty.
const (
	testDSNEnv     = "MCPAUTH_TEST_POSTGRES"
	defaultTestDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

// server is the PostgreSQL server the tests run against.
type server struct {
	dsn   string
	admin *pgxpool.Pool // for creating and dropping schemas, outside the store
}

// testServer connects to the test server, which must be on a loopback
// address. When it is unreachable the test fails if the CI environment
// variable is set, and is skipped otherwise.
func testServer(tb testing.TB) *server {
	tb.Helper()
	dsn := os.Getenv(testDSNEnv)
	if dsn == "" {
		dsn = defaultTestDSN
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("%s: %v", testDSNEnv, err)
	}
	if ip := net.ParseIP(cfg.Host); cfg.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		tb.Fatalf("%s: host %q is not a loopback address; the tests connect only to the loopback interface", testDSNEnv, cfg.Host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgxpool.New(ctx, dsn)
	if err == nil {
		if err = admin.Ping(ctx); err != nil {
			admin.Close()
		}
	}
	if err != nil {
		where := fmt.Sprintf("PostgreSQL at %s:%d (database %q, user %q)", cfg.Host, cfg.Port, cfg.Database, cfg.User)
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			tb.Fatalf("%s is unreachable, and CI=%s makes that a failure: %v", where, ci, err)
		}
		tb.Skipf("%s is unreachable, so these tests are skipped (with CI=true they fail; %s sets another server): %v",
			where, testDSNEnv, err)
	}
	tb.Cleanup(admin.Close)
	return &server{dsn: dsn, admin: admin}
}

// schema creates a schema of its own for the test, dropped at its end, and
// returns a connection string whose search_path is that schema.
func (s *server) schema(tb testing.TB) (dsn, name string) {
	tb.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	name = "mcpauth_test_" + hex.EncodeToString(b)
	if _, err := s.admin.Exec(context.Background(), "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := s.admin.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
	})
	return withParams(tb, s.dsn, map[string]string{"search_path": name}), name
}

// open opens a store on a fresh schema, closed at the end of the test.
func (s *server) open(tb testing.TB, opts Options) *DB {
	tb.Helper()
	dsn, _ := s.schema(tb)
	return openDSN(tb, dsn, opts)
}

// openDSN opens a store on dsn, closed at the end of the test.
func openDSN(tb testing.TB, dsn string, opts Options) *DB {
	tb.Helper()
	db, err := OpenPostgres(context.Background(), dsn, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// withParams returns dsn with the parameters set; "host" and "port" set
// the address.
func withParams(tb testing.TB, dsn string, params map[string]string) string {
	tb.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("parse %s: %v", testDSNEnv, err)
		}
		q := u.Query()
		for k, v := range params {
			switch k {
			case "host":
				u.Host = net.JoinHostPort(v, u.Port())
			case "port":
				u.Host = net.JoinHostPort(u.Hostname(), v)
			default:
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for k, v := range params { // key=value form: a later setting wins
		dsn += fmt.Sprintf(" %s='%s'", k, v)
	}
	return dsn
}

func TestConformancePostgres(t *testing.T) {
	srv := testServer(t)
	storetest.Run(t, func(t *testing.T) store.Store { return srv.open(t, Options{}) })
}

// TestReplicas races calls on one single-use value through two stores on
// one schema, as two replicas behind a load balancer would.
func TestReplicas(t *testing.T) {
	srv := testServer(t)
	dsn, _ := srv.schema(t)
	replicas := []*DB{openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})}
	ctx, now := t.Context(), time.Now()
	const racers = 10
	// race calls fn(replica, i) for i in 0..racers-1 at once, alternating
	// the replicas, and fails the test unless exactly one succeeds and the
	// others fail with store.ErrAlreadyUsed.
	race := func(t *testing.T, fn func(db *DB, i int) error) {
		t.Helper()
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				<-start
				errs[i] = fn(replicas[i%len(replicas)], i)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrAlreadyUsed):
				t.Errorf("racer %d: err = %v, want nil or ErrAlreadyUsed", i, err)
			}
		}
		if won != 1 {
			t.Errorf("%d racers won, want 1: %v", won, errs)
		}
	}
	c := codeFor("replicated", now)
	if err := replicas[0].CreateCode(ctx, c); err != nil {
		t.Fatalf("CreateCode: %v", err)
	}
	t.Run("F2 one code redeemed on two replicas at once: exactly one wins", func(t *testing.T) {
		race(t, func(db *DB, i int) error {
			rt := store.RefreshToken{Hash: fmt.Sprintf("rt-%d", i), FamilyID: c.FamilyID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			return db.RedeemCode(ctx, c.Hash, now, familyFor(c, now), &rt)
		})
	})
	t.Run("F8 one refresh token rotated on two replicas at once: exactly one wins", func(t *testing.T) {
		// The winner of the redemption holds the family's one token.
		var first string
		for i := range racers {
			if _, _, err := replicas[1].GetRefreshToken(ctx, fmt.Sprintf("rt-%d", i)); err == nil {
				first = fmt.Sprintf("rt-%d", i)
			}
		}
		if first == "" {
			t.Fatalf("no refresh token stored by the redemption")
		}
		race(t, func(db *DB, i int) error {
			next := store.RefreshToken{Hash: fmt.Sprintf("next-%d", i), FamilyID: c.FamilyID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			return db.RotateRefreshToken(ctx, first, now, next)
		})
	})
}

// codeFor is an unused code that expires an hour after now.
func codeFor(hash string, now time.Time) store.Code {
	return store.Code{
		Hash: hash, ClientID: "https://client.example/cimd.json", UserID: "u1",
		RedirectURI: "http://127.0.0.1:33418/callback", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Resource: "https://mcp.example/mcp", Scopes: "files:read", FamilyID: "fam-" + hash,
		AuthTime: now, ExpiresAt: now.Add(time.Hour),
	}
}

// familyFor is the family that code creates.
func familyFor(c store.Code, now time.Time) store.Family {
	return store.Family{ID: c.FamilyID, ClientID: c.ClientID, UserID: c.UserID, Resource: c.Resource, Scopes: c.Scopes,
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
}

// checkRedeemable fails the test unless the code is unused and can now be
// redeemed exactly once.
func checkRedeemable(t *testing.T, db *DB, c store.Code, now time.Time) {
	t.Helper()
	ctx := t.Context()
	got, err := db.GetCode(ctx, c.Hash)
	if err != nil {
		t.Fatalf("GetCode: %v", err)
	}
	if !got.UsedAt.IsZero() {
		t.Fatalf("UsedAt = %v after a failed redemption, want zero", got.UsedAt)
	}
	if _, err := db.GetFamily(ctx, c.FamilyID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetFamily after a failed redemption: err = %v, want ErrNotFound", err)
	}
	if err := db.RedeemCode(ctx, c.Hash, now, familyFor(c, now), nil); err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	if err := db.RedeemCode(ctx, c.Hash, now, familyFor(c, now), nil); !errors.Is(err, store.ErrAlreadyUsed) {
		t.Fatalf("RedeemCode again: err = %v, want ErrAlreadyUsed", err)
	}
}

// checkNotSentinel fails the test unless err is an error that is none of
// the store's sentinels and mentions what was being done.
func checkNotSentinel(t *testing.T, err error, doing string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: err = nil, want an error", doing)
	}
	for _, s := range []error{store.ErrNotFound, store.ErrConflict, store.ErrAlreadyUsed} {
		if errors.Is(err, s) {
			t.Fatalf("%s: err = %v, want an error other than %v", doing, err, s)
		}
	}
	if !strings.Contains(err.Error(), doing) {
		t.Errorf("error %q does not say %q", err, doing)
	}
}

func TestStatementTimeout(t *testing.T) {
	srv := testServer(t)
	show := func(t *testing.T, db *DB, setting string) string {
		t.Helper()
		var v string
		if err := db.r.QueryRowContext(t.Context(), "SHOW "+setting).Scan(&v); err != nil {
			t.Fatalf("SHOW %s: %v", setting, err)
		}
		return v
	}
	t.Run("every connection has the default timeouts and is named", func(t *testing.T) {
		db := srv.open(t, Options{})
		for setting, want := range map[string]string{
			"statement_timeout":                   "5s",
			"idle_in_transaction_session_timeout": "5s",
			"application_name":                    "mcpauth",
		} {
			if got := show(t, db, setting); got != want {
				t.Errorf("%s = %q, want %q", setting, got, want)
			}
		}
	})
	t.Run("a statement running past the timeout is cancelled", func(t *testing.T) {
		db := srv.open(t, Options{StatementTimeout: 100 * time.Millisecond})
		if got := show(t, db, "statement_timeout"); got != "100ms" {
			t.Errorf("statement_timeout = %q, want 100ms", got)
		}
		_, err := db.r.ExecContext(t.Context(), "SELECT pg_sleep(10)")
		if got := sqlState(err); got != "57014" { // query_canceled
			t.Fatalf("pg_sleep past the timeout: err = %v (SQLSTATE %q), want SQLSTATE 57014", err, got)
		}
	})
	t.Run("F2 a redemption stuck behind a lock times out and writes nothing", func(t *testing.T) {
		dsn, schema := srv.schema(t)
		db := openDSN(t, dsn, Options{StatementTimeout: 200 * time.Millisecond})
		ctx, now := t.Context(), time.Now()
		c := codeFor("locked", now)
		if err := db.CreateCode(ctx, c); err != nil {
			t.Fatalf("CreateCode: %v", err)
		}
		// Another session holds the code's row lock, as a replica frozen
		// in the middle of a transaction would.
		tx, err := srv.admin.Begin(ctx)
		if err != nil {
			t.Fatalf("Begin: %v", err)
		}
		if _, err := tx.Exec(ctx, "SELECT 1 FROM "+schema+".codes WHERE hash = $1 FOR UPDATE", c.Hash); err != nil {
			t.Fatalf("lock the code: %v", err)
		}
		err = db.RedeemCode(ctx, c.Hash, now, familyFor(c, now), nil)
		checkNotSentinel(t, err, "redeem code")
		if got := sqlState(err); got != "57014" {
			t.Errorf("RedeemCode behind a lock: SQLSTATE %q, want 57014 (err = %v)", got, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatalf("Rollback: %v", err)
		}
		checkRedeemable(t, db, c, now)
	})
}

func TestPoolConfig(t *testing.T) {
	const base = "postgres://mcpauth@127.0.0.1:5432/mcpauth?sslmode=disable"
	type want struct {
		maxConns, minIdle    int32
		lifetime, idle, dial time.Duration
		statement, idleInTx  string
		application          string
	}
	defaults := want{DefaultMaxConns, 0, DefaultMaxConnLifetime, DefaultMaxConnIdleTime, DefaultConnectTimeout, "5000", "5000", "mcpauth"}
	tests := []struct {
		name string
		dsn  string
		opts Options
		want want
	}{
		{"zero options are the defaults", base, Options{}, defaults},
		{"key=value connection string", "host=127.0.0.1 user=mcpauth dbname=mcpauth", Options{}, defaults},
		{
			"the connection string's settings are kept",
			base + "&pool_max_conns=3&pool_min_idle_conns=1&pool_max_conn_lifetime=10m&pool_max_conn_idle_time=1m" +
				"&connect_timeout=2&statement_timeout=1000&application_name=replica-a",
			Options{},
			want{3, 1, 10 * time.Minute, time.Minute, 2 * time.Second, "1000", "1000", "replica-a"},
		},
		{
			"options win over the connection string",
			base + "&pool_max_conns=3&statement_timeout=1000&connect_timeout=2",
			Options{MaxConns: 7, MinIdleConns: 2, MaxConnLifetime: time.Minute, MaxConnIdleTime: time.Second,
				StatementTimeout: 250 * time.Millisecond, ConnectTimeout: time.Second},
			want{7, 2, time.Minute, time.Second, time.Second, "250", "250", "mcpauth"},
		},
		{
			"negative statement timeout is none",
			base + "&idle_in_transaction_session_timeout=60000",
			Options{StatementTimeout: -1},
			want{DefaultMaxConns, 0, DefaultMaxConnLifetime, DefaultMaxConnIdleTime, DefaultConnectTimeout, "0", "60000", "mcpauth"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := poolConfig(tt.dsn, tt.opts)
			if err != nil {
				t.Fatalf("poolConfig: %v", err)
			}
			p := cfg.ConnConfig.RuntimeParams
			got := want{cfg.MaxConns, cfg.MinIdleConns, cfg.MaxConnLifetime, cfg.MaxConnIdleTime, cfg.ConnConfig.ConnectTimeout,
				p["statement_timeout"], p["idle_in_transaction_session_timeout"], p["application_name"]}
			if got != tt.want {
				t.Errorf("poolConfig =\n%+v, want\n%+v", got, tt.want)
			}
			for _, k := range []string{"pool_max_conns", "pool_min_idle_conns", "pool_max_conn_lifetime", "pool_max_conn_idle_time"} {
				if _, ok := p[k]; ok {
					t.Errorf("runtime parameter %s is sent to the server", k)
				}
			}
		})
	}
	t.Run("a bad connection string is refused without echoing the password", func(t *testing.T) {
		_, err := OpenPostgres(t.Context(), "postgres://mcpauth:hunter2@127.0.0.1:5432/mcpauth?pool_max_conns=lots", Options{})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("Open with a bad pool_max_conns: err = %v, want an error without the password", err)
		}
	})
}

func TestMigrate(t *testing.T) {
	srv := testServer(t)
	ms, err := readMigrations(postgresDialect().schema.migrations)
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	latest := len(ms)
	// connectOnly connects to dsn without touching the schema.
	connectOnly := func(t *testing.T, dsn string) *DB {
		t.Helper()
		cfg, err := poolConfig(dsn, Options{})
		if err != nil {
			t.Fatalf("poolConfig: %v", err)
		}
		db, err := connect(t.Context(), cfg)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	// checkApplied fails the test unless the schema records each migration
	// exactly once.
	checkApplied := func(t *testing.T, schema string) {
		t.Helper()
		var n, distinct, top int
		err := srv.admin.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT version), coalesce(max(version), 0) FROM "+
			schema+".schema_migrations").Scan(&n, &distinct, &top)
		if err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		if n != latest || distinct != latest || top != latest {
			t.Errorf("schema_migrations has %d rows, %d versions, top %d; want %d each", n, distinct, top, latest)
		}
	}

	t.Run("concurrent Migrate from two goroutines applies each migration once", func(t *testing.T) {
		dsn, schema := srv.schema(t)
		dbs := []*DB{connectOnly(t, dsn), connectOnly(t, dsn)}
		errs := make([]error, len(dbs))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, db := range dbs {
			wg.Go(func() {
				<-start
				errs[i] = db.Migrate(t.Context())
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate %d: %v", i, err)
			}
		}
		checkApplied(t, schema)
	})
	t.Run("replicas opening one empty schema at once all succeed", func(t *testing.T) {
		dsn, schema := srv.schema(t)
		const replicas = 3
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() {
				db, err := OpenPostgres(t.Context(), dsn, Options{})
				if err == nil {
					db.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
			}
		}
		checkApplied(t, schema)
	})
	t.Run("Migrate waits for another replica's migration lock", func(t *testing.T) {
		dsn, schema := srv.schema(t)
		ctx := t.Context()
		// Another replica migrating holds the lock.
		tx, err := srv.admin.Begin(ctx)
		if err != nil {
			t.Fatalf("Begin: %v", err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", migrationLockClass, schema); err != nil {
			t.Fatalf("take the migration lock: %v", err)
		}
		db := connectOnly(t, withParams(t, dsn, map[string]string{"application_name": "waiting-replica"}))
		done := make(chan error, 1)
		go func() { done <- db.Migrate(ctx) }()
		// Poll, bounded by the test's deadline, until it is queued on the lock.
		for waiting := false; !waiting; {
			err := srv.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
				WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = 'waiting-replica')`).Scan(&waiting)
			if err != nil {
				t.Fatalf("read pg_locks: %v", err)
			}
			select {
			case err := <-done:
				t.Fatalf("Migrate returned while another session held the migration lock: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		var tables int
		if err := srv.admin.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema).Scan(&tables); err != nil {
			t.Fatalf("count tables: %v", err)
		}
		if tables != 0 {
			t.Errorf("%d tables created while the lock was held, want none", tables)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatalf("release the lock: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Migrate after the lock was released: %v", err)
		}
		checkApplied(t, schema)
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
		checkApplied(t, schema)
	})
	t.Run("a search_path without an existing schema is explained", func(t *testing.T) {
		db, err := OpenPostgres(t.Context(), withParams(t, srv.dsn, map[string]string{"search_path": "mcpauth_test_no_such_schema"}), Options{})
		if err == nil {
			db.Close()
			t.Fatalf("Open succeeded")
		}
		if want := "names no schema that exists"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	})
	t.Run("a schema newer than the code is refused", func(t *testing.T) {
		dsn, schema := srv.schema(t)
		db := openDSN(t, dsn, Options{})
		ctx := t.Context()
		if _, err := srv.admin.Exec(ctx, "INSERT INTO "+schema+".schema_migrations (version, name) VALUES ($1, 'from_the_future.sql')", latest+1); err != nil {
			t.Fatalf("record a future migration: %v", err)
		}
		errs := map[string]error{"Migrate": db.Migrate(ctx)}
		for name, opts := range map[string]Options{"Open": {}, "Open with NoMigrate": {NoMigrate: true}} {
			db2, err := OpenPostgres(ctx, dsn, opts)
			if err == nil {
				db2.Close()
			}
			errs[name] = err
		}
		for name, err := range errs {
			if !errors.Is(err, ErrSchemaTooNew) {
				t.Errorf("%s: err = %v, want ErrSchemaTooNew", name, err)
				continue
			}
			if want := fmt.Sprintf("schema version %d, this mcpauth knows up to %d", latest+1, latest); !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", name, err, want)
			}
		}
		// Nothing was changed: the store still works.
		if err := db.PutBlock(ctx, store.Block{Pattern: "evil.example", CreatedAt: time.Now()}); err != nil {
			t.Errorf("PutBlock: %v", err)
		}
	})
	t.Run("NoMigrate refuses an unmigrated schema and opens a migrated one", func(t *testing.T) {
		dsn, _ := srv.schema(t)
		_, err := OpenPostgres(t.Context(), dsn, Options{NoMigrate: true})
		if !errors.Is(err, ErrSchemaTooOld) || !strings.Contains(err.Error(), "run mcpauth migrate") {
			t.Fatalf("Open with NoMigrate on an empty schema: err = %v, want ErrSchemaTooOld saying to run mcpauth migrate", err)
		}
		db := connectOnly(t, dsn)
		if v, err := db.SchemaVersion(t.Context()); err != nil || v != 0 {
			t.Fatalf("SchemaVersion of an empty schema = %d, %v; want 0", v, err)
		}
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if v, err := db.SchemaVersion(t.Context()); err != nil || v != latest {
			t.Fatalf("SchemaVersion after Migrate = %d, %v; want %d", v, err, latest)
		}
		openDSN(t, dsn, Options{NoMigrate: true})
	})
}

// proxy relays TCP connections from a loopback port to the test server,
// so that a test can take the database away and bring it back.
type proxy struct {
	target, addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// startProxy relays a new loopback port to target until the test ends.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.relay(c)
		}
	}()
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) relay(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer u.Close()
	if !p.track(c) || !p.track(u) {
		return
	}
	go func() {
		io.Copy(u, c)
		u.Close()
	}()
	io.Copy(c, u)
}

// down closes the port and every relayed connection.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// up listens on the port again.
func (p *proxy) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func TestDatabaseDown(t *testing.T) {
	srv := testServer(t)
	t.Run("Open of a database that is not there says so", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close() // nothing listens there now
		dsn := withParams(t, srv.dsn, map[string]string{"host": "127.0.0.1", "port": port})
		db, err := OpenPostgres(t.Context(), dsn, Options{})
		if err == nil {
			db.Close()
			t.Fatalf("Open of a closed port succeeded")
		}
		for _, want := range []string{"open postgres database", "127.0.0.1:" + port, "ping postgres"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
	t.Run("F2 calls fail while the database is away, nothing is half-written, and the pool recovers", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(srv.dsn)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		p := startProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
		dsn, _ := srv.schema(t)
		host, port, _ := net.SplitHostPort(p.addr)
		db := openDSN(t, withParams(t, dsn, map[string]string{"host": host, "port": port}), Options{MaxConns: 2})
		ctx, now := t.Context(), time.Now()
		c := codeFor("during-outage", now)
		if err := db.CreateCode(ctx, c); err != nil {
			t.Fatalf("CreateCode: %v", err)
		}

		p.down()
		checkNotSentinel(t, db.Ping(ctx), "ping postgres")
		checkNotSentinel(t, db.RedeemCode(ctx, c.Hash, now, familyFor(c, now), nil), "redeem code")
		_, err = db.GetCode(ctx, c.Hash)
		checkNotSentinel(t, err, "get code")
		_, err = db.ListUsers(ctx)
		checkNotSentinel(t, err, "list users")

		p.up(t)
		checkRedeemable(t, db, c, now) // reads first: they retry past connections broken by the outage
		if err := db.Ping(ctx); err != nil {
			t.Errorf("Ping after the database came back: %v", err)
		}
	})
}

func TestRetry(t *testing.T) {
	pgErr := func(code string) error { return fmt.Errorf("get code: %w", &pgconn.PgError{Code: code}) }
	t.Run("transient errors", func(t *testing.T) {
		tests := []struct {
			name string
			err  error
			want bool
		}{
			{"serialization failure", pgErr("40001"), true},
			{"deadlock", pgErr("40P01"), true},
			{"server shutting down", pgErr("57P01"), true},
			{"server starting up", pgErr("57P03"), true},
			{"cached plan changed by a migration", pgErr("0A000"), true},
			{"broken connection", fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), true},
			{"network error", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
			{"unique violation", pgErr("23505"), false},
			{"statement timeout", pgErr("57014"), false},
			{"no rows", pgx.ErrNoRows, false},
			{"canceled", fmt.Errorf("query: %w", context.Canceled), false},
			{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), false},
			{"other", errors.New("cannot scan"), false},
		}
		for _, tt := range tests {
			if got := transient(tt.err); got != tt.want {
				t.Errorf("transient(%s: %v) = %v, want %v", tt.name, tt.err, got, tt.want)
			}
		}
	})
	tests := []struct {
		name      string
		errs      []error // returned by successive attempts; nil after the last
		cancel    bool
		wantCalls int
		wantErr   bool
	}{
		{"success needs one attempt", nil, false, 1, false},
		{"a serialization failure is tried again", []error{pgErr("40001"), pgErr("40001")}, false, 3, false},
		{"gives up after the last attempt", []error{pgErr("40001"), pgErr("40001"), pgErr("40001"), pgErr("40001")}, false, readAttempts, true},
		{"a lasting error is returned at once", []error{pgErr("23505")}, false, 1, true},
		{"a canceled context stops the retries", []error{pgErr("40001"), pgErr("40001")}, true, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			calls := 0
			err := retry(ctx, transient, func() error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if calls != tt.wantCalls || (err != nil) != tt.wantErr {
				t.Errorf("retry: %d calls, err = %v; want %d calls, error %v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}
