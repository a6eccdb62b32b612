package safehttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const doc = `{"client_id":"https://example.com/c.json"}`

func serveDoc(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, doc)
}

func TestFetchPublicHost(t *testing.T) {
	srv, rec := newTLSServer(t, serveDoc)
	c, fake := publicClient(t, srv, Options{})
	resp, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json", Accept: "application/cimd+json, application/json;q=0.9"})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	got := struct {
		URL    string
		Status int
		Body   string
		Addr   netip.Addr
		CT     string
	}{resp.URL, resp.StatusCode, string(resp.Body), resp.Addr, resp.Header.Get("Content-Type")}
	want := struct {
		URL    string
		Status int
		Body   string
		Addr   netip.Addr
		CT     string
	}{"https://example.com/c.json", 200, doc, publicAddr(), "application/json"}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	lookups, dials := fake.recorded()
	if diff := cmp.Diff([]string{"example.com"}, lookups); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{publicIP + ":443"}, dials); diff != "" {
		t.Errorf("dials (-want +got):\n%s", diff)
	}
	if rec.count() != 1 {
		t.Errorf("server saw %d requests, want 1", rec.count())
	}
}

func TestFetchRequestHeaders(t *testing.T) {
	srv, rec := newTLSServer(t, serveDoc)
	t.Run("B10 B11 defaults", func(t *testing.T) {
		c, _ := publicClient(t, srv, Options{})
		caller := http.Header{
			"If-None-Match":     {`"v1"`},
			"If-Modified-Since": {"Wed, 21 Oct 2026 07:28:00 GMT"},
			"Authorization":     {"Bearer secret"},
			"Cookie":            {"session=secret"},
			"X-Forwarded-For":   {"10.0.0.1"},
		}
		if _, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json", Accept: "application/cimd+json, application/json;q=0.9", Header: caller}); err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		got := rec.last()
		want := http.Header{
			"User-Agent":        {DefaultUserAgent},
			"Accept":            {"application/cimd+json, application/json;q=0.9"},
			"Accept-Encoding":   {"identity"},
			"Connection":        {"close"},
			"If-None-Match":     {`"v1"`},
			"If-Modified-Since": {"Wed, 21 Oct 2026 07:28:00 GMT"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("headers the server saw (-want +got):\n%s", diff)
		}
	})
	t.Run("B11 custom User-Agent and no Accept", func(t *testing.T) {
		c, _ := publicClient(t, srv, Options{UserAgent: "mcpauth-test/1"})
		if _, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"}); err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		want := http.Header{"User-Agent": {"mcpauth-test/1"}, "Accept-Encoding": {"identity"}, "Connection": {"close"}}
		if diff := cmp.Diff(want, rec.last()); diff != "" {
			t.Errorf("headers the server saw (-want +got):\n%s", diff)
		}
	})
	for name, req := range map[string]Request{
		"B11 header injection in Accept is refused":         {Accept: "a\r\nX-Evil: 1"},
		"B11 non-ASCII Accept is refused":                   {Accept: "application/jsön"},
		"B11 control character in If-None-Match is refused": {Header: http.Header{"If-None-Match": {"\"v1\"\x00"}}},
	} {
		t.Run(name, func(t *testing.T) {
			c, fake := publicClient(t, srv, Options{})
			req.URL = "https://example.com/c.json"
			_, err := c.Fetch(context.Background(), req)
			wantError(t, err, ReasonRequest)
			if _, dials := fake.recorded(); len(dials) != 0 {
				t.Errorf("dialled %v", dials)
			}
		})
	}
}

func TestFetchIgnoresEnvironmentProxy(t *testing.T) {
	// A proxy would receive the connection instead of the checked address;
	// the fake dialer proves the checked address was dialled directly.
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:9")
	t.Setenv("ALL_PROXY", "http://127.0.0.1:9")
	srv, _ := newTLSServer(t, serveDoc)
	c, fake := publicClient(t, srv, Options{})
	resp, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
	if err != nil {
		t.Fatalf("B6 Fetch with proxy variables set: %v", err)
	}
	if _, dials := fake.recorded(); !cmp.Equal(dials, []string{publicIP + ":443"}) || resp.Addr != publicAddr() {
		t.Errorf("dials = %v, Addr = %s; want only %s:443", dials, resp.Addr, publicIP)
	}
}

func TestFetchLoopback(t *testing.T) {
	srv, rec := newTLSServer(t, serveDoc)
	docURL := srv.URL + "/c.json" // https://127.0.0.1:port/c.json
	t.Run("B5 off by default", func(t *testing.T) {
		c, err := New(Options{RootCAs: serverPool(srv)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Fetch(context.Background(), Request{URL: docURL})
		e := wantError(t, err, ReasonBlockedAddress)
		if e.Addr != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("Addr = %s", e.Addr)
		}
		if rec.count() != 0 {
			t.Errorf("the server was contacted %d times", rec.count())
		}
	})
	t.Run("B5 AllowLoopback https", func(t *testing.T) {
		c, err := New(Options{RootCAs: serverPool(srv), AllowLoopback: true})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Fetch(context.Background(), Request{URL: docURL})
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if string(resp.Body) != doc || resp.Addr != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("body %q from %s", resp.Body, resp.Addr)
		}
	})
	plain := newPlainServer(t)
	t.Run("B5 AllowLoopback http to loopback", func(t *testing.T) {
		c, err := New(Options{AllowLoopback: true})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Fetch(context.Background(), Request{URL: plain + "/c.json"})
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if string(resp.Body) != doc {
			t.Errorf("body %q", resp.Body)
		}
	})
	t.Run("B5 http refused without AllowLoopback", func(t *testing.T) {
		c, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Fetch(context.Background(), Request{URL: plain + "/c.json"})
		wantError(t, err, ReasonScheme)
	})
	t.Run("B5 AllowLoopback still blocks private addresses", func(t *testing.T) {
		c, fake := publicClient(t, srv, Options{AllowLoopback: true})
		fake.answer("example.com", "10.0.0.1")
		_, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
		wantError(t, err, ReasonBlockedAddress)
		if _, dials := fake.recorded(); len(dials) != 0 {
			t.Errorf("dialled %v", dials)
		}
	})
}

// newPlainServer starts a loopback http (not https) server serving doc.
func newPlainServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(serveDoc))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestFetchBlockedTargets covers docs/security.md attacks 9, 10, 12, 13 through
// Fetch: nothing is dialled, and for URL-level failures nothing is resolved.
func TestFetchBlockedTargets(t *testing.T) {
	srv, rec := newTLSServer(t, serveDoc)
	tests := []struct {
		name     string
		url      string
		answers  []string // what the URL's host resolves to; nil = example.com is public, others NXDOMAIN
		opts     Options
		want     Reason
		wantAddr string
		resolved bool
	}{
		{name: "attack 9 127.0.0.1", url: "https://127.0.0.1/c", want: ReasonBlockedAddress, wantAddr: "127.0.0.1"},
		{name: "attack 9 [::1]", url: "https://[::1]/c", want: ReasonBlockedAddress, wantAddr: "::1"},
		{name: "attack 9 10.0.0.5", url: "https://10.0.0.5/c", want: ReasonBlockedAddress, wantAddr: "10.0.0.5"},
		{name: "attack 9 metadata", url: "https://169.254.169.254/latest/meta-data/", want: ReasonBlockedAddress, wantAddr: "169.254.169.254"},
		{name: "attack 9 0x7f000001", url: "https://0x7f000001/c", want: ReasonHost},
		{name: "attack 9 2130706433", url: "https://2130706433/c", want: ReasonHost},
		{name: "attack 9 0177.0.0.1", url: "https://0177.0.0.1/c", want: ReasonHost},
		{name: "attack 9 [::ffff:127.0.0.1]", url: "https://[::ffff:127.0.0.1]/c", want: ReasonBlockedAddress, wantAddr: "::ffff:127.0.0.1"},
		{name: "attack 9 [::ffff:a9fe:a9fe]", url: "https://[::ffff:a9fe:a9fe]/c", want: ReasonBlockedAddress, wantAddr: "::ffff:169.254.169.254"},
		{name: "attack 9 0.0.0.0", url: "https://0.0.0.0/c", want: ReasonBlockedAddress, wantAddr: "0.0.0.0"},
		{name: "attack 10 localhost", url: "https://localhost/c", want: ReasonBlockedAddress},
		{name: "attack 10 localtest.me", url: "https://localtest.me/c", answers: []string{"127.0.0.1"}, want: ReasonBlockedAddress, wantAddr: "127.0.0.1", resolved: true},
		{name: "attack 10 169.254.169.254.nip.io", url: "https://169.254.169.254.nip.io/c", answers: []string{"169.254.169.254"}, want: ReasonBlockedAddress, wantAddr: "169.254.169.254", resolved: true},
		{name: "attack 10 metadata.google.internal", url: "https://metadata.google.internal/c", answers: []string{"169.254.169.254"}, want: ReasonBlockedAddress, wantAddr: "169.254.169.254", resolved: true},
		{name: "attack 10 resolves to ::1", url: "https://example.com/c", answers: []string{"::1"}, want: ReasonBlockedAddress, wantAddr: "::1", resolved: true},
		{name: "attack 10 resolves to mapped private", url: "https://example.com/c", answers: []string{"::ffff:192.168.1.1"}, want: ReasonBlockedAddress, wantAddr: "::ffff:192.168.1.1", resolved: true},
		{name: "attack 10 resolves to NAT64", url: "https://example.com/c", answers: []string{"64:ff9b::a9fe:a9fe"}, want: ReasonBlockedAddress, wantAddr: "64:ff9b::a9fe:a9fe", resolved: true},
		{name: "attack 11 one private record among public ones", url: "https://example.com/c", answers: []string{publicIP, "2606:2800:220:1:248:1893:25c8:1946", "10.0.0.1"}, want: ReasonBlockedAddress, wantAddr: "10.0.0.1", resolved: true},
		{name: "attack 11 private record first", url: "https://example.com/c", answers: []string{"fd00::1", publicIP}, want: ReasonBlockedAddress, wantAddr: "fd00::1", resolved: true},
		{name: "attack 12 port 22 not allowed", url: "https://example.com:22/c", opts: Options{AllowedPorts: []int{443}}, want: ReasonPort},
		{name: "attack 12 port 6379 not allowed", url: "https://example.com:6379/c", opts: Options{AllowedPorts: []int{443}}, want: ReasonPort},
		{name: "attack 13 backslash", url: `https://example.com\@evil.com/c`, want: ReasonRequest},
		{name: "attack 13 javascript", url: "javascript:alert(1)", want: ReasonScheme},
		{name: "attack 13 file", url: "file:///etc/passwd", want: ReasonScheme},
		{name: "attack 13 scheme-relative", url: "//example.com/c", want: ReasonScheme},
		{name: "attack 13 newline", url: "https://example.com/c\n", want: ReasonRequest},
		{name: "attack 1 http", url: "http://example.com/c", want: ReasonScheme},
		{name: "attack 5 userinfo", url: "https://user:pass@example.com/c", want: ReasonRequest},
		{name: "B4 DNS failure", url: "https://nxdomain.example.com/c", want: ReasonDNS, resolved: true},
		{name: "B4 empty DNS answer", url: "https://example.com/c", answers: []string{}, want: ReasonDNS, resolved: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fake := publicClient(t, srv, tt.opts)
			if tt.answers != nil {
				u, err := url.Parse(tt.url)
				if err != nil {
					t.Fatal(err)
				}
				fake.answer(u.Hostname(), tt.answers...)
			}
			_, err := c.Fetch(context.Background(), Request{URL: tt.url})
			e := wantError(t, err, tt.want)
			if tt.wantAddr != "" && e.Addr != netip.MustParseAddr(tt.wantAddr) {
				t.Errorf("Addr = %s, want %s", e.Addr, tt.wantAddr)
			}
			if e.URL != tt.url {
				t.Errorf("URL = %q, want %q", e.URL, tt.url)
			}
			lookups, dials := fake.recorded()
			if len(dials) != 0 {
				t.Errorf("the dialer was called: %v", dials)
			}
			if resolved := len(lookups) > 0; resolved != tt.resolved {
				t.Errorf("lookups = %v, want resolved=%v", lookups, tt.resolved)
			}
			if e.Unavailable() != (tt.want == ReasonDNS) {
				t.Errorf("Unavailable() = %v", e.Unavailable())
			}
		})
	}
	if rec.count() != 0 {
		t.Errorf("the server was contacted %d times", rec.count())
	}
}

func TestFetchDNSRebinding(t *testing.T) {
	srv, rec := newTLSServer(t, serveDoc)
	c, fake := publicClient(t, srv, Options{})
	// attack 11: public at check time, 10.0.0.1 on any later lookup.
	fake.answers["example.com"] = [][]netip.Addr{{publicAddr()}, {netip.MustParseAddr("10.0.0.1")}}
	resp, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
	if err != nil {
		t.Fatalf("attack 11 rebinding: Fetch: %v", err)
	}
	lookups, dials := fake.recorded()
	if diff := cmp.Diff([]string{"example.com"}, lookups); diff != "" {
		t.Errorf("attack 11 the host must be resolved exactly once (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{publicIP + ":443"}, dials); diff != "" {
		t.Errorf("attack 11 only the checked address may be dialled (-want +got):\n%s", diff)
	}
	if resp.Addr != publicAddr() || rec.count() != 1 {
		t.Errorf("Addr = %s, requests = %d", resp.Addr, rec.count())
	}

	// A second fetch resolves again, sees 10.0.0.1 and refuses.
	_, err = c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
	wantError(t, err, ReasonBlockedAddress)
	if _, dials := fake.recorded(); len(dials) != 1 {
		t.Errorf("attack 11 dialled after the rebound answer: %v", dials)
	}
}

func TestFetchTriesEveryCheckedAddress(t *testing.T) {
	srv, _ := newTLSServer(t, serveDoc)
	c, fake := publicClient(t, srv, Options{})
	first := "2606:2800:220:1:248:1893:25c8:1946"
	fake.answer("example.com", first, publicIP, "::ffff:"+publicIP)
	// The fake refuses the first address: dial only succeeds on the second.
	refusing := &refuseFirst{fakeNet: fake}
	c.opts.Dial = refusing.Dial
	resp, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	_, dials := fake.recorded()
	want := []string{"[" + first + "]:443", publicIP + ":443"}
	if diff := cmp.Diff(want, dials); diff != "" {
		t.Errorf("dials (-want +got):\n%s", diff)
	}
	if resp.Addr != publicAddr() {
		t.Errorf("Addr = %s, want %s", resp.Addr, publicIP)
	}
}

// refuseFirst fails the first dial and forwards later ones.
type refuseFirst struct {
	*fakeNet
	done bool
}

func (r *refuseFirst) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if !r.done {
		r.done = true
		r.fakeNet.mu.Lock()
		r.fakeNet.dials = append(r.fakeNet.dials, address)
		r.fakeNet.mu.Unlock()
		return nil, errors.New("connection refused (fake)")
	}
	return r.fakeNet.Dial(ctx, network, address)
}

func TestFetchConnectFailure(t *testing.T) {
	c, fake := publicClient(t, nil, Options{})
	_, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
	e := wantError(t, err, ReasonConnect)
	if e.Addr != publicAddr() || !e.Unavailable() {
		t.Errorf("Addr = %s, Unavailable = %v", e.Addr, e.Unavailable())
	}
	if _, dials := fake.recorded(); len(dials) != 1 {
		t.Errorf("dials = %v", dials)
	}
}

func TestFetchStatus(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		header      http.Header // request header
		want        Reason
		unavailable bool
	}{
		{name: "attack 15 300", status: 300, want: ReasonRedirect},
		{name: "attack 15 301", status: 301, want: ReasonRedirect},
		{name: "attack 15 302", status: 302, want: ReasonRedirect},
		{name: "attack 15 303", status: 303, want: ReasonRedirect},
		{name: "attack 15 305", status: 305, want: ReasonRedirect},
		{name: "attack 15 307", status: 307, want: ReasonRedirect},
		{name: "attack 15 308", status: 308, want: ReasonRedirect},
		{name: "attack 16 201", status: 201, want: ReasonStatus},
		{name: "attack 16 202", status: 202, want: ReasonStatus},
		{name: "attack 16 203", status: 203, want: ReasonStatus},
		{name: "attack 16 204", status: 204, want: ReasonStatus},
		{name: "attack 16 206", status: 206, want: ReasonStatus},
		{name: "attack 16 304 without a conditional request", status: 304, want: ReasonStatus},
		{name: "attack 17 404", status: 404, want: ReasonStatus},
		{name: "attack 17 410", status: 410, want: ReasonStatus},
		{name: "attack 17 500", status: 500, want: ReasonStatus, unavailable: true},
		{name: "attack 17 503", status: 503, want: ReasonStatus, unavailable: true},
		{name: "attack 22 401 with WWW-Authenticate", status: 401, want: ReasonStatus},
		{name: "B2 200", status: 200},
		{name: "D1 304 to If-None-Match", status: 304, header: http.Header{"If-None-Match": {`"v1"`}}},
		{name: "D1 304 to If-Modified-Since", status: 304, header: http.Header{"If-Modified-Since": {"Wed, 21 Oct 2026 07:28:00 GMT"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "http://169.254.169.254/latest/meta-data/")
				if tt.status == 401 {
					w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
				}
				w.WriteHeader(tt.status)
				if tt.status != 204 && tt.status != 304 {
					fmt.Fprint(w, doc)
				}
			})
			c, fake := publicClient(t, srv, Options{})
			resp, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json", Header: tt.header})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if resp.StatusCode != tt.status {
					t.Errorf("StatusCode = %d, want %d", resp.StatusCode, tt.status)
				}
				if tt.status == 304 && len(resp.Body) != 0 {
					t.Errorf("304 body = %q", resp.Body)
				}
				return
			}
			e := wantError(t, err, tt.want)
			if e.StatusCode != tt.status || e.Addr != publicAddr() {
				t.Errorf("StatusCode = %d, Addr = %s", e.StatusCode, e.Addr)
			}
			if e.Unavailable() != tt.unavailable {
				t.Errorf("Unavailable() = %v, want %v", e.Unavailable(), tt.unavailable)
			}
			if resp != nil {
				t.Errorf("resp = %+v with an error", resp)
			}
			if tt.want == ReasonRedirect {
				if !strings.Contains(err.Error(), "redirects are never followed (CIMD section 5)") {
					t.Errorf("message = %q", err)
				}
				// attack 15: the Location was not followed.
				if _, dials := fake.recorded(); len(dials) != 1 || rec.count() != 1 {
					t.Errorf("dials = %v, requests = %d; want exactly one", dials, rec.count())
				}
			}
			if auth := rec.last().Get("Authorization"); auth != "" {
				t.Errorf("attack 22 sent Authorization %q", auth)
			}
		})
	}
}

func TestFetchRefusesCookies(t *testing.T) {
	tests := []struct {
		name   string
		header string
	}{
		{"attack 22 Set-Cookie", "Set-Cookie"},
		{"attack 22 Set-Cookie2", "Set-Cookie2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(tt.header, "session=abc; Path=/")
				serveDoc(w, r)
			})
			c, _ := publicClient(t, srv, Options{})
			for range 2 {
				_, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"})
				e := wantError(t, err, ReasonSetCookie)
				if e.Unavailable() {
					t.Error("Unavailable() = true")
				}
				// No jar: the second request carries no cookie either.
				if got := rec.last().Get("Cookie"); got != "" {
					t.Errorf("sent Cookie %q", got)
				}
			}
		})
	}
}
