package cimd

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcpauth/mcpauth/internal/httpcache"
	"github.com/mcpauth/mcpauth/internal/safehttp"
)

// Accept is the Accept header sent with every document fetch (RFC 9110 §12.5.1,
// CIMD §5, §8.7).
const Accept = "application/cimd+json, application/json;q=0.9"

// Options configures a Resolver. Every zero value is a safe production default.
type Options struct {
	// Policy is the initial trust policy; nil allows every client as unverified.
	// Replace it at run time with SetPolicy.
	Policy *Policy
	// Cache stores validated documents; nil means newMemoryCache(0), 256 MiB.
	Cache Cache
	// Limits clamps cache lifetimes; zero fields take the defaults documented on Limits.
	Limits Limits
	// OnChange, if set, is called once per refetch whose document differs from
	// the cached one in a security-relevant field (CIMD §8.4). It runs on the
	// fetching goroutine and must not block.
	OnChange func(ChangeEvent)
	// OnCache and OnFetch, if set, are told, for metrics, how each look-up
	// was answered and how each fetch ended; nil is off. A look-up is one
	// Resolve answered from the cache, or one fetch shared by the
	// concurrent callers for a client_id. OnCache gets CacheHit,
	// CacheMiss, CacheStale or CacheRevalidated; OnFetch gets FetchOK,
	// FetchNotModified, FetchFailed or FetchInvalid. They run on the
	// resolving goroutine and must not block.
	OnCache func(result string)
	OnFetch func(result string)

	// AllowLoopback is the development exception (CIMD §8.6,
	// CIMD §8.6): client_ids on loopback hosts, over http or
	// https, are accepted and fetched. Never enable it in production.
	AllowLoopback bool
	// LoopbackClients accepts loopback development client_ids
	// (http://localhost?redirect_uri=...&scope=...), whose metadata is
	// derived from the URL by LoopbackClient without any fetch. Off by
	// default; turn it off in production.
	LoopbackClients bool
	// LenientContentType also accepts text/plain documents
	// (CIMD §5, §8.7). Off by default.
	LenientContentType bool

	// Fetch limits; zero means the safehttp defaults (5120 bytes, 5 s).
	MaxBytes int64
	Timeout  time.Duration
	// RootCAs verifies document hosts; nil means the system roots.
	RootCAs *x509.CertPool
	// UserAgent overrides the default mcpauth User-Agent.
	UserAgent string
	// LookupNetIP and DialContext replace DNS resolution and dialling (tests).
	// The dialled address is always one that passed the special-use check.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives fetch failures and change events; nil discards.
	Logger *slog.Logger
}

// Results given to Options.OnCache and Options.OnFetch.
const (
	CacheHit         = "hit"         // a fresh cached document answered
	CacheMiss        = "miss"        // no usable copy: the document was fetched
	CacheStale       = "stale"       // the host is down: a copy past its freshness answered (RFC 5861 §4)
	CacheRevalidated = "revalidated" // the host confirmed the cached copy (304, RFC 9111 §4.3)

	FetchOK          = "ok"           // a new document was accepted
	FetchNotModified = "not_modified" // 304 Not Modified
	FetchFailed      = "failed"       // no answer, or an answer other than the document (status, redirect, size)
	FetchInvalid     = "invalid"      // the answer's content type or document was rejected
)

// Limits are the operator's bounds on how long documents are cached, which
// draft-ietf-oauth-client-id-metadata-document-02 §5.2 allows. Within them the
// resolver follows the document's HTTP caching headers (RFC 9111).
type Limits struct {
	Min      time.Duration // lower clamp; default 60 s
	Max      time.Duration // upper clamp; default 24 h
	Default  time.Duration // lifetime when the response has no freshness information; default 5 min
	MaxStale time.Duration // longest a document may be served stale while its host is down; default 1 h
}

// ChangeEvent reports that a client's document changed in a security-relevant
// field between two fetches (CIMD §8.4). Servers
// use it to require fresh consent or revoke grants bound to the old
// fingerprint.
type ChangeEvent struct {
	ClientID       string
	OldFingerprint string
	NewFingerprint string
	Fields         []string // JSON names of the changed fields
	At             time.Time
}

// Client is a resolved client: its validated document and what the policy
// and cache say about it. A Client is a snapshot; do not modify it.
type Client struct {
	ID          ClientID
	Document    *Document
	Warnings    []Warning
	Tier        Tier
	Rule        string    // the policy rule that decided Tier, "" if none matched
	Stale       bool      // served past its freshness because the host is down (bounded stale-if-error)
	FetchedAt   time.Time // when the document (or its last revalidation) was received
	FreshUntil  time.Time
	Fingerprint string
	// Loopback marks a loopback development client: its Document was
	// derived from the client_id by LoopbackClient, not fetched.
	Loopback bool
}

// Resolver resolves CIMD client_ids to validated documents. It is safe for
// concurrent use; concurrent calls for the same client_id share one fetch.
type Resolver struct {
	policy   atomic.Pointer[Policy]
	cache    Cache
	limits   httpcache.Limits
	fetcher  *safehttp.Client
	group    singleflight.Group
	onChange func(ChangeEvent)
	onCache  func(string)
	onFetch  func(string)
	loopback bool
	devLocal bool // Options.LoopbackClients
	lenient  bool
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// NewResolver returns a Resolver configured by opts.
func NewResolver(opts Options) (*Resolver, error) {
	var resolver safehttp.Resolver
	if opts.LookupNetIP != nil {
		resolver = lookupFunc(opts.LookupNetIP)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f, err := safehttp.New(safehttp.Options{
		MaxBodyBytes:  opts.MaxBytes,
		Timeout:       timeout,
		AllowLoopback: opts.AllowLoopback,
		RootCAs:       opts.RootCAs,
		UserAgent:     opts.UserAgent,
		Resolver:      resolver,
		Dial:          opts.DialContext,
		Logger:        logger,
	})
	if err != nil {
		return nil, fmt.Errorf("cimd: %w", err)
	}
	r := &Resolver{
		cache:    opts.Cache,
		limits:   httpcache.Limits(opts.Limits).WithDefaults(),
		fetcher:  f,
		onChange: opts.OnChange,
		onCache:  opts.OnCache,
		onFetch:  opts.OnFetch,
		loopback: opts.AllowLoopback,
		devLocal: opts.LoopbackClients,
		lenient:  opts.LenientContentType,
		timeout:  timeout,
		now:      opts.Now,
		log:      logger,
	}
	if r.cache == nil {
		r.cache = newMemoryCache(0)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.policy.Store(opts.Policy)
	return r, nil
}

type lookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f lookupFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// SetPolicy replaces the trust policy. It applies to the next Resolve call,
// including calls answered from the cache.
func (r *Resolver) SetPolicy(p *Policy) { r.policy.Store(p) }

// Policy returns the current trust policy.
func (r *Resolver) Policy() *Policy { return r.policy.Load() }

// ClientID parses s as Resolve does: by the rules of ParseClientID, plus the
// development loopback exception when Options.AllowLoopback is set.
func (r *Resolver) ClientID(s string) (ClientID, error) {
	return parseClientID(s, r.loopback)
}

// Resolve returns the validated client for clientID. The trust policy is
// checked first, on every call, cache hit or not; then a fresh cached
// document is returned without network activity; otherwise the document is
// fetched (revalidated when the cache holds a copy), validated and cached per
// its HTTP caching headers. While the client's host is down, the last good
// document is served, flagged Stale, for a bounded time.
//
// Errors are *Error; (*Error).OAuth gives the invalid_client response.
func (r *Resolver) Resolve(ctx context.Context, clientID string) (*Client, error) {
	policy := r.policy.Load()
	// Without the development exception no other http://localhost client_id
	// can be valid, so LoopbackClient's message says what to fix.
	if IsLoopbackClientID(clientID) || r.devLocal && !r.loopback && strings.HasPrefix(clientID, loopbackOrigin) {
		return r.loopbackClient(policy, clientID)
	}
	e, err := r.cache.Get(ctx, clientID)
	if err == nil && e.client != nil {
		tier, rule, perr := policy.check(e.client.ID)
		if perr != nil {
			return nil, perr
		}
		if r.now().Before(e.FreshUntil) {
			observe(r.onCache, CacheHit)
			c := *e.client
			c.Tier, c.Rule = tier, rule
			return &c, nil
		}
	} else if err != nil && !errors.Is(err, ErrCacheMiss) {
		r.log.Warn("cimd cache read failed", "client_id", clientID, "err", err)
	}

	id, err := parseClientID(clientID, r.loopback)
	if err != nil {
		return nil, err
	}
	tier, rule, err := policy.check(id)
	if err != nil {
		return nil, err
	}
	ch := r.group.DoChan(clientID, func() (any, error) {
		// The fetch outlives any single caller: one caller giving up must not
		// fail the others (MCP SEP-991 §Best Practices single-flight).
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout+time.Second)
		defer cancel()
		return r.refresh(fctx, id)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("resolve %q: %w", clientID, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		c := *res.Val.(*Client)
		c.Tier, c.Rule = tier, rule
		return &c, nil
	}
}

// loopbackClient resolves a loopback development client_id, when allowed,
// without fetching anything; the trust policy applies as to any client.
func (r *Resolver) loopbackClient(policy *Policy, clientID string) (*Client, error) {
	if !r.devLocal {
		return nil, newError(Problem{Reason: ReasonLoopbackDisabled, Ref: refLoopbackClient, Field: "client_id",
			Message: "this server does not accept loopback development clients (http://localhost client_ids); use the https URL of a client metadata document as client_id, or credentials registered with the operator"})
	}
	c, err := LoopbackClient(clientID)
	if err != nil {
		return nil, err
	}
	// Only a block applies: an allow rule cannot make a client verified
	// whose client_id anyone on any computer can present.
	if _, c.Rule, err = policy.check(c.ID); err != nil {
		return nil, err
	}
	return c, nil
}

// refresh runs once per client_id at a time. It re-reads the cache (another
// flight may have just filled it), then fetches or revalidates.
func (r *Resolver) refresh(ctx context.Context, id ClientID) (*Client, error) {
	now := r.now()
	old := r.cached(ctx, id)
	if old != nil && now.Before(old.FreshUntil) {
		observe(r.onCache, CacheHit)
		return old.client, nil
	}
	resp, err := r.fetcher.Fetch(ctx, conditionalRequest(id, old))
	if err != nil {
		observe(r.onFetch, FetchFailed)
		c, err := r.fetchFailed(ctx, id, old, now, err)
		observe(r.onCache, map[bool]string{false: CacheMiss, true: CacheStale}[c != nil])
		return c, err
	}
	e, hdr, err := r.newEntry(ctx, id, old, resp, now)
	switch {
	case err != nil:
		observe(r.onFetch, FetchInvalid)
		observe(r.onCache, CacheMiss)
		return nil, err
	case resp.StatusCode == http.StatusNotModified:
		observe(r.onFetch, FetchNotModified)
		observe(r.onCache, CacheRevalidated)
	default:
		observe(r.onFetch, FetchOK)
		observe(r.onCache, CacheMiss)
	}
	return r.store(ctx, id, e, hdr, now), nil
}

// observe calls f, an optional metrics callback, with result.
func observe(f func(string), result string) {
	if f != nil {
		f(result)
	}
}

// cached returns the cached entry for id with its parsed client, or nil. An
// entry from a shared cache is validated again first.
func (r *Resolver) cached(ctx context.Context, id ClientID) *Entry {
	old, err := r.cache.Get(ctx, id.String())
	if err != nil {
		return nil
	}
	if old.client == nil {
		c, err := r.clientFromEntry(id, old)
		if err != nil {
			return nil // a shared cache handed us something we no longer accept
		}
		old.client = c
	}
	return old
}

// conditionalRequest is the fetch of id's document, conditional on the
// validators of old when there is a cached copy (RFC 9111 §4.3.1).
func conditionalRequest(id ClientID, old *Entry) safehttp.Request {
	req := safehttp.Request{URL: id.String(), Accept: Accept, Known: old != nil}
	if old != nil {
		req.Header = http.Header{}
		if old.ETag != "" {
			req.Header.Set("If-None-Match", old.ETag)
		}
		if old.LastModified != "" {
			req.Header.Set("If-Modified-Since", old.LastModified)
		}
	}
	return req
}

// fetchFailed serves the cached copy, flagged stale, while the host is down
// and the copy's stale-if-error allowance lasts; otherwise it returns the
// rejection, and forgets the copy when the host answered wrongly.
func (r *Resolver) fetchFailed(ctx context.Context, id ClientID, old *Entry, now time.Time, err error) (*Client, error) {
	var se *safehttp.Error
	if old != nil && errors.As(err, &se) && se.Unavailable() && now.Before(old.StaleUntil) {
		r.log.Warn("cimd host unavailable, serving stale document", "client_id", id.String(), "err", err)
		c := *old.client
		c.Stale = true
		return &c, nil
	}
	if old != nil && errors.As(err, &se) && !se.Unavailable() {
		// The host answered but not with the document (gone, redirect,
		// too large, ...): stop serving the old copy.
		_ = r.cache.Delete(ctx, id.String())
	}
	r.log.Info("cimd fetch failed", "client_id", id.String(), "err", err)
	return nil, fetchError(id, err)
}

// newEntry builds the entry for a fetch's answer: old with refreshed headers
// for a 304, or the validated new document for a 200 (reporting a change in
// a security-relevant member). It returns the headers freshness is computed
// from. An invalid document removes the cached copy.
func (r *Resolver) newEntry(ctx context.Context, id ClientID, old *Entry, resp *safehttp.Response, now time.Time) (*Entry, http.Header, error) {
	if resp.StatusCode == http.StatusNotModified {
		if old == nil {
			return nil, nil, fetchError(id, fmt.Errorf("the server answered 304 Not Modified to an unconditional request"))
		}
		hdr := old.header(resp.Header)
		e := entryOf(old.ClientID, old.Body, hdr, now)
		e.Fingerprint = old.Fingerprint
		c := *old.client
		e.client = &c
		return e, hdr, nil
	}
	if err := r.checkContentType(id, resp.Header.Get("Content-Type")); err != nil {
		_ = r.cache.Delete(ctx, id.String())
		return nil, nil, err
	}
	e := entryOf(id.String(), resp.Body, resp.Header, now)
	c, err := r.clientFromEntry(id, e)
	if err != nil {
		_ = r.cache.Delete(ctx, id.String()) // CIMD §5.2: an invalid document replaces nothing and is never cached
		return nil, nil, err
	}
	e.client = c
	e.Fingerprint = c.Fingerprint
	if old != nil && old.Fingerprint != e.Fingerprint {
		r.changed(old, e, now)
	}
	return e, resp.Header, nil
}

// store sets e's freshness from hdr and caches it, unless the response said
// no-store, and returns its client.
func (r *Resolver) store(ctx context.Context, id ClientID, e *Entry, hdr http.Header, now time.Time) *Client {
	f := httpcache.ComputeFreshness(hdr, now, r.limits)
	e.FreshUntil = now.Add(f.Lifetime)
	e.StaleUntil = e.FreshUntil.Add(f.StaleIfError)
	e.client.FetchedAt, e.client.FreshUntil = now, e.FreshUntil
	if !f.Store {
		// no-store: answer the callers of this fetch, keep nothing
		// (CIMD §5.2, RFC 9111).
		_ = r.cache.Delete(ctx, id.String())
		return e.client
	}
	if _, local := r.cache.(inProcess); local {
		e.Body = nil // the parsed document is kept instead
	}
	if err := r.cache.Put(ctx, e); err != nil {
		r.log.Warn("cimd cache write failed", "client_id", id.String(), "err", err)
	}
	return e.client
}

// entryOf is a new cache entry for body, with the validators and freshness
// headers of h, fetched at now.
func entryOf(clientID string, body []byte, h http.Header, now time.Time) *Entry {
	return &Entry{ClientID: clientID, Body: body, FetchedAt: now,
		ETag: h.Get("Etag"), LastModified: h.Get("Last-Modified"),
		CacheControl: strings.Join(h.Values("Cache-Control"), ", "), Expires: h.Get("Expires")}
}

// clientFromEntry validates e.Body for id and builds the Client.
func (r *Resolver) clientFromEntry(id ClientID, e *Entry) (*Client, error) {
	doc, warnings, err := ParseDocument(e.Body, id)
	if err != nil {
		return nil, err
	}
	doc.ClientID = id.String() // equal byte for byte (CIMD §4); share one copy
	warnings = append(ClientIDWarnings(id), warnings...)
	return &Client{
		ID:          id,
		Document:    doc,
		Warnings:    warnings,
		FetchedAt:   e.FetchedAt,
		FreshUntil:  e.FreshUntil,
		Fingerprint: doc.Fingerprint(),
	}, nil
}

func (r *Resolver) changed(old, e *Entry, now time.Time) {
	ev := ChangeEvent{
		ClientID:       e.ClientID,
		OldFingerprint: old.Fingerprint,
		NewFingerprint: e.Fingerprint,
		Fields:         changedFields(old.client.Document, e.client.Document),
		At:             now,
	}
	r.log.Warn("cimd document changed", "client_id", ev.ClientID, "fields", ev.Fields,
		"old_fingerprint", ev.OldFingerprint, "new_fingerprint", ev.NewFingerprint)
	if r.onChange != nil {
		r.onChange(ev)
	}
}

// checkContentType enforces the media types of
// draft-ietf-oauth-client-id-metadata-document-02 §4, plus text/plain in
// lenient mode.
func (r *Resolver) checkContentType(id ClientID, ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (safehttp.IsJSONMediaType(mt) || r.lenient && mt == "text/plain") {
		return nil
	}
	if ct == "" {
		ct = "no Content-Type"
	}
	return newError(Problem{Reason: ReasonContentType, Ref: refDocument, Field: "Content-Type",
		Message: fmt.Sprintf("%s was served as %q; serve it as application/json (or application/cimd+json)", id, ct)})
}

// fetchError turns a fetch failure into the rejection returned to callers.
func fetchError(id ClientID, err error) *Error {
	var reason safehttp.Reason
	if se := (*safehttp.Error)(nil); errors.As(err, &se) {
		reason = se.Reason
	}
	e := newError(Problem{Reason: ReasonFetch, Ref: reason.Ref(),
		Message: fmt.Sprintf("the client metadata document at %s could not be fetched: %v", id, err)})
	e.Err = err
	return e
}
