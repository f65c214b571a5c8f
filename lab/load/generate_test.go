package load

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ratingslab/lab/loadtests"
)

var update = flag.Bool("update", false, "rewrite loadtests/fixtures/sequences.json from the Go generator")

func shipped(t testing.TB, name string) *Scenario {
	t.Helper()
	s, err := FindScenario(name, nil, loadtests.Scenarios())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSameSeedSameRequestsDifferentSeedDifferentRequests(t *testing.T) {
	s := shipped(t, "steady")
	a, _ := NewGenerator(s)
	b, _ := NewGenerator(s)
	other := *s
	other.Seed++
	c, _ := NewGenerator(&other)
	differ := 0
	for i := uint64(0); i < 2000; i++ {
		ra, _ := a.Request(i)
		rb, _ := b.Request(i)
		rc, _ := c.Request(i)
		if ra != rb {
			t.Fatalf("request %d: same seed gave %+v and %+v", i, ra, rb)
		}
		if ra != rc {
			differ++
		}
	}
	if differ < 1800 {
		t.Errorf("another seed should give another sequence; only %d of 2000 requests differ", differ)
	}
	// Any order, any goroutine: request i does not depend on requests before it.
	late, _ := a.Request(1999)
	fresh, _ := NewGenerator(s)
	if r, _ := fresh.Request(1999); r != late {
		t.Errorf("request 1999 depends on what was generated before: %+v vs %+v", r, late)
	}
}

func TestGeneratorFollowsTheScenarioDistributions(t *testing.T) {
	s := shipped(t, "steady")
	s.Movies.UnknownFraction = 0.1
	g, _ := NewGenerator(s)
	const n = 100000
	kinds := map[Kind]int{}
	unknown, movieReqs := 0, 0
	movieHits := map[int64]int{}
	for i := uint64(0); i < n; i++ {
		r, _ := g.Request(i)
		kinds[r.Kind]++
		switch r.Kind {
		case KindRating:
			if r.Tenths < 10 || r.Tenths > 100 {
				t.Fatalf("request %d: rating %d tenths outside 1..10", i, r.Tenths)
			}
			if r.UserID < s.Users.MinID || r.UserID > s.Users.MaxID {
				t.Fatalf("request %d: user %d outside the range", i, r.UserID)
			}
			fallthrough
		case KindMovie:
			movieReqs++
			if r.Unknown {
				unknown++
				if r.MovieID < UnknownMovieBase {
					t.Fatalf("request %d: unknown movie with catalog id %d", i, r.MovieID)
				}
			} else {
				if r.MovieID < s.Movies.MinID || r.MovieID > s.Movies.MaxID {
					t.Fatalf("request %d: movie %d outside the catalog", i, r.MovieID)
				}
				movieHits[r.MovieID]++
			}
		case KindList:
			if r.Offset%r.Limit != 0 || r.Offset < 0 || int64(r.Offset) >= s.Movies.MaxID {
				t.Fatalf("request %d: page offset %d limit %d", i, r.Offset, r.Limit)
			}
		}
	}
	near := func(what string, got, want, tol float64) {
		if math.Abs(got-want) > tol {
			t.Errorf("%s: got %.4f, want %.4f ± %.4f", what, got, want, tol)
		}
	}
	near("rating share", float64(kinds[KindRating])/n, 0.6, 0.01)
	near("movie share", float64(kinds[KindMovie])/n, 0.3, 0.01)
	near("list share", float64(kinds[KindList])/n, 0.1, 0.01)
	near("unknown share", float64(unknown)/float64(movieReqs), 0.1, 0.01)
	// zipf s=1 over 100 movies: movie 1 takes 1/H(100) ≈ 19.3 %, movie 2 half that.
	known := float64(movieReqs - unknown)
	near("zipf rank 1", float64(movieHits[1])/known, 0.1928, 0.01)
	near("zipf rank 2", float64(movieHits[2])/known, 0.0964, 0.01)
}

func TestRatingDistributions(t *testing.T) {
	base := shipped(t, "smoke")
	count := func(r Ratings) map[int64]int {
		s := *base
		s.Mix = Mix{Rating: 1}
		s.Ratings = r
		g, err := NewGenerator(&s)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]int{}
		for i := uint64(0); i < 20000; i++ {
			req, _ := g.Request(i)
			out[req.Tenths]++
		}
		return out
	}
	whole := count(Ratings{Distribution: "uniform", Min: 1, Max: 10})
	if len(whole) != 10 {
		t.Errorf("uniform whole ratings: want the 10 values 1..10, got %v", whole)
	}
	tenths := count(Ratings{Distribution: "uniform", Min: 1, Max: 10, Decimals: 1})
	if len(tenths) != 91 {
		t.Errorf("uniform with one decimal: want 91 values 1.0..10.0, got %d", len(tenths))
	}
	w := count(Ratings{Distribution: "weighted", Min: 1, Max: 10, Weights: map[string]float64{"2": 1, "9": 3}})
	if len(w) != 2 || math.Abs(float64(w[90])/20000-0.75) > 0.02 {
		t.Errorf("weighted 2:1, 9:3 — want 75%% nines, got %v", w)
	}
	nrm := count(Ratings{Distribution: "normal", Min: 1, Max: 10, Decimals: 1, Mean: 7, StdDev: 1})
	sum, n := 0.0, 0
	for v, c := range nrm {
		if v < 10 || v > 100 {
			t.Errorf("normal: value %d tenths outside the clamp", v)
		}
		sum += float64(v*int64(c)) / 10
		n += c
	}
	if mean := sum / float64(n); math.Abs(mean-7) > 0.05 {
		t.Errorf("normal mean 7: got %.3f", mean)
	}
}

func TestRatingBodyIsTheAPIShape(t *testing.T) {
	r := Request{Kind: KindRating, MovieID: 12, UserID: 7, Tenths: 75}
	body := appendRatingBody(nil, r, RequestID("run1", "rpc", 3))
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	want := map[string]any{"request_id": "run1-rpc-3", "movie_id": 12.0, "user_id": 7.0, "rating": 7.5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body %s, want %v", body, want)
	}
	if FormatTenths(100) != "10" || FormatTenths(15) != "1.5" {
		t.Error("FormatTenths")
	}
}

// sequenceFixture pins the generator: loadtests/lib/generator.js must
// produce the same numbers (loadtests/check-lib.mjs compares them), so
// k6 and lab load send the same requests for the same scenario and seed.
type sequenceFixture struct {
	About     string                `json:"about"`
	Columns   []string              `json:"columns"`
	Draws     []drawFixture         `json:"draws"`
	Sequences map[string][][7]int64 `json:"sequences"`
}

type drawFixture struct {
	Seed   uint32   `json:"seed"`
	Index  uint32   `json:"index"`
	Values []uint32 `json:"values"`
}

const fixtureLen = 300

func buildSequenceFixture(t *testing.T) sequenceFixture {
	f := sequenceFixture{
		About:     "First requests of each shipped scenario, from lab/load's generator (go test ./lab/load -run Fixture -update). loadtests/check-lib.mjs checks the JS generator against it.",
		Columns:   []string{"kind(0 rating,1 movie,2 list)", "movie_id", "user_id", "rating_tenths", "offset", "limit", "unknown(0/1)"},
		Sequences: map[string][][7]int64{},
	}
	for _, p := range []struct{ seed, index uint32 }{{0, 0}, {42, 0}, {42, 1}, {4294967295, 4294967295}, {7, 123456}} {
		d := requestDraws(p.seed, p.index)
		df := drawFixture{Seed: p.seed, Index: p.index}
		for range 4 {
			df.Values = append(df.Values, d.next())
		}
		f.Draws = append(f.Draws, df)
	}
	names, _ := ListScenarios(loadtests.Scenarios())
	for _, n := range names {
		g, err := NewGenerator(shipped(t, n))
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(0); i < fixtureLen; i++ {
			r, _ := g.Request(i)
			unknown := int64(0)
			if r.Unknown {
				unknown = 1
			}
			f.Sequences[n] = append(f.Sequences[n], [7]int64{int64(r.Kind), r.MovieID, r.UserID, r.Tenths, int64(r.Offset), int64(r.Limit), unknown})
		}
	}
	return f
}

func TestSequenceFixtureMatchesTheGenerator(t *testing.T) {
	path := filepath.Join("..", "..", "loadtests", "fixtures", "sequences.json")
	want := buildSequenceFixture(t)
	if *update {
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var got sequenceFixture
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s is stale or the generator changed; a changed generator changes every seeded run — if intended, rerun with -update and check loadtests/lib/generator.js", path)
	}
}
