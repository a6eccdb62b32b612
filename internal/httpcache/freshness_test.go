package httpcache

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseCacheControl(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want CacheControl
	}{
		{"empty", nil, CacheControl{MaxAge: -1, SMaxAge: -1, StaleIfError: -1}},
		{"D1 max-age", []string{"max-age=600"}, CacheControl{MaxAge: 600, SMaxAge: -1, StaleIfError: -1}},
		{"D1 case and spaces", []string{" Max-Age = 60 , PUBLIC"}, CacheControl{MaxAge: 60, SMaxAge: -1, StaleIfError: -1}},
		{"D1 quoted argument", []string{`max-age="30"`}, CacheControl{MaxAge: 30, SMaxAge: -1, StaleIfError: -1}},
		{"D1 s-maxage and stale-if-error", []string{"s-maxage=10, stale-if-error=99"}, CacheControl{MaxAge: -1, SMaxAge: 10, StaleIfError: 99}},
		{"D1 several fields", []string{"no-cache", "must-revalidate"}, CacheControl{NoCache: true, MustRevalidate: true, MaxAge: -1, SMaxAge: -1, StaleIfError: -1}},
		{"D1 no-store", []string{"no-store"}, CacheControl{NoStore: true, MaxAge: -1, SMaxAge: -1, StaleIfError: -1}},
		{"D1 no-cache with field list", []string{`no-cache="set-cookie"`}, CacheControl{NoCache: true, MaxAge: -1, SMaxAge: -1, StaleIfError: -1}},
		{"D1 invalid number is stale", []string{"max-age=abc"}, CacheControl{MaxAge: 0, SMaxAge: -1, StaleIfError: -1}},
		{"D1 negative is stale", []string{"max-age=-5"}, CacheControl{MaxAge: 0, SMaxAge: -1, StaleIfError: -1}},
		{"D1 duplicate is stale", []string{"max-age=600, max-age=10"}, CacheControl{MaxAge: 0, SMaxAge: -1, StaleIfError: -1}},
		{"D1 missing argument is stale", []string{"max-age"}, CacheControl{MaxAge: 0, SMaxAge: -1, StaleIfError: -1}},
		{"D1 huge value capped", []string{"max-age=99999999999999999999"}, CacheControl{MaxAge: 1<<31 - 1, SMaxAge: -1, StaleIfError: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ParseCacheControl(tt.in...)); diff != "" {
				t.Errorf("ParseCacheControl(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestComputeFreshness(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	date := func(d time.Time) string { return d.Format(http.TimeFormat) }
	lim := Limits{} // defaults: [60 s, 24 h], 5 min default, 1 h stale
	tests := []struct {
		name   string
		header http.Header
		want   Freshness
	}{
		{"decision 3 no information gets default", http.Header{},
			Freshness{Store: true, Lifetime: 5 * time.Minute, Origin: -1, Source: "default", StaleIfError: time.Hour}},
		{"D1 max-age honoured", http.Header{"Cache-Control": {"max-age=600"}},
			Freshness{Store: true, Lifetime: 10 * time.Minute, Origin: 10 * time.Minute, Source: "max-age", StaleIfError: time.Hour}},
		{"D1 s-maxage wins over max-age", http.Header{"Cache-Control": {"max-age=600, s-maxage=120"}},
			Freshness{Store: true, Lifetime: 2 * time.Minute, Origin: 2 * time.Minute, Source: "s-maxage", StaleIfError: time.Hour}},
		{"D1 max-age wins over Expires", http.Header{"Cache-Control": {"max-age=600"}, "Expires": {date(now.Add(time.Hour))}},
			Freshness{Store: true, Lifetime: 10 * time.Minute, Origin: 10 * time.Minute, Source: "max-age", StaleIfError: time.Hour}},
		{"D1 Expires relative to Date", http.Header{"Date": {date(now)}, "Expires": {date(now.Add(2 * time.Hour))}},
			Freshness{Store: true, Lifetime: 2 * time.Hour, Origin: 2 * time.Hour, Source: "expires", StaleIfError: time.Hour}},
		{"D1 invalid Expires is expired then clamped", http.Header{"Expires": {"0"}},
			Freshness{Store: true, Lifetime: time.Minute, Origin: 0, Source: "expires", Clamped: true, StaleIfError: time.Hour}},
		{"D1 Age reduces lifetime", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"300"}},
			Freshness{Store: true, Lifetime: 5 * time.Minute, Origin: 5 * time.Minute, Source: "max-age", StaleIfError: time.Hour}},
		{"D1 old Date reduces lifetime", http.Header{"Cache-Control": {"max-age=600"}, "Date": {date(now.Add(-400 * time.Second))}},
			Freshness{Store: true, Lifetime: 200 * time.Second, Origin: 200 * time.Second, Source: "max-age", StaleIfError: time.Hour}},
		{"D4 clamp to 60 s minimum", http.Header{"Cache-Control": {"max-age=1"}},
			Freshness{Store: true, Lifetime: time.Minute, Origin: time.Second, Source: "max-age", Clamped: true, StaleIfError: time.Hour}},
		{"D4 clamp to 24 h maximum", http.Header{"Cache-Control": {"max-age=31536000"}},
			Freshness{Store: true, Lifetime: 24 * time.Hour, Origin: 365 * 24 * time.Hour, Source: "max-age", Clamped: true, StaleIfError: time.Hour}},
		{"decision 3 no-store is never stored", http.Header{"Cache-Control": {"max-age=600, no-store"}},
			Freshness{Store: false, Source: "no-store"}},
		{"D1 no-cache revalidates after the minimum, never stale", http.Header{"Cache-Control": {"no-cache"}, "Etag": {`"v1"`}},
			Freshness{Store: true, Lifetime: time.Minute, Origin: 0, Source: "no-cache", Clamped: true}},
		{"D1 must-revalidate disables stale-if-error", http.Header{"Cache-Control": {"max-age=600, must-revalidate"}},
			Freshness{Store: true, Lifetime: 10 * time.Minute, Origin: 10 * time.Minute, Source: "max-age"}},
		{"D1 stale-if-error bounded by response", http.Header{"Cache-Control": {"max-age=600, stale-if-error=60"}},
			Freshness{Store: true, Lifetime: 10 * time.Minute, Origin: 10 * time.Minute, Source: "max-age", StaleIfError: time.Minute}},
		{"D1 stale-if-error bounded by operator", http.Header{"Cache-Control": {"max-age=600, stale-if-error=86400"}},
			Freshness{Store: true, Lifetime: 10 * time.Minute, Origin: 10 * time.Minute, Source: "max-age", StaleIfError: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ComputeFreshness(tt.header, now, lim)); diff != "" {
				t.Errorf("ComputeFreshness(%v) (-want +got):\n%s", tt.header, diff)
			}
		})
	}
}

func TestComputeFreshnessOperatorLimits(t *testing.T) {
	now := time.Now()
	lim := Limits{Min: 10 * time.Minute, Max: time.Hour, Default: 20 * time.Minute, MaxStale: -1}
	got := ComputeFreshness(http.Header{"Cache-Control": {"max-age=60"}}, now, lim)
	if got.Lifetime != 10*time.Minute || got.StaleIfError != 0 {
		t.Errorf("min clamp / stale disabled: got %+v", got)
	}
	got = ComputeFreshness(http.Header{}, now, lim)
	if got.Lifetime != 20*time.Minute {
		t.Errorf("operator default: got %v", got.Lifetime)
	}
	got = ComputeFreshness(http.Header{"Cache-Control": {"max-age=86400"}}, now, lim)
	if got.Lifetime != time.Hour {
		t.Errorf("operator max: got %v", got.Lifetime)
	}
}

func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", "no-store", "no-cache, must-revalidate", `s-maxage="10", max-age=5`,
		"stale-if-error=300", "max-age=99999999999999999999999", "max-age=,", ",,,", "max-age=\"", "private, max-age=0"} {
		f.Add(s, "", "0")
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cc, expires, age string) {
		got := ParseCacheControl(cc)
		for _, n := range []int{got.MaxAge, got.SMaxAge, got.StaleIfError} {
			if n < -1 {
				t.Fatalf("ParseCacheControl(%q) gave a negative duration: %+v", cc, got)
			}
		}
		h := http.Header{"Cache-Control": {cc}, "Expires": {expires}, "Age": {age}}
		fr := ComputeFreshness(h, now, Limits{})
		if !fr.Store {
			if !got.NoStore {
				t.Fatalf("Store=false without no-store for %q", cc)
			}
			return
		}
		if fr.Lifetime < time.Minute || fr.Lifetime > 24*time.Hour {
			t.Fatalf("lifetime %v outside the [60 s, 24 h] clamp for %q", fr.Lifetime, cc)
		}
		if fr.StaleIfError < 0 || fr.StaleIfError > time.Hour {
			t.Fatalf("stale-if-error %v outside [0, 1 h] for %q", fr.StaleIfError, cc)
		}
	})
}
