package webserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/webserver"
)

// memoryBackend is a complete in-process Backend: it applies ratings to
// count+sum per movie of a fixed catalog. fail, when set, is returned by every call.
type memoryBackend struct {
	mu      sync.Mutex
	catalog map[int64]model.Movie
	agg     map[int64]model.CountAndSum
	applied []model.Rating
	fail    error
	block   bool // every call waits for its context to end
}

func newMemoryBackend(n int) *memoryBackend {
	b := &memoryBackend{catalog: map[int64]model.Movie{}, agg: map[int64]model.CountAndSum{}}
	for i := int64(1); i <= int64(n); i++ {
		b.catalog[i] = model.Movie{ID: i, Title: "Film " + string(rune('A'+i-1)), ReleaseYear: 1990 + int(i)}
	}
	return b
}

func (b *memoryBackend) wait(ctx context.Context) error {
	if b.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return b.fail
}

func (b *memoryBackend) Rate(ctx context.Context, r model.Rating) error {
	if err := b.wait(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.catalog[r.MovieID]; !ok {
		return webserver.ErrUnknownMovie
	}
	cs := b.agg[r.MovieID]
	cs.Count++
	cs.SumTenth += r.Tenths
	b.agg[r.MovieID] = cs
	b.applied = append(b.applied, r)
	return nil
}

func (b *memoryBackend) Movies(ctx context.Context, offset, limit int) ([]model.RatedMovie, int, error) {
	if err := b.wait(ctx); err != nil {
		return nil, 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []model.RatedMovie
	for id := int64(offset + 1); id <= int64(offset+limit) && id <= int64(len(b.catalog)); id++ {
		out = append(out, model.NewRatedMovie(b.catalog[id], b.agg[id]))
	}
	return out, len(b.catalog), nil
}

func (b *memoryBackend) Movie(ctx context.Context, id int64) (model.RatedMovie, error) {
	if err := b.wait(ctx); err != nil {
		return model.RatedMovie{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.catalog[id]
	if !ok {
		return model.RatedMovie{}, webserver.ErrNotFound
	}
	return model.NewRatedMovie(m, b.agg[id]), nil
}

func (b *memoryBackend) Ready(ctx context.Context) error { return b.wait(ctx) }

func (b *memoryBackend) appliedRatings() []model.Rating {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.applied)
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, a.body)
	}
}

func do(t *testing.T, h http.Handler, method, target, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, rd))
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRateAppliesAValidRatingAndAnswersWithTheVariantsStatus(t *testing.T) {
	for _, accepted := range []int{http.StatusCreated, http.StatusAccepted} {
		b := newMemoryBackend(3)
		h := webserver.New(b, webserver.Options{Variant: "test", AcceptedStatus: accepted}, nil)

		a := do(t, h, "POST", "/api/ratings", `{"movie_id": 2, "rating": 7.5, "user_id": 42}`)
		if a.status != accepted {
			t.Fatalf("status = %d, want %d: %s", a.status, accepted, a.body)
		}
		var got webserver.RateResponse
		a.json(t, &got)
		if !uuidPattern.MatchString(got.RequestID) {
			t.Errorf("generated request_id %q is not a v4 UUID", got.RequestID)
		}
		want := []model.Rating{{RequestID: got.RequestID, MovieID: 2, Tenths: 75, UserID: 42}}
		if applied := b.appliedRatings(); !slices.Equal(applied, want) {
			t.Errorf("backend got %+v, want %+v", applied, want)
		}
	}
}

func TestRateKeepsTheClientsRequestIDAndAcceptsTheBounds(t *testing.T) {
	b := newMemoryBackend(3)
	h := webserver.New(b, webserver.Options{}, nil)
	for body, tenths := range map[string]int64{
		`{"movie_id":1,"rating":1,"request_id":"a"}`:                       10,
		`{"movie_id":1,"rating":10,"request_id":"load-7:run_2.x"}`:         100,
		`{"movie_id":1,"rating":10.0,"request_id":"z-3"}`:                  100,
		`{"movie_id":1,"rating":75e-1,"request_id":"exp"}`:                 75,
		`{"movie_id":1,"rating":3.50,"request_id":"trailing-zero"}`:        35,
		`{"movie_id":1,"rating":5,"user_id":null,"request_id":"nulluser"}`: 50,
	} {
		a := do(t, h, "POST", "/api/ratings", body)
		if a.status != http.StatusCreated {
			t.Errorf("%s: status %d, want 201: %s", body, a.status, a.body)
			continue
		}
		var got webserver.RateResponse
		a.json(t, &got)
		applied := b.appliedRatings()
		last := applied[len(applied)-1]
		if last.RequestID != got.RequestID || last.Tenths != tenths {
			t.Errorf("%s: applied %+v, answered %+v; want tenths %d", body, last, got, tenths)
		}
	}
	if n := len(b.appliedRatings()); n != 6 {
		t.Errorf("applied %d ratings, want 6", n)
	}
}

func TestRateRejectsBadInputNamingTheFieldAndWritesNothing(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"malformed JSON", `{"movie_id": 1,`, "body"},
		{"not JSON at all", `rating=5`, "body"},
		{"empty body", ``, "body"},
		{"array instead of object", `[1,2]`, "body"},
		{"null body", `null`, "body"},
		{"two objects", `{"movie_id":1,"rating":5} {"movie_id":1,"rating":5}`, "body"},
		{"movie_id missing", `{"rating": 5}`, "movie_id"},
		{"movie_id null", `{"movie_id": null, "rating": 5}`, "movie_id"},
		{"movie_id string", `{"movie_id": "1", "rating": 5}`, "movie_id"},
		{"movie_id fraction", `{"movie_id": 1.5, "rating": 5}`, "movie_id"},
		{"movie_id zero", `{"movie_id": 0, "rating": 5}`, "movie_id"},
		{"movie_id negative", `{"movie_id": -3, "rating": 5}`, "movie_id"},
		{"movie_id overflow", `{"movie_id": 99999999999999999999, "rating": 5}`, "movie_id"},
		{"rating missing", `{"movie_id": 1}`, "rating"},
		{"rating null", `{"movie_id": 1, "rating": null}`, "rating"},
		{"rating string", `{"movie_id": 1, "rating": "5"}`, "rating"},
		{"rating bool", `{"movie_id": 1, "rating": true}`, "rating"},
		{"rating object", `{"movie_id": 1, "rating": {}}`, "rating"},
		{"rating below 1", `{"movie_id": 1, "rating": 0.9}`, "rating"},
		{"rating zero", `{"movie_id": 1, "rating": 0}`, "rating"},
		{"rating negative", `{"movie_id": 1, "rating": -5}`, "rating"},
		{"rating above 10", `{"movie_id": 1, "rating": 10.1}`, "rating"},
		{"rating huge", `{"movie_id": 1, "rating": 1e308}`, "rating"},
		{"rating not finite", `{"movie_id": 1, "rating": 1e400}`, "rating"},
		{"rating two decimals", `{"movie_id": 1, "rating": 7.55}`, "rating"},
		{"rating tiny fraction", `{"movie_id": 1, "rating": 7.0000000000000001}`, "rating"},
		{"user_id string", `{"movie_id": 1, "rating": 5, "user_id": "u1"}`, "user_id"},
		{"user_id negative", `{"movie_id": 1, "rating": 5, "user_id": -1}`, "user_id"},
		{"request_id number", `{"movie_id": 1, "rating": 5, "request_id": 7}`, "request_id"},
		{"request_id empty", `{"movie_id": 1, "rating": 5, "request_id": ""}`, "request_id"},
		{"request_id too long", `{"movie_id": 1, "rating": 5, "request_id": "` + strings.Repeat("a", 129) + `"}`, "request_id"},
		{"request_id bad chars", `{"movie_id": 1, "rating": 5, "request_id": "a b/c"}`, "request_id"},
		{"unknown field", `{"movie_id": 1, "rating": 5, "stars": 3}`, "stars"},
		{"field in other case", `{"MOVIE_ID": 1, "rating": 5}`, "MOVIE_ID"},
		{"movie_id twice", `{"movie_id": 66, "movie_id": 67, "rating": 5}`, "movie_id"},
		{"rating twice", `{"movie_id": 1, "rating": 5, "rating": 5}`, "rating"},
		{"request_id twice", `{"movie_id": 1, "rating": 5, "request_id": "a", "request_id": "b"}`, "request_id"},
		{"unknown field twice", `{"movie_id": 1, "rating": 5, "x": 1, "x": 2}`, "x"},
		{"body over 64 KiB", `{"movie_id": 1, "rating": 5, "request_id": "x", "pad": "` + strings.Repeat("p", 64<<10) + `"}`, "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newMemoryBackend(3)
			h := webserver.New(b, webserver.Options{}, nil)
			a := do(t, h, "POST", "/api/ratings", tc.body)
			if a.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400: %s", a.status, a.body)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var e webserver.ErrorBody
			a.json(t, &e)
			if !strings.HasPrefix(e.Error, tc.field+": ") {
				t.Errorf("error %q does not name field %q first", e.Error, tc.field)
			}
			if n := len(b.appliedRatings()); n != 0 {
				t.Errorf("backend applied %d ratings of a rejected request", n)
			}
		})
	}
}

func TestRateOfAnUnknownMovieIs422(t *testing.T) {
	h := webserver.New(newMemoryBackend(3), webserver.Options{}, nil)
	a := do(t, h, "POST", "/api/ratings", `{"movie_id": 4, "rating": 5}`)
	if a.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422: %s", a.status, a.body)
	}
	var e webserver.ErrorBody
	a.json(t, &e)
	if !strings.HasPrefix(e.Error, "movie_id: ") || !strings.Contains(e.Error, "4") {
		t.Errorf("error %q should name movie_id and the id", e.Error)
	}
}

func TestUnavailableBackendIs503WithRetryAfter(t *testing.T) {
	b := newMemoryBackend(3)
	b.fail = &webserver.UnavailableError{Dependency: "ratings-rpc", RetryAfter: 2500 * time.Millisecond, Err: errors.New("circuit breaker is open")}
	h := webserver.New(b, webserver.Options{}, nil)
	for _, req := range [][3]string{
		{"POST", "/api/ratings", `{"movie_id": 1, "rating": 5}`},
		{"GET", "/api/movies", ""},
		{"GET", "/api/movies/1", ""},
	} {
		a := do(t, h, req[0], req[1], req[2])
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("%s %s: status %d, want 503: %s", req[0], req[1], a.status, a.body)
			continue
		}
		var e webserver.ErrorBody
		a.json(t, &e)
		if e.RetryAfter == nil || *e.RetryAfter != 2.5 || !strings.Contains(e.Error, "ratings-rpc") {
			t.Errorf("%s %s: body %s, want retry_after 2.5 and the dependency named", req[0], req[1], a.body)
		}
		if got := a.header.Get("Retry-After"); got != "3" {
			t.Errorf("%s %s: Retry-After %q, want 3 (whole seconds, rounded up)", req[0], req[1], got)
		}
	}
}

// A backend still working when the handler's timeout fires may yet record
// the rating: the answer is 504 "outcome unknown", not a failure. A read cut
// off the same way is simply unavailable (503).
func TestABackendThatHangsIsCutOffAtTheTimeout(t *testing.T) {
	b := newMemoryBackend(3)
	b.block = true
	h := webserver.New(b, webserver.Options{BackendTimeout: 50 * time.Millisecond}, nil)
	start := time.Now()
	a := do(t, h, "POST", "/api/ratings", `{"movie_id": 1, "rating": 5}`)
	if a.status != http.StatusGatewayTimeout {
		t.Fatalf("status = %d, want 504: %s", a.status, a.body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v; the 50ms timeout did not bound the request", took)
	}
	var e webserver.ErrorBody
	a.json(t, &e)
	if e.RetryAfter == nil || e.Outcome != webserver.OutcomeUnknown || !strings.Contains(e.Error, "outcome unknown") {
		t.Errorf("504 without retry_after or outcome unknown: %s", a.body)
	}
	if got := do(t, h, "GET", "/api/movies/1", ""); got.status != http.StatusServiceUnavailable {
		t.Errorf("a hanging read: %d, want 503: %s", got.status, got.body)
	}
}

// The backend decides: a dependency that certainly did not record the
// rating gives 503, one that may have gives 504.
func TestUnavailableRatingsSayWhetherTheyMayBeApplied(t *testing.T) {
	for _, c := range []struct {
		unknown bool
		status  int
	}{{false, http.StatusServiceUnavailable}, {true, http.StatusGatewayTimeout}} {
		b := newMemoryBackend(3)
		b.fail = &webserver.UnavailableError{Dependency: "ratings-rpc", RetryAfter: time.Second, Err: errors.New("no answer"), OutcomeUnknown: c.unknown}
		a := do(t, webserver.New(b, webserver.Options{}, nil), "POST", "/api/ratings", `{"movie_id": 1, "rating": 5}`)
		var e webserver.ErrorBody
		a.json(t, &e)
		if a.status != c.status || (e.Outcome == webserver.OutcomeUnknown) != c.unknown {
			t.Errorf("OutcomeUnknown %v: %d %s, want %d", c.unknown, a.status, a.body, c.status)
		}
	}
}

func TestMoviesPaging(t *testing.T) {
	b := newMemoryBackend(7)
	h := webserver.New(b, webserver.Options{}, nil)
	do(t, h, "POST", "/api/ratings", `{"movie_id": 2, "rating": 7}`)
	do(t, h, "POST", "/api/ratings", `{"movie_id": 2, "rating": 8.5}`)

	var page webserver.MoviesPage
	a := do(t, h, "GET", "/api/movies", "")
	a.json(t, &page)
	if a.status != 200 || page.Total != 7 || page.Offset != 0 || page.Limit != 50 || len(page.Movies) != 7 {
		t.Fatalf("default page: %d %s", a.status, a.body)
	}
	if m := page.Movies[1]; m.MovieID != 2 || m.Count != 2 || m.SumTenths != 155 || m.Sum != 15.5 || m.Average != 7.75 {
		t.Errorf("movie 2 = %+v, want count 2, sum 15.5, average 7.75", m)
	}

	page = webserver.MoviesPage{}
	a = do(t, h, "GET", "/api/movies?offset=5&limit=500", "")
	a.json(t, &page)
	if a.status != 200 || page.Offset != 5 || page.Limit != 500 || len(page.Movies) != 2 || page.Movies[0].MovieID != 6 {
		t.Errorf("offset 5: %d %s", a.status, a.body)
	}

	a = do(t, h, "GET", "/api/movies?offset=100", "")
	if a.status != 200 || !strings.Contains(a.body, `"movies":[]`) {
		t.Errorf("past the end: want 200 with an empty list, got %d %s", a.status, a.body)
	}

	for target, field := range map[string]string{
		"/api/movies?limit=0":                     "limit",
		"/api/movies?limit=501":                   "limit",
		"/api/movies?limit=ten":                   "limit",
		"/api/movies?limit=":                      "limit",
		"/api/movies?offset=-1":                   "offset",
		"/api/movies?offset=1.5":                  "offset",
		"/api/movies?offset=99999999999999999999": "offset",
		// url.Values would drop these and serve the default page.
		"/api/movies?offset=%zz":       "offset",
		"/api/movies?limit=5;offset=3": "query",
		"/api/movies?limit=5&limit=6":  "limit",
		"/api/movies?limt=5":           "limt",
		"/api/movies?%zz=1":            "query",
	} {
		a := do(t, h, "GET", target, "")
		var e webserver.ErrorBody
		a.json(t, &e)
		if a.status != http.StatusBadRequest || !strings.HasPrefix(e.Error, field+": ") {
			t.Errorf("%s: %d %s, want 400 naming %s", target, a.status, a.body, field)
		}
	}
}

func TestMovieByID(t *testing.T) {
	h := webserver.New(newMemoryBackend(3), webserver.Options{}, nil)
	var m model.RatedMovie
	a := do(t, h, "GET", "/api/movies/3", "")
	a.json(t, &m)
	if a.status != 200 || m.MovieID != 3 || m.Title != "Film C" || m.Count != 0 || m.Average != 0 {
		t.Errorf("movie 3: %d %s", a.status, a.body)
	}
	if a := do(t, h, "GET", "/api/movies/4", ""); a.status != http.StatusNotFound || !strings.Contains(a.body, `"error"`) {
		t.Errorf("unknown id: %d %s, want JSON 404", a.status, a.body)
	}
	for _, bad := range []string{"abc", "0", "-1", "1.5", "99999999999999999999"} {
		if a := do(t, h, "GET", "/api/movies/"+bad, ""); a.status != http.StatusBadRequest || !strings.Contains(a.body, `"id: `) {
			t.Errorf("id %q: %d %s, want 400 naming id", bad, a.status, a.body)
		}
	}
}

func TestUnknownRoutesAndMethodsAnswerJSON(t *testing.T) {
	h := webserver.New(newMemoryBackend(1), webserver.Options{}, nil)
	for _, tc := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/nope", 404},
		{"GET", "/api/ratings", 405},
		{"DELETE", "/api/movies/1", 405},
		{"PUT", "/api/movies", 405},
	} {
		a := do(t, h, tc.method, tc.target, "")
		var e webserver.ErrorBody
		a.json(t, &e)
		if a.status != tc.status || e.Error == "" {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", tc.method, tc.target, a.status, a.body, tc.status)
		}
	}
}

func TestPageListsMoviesWithCountAndAverageAndHasTheForm(t *testing.T) {
	b := newMemoryBackend(3)
	h := webserver.New(b, webserver.Options{Variant: "rpc"}, nil)
	do(t, h, "POST", "/api/ratings", `{"movie_id": 1, "rating": 9}`)
	do(t, h, "POST", "/api/ratings", `{"movie_id": 1, "rating": 6.5}`)

	a := do(t, h, "GET", "/", "")
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", a.status, a.header.Get("Content-Type"))
	}
	for _, want := range []string{
		"<title>Ratings Lab — rpc</title>",
		`id="movie-1"`, "Film A", "Film C",
		`<td class="num count">2</td><td class="num average">7.75</td>`,
		`id="rate-form"`, `fetch("/api/ratings"`,
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestPageExplainsAnUnavailableBackend(t *testing.T) {
	b := newMemoryBackend(3)
	b.fail = &webserver.UnavailableError{Dependency: "ratings-rpc", Err: errors.New("connection refused")}
	a := do(t, webserver.New(b, webserver.Options{}, nil), "GET", "/", "")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "ratings-rpc unavailable") {
		t.Errorf("page with backend down: %d, want 503 naming the dependency", a.status)
	}
}

func TestPatternsAreRouteLabels(t *testing.T) {
	// services/lib/serve labels metrics with the matched pattern; ids must not leak into it.
	h := webserver.New(newMemoryBackend(1), webserver.Options{}, nil)
	mux, ok := h.(*http.ServeMux)
	if !ok {
		t.Fatalf("New returns %T, want *http.ServeMux", h)
	}
	for target, want := range map[string]string{
		"/api/movies/123": "GET /api/movies/{id}",
		"/api/movies":     "GET /api/movies",
		"/":               "GET /{$}",
		"/favicon.ico":    "/",
	} {
		if _, pattern := mux.Handler(httptest.NewRequest("GET", target, nil)); pattern != want {
			t.Errorf("GET %s: pattern %q, want %q", target, pattern, want)
		}
	}
}
