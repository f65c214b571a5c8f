package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
	"github.com/ratingslab/lab/services/movies/rpc"
)

// startMovies runs movies-rpc over a fresh seeded catalog on a real port;
// it returns the public base URL (adminOf gives the admin one).
func startMovies(t *testing.T) (string, *legacydb.DB) {
	t.Helper()
	db, _, err := legacydb.Create(filepath.Join(t.TempDir(), "movies.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pub, admin := servetest.StartBoth(t, rpc.NewServer(db, prometheus.NewRegistry(), nil))
	admins[pub] = admin
	return pub, db
}

// admins maps a started server's public base URL to its admin one.
var admins = map[string]string{}

func adminOf(base string) string { return admins[base] }

func TestMoviesAreServedFromTheLegacyCatalog(t *testing.T) {
	base, _ := startMovies(t)

	var page rpc.MoviesPage
	if code := servetest.CallJSON(t, "GET", base+"/movies", "", &page); code != 200 || page.Total < 100 || len(page.Movies) != rpc.DefaultLimit || page.Offset != 0 {
		t.Fatalf("GET /movies: %d total %d, %d movies", code, page.Total, len(page.Movies))
	}
	for i := 1; i < len(page.Movies); i++ {
		if page.Movies[i-1].ID >= page.Movies[i].ID {
			t.Fatalf("page not ordered by id at %d", i)
		}
	}
	first := page.Movies[0]

	var m model.Movie
	if code := servetest.CallJSON(t, "GET", base+"/movies/"+itoa(first.ID), "", &m); code != 200 || m.ID != first.ID || m.Title == "" || m.Title != first.Title {
		t.Errorf("GET /movies/%d: %d %+v", first.ID, code, m)
	}
	var e map[string]string
	if code := servetest.CallJSON(t, "GET", base+"/movies/99999999", "", &e); code != 404 || !strings.HasPrefix(e["error"], "id: ") {
		t.Errorf("unknown movie: %d %v, want a JSON 404", code, e)
	}
	for _, target := range []string{"/movies/abc", "/movies/0", "/movies?limit=0", "/movies?limit=1001", "/movies?offset=-1"} {
		if code := servetest.CallJSON(t, "GET", base+target, "", &e); code != 400 || e["error"] == "" {
			t.Errorf("%s: %d %v, want a JSON 400", target, code, e)
		}
	}
	page = rpc.MoviesPage{}
	if code := servetest.CallJSON(t, "GET", base+"/movies?offset=10&limit=5", "", &page); code != 200 || len(page.Movies) != 5 || page.Movies[0].ID != pageAt(t, base, 10) {
		t.Errorf("offset 10 limit 5: %d %+v", code, page)
	}
}

func pageAt(t *testing.T, base string, offset int) int64 {
	var page rpc.MoviesPage
	servetest.CallJSON(t, "GET", base+"/movies?limit=1000", "", &page)
	return page.Movies[offset].ID
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestSlowDBFaultDelaysCatalogQueries(t *testing.T) {
	base, db := startMovies(t)
	var shown map[string]string
	if code := servetest.CallJSON(t, "POST", adminOf(base)+"/admin/slow-db", `{"delay":"200ms"}`, &shown); code != 200 || shown["delay"] != "200ms" {
		t.Fatalf("set slow-db: %d %v", code, shown)
	}
	began := time.Now()
	servetest.CallJSON(t, "GET", base+"/movies/1", "", nil)
	if took := time.Since(began); took < 200*time.Millisecond {
		t.Errorf("query took %v with a 200ms slow-db fault", took)
	}
	var health map[string]any
	if code := servetest.CallJSON(t, "GET", adminOf(base)+"/healthz", "", &health); code != 200 || health["slow_db"] != "200ms" {
		t.Errorf("/healthz during slow-db: %d %v, want ok showing slow_db", code, health)
	}
	for _, bad := range []string{`{"delay":"soon"}`, `{"delay":"-1s"}`, `{"delay":"5m"}`, `{"wait":"1s"}`} {
		var e map[string]string
		if code := servetest.CallJSON(t, "POST", adminOf(base)+"/admin/slow-db", bad, &e); code != 400 || e["error"] == "" {
			t.Errorf("%s: %d %v, want 400", bad, code, e)
		}
	}
	servetest.CallJSON(t, "DELETE", adminOf(base)+"/admin/slow-db", "", &shown)
	if db.QueryDelay() != 0 || shown["delay"] != "0s" {
		t.Errorf("after DELETE the delay is %v", db.QueryDelay())
	}
}

func TestClientThroughTheBreaker(t *testing.T) {
	base, _ := startMovies(t)
	dep, err := breaker.New("movies-rpc", breaker.DefaultSettings(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	api, err := breaker.NewEndpoint(base, breaker.NewHTTPClient(breaker.ClientOptions{}), dep)
	if err != nil {
		t.Fatal(err)
	}
	c := rpc.NewClient(api)
	ctx := context.Background()
	if m, err := c.Movie(ctx, 1); err != nil || m.ID != 1 || m.Title == "" {
		t.Errorf("Movie(1) = %+v, %v", m, err)
	}
	if _, err := c.Movie(ctx, 99999999); !errors.Is(err, rpc.ErrNotFound) {
		t.Errorf("Movie(unknown) = %v, want ErrNotFound", err)
	}
	if ms, total, err := c.Movies(ctx, 0, 7); err != nil || len(ms) != 7 || total < 100 {
		t.Errorf("Movies(0, 7) = %d movies of %d, %v", len(ms), total, err)
	}
	if dep.State(breaker.Read) != "closed" {
		t.Errorf("a 404 moved the breaker to %s", dep.State(breaker.Read))
	}
	if _, err := breaker.NewEndpoint("127.0.0.1:1", nil, dep); err == nil || !strings.HasPrefix(err.Error(), "movies-rpc URL ") {
		t.Errorf("a URL without scheme: %v, want an error naming movies-rpc", err)
	}
}
