// Package clientcheck is the diagnosis behind `mcpauth client check`: it
// fetches a client ID metadata document and validates it as cimd.Resolver
// would, but without a cache and without stopping at the first problem, and
// reports the HTTP exchange and the cache lifetime the server would apply.
package clientcheck

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/httpcache"
	"github.com/mcpauth/mcpauth/internal/safehttp"
)

// Report is the verdict of Check: what the server would decide about a
// client_id, every problem with its reference and fix, warnings, and the
// cache lifetime the server would apply.
type Report struct {
	ClientID string         `json:"client_id"`
	Accepted bool           `json:"accepted"`
	Tier     cimd.Tier      `json:"tier,omitempty"`
	Problems []cimd.Problem `json:"problems"`
	Warnings []cimd.Warning `json:"warnings"`
	Fetch    *FetchReport   `json:"fetch,omitempty"`
	Cache    *CacheReport   `json:"cache,omitempty"`
	Document *cimd.Document `json:"document,omitempty"`
}

// FetchReport describes the HTTP exchange behind a Report.
type FetchReport struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Bytes       int    `json:"bytes"`
	Address     string `json:"address"` // the address actually dialled
}

// CacheReport is the freshness the resolver would give the document.
type CacheReport struct {
	Store               bool   `json:"store"`
	LifetimeSeconds     int64  `json:"lifetime_seconds"`
	OriginSeconds       int64  `json:"origin_seconds"` // what the headers say, -1 when nothing
	Source              string `json:"source"`
	Clamped             bool   `json:"clamped"`
	StaleIfErrorSeconds int64  `json:"stale_if_error_seconds"`
	Revalidation        string `json:"revalidation"` // "etag", "last-modified", "etag+last-modified" or "none"
}

// Options configures Check. It holds the cimd.Options fields that change a
// verdict; no trust policy is applied, so every accepted client is
// unverified, and the cache limits are the defaults of cimd.Limits.
type Options struct {
	// AllowLoopback is cimd.Options.AllowLoopback, the development exception.
	AllowLoopback bool
	// RootCAs verifies document hosts; nil means the system roots.
	RootCAs *x509.CertPool
	// Timeout is the overall fetch deadline; zero means 5 s.
	Timeout time.Duration
}

// Check fetches and validates clientID exactly as a cimd.Resolver with opts
// would, and reports every problem found. Only an invalid opts is an error.
func Check(ctx context.Context, opts Options, clientID string) (*Report, error) {
	r, err := cimd.NewResolver(cimd.Options{AllowLoopback: opts.AllowLoopback, RootCAs: opts.RootCAs, Timeout: opts.Timeout})
	if err != nil {
		return nil, err
	}
	fetcher, err := safehttp.New(safehttp.Options{AllowLoopback: opts.AllowLoopback, RootCAs: opts.RootCAs, Timeout: opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("clientcheck: %w", err)
	}
	rep := &Report{ClientID: clientID, Problems: []cimd.Problem{}, Warnings: []cimd.Warning{}}
	id, err := r.ClientID(clientID)
	if err != nil {
		rep.Problems = append(rep.Problems, problemsOf(err)...)
		return rep, nil
	}
	rep.Warnings = append(rep.Warnings, cimd.ClientIDWarnings(id)...)
	rep.Tier = cimd.TierUnverified
	resp, err := fetcher.Fetch(ctx, safehttp.Request{URL: id.String(), Accept: cimd.Accept})
	if err != nil {
		var reason safehttp.Reason
		if se := (*safehttp.Error)(nil); errors.As(err, &se) {
			reason = se.Reason
		}
		rep.Problems = append(rep.Problems, cimd.Problem{Reason: cimd.ReasonFetch, Ref: reason.Ref(),
			Message: fmt.Sprintf("the client metadata document at %s could not be fetched: %v", id, err)})
		return rep, nil
	}
	ct := resp.Header.Get("Content-Type")
	rep.Fetch = &FetchReport{Status: resp.StatusCode, ContentType: ct, Bytes: len(resp.Body), Address: resp.Addr.String()}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || !safehttp.IsJSONMediaType(mt) {
		if ct == "" {
			ct = "no Content-Type"
		}
		rep.Problems = append(rep.Problems, cimd.Problem{Reason: cimd.ReasonContentType, Ref: cimdDocument, Field: "Content-Type",
			Message: fmt.Sprintf("%s was served as %q; serve it as application/json (or application/cimd+json)", id, ct)})
	}
	doc, warnings, err := cimd.ParseDocument(resp.Body, id)
	rep.Warnings = append(rep.Warnings, warnings...)
	if err != nil {
		rep.Problems = append(rep.Problems, problemsOf(err)...)
	} else {
		rep.Document = doc
	}
	f := httpcache.ComputeFreshness(resp.Header, time.Now(), httpcache.Limits{})
	rep.Cache = &CacheReport{Store: f.Store, LifetimeSeconds: seconds(f.Lifetime), OriginSeconds: seconds(f.Origin),
		Source: f.Source, Clamped: f.Clamped, StaleIfErrorSeconds: seconds(f.StaleIfError),
		Revalidation: revalidation(resp.Header)}
	rep.Accepted = len(rep.Problems) == 0
	return rep, nil
}

// cimdDocument is the section on the document and its media type.
const cimdDocument = "draft-ietf-oauth-client-id-metadata-document-02 §4"

func seconds(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return int64(d / time.Second)
}

// revalidation names the validators a cache could revalidate with.
func revalidation(h http.Header) string {
	etag, lm := h.Get("ETag") != "", h.Get("Last-Modified") != ""
	switch {
	case etag && lm:
		return "etag+last-modified"
	case etag:
		return "etag"
	case lm:
		return "last-modified"
	}
	return "none"
}

// problemsOf lists the problems inside err, a *cimd.Error.
func problemsOf(err error) []cimd.Problem {
	var e *cimd.Error
	if !errors.As(err, &e) {
		return []cimd.Problem{{Reason: cimd.ReasonFetch, Message: err.Error()}}
	}
	if len(e.Problems) > 0 {
		return e.Problems
	}
	return []cimd.Problem{{Reason: e.Reason, Ref: e.Ref, Message: e.Message}}
}
