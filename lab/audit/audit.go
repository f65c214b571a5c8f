package audit

import (
	"fmt"
	"sort"

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

// smallest and largest sum of k ratings out of the ascending list l.
func smallest(l []int64, k int64) int64 { return sumOf(l[:k]) }
func largest(l []int64, k int64) int64  { return sumOf(l[int64(len(l))-k:]) }

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
	for _, e := range entries {
		if e.Variant != variant {
			continue
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
			if e.Cause != "not_sent" {
				get(e.MovieID).reached = append(get(e.MovieID).reached, e.RatingTenths)
			}
		case ledger.Rejected:
			r.Rejected++
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
		r.Phantoms += f.Phantoms
		if f.SumMismatch {
			r.SumMismatches++
		}
		r.Movies = append(r.Movies, *f)
	}
	r.OK = r.Lost == 0 && r.Duplicates == 0 && r.Phantoms == 0 && r.SumMismatches == 0
	return r
}

func byMovie(s Snapshot) map[int64]MovieState {
	m := make(map[int64]MovieState, len(s.Movies))
	for _, ms := range s.Movies {
		m[ms.MovieID] = ms
	}
	return m
}

// checkMovie explains one movie's observed aggregate with the fewest
// violations. It returns nil when no violation is needed, and how many
// ambiguous ratings the explanation applies.
func checkMovie(id int64, base, obs MovieState, ml *movieLedger) (*MovieFinding, int64) {
	A, M, P := int64(len(ml.acked)), int64(len(ml.ambiguous)), int64(len(ml.reached))
	SA := sumOf(ml.acked)
	excess := obs.Count - base.Count - A             // writes beyond the acknowledged ones
	excessSum := obs.SumTenths - base.SumTenths - SA // their sum
	f := &MovieFinding{
		MovieID:   id,
		MinCount:  base.Count + A,
		MaxCount:  base.Count + A + M,
		Count:     obs.Count,
		SumTenths: obs.SumTenths,
	}
	// Value range of a duplicate: a rating this movie was sent, or any
	// valid rating when the ledger has none for it.
	dupLo, dupHi := int64(model.MinRatingTenths), int64(model.MaxRatingTenths)
	if all := append(append(append([]int64(nil), ml.acked...), ml.ambiguous...), ml.reached...); len(all) > 0 {
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		dupLo, dupHi = all[0], all[len(all)-1]
	}

	// bounds is the sum range (of the excess) of an explanation: l acked
	// lost, k ambiguous applied, p phantoms, d duplicates.
	bounds := func(l, k, p, d int64) (lo, hi int64) {
		lo = smallest(ml.ambiguous, k) + smallest(ml.reached, p) - largest(ml.acked, l) + d*dupLo
		hi = largest(ml.ambiguous, k) + largest(ml.reached, p) - smallest(ml.acked, l) + d*dupHi
		return lo, hi
	}
	setSums := func(lo, hi int64) {
		f.MinSumTenths = base.SumTenths + SA + lo
		f.MaxSumTenths = base.SumTenths + SA + hi
	}

	switch {
	case excess < 0:
		// Fewest lost that the sum allows: losing l acknowledged ratings
		// while k ambiguous ones were applied (l = k - excess).
		lost := -excess
		if lost > A {
			// More missing than was ever acknowledged: the baseline
			// itself shrank.
			f.Lost = lost
			f.Explanation = fmt.Sprintf("count %d is below the baseline %d: ratings that existed before the run are gone", obs.Count, base.Count)
			setSums(0, sumOf(ml.ambiguous))
			return f, 0
		}
		for k := int64(0); k <= M && k-excess <= A; k++ {
			lo, hi := bounds(k-excess, k, 0, 0)
			if excessSum >= lo && excessSum <= hi {
				f.Lost = k - excess
				setSums(lo, hi)
				f.Explanation = fmt.Sprintf("%d acknowledged rating(s) missing: count %d, the ledger allows %d..%d", f.Lost, obs.Count, f.MinCount, f.MaxCount)
				return f, k
			}
		}
		lo, hi := bounds(lost, 0, 0, 0)
		f.Lost = lost
		setSums(lo, hi)
		f.SumMismatch = true
		f.Explanation = fmt.Sprintf("%d acknowledged rating(s) missing (count %d, allowed %d..%d), and the sum %s fits no choice of which", lost, obs.Count, f.MinCount, f.MaxCount, tenths(obs.SumTenths))
		return f, 0

	case excess <= M:
		lo, hi := bounds(0, excess, 0, 0)
		setSums(lo, hi)
		if excessSum >= lo && excessSum <= hi {
			return nil, excess
		}
		f.SumMismatch = true
		f.Explanation = fmt.Sprintf("count %d is within %d..%d but the sum %s is outside %s..%s: a rating was applied with another value, or a loss hides behind an extra write",
			obs.Count, f.MinCount, f.MaxCount, tenths(obs.SumTenths), tenths(f.MinSumTenths), tenths(f.MaxSumTenths))
		return f, excess

	default:
		extra := excess - M
		f.Phantoms = min(extra, P)
		f.Duplicates = extra - f.Phantoms
		lo, hi := bounds(0, M, f.Phantoms, f.Duplicates)
		setSums(lo, hi)
		f.SumMismatch = excessSum < lo || excessSum > hi
		switch {
		case f.Duplicates == 0:
			f.Explanation = fmt.Sprintf("count %d is above %d..%d: at least %d rating(s) the client saw fail were applied", obs.Count, f.MinCount, f.MaxCount, f.Phantoms)
		case f.Phantoms == 0:
			f.Explanation = fmt.Sprintf("count %d is above %d..%d: at least %d rating(s) applied twice", obs.Count, f.MinCount, f.MaxCount, f.Duplicates)
		default:
			f.Explanation = fmt.Sprintf("count %d is above %d..%d: even with all %d failed/rejected rating(s) applied, %d more were applied twice", obs.Count, f.MinCount, f.MaxCount, f.Phantoms, f.Duplicates)
		}
		if f.SumMismatch {
			f.Explanation += fmt.Sprintf("; and the sum %s is outside %s..%s", tenths(obs.SumTenths), tenths(f.MinSumTenths), tenths(f.MaxSumTenths))
		}
		return f, M
	}
}

// tenths formats a sum of tenths as points: 75 → "7.5".
func tenths(t int64) string { return string(model.AppendTenths(nil, t)) }
