package chaos

import (
	"strings"
	"testing"
	"time"
)

const movieAdd = `  - action: movie-add
    at: 7s
    movie: {title: The Lab Movie, release_year: 2026, genres: [Drama]}
`

// A movie-add in the middle of a fault is owed refusals until the fault
// heals plus the recovery; its movie is checked as the catalog would.
func TestMovieAddIsPlannedWithItsRefusalWindow(t *testing.T) {
	e, err := Parse([]byte(goodExperiment+movieAdd), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Validate(e, defaultLab(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 1 || len(p.Actions) != 1 {
		t.Fatalf("want 1 fault step and 1 action, got %d and %d", len(p.Steps), len(p.Actions))
	}
	a := p.Actions[0]
	if a.ID != "m2" || a.At != 7*time.Second || a.Movie.Title != "The Lab Movie" || a.Movie.ReleaseYear != 2026 || a.Share != DefaultMovieAddShare {
		t.Errorf("action: %+v", a)
	}
	// movies-outage runs 5s..10s, steady_state.recovery is 10s by default.
	if a.RefuseUntil != 20*time.Second {
		t.Errorf("refuse until %s, want 20s (the fault's end + recovery)", a.RefuseUntil)
	}
	// After every fault: from the edit itself.
	e, _ = Parse([]byte(goodExperiment+strings.Replace(movieAdd, "at: 7s", "at: 12s", 1)), "x.yaml")
	if p, err = Validate(e, defaultLab(t), nil); err != nil || p.Actions[0].RefuseUntil != 22*time.Second {
		t.Errorf("an edit after the faults: %v, %+v", err, p)
	}
}

// Bad actions are refused before anything runs, naming the field and line.
func TestMovieAddErrorsNameTheFieldAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown action", "action: movie-add", "action: movie-delete", `x.yaml:13: method[1].action: unknown action "movie-delete" (valid: movie-add)`},
		{"no movie", "    movie: {title: The Lab Movie, release_year: 2026, genres: [Drama]}\n", "", "x.yaml:13: method[1].movie: is required"},
		{"no title", "title: The Lab Movie, ", "", "x.yaml:15: method[1].movie.title: is required"},
		{"empty title", "title: The Lab Movie", "title: ' '", "method[1].movie.title: title must not be empty"},
		{"year out of range", "release_year: 2026", "release_year: 1600", "x.yaml:15: method[1].movie.release_year: release_year 1600 is out of range"},
		{"year not a number", "release_year: 2026", "release_year: soon", `method[1].movie.release_year: want a year such as 1975, got "soon"`},
		{"bad genre", "genres: [Drama]", "genres: ['Drama|Crime']", "method[1].movie.genres: genres: genre \"Drama|Crime\" must not contain '|'"},
		{"bad id", "title: The Lab Movie", "movie_id: -3, title: The Lab Movie", "method[1].movie.movie_id: want a positive movie id"},
		{"id of the unknown movies", "title: The Lab Movie", "movie_id: 900001, title: The Lab Movie", "method[1].movie.movie_id: 900001 is among the ids the load uses for unknown movies"},
		{"unknown movie field", "genres: [Drama]", "genres: [Drama], director: X", "method[1].movie.director: unknown field (valid: movie_id, title, release_year, country, genres)"},
		{"fault fields on an action", "    at: 7s\n", "    at: 7s\n    for: 5s\n", "x.yaml:15: method[1].for: unknown field (valid: action, at, movie, share)"},
		{"share out of range", "    at: 7s\n", "    at: 7s\n    share: 1.5\n", "x.yaml:15: method[1].share: want the fraction of ratings after the edit that rate the new movie"},
		{"no at", "    at: 7s\n", "", "x.yaml:13: method[1].at: is required"},
		{"within the warmup", "at: 7s", "at: 1s", "x.yaml:14: method[1].at: movie-add at 1s is within the warmup"},
		{"after the load", "at: 7s", "at: 40s", "x.yaml:14: method[1].at: movie-add at 40s is outside the load (30s)"},
		{"too late to converge", "at: 7s", "at: 25s", "x.yaml:14: method[1].at: movie-add at 25s: the variants may take until 25s (the end of the faults active then, plus steady_state.recovery 10s) to see the new movie"},
		{"two movie-adds", "genres: [Drama]}\n", "genres: [Drama]}\n" + movieAdd, "method[2].action: the method has a movie-add already (method[1])"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantEditRefused(t, goodExperiment+movieAdd, tc.old, tc.new, tc.want) })
	}
	// A method of actions only has nothing to compare.
	src := strings.Replace(goodExperiment, "  - fault: movies-outage\n    at: 5s\n    for: 5s\n", movieAdd, 1)
	e, err := Parse([]byte(src), "x.yaml")
	if err == nil {
		_, err = Validate(e, defaultLab(t), nil)
	}
	if err == nil || !strings.Contains(err.Error(), "method: has no fault") {
		t.Fatalf("actions only: %v", err)
	}
	// --set reaches an action's fields like a fault's.
	e, err = ParseWith([]byte(goodExperiment+movieAdd), "x.yaml", []Override{{Path: "method[1].movie.release_year", Value: "1500"}})
	if err == nil {
		_, err = Validate(e, defaultLab(t), nil)
	}
	if err == nil || !strings.Contains(err.Error(), "--set method[1].movie.release_year=1500") {
		t.Fatalf("--set of a bad year: %v", err)
	}
}
