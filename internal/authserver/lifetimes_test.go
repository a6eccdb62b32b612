package authserver

import (
	"net/http"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
)

// TestRefreshAbsoluteLifetime checks that a refresh family ends
// refresh_absolute after the grant however recently its refresh token was
// used: every rotation stays within the idle lifetime, yet the refresh after
// the absolute lifetime fails (OAuth 2.1 §4.3.1, §4.3.3, RFC 9700 §4.14.2).
func TestRefreshAbsoluteLifetime(t *testing.T) {
	const idle, absolute = time.Hour, 3 * time.Hour
	h := newHarness(t, harnessConfig{lifetimes: Lifetimes{RefreshIdle: idle, RefreshAbsolute: absolute}})
	id := h.publishClient("/client.json", nil)
	granted := h.clock.now() // the clock stands still during the flow
	tr := h.newBrowser().flow(id, nil)
	if got := time.Unix(h.introspect(tr.RefreshToken).Exp, 0); !got.Equal(granted.Add(idle)) {
		t.Errorf("first refresh token expires at %v, want the idle lifetime %v after the grant", got, granted.Add(idle))
	}

	// Refresh every 50 minutes: each token is used well within the idle
	// lifetime, up to one minute before the absolute lifetime ends.
	rt := tr.RefreshToken
	for _, at := range []time.Duration{50 * time.Minute, 100 * time.Minute, 150 * time.Minute, absolute - time.Minute} {
		h.clock.advance(granted.Add(at).Sub(h.clock.now()))
		next := mustTokens(t, h.refresh(id, rt))
		rt = next.RefreshToken
		want := granted.Add(at).Add(idle)
		if end := granted.Add(absolute); want.After(end) {
			want = end // a rotated token never outlives its family
		}
		if got := time.Unix(h.introspect(rt).Exp, 0); !got.Equal(want) {
			t.Errorf("refresh token issued %v after the grant expires at %v, want %v", at, got, want)
		}
	}

	// Two minutes after the last use (idle is an hour) but past the
	// absolute lifetime.
	h.clock.advance(2 * time.Minute)
	wantError(t, h.refresh(id, rt), http.StatusBadRequest, oauth.InvalidGrant)
	if in := h.introspect(rt); in.Active {
		t.Errorf("refresh token active past the absolute lifetime: %+v", in)
	}
}
