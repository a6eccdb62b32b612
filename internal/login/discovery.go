// This file discovers the authorization server of an MCP server: RFC 9728
// protected resource metadata (§3, §5.1) and RFC 8414 authorization server
// metadata (§3), in the order of MCP 2025-11-25 "Authorization Server
// Discovery" (MCP 2025-11-25 Authorization §Authorization Flow Steps).
package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/mcpauth/mcpauth/oauth"
)

// Discovery errors callers may branch on.
var (
	// ErrIssuerMismatch: the metadata's issuer differs from the issuer it
	// was fetched for (RFC 8414 §3.1, §3.3,
	// MCP 2025-11-25 Authorization §Authorization Server Metadata Discovery),
	// or the authorization response named another issuer (RFC 9207 §2.4).
	ErrIssuerMismatch = errors.New("issuer mismatch")
	// ErrNoPKCE: the authorization server does not list S256 in
	// code_challenge_methods_supported
	// (MCP 2025-11-25 Authorization §Authorization Code Protection).
	ErrNoPKCE = errors.New("authorization server does not support PKCE S256")
	// ErrResourceMismatch: the protected resource metadata names another
	// resource (RFC 9728 §3.3, MCP 2025-11-25 Authorization §Protected Resource
	// Metadata Discovery Requirements).
	ErrResourceMismatch = errors.New("protected resource metadata names another resource")
)

// discovery is what the client learned about the MCP server's authorization.
type discovery struct {
	// resource is the RFC 8707 resource to request: the PRM's resource.
	resource string
	prm      oauth.ProtectedResourceMetadata
	issuer   string
	as       oauth.AuthorizationServerMetadata
}

// httpStatusError is a response other than 200.
type httpStatusError struct {
	url    string
	status int
}

func (e *httpStatusError) Error() string {
	if e.status >= 300 && e.status < 400 {
		return fmt.Sprintf("GET %q: HTTP %d (redirects are not followed)", e.url, e.status)
	}
	return fmt.Sprintf("GET %q: HTTP %d", e.url, e.status)
}

// notThere reports whether err is a 4xx answer: the document is not at this
// location, try the next one.
func notThere(err error) bool {
	var se *httpStatusError
	return errors.As(err, &se) && se.status >= 400 && se.status < 500
}

// getJSON fetches a JSON document of at most maxMetadataSize bytes with the
// discovery client. Any status but 200 is an *httpStatusError.
func (a *Authorizer) getJSON(ctx context.Context, what, u string, v any) error {
	if _, err := checkURL(what, u); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("fetch %s %q: %w", what, u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s %q: %w", what, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return &httpStatusError{url: u, status: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize+1))
	if err != nil {
		return fmt.Errorf("fetch %s %q: %w", what, u, err)
	}
	if len(body) > maxMetadataSize {
		return fmt.Errorf("fetch %s %q: larger than %d bytes", what, u, maxMetadataSize)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("fetch %s %q: %w", what, u, err)
	}
	return nil
}

// discover runs MCP 2025-11-25 Authorization §Authorization Flow Steps.
// resourceMetadata is the resource_metadata of the server's challenge, or "".
func (a *Authorizer) discover(ctx context.Context, resourceMetadata string) (*discovery, error) {
	d := &discovery{}
	var err error
	if d.prm, d.resource, err = a.protectedResource(ctx, resourceMetadata); err != nil {
		return nil, err
	}
	// RFC 9728 §7.6: the first authorization server listed.
	d.issuer = d.prm.AuthorizationServers[0]
	if _, err := checkURL("authorization server", d.issuer); err != nil {
		return nil, err
	}
	if d.as, err = a.authorizationServer(ctx, d.issuer); err != nil {
		return nil, err
	}
	return d, nil
}

// protectedResource finds and validates the RFC 9728 metadata (RFC 9728 §3.3,
// MCP 2025-11-25 Authorization §Protected Resource Metadata Discovery
// Requirements): at resourceMetadata when the challenge named it, else at the
// path-inserted location, else at the root of the origin. It returns the
// metadata and the canonical resource to request tokens for.
func (a *Authorizer) protectedResource(ctx context.Context, resourceMetadata string) (oauth.ProtectedResourceMetadata, string, error) {
	var prm oauth.ProtectedResourceMetadata
	type location struct {
		url     string
		allowed []string // resource values RFC 9728 §3.3 allows for it
	}
	pathURL, err := oauth.ProtectedResourceMetadataURL(a.mcpURL)
	if err != nil {
		return prm, "", err
	}
	rootURL, err := oauth.ProtectedResourceMetadataRootURL(a.mcpURL)
	if err != nil {
		return prm, "", err
	}
	// At the root, the resource is the origin (RFC 9728 §3.3); servers that
	// publish one document in both places name the MCP URL there too.
	origin, err := oauth.CanonicalResource(rootURL[:len(rootURL)-len(oauth.WellKnownProtectedResource)])
	if err != nil {
		return prm, "", err
	}
	var locs []location
	switch {
	case resourceMetadata == rootURL:
		locs = []location{{rootURL, []string{a.mcpURL, origin}}}
	case resourceMetadata != "":
		locs = []location{{resourceMetadata, []string{a.mcpURL}}}
	case pathURL == rootURL:
		locs = []location{{rootURL, []string{a.mcpURL, origin}}}
	default:
		locs = []location{{pathURL, []string{a.mcpURL}}, {rootURL, []string{a.mcpURL, origin}}}
	}
	var lastErr error
	for _, l := range locs {
		prm = oauth.ProtectedResourceMetadata{}
		err := a.getJSON(ctx, "protected resource metadata", l.url, &prm)
		if notThere(err) && resourceMetadata == "" {
			lastErr = err
			continue
		}
		if err != nil {
			return prm, "", err
		}
		got, err := oauth.CanonicalResource(prm.Resource)
		if err != nil || !slices.Contains(l.allowed, got) {
			return prm, "", fmt.Errorf("%w: %q lists resource %q, want %q (RFC 9728 §3.3)", ErrResourceMismatch, l.url, prm.Resource, l.allowed[0])
		}
		if len(prm.AuthorizationServers) == 0 {
			return prm, "", fmt.Errorf("protected resource metadata %q lists no authorization_servers", l.url)
		}
		return prm, got, nil
	}
	return prm, "", fmt.Errorf("no protected resource metadata for %q: %w", a.mcpURL, lastErr)
}

// authorizationServer fetches the issuer's metadata from the locations of
// RFC 8414 §3.1, MCP 2025-11-25 Authorization §Authorization Server Metadata
// Discovery in order, taking the first that exists, and checks issuer equality,
// endpoints (MCP Security Best Practices §Server-Side Request Forgery) and S256
// support (MCP 2025-11-25 Authorization §Authorization Code Protection).
func (a *Authorizer) authorizationServer(ctx context.Context, issuer string) (oauth.AuthorizationServerMetadata, error) {
	var md oauth.AuthorizationServerMetadata
	urls, err := oauth.AuthorizationServerMetadataURLs(issuer)
	if err != nil {
		return md, err
	}
	var lastErr error
	for _, u := range urls {
		md = oauth.AuthorizationServerMetadata{}
		err := a.getJSON(ctx, "authorization server metadata", u, &md)
		if notThere(err) {
			lastErr = err
			continue
		}
		if err != nil {
			return md, err
		}
		if md.Issuer != issuer {
			return md, fmt.Errorf("%w: %q names issuer %q, want %q (RFC 8414 §3.3)", ErrIssuerMismatch, u, md.Issuer, issuer)
		}
		if !slices.Contains(md.CodeChallengeMethodsSupported, "S256") {
			return md, fmt.Errorf("%w: %q lists code_challenge_methods_supported %q; refusing to continue without PKCE", ErrNoPKCE, u, md.CodeChallengeMethodsSupported)
		}
		if _, err := checkURL("authorization_endpoint", md.AuthorizationEndpoint); err != nil {
			return md, err
		}
		if _, err := checkURL("token_endpoint", md.TokenEndpoint); err != nil {
			return md, err
		}
		return md, nil
	}
	return md, fmt.Errorf("no authorization server metadata for issuer %q: %w", issuer, lastErr)
}
