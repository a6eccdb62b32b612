// This file finds an authorization server's RFC 7662 introspection endpoint
// through its RFC 8414 metadata (§3, §3.3 issuer check), for a gateway that
// checks opaque tokens.

package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/resource"
)

// discoveryRetry is the shortest time between two failed discoveries, so
// that a down authorization server is not asked on every request.
const discoveryRetry = 5 * time.Second

// maxMetadataBytes caps an authorization server metadata document.
const maxMetadataBytes = 1 << 20

// NewIntrospection returns a verifier that checks tokens with
// resource.NewIntrospectionVerifier(opts). When opts.Endpoint is empty, the
// endpoint is the introspection_endpoint of opts.Issuer's RFC 8414 metadata
// (looked up at the RFC 8414 and OpenID Connect locations in
// oauth.AuthorizationServerMetadataURLs order, its issuer compared with
// opts.Issuer, RFC 8414 §3.3), found on first use so that the gateway
// starts while the authorization server is down. Until it is found,
// requests get 503 (an error that does not wrap resource.ErrInvalidToken),
// and a failed lookup is retried at most every 5 seconds. The result is safe
// for concurrent use.
func NewIntrospection(opts resource.IntrospectionOptions) (resource.TokenVerifier, error) {
	if opts.Endpoint != "" {
		return resource.NewIntrospectionVerifier(opts)
	}
	if opts.Client == nil {
		return nil, errors.New("introspection: an *http.Client with a Timeout is required")
	}
	urls, err := oauth.AuthorizationServerMetadataURLs(opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("introspection: issuer: %w", err)
	}
	probe := opts
	probe.Endpoint = "https://issuer.invalid/introspect" // checks the other options now, not at first use
	if _, err := resource.NewIntrospectionVerifier(probe); err != nil {
		return nil, err
	}
	client := *opts.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &discovering{opts: opts, urls: urls, client: &client}, nil
}

// discovering is the verifier NewIntrospection returns without an endpoint.
type discovering struct {
	opts   resource.IntrospectionOptions
	urls   []string
	client *http.Client

	mu       sync.Mutex
	v        resource.TokenVerifier // nil until discovered
	failedAt time.Time
	failure  error
}

// VerifyToken implements resource.TokenVerifier.
func (d *discovering) VerifyToken(ctx context.Context, token string) (*resource.TokenInfo, error) {
	v, err := d.verifier(ctx)
	if err != nil {
		return nil, err
	}
	return v.VerifyToken(ctx, token)
}

func (d *discovering) verifier(ctx context.Context) (resource.TokenVerifier, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.v != nil {
		return d.v, nil
	}
	if d.failure != nil && time.Since(d.failedAt) < discoveryRetry {
		return nil, d.failure
	}
	endpoint, err := d.discover(ctx)
	if err == nil {
		opts := d.opts
		opts.Endpoint = endpoint
		d.v, err = resource.NewIntrospectionVerifier(opts)
	}
	if err != nil {
		d.failure, d.failedAt = fmt.Errorf("find the introspection endpoint of %q: %w", d.opts.Issuer, err), time.Now()
		return nil, d.failure
	}
	return d.v, nil
}

// discover returns the introspection_endpoint of the first metadata
// document found.
func (d *discovering) discover(ctx context.Context) (string, error) {
	var errs []error
	for _, u := range d.urls {
		md, err := d.fetch(ctx, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if md.Issuer != d.opts.Issuer {
			return "", fmt.Errorf("metadata at %q names issuer %q (RFC 8414 §3.3)", u, md.Issuer)
		}
		if md.IntrospectionEndpoint == "" {
			return "", fmt.Errorf("metadata at %q has no introspection_endpoint; set the endpoint explicitly", u)
		}
		return md.IntrospectionEndpoint, nil
	}
	return "", errors.Join(errs...)
}

func (d *discovering) fetch(ctx context.Context, u string) (*oauth.AuthorizationServerMetadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %q: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %q: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %q: status %d", u, resp.StatusCode)
	}
	var md oauth.AuthorizationServerMetadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMetadataBytes)).Decode(&md); err != nil {
		return nil, fmt.Errorf("fetch %q: %w", u, err)
	}
	return &md, nil
}
