// Command bench drives complete OAuth flows against a running mcpauth server
// and reports throughput and latency. It serves its own client metadata
// document on loopback, so the server must run with --dev-allow-loopback and
// --dev-auto-approve (consent remembered, no pages):
//
//	mcpauth serve --dev-allow-loopback --dev-auto-approve admin --resource http://127.0.0.1:9/mcp
//	go run ./bench --server http://127.0.0.1:8080 --concurrency 8 --duration 10s
//
// Modes: flows (authorize -> code exchange -> refresh, all timed),
// token (code exchanges only, codes prepared first), refresh (refresh grants
// only), introspect (needs --introspect-client ID:SECRET of a static client
// with introspect: true). Traffic goes only to the given server, which must
// be on loopback.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type config struct {
	server, resource, mode, introspect string
	concurrency                        int
	duration                           time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "base URL of the running mcpauth server (loopback only)")
	fs.StringVar(&c.resource, "resource", "", "resource to request (default: the server's only protected resource)")
	fs.StringVar(&c.mode, "mode", "flows", "flows, token, refresh or introspect")
	fs.StringVar(&c.introspect, "introspect-client", "", "ID:SECRET of a static client allowed to introspect (mode introspect)")
	fs.IntVar(&c.concurrency, "concurrency", 8, "concurrent clients")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to run (bounded; at most 2m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(c.server)
	if err != nil || !isLoopback(u.Hostname()) {
		return fmt.Errorf("--server %q: must be an http URL on a loopback address", c.server)
	}
	if c.duration > 2*time.Minute {
		c.duration = 2 * time.Minute
	}
	doc, clientID, err := serveClientDocument()
	if err != nil {
		return err
	}
	defer doc.Close()
	b := &bench{cfg: c, clientID: clientID, http: &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	// Warm up: resolves the client document once (warm CIMD cache from here on).
	if _, err := b.flow(ctx, nil); err != nil {
		return fmt.Errorf("warm-up flow: %w", err)
	}
	switch c.mode {
	case "flows":
		return b.runFlows(ctx, out)
	case "token", "refresh", "introspect":
		return b.runSingle(ctx, out)
	default:
		return fmt.Errorf("--mode %q: use flows, token, refresh or introspect", c.mode)
	}
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// serveClientDocument publishes a public-client metadata document on
// http://127.0.0.1:PORT (accepted by a server in --dev-allow-loopback mode).
func serveClientDocument() (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	clientID := "http://" + ln.Addr().String() + "/client.json"
	body, _ := json.Marshal(map[string]any{"client_id": clientID, "client_name": "mcpauth bench",
		"redirect_uris": []string{"http://127.0.0.1/callback"}, "grant_types": []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method": "none"})
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	return srv, clientID, nil
}

// tally counts outcomes from concurrent workers.
type tally struct {
	mu       sync.Mutex
	ok, fail int64
	firstErr error
}

func (t *tally) record(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		t.ok++
		return
	}
	t.fail++
	if t.firstErr == nil {
		t.firstErr = err
	}
}

type bench struct {
	cfg      config
	clientID string
	http     *http.Client
}

// timings collects latencies per step.
type timings struct {
	mu sync.Mutex
	d  map[string][]time.Duration
}

func (t *timings) add(step string, d time.Duration) {
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.d == nil {
		t.d = map[string][]time.Duration{}
	}
	t.d[step] = append(t.d[step], d)
	t.mu.Unlock()
}

func (b *bench) timed(t *timings, step string, f func() error) error {
	start := time.Now()
	err := f()
	if err == nil {
		t.add(step, time.Since(start))
	}
	return err
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// flow runs authorize -> token -> refresh once.
func (b *bench) flow(ctx context.Context, t *timings) (tokens, error) {
	code, verifier, err := b.authorize(ctx, t)
	if err != nil {
		return tokens{}, err
	}
	var tk tokens
	if err := b.timed(t, "token(code)", func() error {
		tk, err = b.exchange(ctx, code, verifier)
		return err
	}); err != nil {
		return tokens{}, err
	}
	if err := b.timed(t, "token(refresh)", func() error {
		tk, err = b.refresh(ctx, tk.RefreshToken)
		return err
	}); err != nil {
		return tokens{}, err
	}
	return tk, nil
}

func (b *bench) authorize(ctx context.Context, t *timings) (code, verifier string, err error) {
	vb := make([]byte, 32)
	_, _ = rand.Read(vb)
	verifier = base64.RawURLEncoding.EncodeToString(vb)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {b.clientID}, "redirect_uri": {"http://127.0.0.1:1/callback"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "state": {"bench"}}
	if b.cfg.resource != "" {
		q.Set("resource", b.cfg.resource)
	}
	err = b.timed(t, "authorize", func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.server+"/authorize?"+q.Encode(), nil)
		resp, err := b.http.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Query().Get("code") == "" {
			return fmt.Errorf("authorize: %d %s (run the server with --dev-allow-loopback --dev-auto-approve USER)", resp.StatusCode, resp.Header.Get("Location"))
		}
		code = loc.Query().Get("code")
		return nil
	})
	return code, verifier, err
}

func (b *bench) post(ctx context.Context, path string, form url.Values, basic []string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.cfg.server+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, body)
	}
	if v != nil {
		return json.Unmarshal(body, v)
	}
	return nil
}

func (b *bench) exchange(ctx context.Context, code, verifier string) (tokens, error) {
	var tk tokens
	err := b.post(ctx, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"client_id": {b.clientID}, "redirect_uri": {"http://127.0.0.1:1/callback"}}, nil, &tk)
	return tk, err
}

func (b *bench) refresh(ctx context.Context, rt string) (tokens, error) {
	var tk tokens
	err := b.post(ctx, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {b.clientID}}, nil, &tk)
	return tk, err
}

func (b *bench) runFlows(ctx context.Context, out io.Writer) error {
	t := &timings{}
	var res tally
	start := time.Now()
	deadline := start.Add(b.cfg.duration)
	var wg sync.WaitGroup
	for range b.cfg.concurrency {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				_, err := b.flow(ctx, t)
				res.record(err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(out, "mode flows, concurrency %d, %s: %d flows (%.0f flows/s), %.0f token requests/s, %d failures\n",
		b.cfg.concurrency, elapsed.Round(time.Millisecond), res.ok, float64(res.ok)/elapsed.Seconds(), float64(2*res.ok)/elapsed.Seconds(), res.fail)
	report(out, t)
	if res.firstErr != nil {
		return fmt.Errorf("first failure: %w", res.firstErr)
	}
	return nil
}

// runSingle prepares inputs with full flows, then times one kind of request.
func (b *bench) runSingle(ctx context.Context, out io.Writer) error {
	var basic []string
	if b.cfg.mode == "introspect" {
		basic = strings.SplitN(b.cfg.introspect, ":", 2)
		if len(basic) != 2 {
			return errors.New("--mode introspect needs --introspect-client ID:SECRET")
		}
	}
	// Prepare enough inputs for the whole run: estimate from a short probe.
	type input struct{ code, verifier, refresh, access string }
	n := 2000 * b.cfg.concurrency
	if b.cfg.mode == "introspect" {
		n = b.cfg.concurrency // tokens are reusable
	}
	inputs := make(chan input, n)
	var prep sync.WaitGroup
	var prepErr error
	var prepMu sync.Mutex
	for range b.cfg.concurrency {
		prep.Go(func() {
			for range n / b.cfg.concurrency {
				var in input
				var err error
				switch b.cfg.mode {
				case "token":
					in.code, in.verifier, err = b.authorize(ctx, nil)
				default:
					var tk tokens
					tk, err = b.flow(ctx, nil)
					in.refresh, in.access = tk.RefreshToken, tk.AccessToken
				}
				if err != nil {
					prepMu.Lock()
					prepErr = err
					prepMu.Unlock()
					return
				}
				inputs <- in
			}
		})
	}
	prep.Wait()
	close(inputs)
	if prepErr != nil {
		return fmt.Errorf("prepare: %w", prepErr)
	}
	var pool []input
	for in := range inputs {
		pool = append(pool, in)
	}
	t := &timings{}
	var res tally
	var mu sync.Mutex // guards next
	start := time.Now()
	deadline := start.Add(b.cfg.duration)
	next := 0
	var wg sync.WaitGroup
	for w := range b.cfg.concurrency {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				var in input
				mu.Lock()
				if b.cfg.mode == "introspect" {
					in = pool[w%len(pool)]
				} else {
					if next >= len(pool) {
						mu.Unlock()
						return
					}
					in = pool[next]
					next++
				}
				mu.Unlock()
				err := b.timed(t, b.cfg.mode, func() error {
					switch b.cfg.mode {
					case "token":
						_, err := b.exchange(ctx, in.code, in.verifier)
						return err
					case "refresh":
						_, err := b.refresh(ctx, in.refresh)
						return err
					default:
						var res struct {
							Active bool `json:"active"`
						}
						if err := b.post(ctx, "/introspect", url.Values{"token": {in.access}}, basic, &res); err != nil {
							return err
						}
						if !res.Active {
							return errors.New("introspection says inactive")
						}
						return nil
					}
				})
				res.record(err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(out, "mode %s, concurrency %d, %s: %d requests (%.0f requests/s), %d failures\n",
		b.cfg.mode, b.cfg.concurrency, elapsed.Round(time.Millisecond), res.ok, float64(res.ok)/elapsed.Seconds(), res.fail)
	if b.cfg.mode != "introspect" && next >= len(pool) {
		fmt.Fprintf(out, "(ran out of %d prepared inputs before the duration ended)\n", len(pool))
	}
	report(out, t)
	if res.firstErr != nil {
		return fmt.Errorf("first failure: %w", res.firstErr)
	}
	return nil
}

func report(out io.Writer, t *timings) {
	var steps []string
	for s := range t.d {
		steps = append(steps, s)
	}
	sort.Strings(steps)
	for _, s := range steps {
		d := t.d[s]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Fprintf(out, "  %-15s n=%-7d p50=%-10s p99=%s\n", s, len(d), d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond))
	}
}
