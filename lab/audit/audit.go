package audit

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/model"
)

// movieLedger is what the ledger says was sent to one movie of one variant.
type movieLedger struct {
	acked     []int64 // tenths of acknowledged ratings
	ambiguous []int64 // tenths of ratings that got no answer
	// reached: ratings the variant received and answered with an error or
	// a rejection. Applying one is a phantom.
	reached []int64
	// retried: a rating of this movie was sent more than once.
	retried bool
}

// tally sorts each list ascending so that prefix sums give the cheapest
// and suffix sums the dearest choice of k ratings.
func (m *movieLedger) sort() {
	for _, l := range [][]int64{m.acked, m.ambiguous, m.reached} {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	}
}

func sumOf(l []int64) int64 {
	var s int64
	for _, v := range l {
		s += v
	}
	return s
}

// prefix holds the prefix sums of an ascending list, so that the smallest
// and largest sum of k of its ratings cost O(1).
type prefix []int64

func prefixOf(l []int64) prefix {
	p := make(prefix, len(l)+1)
	for i, v := range l {
		p[i+1] = p[i] + v
	}
	return p
}

func (p prefix) smallest(k int64) int64 { return p[k] }
func (p prefix) largest(k int64) int64  { return p[len(p)-1] - p[int64(len(p)-1)-k] }

// Check audits one variant as one source shows it: observed against
// baseline + the variant's ledger entries. Entries of other variants are
// ignored. A snapshot with an Error yields an unchecked result.
func Check(variant string, entries []ledger.Entry, baseline, observed Snapshot) Result {
	r := Result{Variant: variant, Source: observed.Source}
	movies := map[int64]*movieLedger{}
	get := func(id int64) *movieLedger {
		m := movies[id]
		if m == nil {
			m = &movieLedger{}
			movies[id] = m
		}
		return m
	}
	converged, hasConverged := ConvergedAt(variant, entries)
	for _, e := range entries {
		if e.Variant != variant {
			continue
		}
		if n := e.Retries(); n > 0 {
			r.Retried++
			r.Retries += int64(n)
			get(e.MovieID).retried = true
		}
		switch e.Outcome {
		case ledger.Acknowledged:
			r.Acknowledged++
			get(e.MovieID).acked = append(get(e.MovieID).acked, e.RatingTenths)
		case ledger.Ambiguous:
			r.Ambiguous++
			get(e.MovieID).ambiguous = append(get(e.MovieID).ambiguous, e.RatingTenths)
		case ledger.Failed:
			r.Failed++
			// Never sent (connection refused): the variant cannot have it.
			if e.Cause != ledger.CauseNotSent {
				get(e.MovieID).reached = append(get(e.MovieID).reached, e.RatingTenths)
			}
		case ledger.Rejected:
			r.Rejected++
			// A refusal of a movie added during the run is owed only if
			// sent before the variant first answered one with a 2xx.
			late := e.NewMovie && hasConverged && e.SentAt.After(converged)
			if e.UnexpectedRejection() || late {
				r.UnexpectedRejections++
				if len(r.UnexpectedIDs) < maxListedIDs {
					r.UnexpectedIDs = append(r.UnexpectedIDs, e.RequestID)
				}
			}
			get(e.MovieID).reached = append(get(e.MovieID).reached, e.RatingTenths)
		}
	}
	if observed.Error != "" {
		r.Error = observed.Error
		return r
	}
	if baseline.Error != "" {
		r.Error = "baseline: " + baseline.Error
		return r
	}
	r.Checked = true

	base := byMovie(baseline)
	obs := byMovie(observed)
	ids := map[int64]bool{}
	for id := range movies {
		ids[id] = true
	}
	for id := range base {
		ids[id] = true
	}
	for id := range obs {
		ids[id] = true
	}
	sorted := make([]int64, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })

	for _, id := range sorted {
		ml := movies[id]
		if ml == nil {
			ml = &movieLedger{}
		}
		ml.sort()
		f, applied := checkMovie(id, base[id], obs[id], ml)
		r.AmbiguousApplied += applied
		if f == nil {
			continue
		}
		r.Lost += f.Lost
		r.Duplicates += f.Duplicates
		if ml.retried {
			r.RetriedDoubled += f.Duplicates
		}
		r.Phantoms += f.Phantoms
		if f.SumMismatch {
			r.SumMismatches++
		}
		r.Movies = append(r.Movies, *f)
	}
	r.AmbiguousNotApplied = r.Ambiguous - r.AmbiguousApplied
	r.OK = r.Lost == 0 && r.Duplicates == 0 && r.Phantoms == 0 && r.SumMismatches == 0 && r.UnexpectedRejections == 0
	return r
}

// ConvergedAt is when the variant is known to have seen a movie added
// during the run: the earliest answer (send time + latency) of an
// acknowledged rating of it. A rating sent before then may have been
// checked before the variant saw the movie; one sent after, not.
func ConvergedAt(variant string, entries []ledger.Entry) (time.Time, bool) {
	var first time.Time
	found := false
	for _, e := range entries {
		if !e.NewMovie || e.Variant != variant || e.Outcome != ledger.Acknowledged {
			continue
		}
		if answered := e.SentAt.Add(e.LatencyNs); !found || answered.Before(first) {
			first, found = answered, true
		}
	}
	return first, found
}

func byMovie(s Snapshot) map[int64]MovieState {
	m := make(map[int64]MovieState, len(s.Movies))
	for _, ms := range s.Movies {
		m[ms.MovieID] = ms
	}
	return m
}

// extraSearch is how many violations beyond the count-minimal explanation
// the audit tries before it calls a sum unexplainable.
const extraSearch = 2

// checkMovie explains one movie's observed aggregate with the fewest
// violations (lost + phantoms + duplicates) that fit both its count and its
// sum. It returns nil when none is needed, and how many ambiguous ratings
// the explanation applies.
func checkMovie(id int64, base, obs MovieState, ml *movieLedger) (*MovieFinding, int64) {
	A, M, P := int64(len(ml.acked)), int64(len(ml.ambiguous)), int64(len(ml.reached))
	SA := sumOf(ml.acked)
	x := obs.Count - base.Count - A           // writes beyond the acknowledged ones
	xs := obs.SumTenths - base.SumTenths - SA // their sum
	f := &MovieFinding{
		MovieID:   id,
		MinCount:  base.Count + A,
		MaxCount:  base.Count + A + M,
		Count:     obs.Count,
		SumTenths: obs.SumTenths,
	}
	if -x > A {
		// More missing than was ever acknowledged: ratings from before
		// the run are gone too. No arithmetic explains that away.
		f.Lost = -x
		f.MinSumTenths, f.MaxSumTenths = base.SumTenths+SA, base.SumTenths+SA+sumOf(ml.ambiguous)
		f.Explanation = fmt.Sprintf("count %d is below the baseline %d: ratings that existed before the run are gone", obs.Count, base.Count)
		return f, 0
	}

	// A duplicate re-applies a rating this movie was sent; when the ledger
	// sent it none, it can be any valid rating.
	var values []int64
	if all := append(append(append([]int64(nil), ml.acked...), ml.ambiguous...), ml.reached...); len(all) > 0 {
		values = distinct(all)
	} else {
		for v := int64(model.MinRatingTenths); v <= model.MaxRatingTenths; v++ {
			values = append(values, v)
		}
	}
	dupLo, dupHi := values[0], values[len(values)-1]
	amb, reached, acked := prefixOf(ml.ambiguous), prefixOf(ml.reached), prefixOf(ml.acked)
	// bounds is the sum range (of the excess) of an explanation: l acked
	// lost, k ambiguous applied, p phantoms, d duplicates.
	bounds := func(l, k, p, d int64) (lo, hi int64) {
		lo = amb.smallest(k) + reached.smallest(p) - acked.largest(l) + d*dupLo
		hi = amb.largest(k) + reached.largest(p) - acked.smallest(l) + d*dupHi
		return lo, hi
	}

	cmin := max(0, -x) + max(0, x-M)
	cmax := cmin + extraSearch
	ex := explainer{
		amb:    kSums(ml.ambiguous, int(M)),
		ack:    kSums(ml.acked, int(min(A, cmax))),
		ph:     kSums(ml.reached, int(min(P, cmax))),
		dup:    repeatSums(values, int(max(0, cmax))),
		xs:     xs,
		budget: new(int),
	}
	*ex.budget = workBudget
	for c := cmin; c <= cmax; c++ {
		for l := int64(0); l <= min(c, A); l++ {
			for p := min(c-l, P); p >= 0; p-- {
				d := c - l - p
				k := x + l - p - d
				if k < 0 || k > M {
					continue
				}
				lo, hi := bounds(l, k, p, d)
				if xs < lo || xs > hi || !ex.fits(l, k, p, d) {
					continue
				}
				if c == 0 {
					return nil, k
				}
				f.Lost, f.Phantoms, f.Duplicates = l, p, d
				f.MinSumTenths, f.MaxSumTenths = base.SumTenths+SA+lo, base.SumTenths+SA+hi
				f.Explanation = explain(f, k)
				return f, k
			}
		}
	}

	// Nothing fits the sum: report the count-minimal explanation.
	l := max(0, -x)
	k := min(max(0, x), M)
	p := min(max(0, x-M), P)
	d := max(0, x-M) - p
	lo, hi := bounds(l, k, p, d)
	f.Lost, f.Phantoms, f.Duplicates = l, p, d
	f.MinSumTenths, f.MaxSumTenths = base.SumTenths+SA+lo, base.SumTenths+SA+hi
	f.SumMismatch = true
	f.Explanation = explain(f, k)
	return f, k
}

// explainer checks exactly whether an explanation's sum is achievable.
type explainer struct {
	amb, ack, ph []bitset // achievable sums by how many are chosen; nil: too costly, bounds only
	dup          []bitset // achievable sums of d duplicates
	xs           int64    // observed excess sum
	budget       *int     // operations left for this movie, shared by every fits call
}

// fits reports whether some choice of l acked lost, k ambiguous applied,
// p phantoms and d duplicates sums to xs.
func (e explainer) fits(l, k, p, d int64) bool {
	if e.amb == nil || e.ack == nil || e.ph == nil || e.dup == nil ||
		int(l) >= len(e.ack) || int(p) >= len(e.ph) || int(k) >= len(e.amb) || int(d) >= len(e.dup) {
		return true // the bounds already held; exactness unaffordable
	}
	if *e.budget <= 0 {
		return true
	}
	found := false
	e.amb[k].each(func(a int64) bool {
		return e.ph[p].each(func(q int64) bool {
			return e.dup[d].each(func(dup int64) bool {
				// the lost ones must sum to y with a + q + dup - y = xs
				if e.ack[l].has(a + q + dup - e.xs) {
					found = true
					return false
				}
				*e.budget--
				if *e.budget <= 0 {
					found = true // out of budget: give the benefit of the doubt
					return false
				}
				return true
			})
		})
	})
	return found
}

func distinct(l []int64) []int64 {
	out := append([]int64(nil), l...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	n := 0
	for i, v := range out {
		if i == 0 || v != out[n-1] {
			out[n] = v
			n++
		}
	}
	return out[:n]
}

func explain(f *MovieFinding, applied int64) string {
	var parts []string
	if f.Lost > 0 {
		parts = append(parts, fmt.Sprintf("%d acknowledged rating(s) lost", f.Lost))
	}
	if f.Phantoms > 0 {
		parts = append(parts, fmt.Sprintf("%d rating(s) the client saw fail applied", f.Phantoms))
	}
	if f.Duplicates > 0 {
		parts = append(parts, fmt.Sprintf("%d rating(s) applied twice", f.Duplicates))
	}
	what := "nothing fits"
	if len(parts) > 0 {
		what = strings.Join(parts, ", ")
	}
	s := fmt.Sprintf("count %d (ledger allows %d..%d), sum %s: at least %s", f.Count, f.MinCount, f.MaxCount, tenths(f.SumTenths), what)
	if applied > 0 && f.Lost > 0 {
		s += fmt.Sprintf(", hidden behind %d ambiguous rating(s) applied", applied)
	}
	if f.SumMismatch {
		s += fmt.Sprintf("; and no choice of ratings gives the sum (allowed %s..%s)", tenths(f.MinSumTenths), tenths(f.MaxSumTenths))
	}
	return s
}

// tenths formats a sum of tenths as points: 75 → "7.5".
func tenths(t int64) string { return string(model.AppendTenths(nil, t)) }
