package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
	moviesrpc "github.com/ratingslab/lab/services/movies/rpc"
	"github.com/ratingslab/lab/services/ratings/rpc"
)

type stack struct {
	ratings string // ratings-rpc base URL
	admin   string // its admin listener
	movies  *servetest.Edge
	store   *rpc.Store
	dir     string
}

func fastSettings() breaker.Settings {
	s := rpc.DefaultMoviesSettings()
	s.Timeout = 200 * time.Millisecond
	s.ConsecutiveFailures = 3
	s.OpenTimeout = 300 * time.Millisecond
	s.HalfOpenRequests = 1
	return s
}

func startStack(t *testing.T, s breaker.Settings) *stack {
	t.Helper()
	db, _, err := legacydb.Create(filepath.Join(t.TempDir(), "movies.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	movies := servetest.NewEdge(t, servetest.Start(t, moviesrpc.NewServer(db, prometheus.NewRegistry(), nil)))

	dir := t.TempDir()
	store, err := rpc.OpenStore(dir, rpc.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv, err := rpc.NewServer(store, rpc.MoviesUpstream(movies.URL, s), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, admin := servetest.StartBoth(t, srv)
	return &stack{ratings: pub, admin: admin, movies: movies, store: store, dir: dir}
}

func rate(t *testing.T, base, requestID string, movie, tenths int64) int {
	t.Helper()
	return servetest.CallJSON(t, "POST", base+"/ratings", fmt.Sprintf(`{"request_id":%q,"movie_id":%d,"rating_tenths":%d,"user_id":7}`, requestID, movie, tenths), nil)
}

func ratedMovie(t *testing.T, base string, id int64) model.RatedMovie {
	t.Helper()
	var m model.RatedMovie
	var raw json.RawMessage
	if code := servetest.CallJSON(t, "GET", fmt.Sprintf("%s/rated-movies/%d", base, id), "", &raw); code != 200 {
		t.Fatalf("GET rated movie %d: %d %s", id, code, raw)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestARatingIsAppliedOncePerRequestID(t *testing.T) {
	st := startStack(t, fastSettings())
	if code := rate(t, st.ratings, "r-1", 1, 75); code != 201 {
		t.Fatalf("first rating: %d, want 201", code)
	}
	if code := rate(t, st.ratings, "r-1", 1, 75); code != 200 {
		t.Errorf("retry of r-1: %d, want 200 (applied before)", code)
	}
	if code := rate(t, st.ratings, "r-2", 1, 100); code != 201 {
		t.Errorf("second rating: %d, want 201", code)
	}
	m := ratedMovie(t, st.ratings, 1)
	if m.Count != 2 || m.SumTenths != 175 || m.Sum != 17.5 || m.Average != 8.75 || m.Title == "" {
		t.Errorf("movie 1 = %+v, want count 2, sum 17.5, average 8.75 and its title", m)
	}
}

// A request id names one rating: reused with another movie (known or
// not), value or user it is a 409 naming the first use, and nothing changes.
func TestARequestIDReusedForAnotherRatingIs409NamingTheFirstUse(t *testing.T) {
	st := startStack(t, fastSettings())
	if code := rate(t, st.ratings, "u-1", 3, 75); code != 201 {
		t.Fatalf("first rating: %d, want 201", code)
	}
	for _, c := range []struct {
		name   string
		body   string
		status int
	}{
		{"another movie", `{"request_id":"u-1","movie_id":4,"rating_tenths":75,"user_id":7}`, 409},
		{"an unknown movie", `{"request_id":"u-1","movie_id":999999,"rating_tenths":75,"user_id":7}`, 409},
		{"another value", `{"request_id":"u-1","movie_id":3,"rating_tenths":80,"user_id":7}`, 409},
		{"another user", `{"request_id":"u-1","movie_id":3,"rating_tenths":75,"user_id":8}`, 409},
		{"the same rating", `{"request_id":"u-1","movie_id":3,"rating_tenths":75,"user_id":7}`, 200},
	} {
		var answer map[string]any
		if code := servetest.CallJSON(t, "POST", st.ratings+"/ratings", c.body, &answer); code != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, code, answer, c.status)
			continue
		}
		if c.status != 409 {
			continue
		}
		msg, _ := answer["error"].(string)
		if !strings.Contains(msg, `request_id: "u-1" already names another rating (movie 3, rating 7.5, user 7, first accepted 20`) {
			t.Errorf("%s: error %q does not name the first use", c.name, msg)
		}
	}
	if m := ratedMovie(t, st.ratings, 3); m.Count != 1 || m.SumTenths != 75 {
		t.Errorf("movie 3 = count %d sum %d, want 1 and 75", m.Count, m.SumTenths)
	}
	if m := ratedMovie(t, st.ratings, 4); m.Count != 0 {
		t.Errorf("movie 4 was counted by a reused request id: count %d", m.Count)
	}
}

func TestConcurrentRetriesApplyExactlyOnce(t *testing.T) {
	patient := fastSettings()
	patient.Timeout = 10 * time.Second // this test is about the store, not about timeouts
	st := startStack(t, patient)
	var wg sync.WaitGroup
	var created atomic.Int64
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch code := rate(t, st.ratings, fmt.Sprintf("c-%d", i%8), 2, 10+int64(i%8)); code {
			case 201:
				created.Add(1)
			case 200:
			default:
				t.Errorf("rating %d: %d, want 201 or 200", i, code)
			}
		}()
	}
	wg.Wait()
	m := ratedMovie(t, st.ratings, 2)
	if m.Count != 8 || created.Load() != 8 || m.SumTenths != 10+11+12+13+14+15+16+17 {
		t.Errorf("8 request ids sent 5 times each: count %d, sum %d, %d answered 201; want 8, 116, 8", m.Count, m.SumTenths, created.Load())
	}
}

func TestAnUnknownMovieIs422AndBadBodiesAre400(t *testing.T) {
	st := startStack(t, fastSettings())
	var e rpc.ErrorAnswer
	if code := servetest.CallJSON(t, "POST", st.ratings+"/ratings", `{"request_id":"u","movie_id":99999999,"rating_tenths":50}`, &e); code != 422 || !strings.HasPrefix(e.Error, "movie_id: ") {
		t.Errorf("unknown movie: %d %+v, want 422 naming movie_id", code, e)
	}
	for body, field := range map[string]string{
		`{"movie_id":1,"rating_tenths":50}`:                        "request_id",
		`{"request_id":"x","movie_id":0,"rating_tenths":50}`:       "movie_id",
		`{"request_id":"x","movie_id":1,"rating_tenths":9}`:        "rating_tenths",
		`{"request_id":"x","movie_id":1,"rating_tenths":101}`:      "rating_tenths",
		`{"request_id":"x","movie_id":1,"rating_tenths":50,"a":1}`: "body",
		`{"request_id":"x","movie_id":"1","rating_tenths":50}`:     "body",
		`not json`: "body",
	} {
		e = rpc.ErrorAnswer{}
		if code := servetest.CallJSON(t, "POST", st.ratings+"/ratings", body, &e); code != 400 || !strings.HasPrefix(e.Error, field+": ") {
			t.Errorf("%s: %d %q, want 400 naming %s", body, code, e.Error, field)
		}
	}
	if _, found, _ := st.store.RatedMovie(context.Background(), 1); found {
		t.Error("a rejected rating was written")
	}
}

func TestTheListShowsEveryCatalogMovieWithItsCount(t *testing.T) {
	st := startStack(t, fastSettings())
	rate(t, st.ratings, "a", 3, 60)
	var page rpc.RatedMoviesPage
	if code := servetest.CallJSON(t, "GET", st.ratings+"/rated-movies?limit=5", "", &page); code != 200 || page.Source != "catalog" || page.Total < 100 || len(page.Movies) != 5 {
		t.Fatalf("list: %d %+v", code, page)
	}
	for _, m := range page.Movies {
		want := int64(0)
		if m.MovieID == 3 {
			want = 1
		}
		if m.Count != want || m.Title == "" {
			t.Errorf("movie %d: count %d title %q, want count %d and a title", m.MovieID, m.Count, m.Title, want)
		}
	}
	if m := ratedMovie(t, st.ratings, 4); m.Count != 0 || m.Title == "" {
		t.Errorf("unrated movie 4 = %+v, want count 0 with its title from the catalog", m)
	}
	if code := servetest.CallJSON(t, "GET", st.ratings+"/rated-movies/99999999", "", nil); code != 404 {
		t.Errorf("unknown movie: %d, want 404", code)
	}
	if code := servetest.CallJSON(t, "GET", st.ratings+"/rated-movies?limit=501", "", nil); code != 400 {
		t.Errorf("limit 501: %d, want 400", code)
	}
}

func TestWhenMoviesRPCIsDownRatingsFailFastAndReadsDegrade(t *testing.T) {
	st := startStack(t, fastSettings())
	rate(t, st.ratings, "before", 5, 80)
	st.movies.Blackhole(true)

	// The first attempts wait the 200ms timeout; then the breaker opens.
	var e rpc.ErrorAnswer
	for i := range 3 {
		if code := servetest.CallJSON(t, "POST", st.ratings+"/ratings", fmt.Sprintf(`{"request_id":"down-%d","movie_id":1,"rating_tenths":50}`, i), &e); code != 503 || e.RetryAfter == nil {
			t.Fatalf("rating %d with movies-rpc down: %d %+v, want 503 with retry_after", i, code, e)
		}
	}
	began := time.Now()
	if code := servetest.CallJSON(t, "POST", st.ratings+"/ratings", `{"request_id":"fast","movie_id":1,"rating_tenths":50}`, &e); code != 503 || !strings.Contains(e.Error, "circuit breaker is open") {
		t.Errorf("with the breaker open: %d %q", code, e.Error)
	}
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Errorf("rejected rating took %v; the open breaker must fail fast", took)
	}
	if code := rate(t, st.ratings, "before", 5, 80); code != 200 {
		t.Errorf("retry of an applied rating while movies-rpc is down: %d, want 200 from the store alone", code)
	}
	if m := ratedMovie(t, st.ratings, 5); m.Count != 1 {
		t.Errorf("a rated movie is still served from the store: %+v", m)
	}
	var page rpc.RatedMoviesPage
	if code := servetest.CallJSON(t, "GET", st.ratings+"/rated-movies", "", &page); code != 200 || page.Source != "cache" || page.Total != 1 || page.Movies[0].MovieID != 5 {
		t.Errorf("list while movies-rpc is down: %d %+v, want the cached rated movies", code, page)
	}
	if _, found, _ := st.store.RatedMovie(context.Background(), 1); found {
		t.Error("a rating answered 503 was written")
	}

	// movies-rpc back: after the open timeout a probe closes the breaker.
	st.movies.Blackhole(false)
	servetest.Eventually(t, 5*time.Second, "ratings to recover after movies-rpc came back", func() error {
		if code := rate(t, st.ratings, "after", 1, 50); code != 201 {
			return fmt.Errorf("a rating answered %d, want 201", code)
		}
		return nil
	})
	var health map[string]any
	servetest.CallJSON(t, "GET", st.admin+"/healthz", "", &health)
	state := health["breakers"].(map[string]any)["movies-rpc"].(map[string]any)["state"]
	if state != "closed" {
		t.Errorf("breaker after recovery: %v, want closed", state)
	}
}

func TestAcknowledgedRatingsSurviveARestart(t *testing.T) {
	st := startStack(t, fastSettings())
	for i := range 5 {
		if code := rate(t, st.ratings, fmt.Sprintf("d-%d", i), 6, 90); code != 201 {
			t.Fatalf("rating %d: %d", i, code)
		}
	}
	reopened, err := rpc.OpenStore(st.dir, rpc.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	m, found, err := reopened.RatedMovie(context.Background(), 6)
	if err != nil || !found || m.Count != 5 || m.SumTenths != 450 {
		t.Errorf("after reopening: %+v found=%v err=%v, want count 5 sum 45", m, found, err)
	}
	if first, _, found, _ := reopened.FirstUse(context.Background(), "d-3"); !found || first.MovieID != 6 || first.Tenths != 90 || first.UserID != 7 {
		t.Errorf("the applied request id d-3 was not kept with its rating: %+v found=%v", first, found)
	}
}

func TestAdminConfigShowsBreakerSettings(t *testing.T) {
	st := startStack(t, fastSettings())
	var cfg map[string]any
	if code := servetest.CallJSON(t, "GET", st.admin+"/admin/config", "", &cfg); code != 200 {
		t.Fatalf("/admin/config: %d", code)
	}
	settings := cfg["breakers"].(map[string]any)["movies-rpc"].(map[string]any)["settings"].(map[string]any)
	if settings["timeout"] != "200ms" || settings["enabled"] != true || settings["open_timeout"] != "300ms" {
		t.Errorf("settings shown: %v", settings)
	}
}
