package cimd

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/mcpauth/mcpauth/internal/httpcache"
	"github.com/mcpauth/mcpauth/internal/safehttp"
)

// Report is the verdict of Check: what the server would decide about a
// client_id, every problem with its SPEC item and fix, warnings, and the
// cache lifetime the server would apply.
type Report struct {
	ClientID string       `json:"client_id"`
	Accepted bool         `json:"accepted"`
	Tier     Tier         `json:"tier,omitempty"`
	Problems []Problem    `json:"problems"`
	Warnings []Warning    `json:"warnings"`
	Fetch    *FetchReport `json:"fetch,omitempty"`
	Cache    *CacheReport `json:"cache,omitempty"`
	Document *Document    `json:"document,omitempty"`
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

// Check fetches and validates clientID exactly as Resolve would, but without
// the cache and without stopping at the first problem, for diagnostics such
// as `mcpauth client check`.
func (r *Resolver) Check(ctx context.Context, clientID string) *Report {
	rep := &Report{ClientID: clientID, Problems: []Problem{}, Warnings: []Warning{}}
	id, err := parseClientID(clientID, r.loopback)
	if err != nil {
		rep.Problems = append(rep.Problems, problemsOf(err)...)
		return rep
	}
	rep.Warnings = append(rep.Warnings, ClientIDWarnings(id)...)
	tier, _, err := r.policy.Load().check(id)
	rep.Tier = tier
	if err != nil {
		rep.Problems = append(rep.Problems, problemsOf(err)...)
		return rep
	}
	resp, err := r.fetcher.Fetch(ctx, safehttp.Request{URL: id.String(), Accept: Accept})
	if err != nil {
		rep.Problems = append(rep.Problems, problemsOf(fetchError(id, err))...)
		return rep
	}
	rep.Fetch = &FetchReport{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"),
		Bytes: len(resp.Body), Address: resp.Addr.String()}
	if err := r.checkContentType(id, resp.Header.Get("Content-Type")); err != nil {
		rep.Problems = append(rep.Problems, problemsOf(err)...)
	}
	doc, warnings, err := ParseDocument(resp.Body, id)
	rep.Warnings = append(rep.Warnings, warnings...)
	if err != nil {
		rep.Problems = append(rep.Problems, problemsOf(err)...)
	} else {
		rep.Document = doc
	}
	f := httpcache.ComputeFreshness(resp.Header, r.now(), r.limits)
	rep.Cache = &CacheReport{Store: f.Store, LifetimeSeconds: seconds(f.Lifetime), OriginSeconds: seconds(f.Origin),
		Source: f.Source, Clamped: f.Clamped, StaleIfErrorSeconds: seconds(f.StaleIfError),
		Revalidation: revalidation(resp.Header)}
	rep.Accepted = len(rep.Problems) == 0
	return rep
}

func seconds(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return int64(d / time.Second)
}

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

// problemsOf lists the problems inside err (an *Error), or wraps any other error.
func problemsOf(err error) []Problem {
	var e *Error
	if errors.As(err, &e) {
		if len(e.Problems) > 0 {
			return e.Problems
		}
		return []Problem{{Reason: e.Reason, Spec: e.Spec, Message: e.Message}}
	}
	return []Problem{{Reason: ReasonFetch, Message: err.Error()}}
}
