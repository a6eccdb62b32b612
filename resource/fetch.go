package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	// maxDocumentBytes caps every document read from an authorization
	// server: metadata, JWKS, introspection responses.
	maxDocumentBytes = 512 << 10
	// fetchTimeout bounds one request to the authorization server even when
	// the caller's client has no Timeout.
	fetchTimeout = 10 * time.Second
)

// errNotFound marks a 404 or 410, which makes discovery try the next URL.
var errNotFound = errors.New("not found")

// noRedirects returns a copy of c that does not follow redirects: a 3xx is
// then an error like any status other than 200.
func noRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// doJSON sends req with c and decodes a 200 JSON response of at most
// maxDocumentBytes into v.
func doJSON(ctx context.Context, c *http.Client, req *http.Request, v any) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req = req.WithContext(ctx)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %q: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("%s %q: read body: %w", req.Method, req.URL, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fmt.Errorf("%s %q: status %d: %w", req.Method, req.URL, resp.StatusCode, errNotFound)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s %q: status %d, want 200", req.Method, req.URL, resp.StatusCode)
	case len(body) > maxDocumentBytes:
		return fmt.Errorf("%s %q: body larger than %d bytes", req.Method, req.URL, maxDocumentBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s %q: decode JSON: %w", req.Method, req.URL, err)
	}
	return nil
}

// getJSON fetches u with GET through doJSON.
func getJSON(ctx context.Context, c *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %q: %w", u, err)
	}
	return doJSON(ctx, c, req, v)
}
