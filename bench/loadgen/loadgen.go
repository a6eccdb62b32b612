// Package loadgen is the load generator behind the bench command: it drives
// complete OAuth flows, or one kind of request, against a running mcpauth
// server and reports throughput, latency and CPU use. It serves its own
// client metadata document on loopback, so the server must run with
// --dev-allow-loopback and --dev-auto-approve (consent remembered, no
// pages). Traffic goes only to the given server, which must be on loopback.
package loadgen

import (
	"bytes"
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
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	server, resource, mode, introspect string
	concurrency, serverPID, inputs     int
	duration                           time.Duration
}

// Run parses the bench command's arguments, runs the load and writes the
// report to out. It returns the first failed request's error, if any
// request failed.
func Run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "base URL of the running mcpauth server (loopback only)")
	fs.StringVar(&c.resource, "resource", "", "resource to request (default: the server's only protected resource)")
	fs.StringVar(&c.mode, "mode", "flows", "flows, token, refresh or introspect")
	fs.StringVar(&c.introspect, "introspect-client", "", "ID:SECRET of a static client allowed to introspect (mode introspect)")
	fs.IntVar(&c.concurrency, "concurrency", 8, "concurrent clients")
	fs.IntVar(&c.inputs, "inputs", 0, "codes (mode token) or refresh tokens (mode refresh) to prepare before the clock starts; the run ends early when they are used up (default 2,000 per client; for codes at most 20,000, what the server keeps in memory)")
	fs.IntVar(&c.serverPID, "server-pid", 0, "process ID of the server, to report its CPU use during the run (Linux)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to run (bounded; at most 2m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(c.server)
	if err != nil || !isLoopback(u.Hostname()) {
		return fmt.Errorf("--server %q: must be an http URL on a loopback address", c.server)
	}
	if c.concurrency < 1 || c.concurrency > 1024 {
		return fmt.Errorf("--concurrency %d: use 1 to 1024", c.concurrency)
	}
	if c.duration > 2*time.Minute {
		c.duration = 2 * time.Minute
	}
	doc, clientID, err := serveClientDocument()
	if err != nil {
		return err
	}
	defer doc.Close()
	if u.Scheme != "http" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("--server %q: give http://HOST:PORT (the load generator speaks plain HTTP/1.1)", c.server)
	}
	client := newClient(c.concurrency)
	defer client.CloseIdleConnections()
	b := &bench{cfg: c, base: "http://" + u.Host, client: client, clientID: clientID, clientIDq: url.QueryEscape(clientID)}
	// Warm up: resolves the client document once (warm CIMD cache from here on).
	_, err = b.newWorker(false).flow()
	if err != nil {
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

// newClient returns the HTTP client of a run: net/http's, keeping one
// connection per concurrent client alive, with bodies as they are (no
// gzip), redirects not followed (the /authorize redirect carries the code)
// and 10 s per request. net/http sends a request again only when its
// kept-alive connection broke before any of it was written, or, for a GET,
// before any answer; never after a timeout, since the server may have
// acted on the request (a code redeemed) and be slow to answer.
func newClient(concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
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
	cfg       config
	base      string // http://host:port of the server
	client    *http.Client
	clientID  string
	clientIDq string // clientID, form-escaped
	cpu       *cpuMeter
}

// cpuMeter measures the CPU time this process and the server use during the
// timed part of a run.
type cpuMeter struct {
	pid                int
	self0, server0     time.Duration
	self, server       time.Duration
	selfErr, serverErr error
}

func newCPUMeter(serverPID int) *cpuMeter {
	m := &cpuMeter{pid: serverPID}
	m.self0, m.selfErr = cpuTime(0)
	if serverPID > 0 {
		m.server0, m.serverErr = cpuTime(serverPID)
	}
	return m
}

func (m *cpuMeter) stop() {
	if m.selfErr == nil {
		var t time.Duration
		t, m.selfErr = cpuTime(0)
		m.self = t - m.self0
	}
	if m.pid > 0 && m.serverErr == nil {
		var t time.Duration
		t, m.serverErr = cpuTime(m.pid)
		m.server = t - m.server0
	}
}

// report prints CPU use as a share of one core and per request.
func (m *cpuMeter) report(out io.Writer, elapsed time.Duration, requests int64) {
	line := func(who string, d time.Duration, err error) {
		if err != nil {
			fmt.Fprintf(out, "  CPU %-9s unknown (%v)\n", who, err)
			return
		}
		per := time.Duration(0)
		if requests > 0 {
			per = d / time.Duration(requests)
		}
		fmt.Fprintf(out, "  CPU %-9s %.0f%% of a core, %s per request\n", who, 100*d.Seconds()/elapsed.Seconds(), per.Round(time.Microsecond))
	}
	line("generator", m.self, m.selfErr)
	if m.pid > 0 {
		line("server", m.server, m.serverErr)
	}
}

// worker is one concurrent client: its latencies, and buffers it reuses.
type worker struct {
	b    *bench
	form []byte
	body bytes.Buffer               // the last response's body
	lat  map[string][]time.Duration // nil: not timed
}

func (b *bench) newWorker(timed bool) *worker {
	w := &worker{b: b}
	if timed {
		w.lat = map[string][]time.Duration{}
	}
	return w
}

// maxResponse bounds a response body; mcpauth's are far smaller.
const maxResponse = 1 << 20

// send sends req and reads the response's body into w.body.
func (w *worker) send(req *http.Request) (*http.Response, error) {
	resp, err := w.b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	w.body.Reset()
	if _, err := w.body.ReadFrom(io.LimitReader(resp.Body, maxResponse+1)); err != nil {
		return nil, fmt.Errorf("%s %s: reading the response: %w", req.Method, req.URL.Path, err)
	}
	if w.body.Len() > maxResponse {
		return nil, fmt.Errorf("%s %s: response over %d bytes", req.Method, req.URL.Path, maxResponse)
	}
	return resp, nil
}

func (w *worker) timed(step string, f func() error) error {
	start := time.Now()
	err := f()
	if err == nil && w.lat != nil {
		w.lat[step] = append(w.lat[step], time.Since(start))
	}
	return err
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// flow runs authorize -> token -> refresh once.
func (w *worker) flow() (tokens, error) {
	code, verifier, err := w.authorize()
	if err != nil {
		return tokens{}, err
	}
	var tk tokens
	if err := w.timed("token(code)", func() error {
		tk, err = w.exchange(code, verifier, true)
		return err
	}); err != nil {
		return tokens{}, err
	}
	if err := w.timed("token(refresh)", func() error {
		tk, err = w.refresh(tk.RefreshToken, true)
		return err
	}); err != nil {
		return tokens{}, err
	}
	return tk, nil
}

func (w *worker) authorize() (code, verifier string, err error) {
	vb := make([]byte, 32)
	_, _ = rand.Read(vb)
	verifier = base64.RawURLEncoding.EncodeToString(vb)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {w.b.clientID}, "redirect_uri": {"http://127.0.0.1:1/callback"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "state": {"bench"}}
	if w.b.cfg.resource != "" {
		q.Set("resource", w.b.cfg.resource)
	}
	target := "/authorize?" + q.Encode()
	err = w.timed("authorize", func() error {
		req, err := http.NewRequest(http.MethodGet, w.b.base+target, nil)
		if err != nil {
			return err
		}
		resp, err := w.send(req)
		if err != nil {
			return err
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Query().Get("code") == "" {
			return fmt.Errorf("authorize: %d %s (run the server with --dev-allow-loopback --dev-auto-approve USER)", resp.StatusCode, resp.Header.Get("Location"))
		}
		code = loc.Query().Get("code")
		return nil
	})
	return code, verifier, err
}

// post sends w.form and checks for 200 and a body containing want; auth,
// when not empty, is a whole Authorization header value. The body is
// returned for decoding; it is valid until the next request.
func (w *worker) post(path, auth string, want []byte) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, w.b.base+path, bytes.NewReader(w.form))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := w.send(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(w.body.Bytes(), want) {
		return nil, fmt.Errorf("%s: %d %s", path, resp.StatusCode, w.body.Bytes())
	}
	return w.body.Bytes(), nil
}

var (
	wantTokens = []byte(`"access_token":"`)
	wantActive = []byte(`"active":true`)
)

// appendForm appends name=value&, value escaped unless it is known to be
// form-safe already (tokens, codes and verifiers are base64url).
func appendForm(dst []byte, name, value string) []byte {
	if len(dst) > 0 {
		dst = append(dst, '&')
	}
	dst = append(dst, name...)
	dst = append(dst, '=')
	return append(dst, value...)
}

// exchange redeems a code; decode says whether the tokens are needed.
func (w *worker) exchange(code, verifier string, decode bool) (tokens, error) {
	f := appendForm(w.form[:0], "grant_type", "authorization_code")
	f = appendForm(f, "code", url.QueryEscape(code))
	f = appendForm(f, "code_verifier", url.QueryEscape(verifier))
	f = appendForm(f, "client_id", w.b.clientIDq)
	w.form = appendForm(f, "redirect_uri", "http%3A%2F%2F127.0.0.1%3A1%2Fcallback")
	return w.tokens(decode)
}

func (w *worker) refresh(rt string, decode bool) (tokens, error) {
	f := appendForm(w.form[:0], "grant_type", "refresh_token")
	f = appendForm(f, "refresh_token", url.QueryEscape(rt))
	w.form = appendForm(f, "client_id", w.b.clientIDq)
	return w.tokens(decode)
}

func (w *worker) tokens(decode bool) (tokens, error) {
	var tk tokens
	body, err := w.post("/token", "", wantTokens)
	if err == nil && decode {
		err = json.Unmarshal(body, &tk)
	}
	return tk, err
}

func (w *worker) introspect(access, auth string) error {
	w.form = appendForm(w.form[:0], "token", url.QueryEscape(access))
	_, err := w.post("/introspect", auth, wantActive)
	return err
}

// runWorkers runs n workers until the deadline, each calling step in a loop
// until it reports done, and merges their latencies.
func (b *bench) runWorkers(ctx context.Context, step func(w *worker, i int) (done bool, err error)) (*tally, map[string][]time.Duration, time.Duration) {
	res := &tally{}
	workers := make([]*worker, b.cfg.concurrency)
	b.cpu = newCPUMeter(b.cfg.serverPID)
	start := time.Now()
	deadline := start.Add(b.cfg.duration)
	var wg sync.WaitGroup
	for i := range workers {
		w := b.newWorker(true)
		workers[i] = w
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				done, err := step(w, i)
				if done {
					return
				}
				res.record(err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.cpu.stop()
	all := map[string][]time.Duration{}
	for _, w := range workers {
		for s, d := range w.lat {
			all[s] = append(all[s], d...)
		}
	}
	return res, all, elapsed
}

func (b *bench) runFlows(ctx context.Context, out io.Writer) error {
	res, lat, elapsed := b.runWorkers(ctx, func(w *worker, _ int) (bool, error) {
		_, err := w.flow()
		return false, err
	})
	fmt.Fprintf(out, "mode flows, concurrency %d, %s: %d flows (%.0f flows/s), %.0f token requests/s, %d failures\n",
		b.cfg.concurrency, elapsed.Round(time.Millisecond), res.ok, float64(res.ok)/elapsed.Seconds(), float64(2*res.ok)/elapsed.Seconds(), res.fail)
	report(out, lat)
	b.cpu.report(out, elapsed, 3*res.ok)
	if res.firstErr != nil {
		return fmt.Errorf("first failure: %w", res.firstErr)
	}
	return nil
}

// maxCodes is how many unredeemed codes the server keeps in memory
// (internal/authserver); token mode prepares no more by default, since
// codes issued right before their exchange, as in real use, are read from
// there.
const maxCodes = 20000

// runSingle prepares inputs with full flows, then times one kind of request.
func (b *bench) runSingle(ctx context.Context, out io.Writer) error {
	var auth string
	if b.cfg.mode == "introspect" {
		id, secret, ok := strings.Cut(b.cfg.introspect, ":")
		if !ok {
			return errors.New("--mode introspect needs --introspect-client ID:SECRET")
		}
		// RFC 6749 2.3.1: form-encode both parts before Basic.
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	// Prepare enough inputs for the whole run.
	type input struct{ code, verifier, refresh, access string }
	n := b.cfg.inputs
	switch {
	case b.cfg.mode == "introspect":
		n = b.cfg.concurrency // tokens are reusable
	case n <= 0 && b.cfg.mode == "token":
		n = min(2000*b.cfg.concurrency, maxCodes)
	case n <= 0:
		n = 2000 * b.cfg.concurrency
	}
	inputs := make(chan input, n)
	var prep sync.WaitGroup
	var prepErr error
	var prepMu sync.Mutex
	for i := range b.cfg.concurrency {
		prep.Go(func() {
			w := b.newWorker(false)
			for k := i; k < n; k += b.cfg.concurrency {
				var in input
				var err error
				switch b.cfg.mode {
				case "token":
					in.code, in.verifier, err = w.authorize()
				default:
					var tk tokens
					tk, err = w.flow()
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
	var next atomic.Int64
	var ranOut atomic.Bool
	res, lat, elapsed := b.runWorkers(ctx, func(w *worker, i int) (bool, error) {
		var in input
		if b.cfg.mode == "introspect" {
			in = pool[i%len(pool)]
		} else {
			k := next.Add(1) - 1
			if k >= int64(len(pool)) {
				ranOut.Store(true)
				return true, nil
			}
			in = pool[k]
		}
		return false, w.timed(b.cfg.mode, func() error {
			switch b.cfg.mode {
			case "token":
				_, err := w.exchange(in.code, in.verifier, false)
				return err
			case "refresh":
				_, err := w.refresh(in.refresh, false)
				return err
			default:
				return w.introspect(in.access, auth)
			}
		})
	})
	fmt.Fprintf(out, "mode %s, concurrency %d, %s: %d requests (%.0f requests/s), %d failures\n",
		b.cfg.mode, b.cfg.concurrency, elapsed.Round(time.Millisecond), res.ok, float64(res.ok)/elapsed.Seconds(), res.fail)
	if ranOut.Load() {
		fmt.Fprintf(out, "(ran out of %d prepared inputs before the duration ended)\n", len(pool))
	}
	report(out, lat)
	b.cpu.report(out, elapsed, res.ok)
	if res.firstErr != nil {
		return fmt.Errorf("first failure: %w", res.firstErr)
	}
	return nil
}

func report(out io.Writer, lat map[string][]time.Duration) {
	var steps []string
	for s := range lat {
		steps = append(steps, s)
	}
	sort.Strings(steps)
	for _, s := range steps {
		d := lat[s]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Fprintf(out, "  %-15s n=%-7d p50=%-10s p99=%s\n", s, len(d), d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond))
	}
}
