package httpcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CacheControl holds the Cache-Control response directives that matter for
// storing a client metadata document (RFC 9111 §5.2.2). Absent numeric
// directives are -1.
type CacheControl struct {
	NoStore        bool
	NoCache        bool
	MustRevalidate bool
	MaxAge         int // seconds, -1 if absent
	SMaxAge        int // seconds, -1 if absent
	StaleIfError   int // seconds (RFC 5861 §4), -1 if absent
}

// ParseCacheControl parses one or more Cache-Control field values. Directive
// names are case-insensitive, arguments may be quoted, unknown directives are
// ignored. A numeric directive that repeats, or whose argument is not a
// non-negative integer, is treated as 0 (stale) per RFC 9111 §4.2.1 and §1.2.2.
// Values above 2^31-1 are capped there (RFC 9111 §1.2.2).
func ParseCacheControl(values ...string) CacheControl {
	cc := CacheControl{MaxAge: -1, SMaxAge: -1, StaleIfError: -1}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			name, arg, hasArg := strings.Cut(strings.TrimSpace(part), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			arg = strings.Trim(strings.TrimSpace(arg), `"`)
			switch name {
			case "no-store":
				cc.NoStore = true
			case "no-cache":
				cc.NoCache = true // a field-name list still means revalidate; we treat it as the bare form
			case "must-revalidate", "proxy-revalidate":
				cc.MustRevalidate = true
			case "max-age":
				cc.MaxAge = deltaSeconds(cc.MaxAge, arg, hasArg)
			case "s-maxage":
				cc.SMaxAge = deltaSeconds(cc.SMaxAge, arg, hasArg)
			case "stale-if-error":
				cc.StaleIfError = deltaSeconds(cc.StaleIfError, arg, hasArg)
			}
		}
	}
	return cc
}

func deltaSeconds(prev int, arg string, hasArg bool) int {
	if prev != -1 || !hasArg || arg == "" {
		return 0
	}
	n := 0
	for i := 0; i < len(arg); i++ {
		c := arg[i]
		if c < '0' || c > '9' {
			return 0
		}
		if n > (1<<31-1)/10 {
			return 1<<31 - 1
		}
		n = n*10 + int(c-'0')
	}
	if n < 0 || n > 1<<31-1 {
		return 1<<31 - 1
	}
	return n
}

// Limits are the operator's bounds on cache lifetimes, which
// draft-ietf-oauth-client-id-metadata-document-02 §5.2 allows. Zero fields
// take the defaults WithDefaults documents.
type Limits struct {
	Min      time.Duration // lower clamp; default 60 s
	Max      time.Duration // upper clamp; default 24 h
	Default  time.Duration // lifetime when the response has no freshness information; default 5 min
	MaxStale time.Duration // longest a response may be served stale while its origin is down; default 1 h
}

// WithDefaults returns l with zero fields set to their defaults: Min 60 s,
// Max 24 h, Default 5 min, MaxStale 1 h. Negative Min and MaxStale become 0.
func (l Limits) WithDefaults() Limits {
	if l.Min == 0 {
		l.Min = 60 * time.Second
	}
	if l.Max == 0 {
		l.Max = 24 * time.Hour
	}
	if l.Default == 0 {
		l.Default = 5 * time.Minute
	}
	if l.MaxStale == 0 {
		l.MaxStale = time.Hour
	}
	if l.Min < 0 {
		l.Min = 0
	}
	if l.MaxStale < 0 {
		l.MaxStale = 0
	}
	return l
}

// Freshness is how long a cache will use a response without asking its
// origin again, computed from the response headers (RFC 9111 §4.2) and clamped
// to the operator's Limits.
type Freshness struct {
	Store        bool          // false for no-store: used for the fetching request only
	Lifetime     time.Duration // remaining freshness after clamping
	Origin       time.Duration // what the headers alone say (before clamping); -1 when they say nothing
	Source       string        // "no-store", "s-maxage", "max-age", "expires", "default"
	Clamped      bool          // Lifetime differs from Origin because of Limits
	StaleIfError time.Duration // how long past Lifetime the last good copy may be served while the host is down
}

// ComputeFreshness applies RFC 9111 to h as received at now. s-maxage wins
// over max-age (the caller is a cache shared by all its users),
// max-age over Expires; Age and Date reduce the remaining lifetime
// (§4.2.3). no-cache and must-revalidate disable stale-if-error. The result is
// clamped to [Min, Max]; responses without freshness information get Default.
func ComputeFreshness(h http.Header, now time.Time, l Limits) Freshness {
	l = l.WithDefaults()
	cc := ParseCacheControl(h.Values("Cache-Control")...)
	if cc.NoStore {
		return Freshness{Store: false, Origin: 0, Source: "no-store"}
	}
	f := Freshness{Store: true, Origin: -1}
	var lifetime time.Duration
	switch {
	case cc.SMaxAge >= 0:
		lifetime, f.Source = time.Duration(cc.SMaxAge)*time.Second, "s-maxage"
	case cc.MaxAge >= 0:
		lifetime, f.Source = time.Duration(cc.MaxAge)*time.Second, "max-age"
	case h.Get("Expires") != "":
		f.Source = "expires"
		exp, err := http.ParseTime(h.Get("Expires"))
		if err == nil {
			base := now
			if d, err := http.ParseTime(h.Get("Date")); err == nil {
				base = d
			}
			lifetime = exp.Sub(base)
		} // an invalid Expires means already expired (RFC 9111 §5.3)
	default:
		f.Source = "default"
	}
	if cc.NoCache {
		lifetime, f.Source = 0, "no-cache"
	}
	if f.Source == "default" {
		f.Lifetime = l.Default
	} else {
		remaining := lifetime - currentAge(h, now)
		if remaining < 0 {
			remaining = 0
		}
		f.Origin = remaining
		f.Lifetime = remaining
	}
	if f.Lifetime < l.Min {
		f.Lifetime, f.Clamped = l.Min, f.Source != "default"
	}
	if f.Lifetime > l.Max {
		f.Lifetime, f.Clamped = l.Max, true
	}
	if !cc.NoCache && !cc.MustRevalidate {
		f.StaleIfError = l.MaxStale
		if cc.StaleIfError >= 0 && time.Duration(cc.StaleIfError)*time.Second < f.StaleIfError {
			f.StaleIfError = time.Duration(cc.StaleIfError) * time.Second
		}
	}
	return f
}

// currentAge is RFC 9111 §4.2.3 without the request/response delay term,
// which is negligible for a single hop with a 5 s deadline.
func currentAge(h http.Header, now time.Time) time.Duration {
	var age time.Duration
	if v := h.Get("Age"); v != "" {
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31); err == nil {
			age = time.Duration(n) * time.Second
		}
	}
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		// Date has one-second resolution: an apparent age under 2 s is
		// clock granularity, not age.
		if apparent := now.Sub(d).Truncate(time.Second); apparent >= 2*time.Second && apparent > age {
			age = apparent
		}
	}
	return age
}
