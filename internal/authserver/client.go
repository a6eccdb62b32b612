package authserver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/oauth"
)

// clientKind says where a client's registration comes from.
type clientKind string

const (
	kindCIMD   clientKind = "cimd"
	kindStatic clientKind = "static"
	kindDCR    clientKind = "dcr"
)

// client is the one view of a client the endpoints work with, whatever its kind.
type client struct {
	ID            string
	Kind          clientKind
	Name          string // display name, already sanitised; falls back to the host
	Host          string // client_id host (CIMD), "" otherwise
	RedirectURIs  []string
	AuthMethod    string // none, private_key_jwt, client_secret_basic, client_secret_post
	GrantTypes    []string
	Scope         string // allowed scopes; "" means any
	Tier          cimd.Tier
	Stale         bool
	FreshUntil    time.Time // CIMD: how long the document may be used without a fetch
	Fingerprint   string
	LogoURI       string
	JWKS          *cimd.JWKS
	JWKSURI       string
	SecretHash    string
	Introspect    bool
	Warnings      []cimd.Warning
	LocalhostOnly bool
	Loopback      bool // a loopback development client: metadata derived from its client_id

	// AssertionKey is set by authenticateClient for private_key_jwt: the
	// RFC 7638 thumbprint of the key that signed the assertion.
	AssertionKey string
}

func (c *client) allowsGrant(gt string) bool { return slices.Contains(c.GrantTypes, gt) }

func (c *client) allowsRedirect(uri string) bool {
	for _, r := range c.RedirectURIs {
		if oauth.MatchRedirectURI(r, uri) {
			return true
		}
	}
	return false
}

// loadClient finds a client by id: CIMD (https URL, or loopback http in
// development), static, or DCR. Errors are *oauth.Error invalid_client with
// a description the client author can act on.
func (s *Server) loadClient(ctx context.Context, id string) (*client, error) {
	if id == "" {
		return nil, oauth.NewError(oauth.InvalidRequest, "client_id is required.")
	}
	if sc, ok := s.static[id]; ok {
		return &client{ID: id, Kind: kindStatic, Name: sc.Name, RedirectURIs: sc.RedirectURIs,
			AuthMethod: authMethodFor(sc.SecretHash), GrantTypes: sc.GrantTypes, Scope: sc.Scope,
			Tier: cimd.TierVerified, SecretHash: sc.SecretHash, Introspect: sc.Introspect,
			LocalhostOnly: allLoopback(sc.RedirectURIs)}, nil
	}
	if strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://") {
		return s.loadCIMDClient(ctx, id)
	}
	if s.enableDCR {
		d, err := s.store.GetDCRClient(ctx, id)
		switch {
		case err == nil && (!d.LastUsedAt.IsZero() || s.now().Before(d.ExpiresAt)): // RFC 7591 §5: unused registrations expire
			return s.dcrClient(ctx, d)
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	return nil, oauth.NewError(oauth.InvalidClient, "Unknown client_id %q: use the https URL of your client metadata document (CIMD).", truncate(id, 200))
}

func (s *Server) loadCIMDClient(ctx context.Context, id string) (*client, error) {
	rctx, end := s.startSpan(ctx, "cimd resolve")
	rc, err := s.resolver.Resolve(rctx, id)
	end(err)
	s.recordSeen(ctx, id, rc, err)
	if err != nil {
		var ce *cimd.Error
		if errors.As(err, &ce) {
			return nil, ce.OAuth()
		}
		if ctx.Err() != nil {
			return nil, oauth.NewError(oauth.TemporarilyUnavailable, "The request was cancelled while fetching the client metadata document.")
		}
		return nil, err
	}
	d := rc.Document
	return &client{ID: id, Kind: kindCIMD, Name: d.DisplayName(rc.ID.Host()), Host: rc.ID.Host(),
		RedirectURIs: d.RedirectURIs, AuthMethod: d.TokenEndpointAuthMethod, GrantTypes: d.GrantTypes,
		Scope: d.Scope, Tier: rc.Tier, Stale: rc.Stale, FreshUntil: rc.FreshUntil, Fingerprint: rc.Fingerprint, LogoURI: d.LogoURI,
		JWKS: d.JWKS, JWKSURI: d.JWKSURI, Warnings: rc.Warnings, LocalhostOnly: d.LocalhostOnlyRedirects(), Loopback: rc.Loopback}, nil
}

// seenLog remembers what recordSeen last wrote per client, so that a busy
// client costs one store write a minute, not one per request.
type seenLog struct {
	mu   sync.Mutex
	last map[string]store.ClientSeen
}

// changed reports whether seen differs from what was last written for its
// client, or that write is older than a minute, and remembers seen.
func (l *seenLog) changed(seen store.ClientSeen) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, ok := l.last[seen.ClientID]
	if ok && prev.LastResult == seen.LastResult && prev.Tier == seen.Tier && prev.Fingerprint == seen.Fingerprint &&
		seen.LastSeen.Sub(prev.LastSeen) < time.Minute {
		return false
	}
	if l.last == nil || len(l.last) >= 10000 {
		l.last = map[string]store.ClientSeen{}
	}
	l.last[seen.ClientID] = seen
	return true
}

// recordSeen keeps the `mcpauth clients list` view current. Failures are logged, not fatal.
func (s *Server) recordSeen(ctx context.Context, id string, rc *cimd.Client, err error) {
	seen := store.ClientSeen{ClientID: id, FirstSeen: s.now(), LastSeen: s.now(), LastResult: store.SeenOK}
	if err != nil {
		var ce *cimd.Error
		if !errors.As(err, &ce) {
			return
		}
		if ce.Reason != cimd.ReasonBlocked && ce.Reason != cimd.ReasonNotAllowed && ce.Reason != cimd.ReasonFetch && ce.Reason != cimd.ReasonContentType && !strings.HasPrefix(string(ce.Reason), "document_") && !strings.HasPrefix(string(ce.Reason), "redirect_") {
			return // a malformed client_id is not a client we have "seen"
		}
		seen.LastResult = string(ce.Reason)
		if ce.Reason == cimd.ReasonBlocked || ce.Reason == cimd.ReasonNotAllowed {
			seen.Tier = string(cimd.TierBlocked)
		}
	} else {
		seen.Tier, seen.Fingerprint = string(rc.Tier), rc.Fingerprint
	}
	if !s.seen.changed(seen) {
		return
	}
	record := s.store.RecordClientSeen
	if err != nil && seen.Tier != string(cimd.TierBlocked) {
		// A URL with no acceptable document behind it is listed only if it
		// was a client before: anyone can send made-up client_ids.
		record = s.store.UpdateClientSeen
	}
	if werr := record(context.WithoutCancel(ctx), seen); werr != nil {
		s.log.Warn("record client seen", "client_id", id, "err", werr)
	}
}

// dcrClient is the view of a registered client. Its first use exempts it
// from expiry (RFC 7591 §5).
func (s *Server) dcrClient(ctx context.Context, d store.DCRClient) (*client, error) {
	doc, err := dcrDocument(d)
	if err != nil {
		return nil, err
	}
	if d.LastUsedAt.IsZero() {
		if err := s.store.TouchDCRClient(context.WithoutCancel(ctx), d.ClientID, s.now()); err != nil {
			s.log.Warn("touch dcr client", "client_id", d.ClientID, "err", err)
		}
	}
	return &client{ID: d.ClientID, Kind: kindDCR, Name: doc.DisplayName("unnamed client"),
		RedirectURIs: doc.RedirectURIs, AuthMethod: doc.TokenEndpointAuthMethod, GrantTypes: doc.GrantTypes,
		Scope: doc.Scope, Tier: cimd.TierUnverified, SecretHash: d.SecretHash, JWKS: doc.JWKS, JWKSURI: doc.JWKSURI,
		LocalhostOnly: doc.LocalhostOnlyRedirects()}, nil
}

func authMethodFor(secretHash string) string {
	if secretHash == "" {
		return "none"
	}
	return "client_secret_basic"
}

func allLoopback(uris []string) bool {
	if len(uris) == 0 {
		return false
	}
	for _, u := range uris {
		if !oauth.IsLoopbackRedirect(u) {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
