package chaos

import (
	"fmt"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

// PlannedAction is a method step that changes the lab instead of breaking
// it: movie-add puts a movie into the legacy catalog at its time, as
// `lab data movie add` does, and the load rates it from then on.
type PlannedAction struct {
	Index int
	// ID names the action in the journal and the progress ("m2": its
	// place in the method, like a fault step's).
	ID     string
	Action string
	At     time.Duration
	Movie  model.Movie
	Share  float64
	// RefuseUntil is until when a variant may still refuse the new movie
	// (422) because the edit cannot have reached it: the end of the faults
	// active at the edit (or the edit itself), plus steady_state.recovery.
	RefuseUntil time.Duration
}

// resolveAction checks one action step: its movie as the legacy catalog
// would check it, and that it falls inside the load.
func (p *Plan) resolveAction(i int, st Step) error {
	e := p.Exp
	path := fmt.Sprintf("method[%d]", i)
	if st.Action != ActionMovieAdd {
		return e.fieldErr(path+".action", "unknown action %q (valid: %s)", st.Action, ActionMovieAdd)
	}
	for _, a := range p.Actions {
		if a.Action == ActionMovieAdd {
			return e.fieldErr(path+".action", "the method has a movie-add already (method[%d]): the load rates one new movie per run", a.Index)
		}
	}
	if st.Movie == nil {
		return e.fieldErr(path+".movie", "is required: the movie to add")
	}
	m := model.Movie{ID: st.Movie.ID, Title: st.Movie.Title, ReleaseYear: st.Movie.ReleaseYear, Country: st.Movie.Country, Genres: st.Movie.Genres}
	if err := legacydb.CheckNew(m); err != nil {
		return e.fieldErr(path+".movie."+movieField(err), "%v", err)
	}
	if m.ID >= load.UnknownMovieBase {
		return e.fieldErr(path+".movie.movie_id", "%d is among the ids the load uses for unknown movies (from %d on): pick a smaller one", m.ID, load.UnknownMovieBase)
	}
	share := st.Share
	if share == 0 {
		share = DefaultMovieAddShare
	}
	if !(share > 0 && share <= 1) {
		return e.fieldErr(path+".share", "want a fraction more than 0 and at most 1, got %v", share)
	}
	p.Actions = append(p.Actions, PlannedAction{Index: i, ID: fmt.Sprintf("m%d", i+1), Action: st.Action, At: st.At.D(), Movie: m, Share: share})
	return nil
}

// movieField names the movie field a legacy catalog error is about (its
// messages start with the field's name).
func movieField(err error) string {
	for _, f := range []string{"movie_id", "title", "release_year", "country", "genres"} {
		if strings.HasPrefix(err.Error(), f) {
			return f
		}
	}
	return "title"
}

// scheduleActions places every action inside the load, after the warmup,
// early enough that the variants can converge and the steady state be
// checked after it, and works out until when a refusal of the new movie is
// owed.
func (p *Plan) scheduleActions() error {
	e := p.Exp
	recovery := e.SteadyState.Recovery.D()
	for i := range p.Actions {
		a := &p.Actions[i]
		path := fmt.Sprintf("method[%d].at", a.Index)
		if a.At <= e.SteadyState.Warmup.D() {
			return e.fieldErr(path, "%s at %s is within the warmup (steady_state.warmup %s): the steady state must be checked before it", a.Action, a.At, e.SteadyState.Warmup)
		}
		if a.At >= p.LoadDuration {
			return e.fieldErr(path, "%s at %s is outside the load (%s): an action must happen while the load runs", a.Action, a.At, p.LoadDuration)
		}
		end := a.At
		for _, s := range p.Steps {
			if s.At <= a.At && a.At < s.End() {
				end = max(end, s.End())
			}
		}
		a.RefuseUntil = end + recovery
		if need := a.RefuseUntil + MinAfterWindow; need > p.LoadDuration {
			return e.fieldErr(path, "%s at %s: the variants may take until %s (the end of the faults active then, plus steady_state.recovery %s) to see the new movie, and the load (%s) must run %s past that to check they did: add it earlier or set load.duration to at least %s",
				a.Action, a.At, end, recovery, p.LoadDuration, MinAfterWindow, need)
		}
	}
	return nil
}

// catalogEdit is the load's side of the plan's movie-add, nil without one.
func (p *Plan) catalogEdit() (*load.CatalogEdit, *PlannedAction, error) {
	for i := range p.Actions {
		if a := &p.Actions[i]; a.Action == ActionMovieAdd {
			edit, err := load.NewCatalogEdit(a.Share, a.RefuseUntil)
			return edit, a, err
		}
	}
	return nil, nil, nil
}
