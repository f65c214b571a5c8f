package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/lib/duration"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

// catalogRun is a run's movie-add: the catalog it writes to, the load's
// side of it, and what happened.
type catalogRun struct {
	action *PlannedAction
	edit   *load.CatalogEdit
	db     *legacydb.DB

	mu      sync.Mutex
	added   model.Movie
	addedAt time.Time
	err     string
}

// openCatalogEdit prepares the plan's movie-add, if any, before anything
// is injected: the lab's catalog must open, and a movie id the experiment
// names must be free.
func openCatalogEdit(ctx context.Context, p *Plan, path string) (*catalogRun, error) {
	edit, action, err := p.catalogEdit()
	if err != nil || action == nil {
		return nil, err
	}
	db, err := legacydb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", action.ID, action.Action, err)
	}
	if id := action.Movie.ID; id != 0 {
		_, err := db.Movie(ctx, id)
		if err == nil {
			db.Close()
			return nil, fmt.Errorf("method[%d].movie.movie_id: movie %d is already in the catalog %s: leave movie_id out for the next free id, or pick another", action.Index, id, path)
		}
		if !errors.Is(err, legacydb.ErrNotFound) {
			db.Close()
			return nil, fmt.Errorf("%s %s: %w", action.ID, action.Action, err)
		}
	}
	return &catalogRun{action: action, edit: edit, db: db}, nil
}

func (c *catalogRun) close() {
	if c != nil {
		c.db.Close()
	}
}

// loadEdit is the load's side, nil without a movie-add.
func (c *catalogRun) loadEdit() *load.CatalogEdit {
	if c == nil {
		return nil
	}
	return c.edit
}

// apply adds the movie at its time, as `lab data movie add` does, and has
// the load rate it from the next request on. It returns when done, or
// when ctx ends first.
func (r *run) applyCatalogEdit(ctx context.Context) {
	c := r.catalog
	if c == nil || !sleepUntil(ctx, r.t0.Add(c.action.At)) {
		return
	}
	actx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	added, err := c.db.Add(actx, c.action.Movie)
	at := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.err = err.Error()
		r.eventf("apply %s %s: FAILED %v", c.action.ID, c.action.Action, err)
		return
	}
	c.added, c.addedAt = added, at
	first := c.edit.Activate(added.ID)
	r.eventf("apply %s %s: movie %d %q (%d) is in the legacy catalog; %.0f%% of the ratings from request %d on rate it",
		c.action.ID, c.action.Action, added.ID, added.Title, added.ReleaseYear, c.action.Share*100, first)
}

// catalogEdits are the journal's figures of the movie-add: for each
// variant, how it answered the ratings of the new movie, and when it first
// took one, measured from the ledger's send times.
func (r *run) catalogEdits(entries []ledger.Entry, events []journal.FaultEvent) []journal.CatalogEdit {
	c := r.catalog
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.action
	ce := journal.CatalogEdit{ID: a.ID, MovieID: c.added.ID, Title: a.Movie.Title, PlannedAt: duration.Duration(a.At),
		AddedAt: c.addedAt, RefuseUntil: duration.Duration(a.RefuseUntil), Error: c.err, Variants: []journal.CatalogConvergence{}}
	if c.addedAt.IsZero() && c.err == "" {
		ce.Error = "not added: the run ended first"
	}
	for _, v := range r.p.Variants {
		cv := journal.CatalogConvergence{Variant: v}
		var mine []ledger.Entry
		for _, e := range entries {
			if e.NewMovie && e.Variant == v {
				mine = append(mine, e)
			}
		}
		if t, ok := audit.ConvergedAt(v, mine); ok {
			cv.Converged = &t
		}
		for _, e := range mine {
			cv.Sent++
			switch e.Outcome {
			case ledger.Acknowledged:
				cv.Acknowledged++
			case ledger.Rejected:
				// Owed as the load generator judged it (422, in time), and
				// sent before convergence as the audit judges it.
				cv.Refused++
				if e.Expected != ledger.Rejected || (cv.Converged != nil && e.SentAt.After(*cv.Converged)) {
					cv.RefusedLate++
				}
			case ledger.Failed:
				cv.Failed++
			case ledger.Ambiguous:
				cv.Ambiguous++
			}
		}
		if cv.Converged != nil && !c.addedAt.IsZero() {
			cv.AfterEdit = duration.Ptr(cv.Converged.Sub(c.addedAt))
			// The first answer can come as the heal completes (a process
			// started serves before the fault API records the heal): 0.
			if heal := healOfFaultsAt(a.At, r.p.Steps, events, v); !heal.IsZero() {
				cv.AfterHeal = duration.Ptr(max(cv.Converged.Sub(heal), 0))
			}
		}
		ce.Variants = append(ce.Variants, cv)
	}
	return []journal.CatalogEdit{ce}
}

// healOfFaultsAt is when the last of the variant's faults that were active
// at offset at really healed (zero when none was).
func healOfFaultsAt(at time.Duration, steps []PlannedStep, events []journal.FaultEvent, variant string) time.Time {
	var heal time.Time
	for _, s := range steps {
		if s.Instant || s.At > at || at >= s.End() {
			continue
		}
		for _, ev := range events {
			if ev.ID == s.ID && ev.Variant == variant && ev.HealedAt.After(heal) {
				heal = ev.HealedAt
			}
		}
	}
	return heal
}
