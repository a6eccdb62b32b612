package safehttp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestErrorMessages(t *testing.T) {
	const u = "https://x/c.json"
	cause := errors.New("cause")
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"B3 redirect", &Error{Reason: ReasonRedirect, URL: u, StatusCode: 302},
			`fetch "https://x/c.json": the server answered 302; redirects are never followed (CIMD section 5): serve the document at this exact URL`},
		{"B2 status", &Error{Reason: ReasonStatus, URL: u, StatusCode: 404},
			`fetch "https://x/c.json": the server answered 404; only 200 is accepted (CIMD section 5): serve the document at this URL with status 200`},
		{"B4 blocked with address", &Error{Reason: ReasonBlockedAddress, URL: u, Addr: netip.MustParseAddr("10.0.0.1"), Err: cause},
			`fetch "https://x/c.json": 10.0.0.1 is a special-use address that is never fetched (CIMD section 8.6, RFC 6890): publish the document on a public address: cause`},
		{"B4 CheckAddr without URL", CheckAddr(netip.MustParseAddr("10.0.0.1"), false).(*Error),
			`10.0.0.1 is a special-use address that is never fetched (CIMD section 8.6, RFC 6890): publish the document on a public address: in 10.0.0.0/8 (private-use, RFC 1918)`},
		{"B4 mapped CheckAddr", CheckAddr(netip.MustParseAddr("::ffff:169.254.169.254"), false).(*Error),
			`::ffff:169.254.169.254 is a special-use address that is never fetched (CIMD section 8.6, RFC 6890): publish the document on a public address: IPv4-mapped address of 169.254.169.254, which is in 169.254.0.0/16 (link-local (cloud metadata services), RFC 3927)`},
		{"B7 too large", &Error{Reason: ReasonTooLarge, URL: u, Err: errors.New("the body is longer than 5120 bytes")},
			`fetch "https://x/c.json": the response is too large (CIMD section 8.7): keep the document small: the body is longer than 5120 bytes`},
		{"B13 unknown reason", &Error{Reason: "new_reason"}, `the fetch failed (new_reason)`},
		{"A10 long URL is truncated", &Error{Reason: ReasonRequest, URL: "https://x/" + strings.Repeat("a", 300)},
			fmt.Sprintf("fetch %q: the URL or request is not valid", "https://x/"+strings.Repeat("a", maxURLInMessage-len("https://x/"))+"...")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.err.Error()); diff != "" {
				t.Errorf("Error() (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("B12 every reason has a sentence", func(t *testing.T) {
		for _, r := range allReasons() {
			msg := (&Error{Reason: r, URL: u}).Error()
			if strings.Contains(msg, "the fetch failed (") {
				t.Errorf("reason %s has no sentence of its own: %q", r, msg)
			}
		}
	})
}

func allReasons() []Reason {
	return []Reason{ReasonScheme, ReasonHost, ReasonPort, ReasonBlockedAddress, ReasonDNS, ReasonConnect,
		ReasonTLS, ReasonTimeout, ReasonRedirect, ReasonStatus, ReasonTooLarge, ReasonEncoding,
		ReasonSetCookie, ReasonRateLimited, ReasonRequest, ReasonCanceled}
}

func TestErrorUnavailable(t *testing.T) {
	var got []string
	for _, r := range allReasons() {
		if (&Error{Reason: r}).Unavailable() {
			got = append(got, string(r))
		}
	}
	want := []string{"dns_failure", "connect_failure", "timeout", "rate_limited"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("D3 reasons that allow stale-if-error (-want +got):\n%s", diff)
	}
	for code, want := range map[int]bool{400: false, 404: false, 499: false, 500: true, 502: true, 503: true, 599: true, 600: false} {
		if got := (&Error{Reason: ReasonStatus, StatusCode: code}).Unavailable(); got != want {
			t.Errorf("D3 status %d: Unavailable() = %v, want %v", code, got, want)
		}
	}
}

func TestErrorUnwrap(t *testing.T) {
	e := &Error{Reason: ReasonTimeout, Err: fmt.Errorf("dns: %w", context.DeadlineExceeded)}
	var wrapped error = fmt.Errorf("cimd: %w", e)
	var got *Error
	if !errors.As(wrapped, &got) || got != e {
		t.Fatal("errors.As did not find the *Error")
	}
	if !errors.Is(wrapped, context.DeadlineExceeded) {
		t.Error("errors.Is did not see the cause")
	}
}

func TestNewOptions(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := c.opts
	if got.MaxBodyBytes != 5120 || got.Timeout != 5*time.Second || got.DNSTimeout != 2*time.Second ||
		got.ConnectTimeout != 2*time.Second || got.TLSTimeout != 3*time.Second || got.HeaderTimeout != 3*time.Second ||
		got.PerHostConcurrency != 4 || got.PerHostRate != 5 || got.PerHostBurst != 10 ||
		got.UserAgent != DefaultUserAgent || got.AllowLoopback || len(got.AllowedPorts) != 0 ||
		got.Resolver == nil || got.Dial == nil || got.Logger == nil || got.Now == nil || got.RootCAs != nil {
		t.Errorf("B7 B8 defaults: %+v", got)
	}
	if _, ok := got.Resolver.(absoluteResolver); !ok {
		t.Errorf("default Resolver is %T, want absoluteResolver", got.Resolver)
	}

	bad := []struct {
		name string
		opts Options
	}{
		{"B8 negative Timeout", Options{Timeout: -1}},
		{"B8 negative DNSTimeout", Options{DNSTimeout: -1}},
		{"B8 negative ConnectTimeout", Options{ConnectTimeout: -1}},
		{"B8 negative TLSTimeout", Options{TLSTimeout: -1}},
		{"B8 negative HeaderTimeout", Options{HeaderTimeout: -1}},
		{"B7 negative MaxBodyBytes", Options{MaxBodyBytes: -1}},
		{"B13 negative PerHostConcurrency", Options{PerHostConcurrency: -1}},
		{"B13 negative PerHostBurst", Options{PerHostBurst: -1}},
		{"B13 negative PerHostRate", Options{PerHostRate: -1}},
		{"B13 infinite PerHostRate", Options{PerHostRate: posInf()}},
		{"A8 port 0", Options{AllowedPorts: []int{443, 0}}},
		{"A8 port 70000", Options{AllowedPorts: []int{70000}}},
		{"B11 UserAgent with newline", Options{UserAgent: "a\r\nX-Evil: 1"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := New(tt.opts); err == nil {
				t.Errorf("New(%+v) = %v, want an error", tt.opts, c)
			}
		})
	}
	t.Run("A8 AllowedPorts is copied", func(t *testing.T) {
		ports := []int{443}
		c, err := New(Options{AllowedPorts: ports})
		if err != nil {
			t.Fatal(err)
		}
		ports[0] = 22
		if _, err := c.CheckURL("https://client.example.com/c"); err != nil {
			t.Errorf("changing the caller's slice changed the client: %v", err)
		}
	})
}

func posInf() float64 {
	zero := 0.0
	return 1 / zero
}

func TestReasonRef(t *testing.T) {
	const cimd = "draft-ietf-oauth-client-id-metadata-document-02"
	tests := []struct {
		reason Reason
		want   string
	}{
		{ReasonHost, cimd + " §3"},
		{ReasonStatus, cimd + " §5"},
		{ReasonRedirect, cimd + " §5"},
		{ReasonBlockedAddress, cimd + " §8.6"},
		{ReasonScheme, cimd + " §8.6"},
		{ReasonTooLarge, cimd + " §8.7"},
		{ReasonTLS, "RFC 9110 §4.3.4"},
		{ReasonTimeout, cimd + " §5.1"},
		{"", cimd + " §5.1"},
	}
	for _, tt := range tests {
		if got := tt.reason.Ref(); got != tt.want {
			t.Errorf("%q.Ref() = %q, want %q", tt.reason, got, tt.want)
		}
	}
}

func TestIsJSONMediaType(t *testing.T) {
	tests := []struct {
		mt   string
		want bool
	}{
		{"application/json", true},
		{"application/cimd+json", true},
		{"application/json-seq", false},
		{"text/plain", false},
		{"text/html", false},
		{"application/xml", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsJSONMediaType(tt.mt); got != tt.want {
			t.Errorf("IsJSONMediaType(%q) = %v, want %v", tt.mt, got, tt.want)
		}
	}
}
