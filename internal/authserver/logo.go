package authserver

// Client logos (CIMD §8.8, §9.2, §8.6): the consent page
// never hot-links a client's logo_uri. The server fetches it through safehttp
// (no special-use addresses, https only, 64 KiB), keeps only the four raster
// image formats browsers render safely, caches it in memory for as long as
// the client's document is fresh, and serves it from its own origin.
//
// Not supported: SVG (it can carry script), animated formats beyond what
// GIF and WebP allow, and resizing.

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcpauth/mcpauth/internal/safehttp"
)

// Logo limits.
const (
	logoMaxBytes     = 64 << 10         // one logo
	logoCacheBytes   = 8 << 20          // all cached logos together
	logoCacheEntries = 1024             // cached logos and failures
	logoFailFor      = 5 * time.Minute  // a failed fetch is not retried sooner
	logoMaxAge       = 24 * time.Hour   // cache bound, whatever the document says (CIMD §5.2)
	logoMinAge       = 60 * time.Second // for a document that may not be cached
)

// logoTypes are the image types served. SVG is never among them.
func logoTypes() [4]string { return [...]string{"image/png", "image/jpeg", "image/gif", "image/webp"} }

// logo is a cached logo, or a cached failure (body nil).
type logo struct {
	body        []byte
	contentType string
	expires     time.Time
}

// logoCache is a bounded in-memory cache of logos keyed by client_id and
// document fingerprint, with concurrent fetches of one logo coalesced.
type logoCache struct {
	mu      sync.Mutex
	entries map[string]logo
	bytes   int
	group   singleflight.Group
}

func (lc *logoCache) get(key string, now time.Time) (logo, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	l, ok := lc.entries[key]
	if !ok || !now.Before(l.expires) {
		return logo{}, false
	}
	return l, true
}

// put stores l, first dropping expired entries and then, while the cache is
// over its bounds, arbitrary ones.
func (lc *logoCache) put(key string, l logo, now time.Time) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.entries == nil {
		lc.entries = map[string]logo{}
	}
	lc.drop(key)
	for k, e := range lc.entries {
		if !now.Before(e.expires) {
			lc.drop(k)
		}
	}
	for k := range lc.entries {
		if len(lc.entries) < logoCacheEntries && lc.bytes+len(l.body) <= logoCacheBytes {
			break
		}
		lc.drop(k)
	}
	lc.entries[key] = l
	lc.bytes += len(l.body)
}

func (lc *logoCache) drop(key string) {
	if e, ok := lc.entries[key]; ok {
		lc.bytes -= len(e.body)
		delete(lc.entries, key)
	}
}

// handleLogo serves the logo of a CIMD client (GET /logo?client_id=...)
// to a signed-in user, from our origin (CIMD §8.8, §9.2). Anything that is not
// a logo we can vouch for is a plain 404.
func (s *Server) handleLogo(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Referrer-Policy", "no-referrer")
	// Only the consent page shows logos, to a signed-in user: strangers
	// cannot make the server fetch (MCP SEP-991 §Best Practices).
	if sess, _ := s.currentSession(r); sess == nil {
		http.NotFound(w, r)
		return
	}
	l, err := s.clientLogo(r.Context(), r.URL.Query().Get("client_id"))
	if err != nil {
		hd.Set("Cache-Control", "no-store")
		http.NotFound(w, r)
		return
	}
	maxAge := int(l.expires.Sub(s.now()) / time.Second)
	hd.Set("Content-Type", l.contentType)
	hd.Set("Content-Length", strconv.Itoa(len(l.body)))
	hd.Set("Cache-Control", "private, max-age="+strconv.Itoa(max(maxAge, 0)))
	_, _ = w.Write(l.body)
}

// errNoLogo is every reason not to serve a logo; details are logged.
var errNoLogo = errors.New("no logo")

// clientLogo returns the cached or freshly fetched logo of a CIMD client.
func (s *Server) clientLogo(ctx context.Context, clientID string) (logo, error) {
	if !strings.HasPrefix(clientID, "https://") && !strings.HasPrefix(clientID, "http://") {
		return logo{}, errNoLogo
	}
	c, err := s.loadCIMDClient(ctx, clientID) // trust policy and freshness apply
	if err != nil || !strings.HasPrefix(c.LogoURI, "https://") {
		return logo{}, errNoLogo
	}
	now := s.now()
	key := c.ID + "\x00" + c.Fingerprint // a new logo_uri is a new fingerprint
	if l, ok := s.logos.get(key, now); ok {
		if l.body == nil {
			return logo{}, errNoLogo
		}
		return l, nil
	}
	v, _, _ := s.logos.group.Do(key, func() (any, error) {
		l := s.fetchLogo(context.WithoutCancel(ctx), c.ID, c.LogoURI)
		// CIMD §8.8: as long as the document, within [logoMinAge, logoMaxAge];
		// a failure for at most logoFailFor.
		age := min(c.FreshUntil.Sub(now), logoMaxAge)
		if l.body == nil {
			age = min(age, logoFailFor)
		}
		l.expires = now.Add(max(age, logoMinAge))
		s.logos.put(key, l, now)
		return l, nil
	})
	l := v.(logo)
	if l.body == nil {
		return logo{}, errNoLogo
	}
	return l, nil
}

// fetchLogo fetches and checks one logo; a failure is a logo without body.
func (s *Server) fetchLogo(ctx context.Context, clientID, uri string) logo {
	types := logoTypes()
	resp, err := s.logoFetch.Fetch(ctx, safehttp.Request{URL: uri, Accept: strings.Join(types[:], ", ")})
	if err != nil {
		s.log.Info("logo fetch failed", "client_id", clientID, "err", err)
		return logo{}
	}
	declared, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	sniffed := http.DetectContentType(resp.Body)
	if !slices.Contains(types[:], declared) || !slices.Contains(types[:], sniffed) {
		s.log.Info("logo refused: not a PNG, JPEG, GIF or WebP image", "client_id", clientID,
			"content_type", truncate(declared, 64), "sniffed", sniffed)
		return logo{}
	}
	return logo{body: resp.Body, contentType: sniffed}
}
