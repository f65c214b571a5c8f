package rpc_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
	moviesrpc "github.com/ratingslab/lab/services/movies/rpc"
	ratingsrpc "github.com/ratingslab/lab/services/ratings/rpc"
	"github.com/ratingslab/lab/services/webserver"
	"github.com/ratingslab/lab/services/webserver/rpc"
)

type chain struct {
	web     string
	admin   string // webserver-rpc's admin listener
	movies  *servetest.Edge
	ratings *servetest.Edge
	store   *ratingsrpc.Store
	reg     *prometheus.Registry
}

// startChain runs the whole RPC variant on real ports: movies-rpc over a
// seeded legacy catalog, ratings-rpc with its SQLite store, webserver-rpc.
func startChain(t *testing.T, breakersOn bool) *chain {
	t.Helper()
	db, _, err := legacydb.Create(filepath.Join(t.TempDir(), "movies.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	movies := servetest.NewEdge(t, servetest.Start(t, moviesrpc.NewServer(db, prometheus.NewRegistry(), nil)))

	store, err := ratingsrpc.OpenStore(t.TempDir(), ratingsrpc.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ms := quick(ratingsrpc.DefaultMoviesSettings(), breakersOn, 200*time.Millisecond)
	ratingsSrv, err := ratingsrpc.NewServer(store, ratingsrpc.MoviesUpstream(movies.URL, ms), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ratings := servetest.NewEdge(t, servetest.Start(t, ratingsSrv))

	rs := quick(rpc.DefaultRatingsSettings(), breakersOn, 500*time.Millisecond)
	reg := prometheus.NewRegistry()
	webSrv, err := rpc.NewServer(rpc.RatingsUpstream(ratings.URL, rs), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	web, admin := servetest.StartBoth(t, webSrv)
	return &chain{web: web, admin: admin, movies: movies, ratings: ratings, store: store, reg: reg}
}

// quick makes s open and probe fast enough for a test: 3 failures open the
// breaker, which probes once after 300ms.
func quick(s breaker.Settings, enabled bool, timeout time.Duration) breaker.Settings {
	s.Enabled = enabled
	s.Timeout = timeout
	s.ConsecutiveFailures = 3
	s.OpenTimeout = 300 * time.Millisecond
	s.HalfOpenRequests = 1
	return s
}

func TestAUserRatesAMovieThroughTheWholeChain(t *testing.T) {
	c := startChain(t, true)

	var ack webserver.RateResponse
	code := servetest.CallJSON(t, "POST", c.web+"/api/ratings", `{"movie_id": 1, "rating": 7.5, "request_id": "user-1"}`, &ack)
	if code != http.StatusCreated || ack.RequestID != "user-1" {
		t.Fatalf("POST /api/ratings: %d %+v, want 201 echoing the request id", code, ack)
	}
	code = servetest.CallJSON(t, "POST", c.web+"/api/ratings", `{"movie_id": 1, "rating": 7.5, "request_id": "user-1"}`, &ack)
	if code != http.StatusCreated || ack.RequestID != "user-1" || ack.MovieID != 1 {
		t.Errorf("retry of user-1: %d %+v, want the original answer, 201 (idempotent)", code, ack)
	}
	var conflict webserver.ErrorBody
	code = servetest.CallJSON(t, "POST", c.web+"/api/ratings", `{"movie_id": 2, "rating": 7.5, "request_id": "user-1"}`, &conflict)
	if code != http.StatusConflict || !strings.Contains(conflict.Error, `request_id: "user-1" already names another rating (movie 1, rating 7.5, user 0`) {
		t.Errorf("user-1 reused for movie 2: %d %+v, want 409 naming the first use", code, conflict)
	}
	servetest.CallJSON(t, "POST", c.web+"/api/ratings", `{"movie_id": 1, "rating": 10}`, nil)

	var m model.RatedMovie
	if code := servetest.CallJSON(t, "GET", c.web+"/api/movies/1", "", &m); code != 200 || m.Count != 2 || m.SumTenths != 175 || m.Average != 8.75 || m.Title == "" {
		t.Errorf("GET /api/movies/1: %d %+v, want 2 ratings averaging 8.75 (the retry applied once)", code, m)
	}
	var page webserver.MoviesPage
	if code := servetest.CallJSON(t, "GET", c.web+"/api/movies?limit=3", "", &page); code != 200 || page.Total < 100 || len(page.Movies) != 3 || page.Movies[0].Count != 2 {
		t.Errorf("GET /api/movies: %d %+v", code, page)
	}
	var e webserver.ErrorBody
	if code := servetest.CallJSON(t, "POST", c.web+"/api/ratings", `{"movie_id": 99999999, "rating": 5}`, &e); code != 422 || !strings.HasPrefix(e.Error, "movie_id: ") {
		t.Errorf("unknown movie: %d %+v, want 422", code, e)
	}
	if code := servetest.CallJSON(t, "GET", c.web+"/api/movies/99999999", "", &e); code != 404 {
		t.Errorf("GET unknown movie: %d, want 404", code)
	}

	res, err := http.Get(c.web + "/")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(html), `<td class="num count">2</td><td class="num average">8.75</td>`) ||
		!strings.Contains(string(html), "rpc variant") {
		t.Errorf("page: %d, want the movie list with movie 1's count and average", res.StatusCode)
	}
}

// With movies-rpc dead, ratings-rpc's breaker to it opens and ratings fail
// fast; ratings-rpc passes the 503 on, marked, so webserver-rpc's breakers
// to ratings-rpc stay closed and reads go on (from ratings-rpc's store and
// cache) — the containment the per-operation breakers exist for.
func TestWithBreakersOnADeadMoviesRPCFailsWritesFastAndKeepsReads(t *testing.T) {
	c := startChain(t, true)
	if code := servetest.CallJSON(t, "POST", c.web+"/api/ratings", `{"movie_id": 1, "rating": 5, "request_id": "before"}`, nil); code != 201 {
		t.Fatalf("rating before the fault: %d", code)
	}
	c.movies.Blackhole(true)

	// Until ratings-rpc's breaker opens, each rating waits its 200ms timeout.
	var e webserver.ErrorBody
	for i := range 3 {
		a := servetest.Call(t, "POST", c.web+"/api/ratings", fmt.Sprintf(`{"movie_id": 1, "rating": 5, "request_id": "slow-%d"}`, i))
		if a.Decode(t, &e); a.Status != 503 || e.RetryAfter == nil || a.Header.Get("Retry-After") == "" {
			t.Fatalf("rating %d: %d %+v, want 503 with retry_after", i, a.Status, e)
		}
	}
	began := time.Now()
	for i := range 20 {
		if code := servetest.CallJSON(t, "POST", c.web+"/api/ratings", fmt.Sprintf(`{"movie_id": 1, "rating": 5, "request_id": "fast-%d"}`, i), &e); code != 503 {
			t.Fatalf("rating with the breaker open: %d", code)
		}
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("20 ratings with ratings-rpc's breaker open took %v; they must fail fast", took)
	}
	var mv model.RatedMovie
	if code := servetest.CallJSON(t, "GET", c.web+"/api/movies/1", "", &mv); code != 200 || mv.Count != 1 {
		t.Errorf("a rated movie while movies-rpc is down: %d %+v, want 200 from ratings-rpc's store", code, mv)
	}
	var page webserver.MoviesPage
	if code := servetest.CallJSON(t, "GET", c.web+"/api/movies", "", &page); code != 200 || len(page.Movies) != 1 {
		t.Errorf("the list while movies-rpc is down: %d %+v, want 200 with the rated movie (ratings-rpc's cache)", code, page)
	}
	m := servetest.Metrics(t, c.reg)
	for _, want := range []string{
		`lab_breaker_state{dependency="ratings-rpc",operation="read"} 0`,
		`lab_breaker_state{dependency="ratings-rpc",operation="write"} 0`,
		`lab_dependency_calls_total{dependency="ratings-rpc",operation="write",result="passed_on"} 23`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s (ratings-rpc's passed-on 503s must not trip webserver-rpc's breakers):\n%s", want, grep(m, "lab_breaker_state", "lab_dependency_calls_total"))
		}
	}

	c.movies.Blackhole(false)
	servetest.Eventually(t, 5*time.Second, "ratings accepted again", func() error {
		if code := servetest.CallJSON(t, "POST", c.web+"/api/ratings", `{"movie_id": 1, "rating": 5, "request_id": "back"}`, nil); code != 201 {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
	if servetest.CallJSON(t, "GET", c.web+"/api/movies/1", "", &mv); mv.Count != 2 {
		t.Errorf("movie 1 count %d, want 2: only the ratings before and after the fault were applied", mv.Count)
	}
}

// A 503 ratings-rpc answers for itself (it is failing, not passing on)
// opens webserver-rpc's breaker for that operation only.
func TestRatingsRPCsOwnFailuresOpenOnlyTheFailingOperationsBreaker(t *testing.T) {
	c := startChain(t, true)
	c.ratings.Blackhole(true)
	for i := range 4 {
		servetest.CallJSON(t, "POST", c.web+"/api/ratings", fmt.Sprintf(`{"movie_id": 1, "rating": 5, "request_id": "w-%d"}`, i), nil)
	}
	m := servetest.Metrics(t, c.reg)
	if !strings.Contains(m, `lab_breaker_state{dependency="ratings-rpc",operation="write"} 2`) || !strings.Contains(m, `lab_breaker_state{dependency="ratings-rpc",operation="read"} 0`) {
		t.Errorf("after failed writes, want the write breaker open and the read breaker closed:\n%s", grep(m, "lab_breaker_state"))
	}
	var h map[string]any
	if code := servetest.CallJSON(t, "GET", c.admin+"/healthz", "", &h); code != 200 || !strings.Contains(fmt.Sprint(h["warning"]), "open for writes") {
		t.Errorf("healthz with the write breaker open: %d %v, want 200 with a warning", code, h)
	}
}

func TestWithBreakersOffEveryRatingWaitsTheFullTimeout(t *testing.T) {
	c := startChain(t, false)
	c.movies.Blackhole(true)
	for i := range 6 {
		began := time.Now()
		code := servetest.CallJSON(t, "POST", c.web+"/api/ratings", fmt.Sprintf(`{"movie_id": 1, "rating": 5, "request_id": "naked-%d"}`, i), nil)
		took := time.Since(began)
		if code != 503 {
			t.Errorf("rating %d: %d, want 503", i, code)
		}
		if took < 200*time.Millisecond {
			t.Errorf("rating %d took %v; with breakers off every call waits the 200ms timeout", i, took)
		}
	}
	m := servetest.Metrics(t, c.reg)
	if !strings.Contains(m, `lab_dependency_calls_total{dependency="ratings-rpc",operation="write",result="rejected"} 0`) ||
		!strings.Contains(m, `lab_dependency_calls_total{dependency="ratings-rpc",operation="write",result="passed_on"} 6`) ||
		!strings.Contains(m, `lab_breaker_state{dependency="ratings-rpc",operation="write"} -1`) {
		t.Errorf("metrics with breakers off:\n%s", grep(m, "lab_dependency_calls_total", "lab_breaker_state"))
	}
}

// A rating that reached ratings-rpc and got no answer within the timeout
// may be applied: webserver-rpc answers 504 "outcome unknown", never a 503
// that would call it failed (docs/api.md). One refused before it left (the
// open breaker) stays a definite 503.
func TestARatingWithoutAnAnswerHasAnUnknownOutcome(t *testing.T) {
	c := startChain(t, true)
	c.ratings.Blackhole(true)
	var e webserver.ErrorBody
	a := servetest.Call(t, "POST", c.web+"/api/ratings", `{"movie_id": 1, "rating": 5, "request_id": "lost-answer"}`)
	if a.Decode(t, &e); a.Status != http.StatusGatewayTimeout || e.Outcome != webserver.OutcomeUnknown || e.RetryAfter == nil {
		t.Fatalf("rating with ratings-rpc silent: %d %s, want 504 with outcome unknown", a.Status, a.Body)
	}
	for i := range 5 { // open the breaker
		servetest.CallJSON(t, "POST", c.web+"/api/ratings", fmt.Sprintf(`{"movie_id": 1, "rating": 5, "request_id": "more-%d"}`, i), nil)
	}
	a = servetest.Call(t, "POST", c.web+"/api/ratings", `{"movie_id": 1, "rating": 5, "request_id": "refused"}`)
	e = webserver.ErrorBody{}
	if a.Decode(t, &e); a.Status != http.StatusServiceUnavailable || e.Outcome != "" {
		t.Errorf("rating refused by the open breaker: %d %s, want a definite 503", a.Status, a.Body)
	}
}

func TestHealthAndConfigShowTheBreakerSettings(t *testing.T) {
	c := startChain(t, true)
	var h map[string]any
	if code := servetest.CallJSON(t, "GET", c.admin+"/healthz", "", &h); code != 200 || h["status"] != "ok" {
		t.Fatalf("/healthz: %d %v", code, h)
	}
	dep := h["breakers"].(map[string]any)["ratings-rpc"].(map[string]any)
	if dep["state"] != "closed" || dep["settings"].(map[string]any)["timeout"] != "500ms" {
		t.Errorf("/healthz breakers: %v", dep)
	}
	var cfg map[string]any
	if code := servetest.CallJSON(t, "GET", c.admin+"/admin/config", "", &cfg); code != 200 || cfg["breakers"] == nil {
		t.Errorf("/admin/config: %d %v", code, cfg)
	}
}

func TestEveryLabMetricPassesPromlint(t *testing.T) {
	c := startChain(t, true)
	servetest.CallJSON(t, "GET", c.web+"/api/movies/1", "", nil)
	servetest.LintLabMetrics(t, c.reg)
	m := servetest.Metrics(t, c.reg)
	for _, name := range []string{"lab_http_requests_total", "lab_http_request_duration_seconds", "lab_breaker_state",
		"lab_dependency_calls_total", "lab_dependency_call_duration_seconds"} {
		if !strings.Contains(m, name) {
			t.Errorf("webserver-rpc lacks %s", name)
		}
	}
	if !strings.Contains(m, `lab_http_requests_total{code="200",method="GET",route="/api/movies/{id}"} 1`) {
		t.Error("the public route is not labelled by its pattern")
	}
}

func grep(text string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
