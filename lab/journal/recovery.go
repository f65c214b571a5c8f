package journal

import (
	"sort"
	"strings"
	"time"
)

// Recovery thresholds; docs/report.md explains them.
const (
	// BaselineWindow is how long before an injection the baseline is
	// taken from (cut short by the run's start or an earlier fault).
	BaselineWindow = 30 * time.Second
	// SuccessTolerance: success is back when within this of the baseline.
	SuccessTolerance = 0.01
	// P99Factor and P99Slack: p99 is back when at most
	// max(baseline × P99Factor, baseline + P99Slack).
	P99Factor = 1.5
	P99Slack  = 5 * time.Millisecond
	// StableSamples: a condition counts as back only when it holds for this
	// many consecutive samples (or until the run ends), so one lucky
	// second is not a recovery.
	StableSamples = 3
	// DefaultSLO is the success objective when the journal names none.
	DefaultSLO = 0.99
)

// ComputeRecovery derives a Recovery for every injected fault and every
// variant it hit (all variants when the fault names none), in fault order.
func ComputeRecovery(j Journal) []Recovery {
	byVariant := map[string][]Sample{}
	for _, s := range j.Samples {
		byVariant[s.Variant] = append(byVariant[s.Variant], s)
	}
	for _, ss := range byVariant {
		sort.SliceStable(ss, func(a, b int) bool { return ss[a].At.Before(ss[b].At) })
	}
	slo := j.SLO
	if slo <= 0 || slo >= 1 {
		slo = DefaultSLO
	}
	var out []Recovery
	for i, f := range j.Faults {
		if f.InjectedAt.IsZero() {
			continue
		}
		variants := j.Variants
		if f.Variant != "" && contains(j.Variants, f.Variant) {
			variants = []string{f.Variant}
		}
		for _, v := range variants {
			from := j.Started
			if !f.InjectedAt.Add(-BaselineWindow).Before(from) {
				from = f.InjectedAt.Add(-BaselineWindow)
			}
			// An earlier fault on this variant ends the baseline's reach.
			for _, g := range j.Faults[:i] {
				if g.HealedAt.IsZero() || g.HealedAt.After(f.InjectedAt) {
					continue
				}
				if (g.Variant == "" || g.Variant == v) && g.HealedAt.After(from) {
					from = g.HealedAt
				}
			}
			out = append(out, recoveryOf(f, v, byVariant[v], from, j.Ended, slo))
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func recoveryOf(f FaultEvent, variant string, ss []Sample, baseFrom, end time.Time, slo float64) Recovery {
	r := Recovery{FaultID: f.ID, Variant: variant}
	var notes []string
	inBase := func(t time.Time) bool { return !t.Before(baseFrom) && t.Before(f.InjectedAt) }

	// Baselines.
	var okW, w float64
	var p99s []float64
	baseLag, baseGap := -1.0, -1.0
	haveSuccess := false
	for _, s := range ss {
		if !inBase(s.At) {
			continue
		}
		if ratio, ok := s.Values[SeriesClientSuccessRatio]; ok {
			rps := s.Values[SeriesClientRPS]
			if rps <= 0 {
				rps = 1
			}
			okW += ratio * rps
			w += rps
			haveSuccess = true
		}
		if p, ok := s.Values[SeriesClientP99]; ok {
			p99s = append(p99s, p)
		}
		if l, ok := s.Values[SeriesConsumerLag]; ok {
			baseLag = max(baseLag, l)
		}
		if g, ok := s.Values[SeriesViewGap]; ok {
			baseGap = max(baseGap, g)
		}
	}
	baseSuccess := 1.0
	if haveSuccess {
		baseSuccess = okW / w
	} else {
		notes = append(notes, "no client samples before the fault: success baseline taken as 100 %")
	}
	r.BaselineSuccessRatio = baseSuccess
	var baseP99 float64
	if len(p99s) > 0 {
		sort.Float64s(p99s)
		baseP99 = p99s[len(p99s)/2]
	}
	r.BaselineP99Seconds = baseP99
	if baseLag >= 0 {
		r.BaselineLag = baseLag
	}
	if baseGap >= 0 {
		r.BaselineViewGap = baseGap
	}

	// Detection: the first second after injection whose success ratio is
	// below the baseline's tolerance, up to one second past the heal.
	detectUntil := end
	if !f.HealedAt.IsZero() {
		detectUntil = f.HealedAt.Add(time.Second)
	}
	for _, s := range ss {
		if !s.At.After(f.InjectedAt) || s.At.After(detectUntil) {
			continue
		}
		if ratio, ok := s.Values[SeriesClientSuccessRatio]; ok && ratio < baseSuccess-SuccessTolerance {
			r.TimeToDetect = DurationPtr(s.At.Sub(f.InjectedAt))
			break
		}
	}

	// Errors during the fault and the budget they burned.
	errorsAt := func(t time.Time) float64 { return valueAt(ss, SeriesClientErrorsTotal, t) }
	heal := f.HealedAt
	if heal.IsZero() {
		heal = end
		notes = append(notes, "never healed within the run")
	}
	r.FailedDuringFault = int64(errorsAt(heal) - errorsAt(f.InjectedAt) + 0.5)

	// Recovery times, measured from the heal.
	if !f.HealedAt.IsZero() {
		after := make([]Sample, 0, len(ss))
		for _, s := range ss {
			if s.At.After(f.HealedAt) {
				after = append(after, s)
			}
		}
		since := func(cond func(Sample) bool) *Duration {
			at, found := firstStable(after, cond)
			if !found {
				return nil
			}
			return DurationPtr(max(0, at.Sub(f.HealedAt)))
		}
		r.SuccessRecovered = since(func(s Sample) bool {
			ratio, ok := s.Values[SeriesClientSuccessRatio]
			return ok && ratio >= baseSuccess-SuccessTolerance
		})
		if len(p99s) > 0 {
			limit := max(baseP99*P99Factor, baseP99+P99Slack.Seconds())
			r.P99Recovered = since(func(s Sample) bool {
				p, ok := s.Values[SeriesClientP99]
				return ok && p <= limit
			})
		}
		if baseLag >= 0 {
			r.LagRecovered = since(func(s Sample) bool {
				l, ok := s.Values[SeriesConsumerLag]
				return ok && l <= baseLag
			})
		}
		if baseGap >= 0 {
			r.ViewConverged = since(func(s Sample) bool {
				g, ok := s.Values[SeriesViewGap]
				return ok && g <= max(baseGap, 0)
			})
		}
	}

	// Budget: errors from injection until success was back (or the end).
	budgetEnd := end
	if r.SuccessRecovered != nil {
		budgetEnd = f.HealedAt.Add(r.SuccessRecovered.D())
	}
	total := lastValue(ss, SeriesClientRequestsTotal)
	if allowed := (1 - slo) * total; allowed > 0 {
		r.ErrorBudgetBurned = (errorsAt(budgetEnd) - errorsAt(f.InjectedAt)) / allowed
	} else if total == 0 {
		notes = append(notes, "no client requests recorded: no error budget")
	}
	r.Note = strings.Join(notes, "; ")
	return r
}

// firstStable returns the time of the first sample from which cond holds
// for StableSamples consecutive samples, or for all remaining ones.
func firstStable(ss []Sample, cond func(Sample) bool) (time.Time, bool) {
	for i := range ss {
		good := true
		for k := i; k < len(ss) && k < i+StableSamples; k++ {
			if !cond(ss[k]) {
				good = false
				break
			}
		}
		if good {
			return ss[i].At, true
		}
	}
	return time.Time{}, false
}

// valueAt is a cumulative series' value at t: the last sample at or
// before t that has it, 0 before the first.
func valueAt(ss []Sample, name string, t time.Time) float64 {
	v := 0.0
	for _, s := range ss {
		if s.At.After(t) {
			break
		}
		if x, ok := s.Values[name]; ok {
			v = x
		}
	}
	return v
}

func lastValue(ss []Sample, name string) float64 {
	for i := len(ss) - 1; i >= 0; i-- {
		if v, ok := ss[i].Values[name]; ok {
			return v
		}
	}
	return 0
}
