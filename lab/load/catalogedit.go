package load

import (
	"fmt"
	"sync"
	"time"
)

// CatalogEdit has the load rate a movie added to the catalog while the run
// goes on (an experiment's movie-add action), and says which answer each
// variant owes such a rating.
//
// Until the edit is applied no request changes. Once Activate is called, a
// deterministic Share of the valid ratings from then on rate the new movie
// instead of their own. The switch is made per sequence number, under one
// lock, so request seq is the same request on every variant: every seq a
// variant asked for before Activate keeps its movie, every later one is
// chosen by seq alone.
//
// The expected answer to a rating of the new movie is 2xx, with one
// exception: a variant may refuse it (422, unknown movie) while the edit
// cannot have reached it yet, that is, when it was sent before the variant
// answered any rating of the movie with a 2xx, and before RefuseUntil (the
// end of the faults active at the edit plus the recovery the experiment
// allows). The answer, not the send, of the first 2xx is where the variant
// is known to have seen the movie: a request sent earlier may have been
// checked later, so a rating sent between the two may still be refused
// honestly. A refusal sent after either is a failure. The audit checks the
// first condition again on the whole ledger, so answers arriving out of
// order cannot hide a refusal after convergence.
type CatalogEdit struct {
	// Share of valid ratings sent after the edit that rate the new movie,
	// in (0, 1].
	Share float64
	// RefuseUntil is when refusals stop being expected, as an offset from
	// the start of the load.
	RefuseUntil time.Duration

	mu       sync.Mutex
	start    time.Time
	asked    bool
	maxAsked uint64
	active   bool
	cutoff   uint64
	movieID  int64
	// acked is, per variant, the earliest answer time of an acknowledged
	// rating of the new movie seen so far: where the variant converged.
	acked map[string]time.Time
}

// NewCatalogEdit checks the share and returns an edit waiting for Activate.
func NewCatalogEdit(share float64, refuseUntil time.Duration) (*CatalogEdit, error) {
	if !(share > 0 && share <= 1) {
		return nil, fmt.Errorf("share %v: want a fraction of the ratings in (0, 1]", share)
	}
	if refuseUntil <= 0 {
		return nil, fmt.Errorf("refuse-until %s: must be after the start of the load", refuseUntil)
	}
	return &CatalogEdit{Share: share, RefuseUntil: refuseUntil, acked: map[string]time.Time{}}, nil
}

// Activate starts rating movieID: the edit was applied. It returns the
// first sequence number that may rate it. Later calls change nothing.
func (c *CatalogEdit) Activate(movieID int64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		c.active, c.movieID = true, movieID
		c.cutoff = 0
		if c.asked {
			c.cutoff = c.maxAsked + 1
		}
	}
	return c.cutoff
}

// MovieID is the new movie's id, 0 before Activate.
func (c *CatalogEdit) MovieID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.movieID
}

// begin records the start of the load (RefuseUntil's zero).
func (c *CatalogEdit) begin(start time.Time) {
	c.mu.Lock()
	c.start = start
	c.mu.Unlock()
}

// rewrite makes request seq rate the new movie when the edit is active and
// seq is chosen.
func (c *CatalogEdit) rewrite(seq uint64, r *Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.asked || seq > c.maxAsked {
		c.asked, c.maxAsked = true, seq
	}
	if !c.active || seq < c.cutoff || r.Kind != KindRating || r.Unknown {
		return
	}
	// The request's own stream is the generator's; a separate mix of seq
	// picks the share, so the choice does not correlate with the rating.
	if float64(fmix32(uint32(seq)^0x5bd1e995))/4294967296.0 < c.Share {
		r.MovieID, r.NewMovie = c.movieID, true
	}
}

// expect is the answer a correct variant owes a rating of the new movie
// that ended with outcome (HTTP status), sent at sentAt and answered
// latency later; it also records where the variant converged. Only "unknown
// movie" (422) is a refusal a variant can owe: any other 4xx is a failure.
func (c *CatalogEdit) expect(variant string, outcome Outcome, status int, sentAt time.Time, latency time.Duration) Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	first, converged := c.acked[variant]
	if outcome == Acknowledged {
		if answered := sentAt.Add(latency); !converged || answered.Before(first) {
			c.acked[variant] = answered
		}
		return Acknowledged
	}
	if outcome == Rejected && status == StatusUnknownMovie && (!converged || !sentAt.After(first)) && sentAt.Before(c.start.Add(c.RefuseUntil)) {
		return Rejected // the variant cannot have seen the movie yet
	}
	return Acknowledged
}

// StatusUnknownMovie is the webservers' answer to a rating of a movie they
// do not know (docs/api.md).
const StatusUnknownMovie = 422

// editSource rates the new movie in place of some of the inner source's
// ratings.
type editSource struct {
	inner Source
	edit  *CatalogEdit
}

func (s editSource) Request(seq uint64) (Request, bool) {
	r, ok := s.inner.Request(seq)
	if ok {
		s.edit.rewrite(seq, &r)
	}
	return r, ok
}
