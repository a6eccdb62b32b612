package cimd

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestResolveReportsCacheAndFetchResults walks one client through every
// cache and fetch result the metrics callbacks report.
func TestResolveReportsCacheAndFetchResults(t *testing.T) {
	s := newDocServer(t)
	id := s.url("/client.json")
	s.serve(docJSON(id), "Cache-Control", "max-age=60", "ETag", `"v1"`)
	clk := newClock()
	var mu sync.Mutex
	var got []string
	record := func(kind string) func(string) {
		return func(result string) {
			mu.Lock()
			got = append(got, kind+":"+result)
			mu.Unlock()
		}
	}
	r := newTestResolver(t, s, Options{Now: clk.now, Limits: Limits{MaxStale: 10 * time.Minute},
		OnCache: record("cache"), OnFetch: record("fetch")})
	steps := []struct {
		name    string
		advance time.Duration
		serve   func()
		want    []string
	}{
		{"first: fetched", 0, nil, []string{"fetch:ok", "cache:miss"}},
		{"fresh: from the cache", time.Second, nil, []string{"cache:hit"}},
		{"expired: revalidated", 2 * time.Minute, nil, []string{"fetch:not_modified", "cache:revalidated"}},
		{"expired, host down: stale", 2 * time.Minute, func() {
			s.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
		}, []string{"fetch:failed", "cache:stale"}},
		{"host answers wrongly: invalid", 0, func() { s.serve(`{"client_id":"https://other.example/c.json"}`) }, []string{"fetch:invalid", "cache:miss"}},
		{"no copy, host down: miss", 0, func() {
			s.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
		}, []string{"fetch:failed", "cache:miss"}},
	}
	for _, st := range steps {
		clk.advance(st.advance)
		if st.serve != nil {
			st.serve()
		}
		mu.Lock()
		got = nil
		mu.Unlock()
		_, _ = r.Resolve(context.Background(), id) // the results, not the error, are under test
		mu.Lock()
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: reported (-want +got):\n%s", st.name, diff)
		}
		mu.Unlock()
	}
}
