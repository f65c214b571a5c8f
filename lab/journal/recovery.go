package journal

import (
	"sort"
	"strings"
	"time"

	"github.com/ratingslab/lab/services/lib/duration"
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
	// P50Slack: the p50 band is max(baseline × P99Factor, baseline +
	// P50Slack).
	P50Slack = 10 * time.Millisecond
	// LeaveSamples: a signal has left its band (the fault touched it) only
	// when it is out of band for this many consecutive samples, so one
	// unlucky second is not an effect.
	LeaveSamples = 2
	// StableSamples: a signal counts as back only when it holds its band
	// for this many consecutive samples (or until the run ends), so one
	// lucky second is not a recovery.
	StableSamples = 3
	// EffectGrace: a stretch out of band is the fault's only if it begins
	// before the heal plus this (a backlog that builds as a part comes
	// back); what begins later is something else, such as noise.
	EffectGrace = 5 * time.Second
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
			out = append(out, recoveryOf(f, v, byVariant[v], from, observedUntil(j, i, v), j.Ended, slo))
		}
	}
	return out
}

// observedUntil is where fault i's effects stop being its own: the next
// injection that hits the variant, or the end of the run.
func observedUntil(j Journal, i int, v string) time.Time {
	until := j.Ended
	for _, g := range j.Faults {
		if g.InjectedAt.After(j.Faults[i].InjectedAt) && (g.Variant == "" || g.Variant == v) && g.InjectedAt.Before(until) {
			until = g.InjectedAt
		}
	}
	return until
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func recoveryOf(f FaultEvent, variant string, ss []Sample, baseFrom, obsEnd, end time.Time, slo float64) Recovery {
	r := Recovery{FaultID: f.ID, Variant: variant, Touched: []string{}}
	var notes []string

	b := baselineOf(ss, baseFrom, f.InjectedAt)
	if !b.haveSuccess {
		notes = append(notes, "no client samples before the fault: success baseline taken as 100 %")
	}
	r.BaselineSuccessRatio = b.success
	r.BaselineP99Seconds, r.BaselineP50Seconds = b.p99, b.p50
	if b.lag >= 0 {
		r.BaselineLag = b.lag
	}
	if b.gap >= 0 {
		r.BaselineViewGap = b.gap
	}

	// The samples the fault may have moved: from injection to the next
	// fault (or the end).
	var obs []Sample
	for _, s := range ss {
		if s.At.After(f.InjectedAt) && !s.At.After(obsEnd) {
			obs = append(obs, s)
		}
	}
	heal := f.HealedAt
	if heal.IsZero() {
		heal = end
		notes = append(notes, "never healed within the run")
	}

	effectUntil := heal.Add(EffectGrace)
	for _, sg := range b.signals(&r) {
		first, last, touched := departures(obs, sg.in, effectUntil)
		if !touched {
			continue
		}
		r.Touched = append(r.Touched, sg.name)
		if sg.name == SignalSuccess {
			r.TimeToDetect = duration.Ptr(max(0, first.Sub(f.InjectedAt)))
		}
		if back, ok := backAfter(obs, last, sg.in); ok && !f.HealedAt.IsZero() {
			*sg.dst = duration.Ptr(max(0, back.Sub(f.HealedAt)))
		}
	}

	// Errors during the fault and the budget they burned.
	errorsAt := func(t time.Time) float64 { return valueAt(ss, SeriesClientErrorsTotal, t) }
	r.FailedDuringFault = int64(errorsAt(heal) - errorsAt(f.InjectedAt) + 0.5)
	budgetEnd := obsEnd
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

// baseline is what the seconds before a fault looked like: the bands its
// signals must return to.
type baseline struct {
	success     float64 // request-weighted success ratio; 1 without client samples
	haveSuccess bool
	// p99 and p50 are how high the seconds' p99s and p50s went (highish).
	p99, p50         float64
	haveP99, haveP50 bool
	lag, gap         float64 // the highest consumer lag and view gap; -1 for none
}

// baselineOf reads the baseline from the samples in [from, to).
func baselineOf(ss []Sample, from, to time.Time) baseline {
	var okW, w float64
	var p50s, p99s []float64
	b := baseline{success: 1, lag: -1, gap: -1}
	for _, s := range ss {
		if s.At.Before(from) || !s.At.Before(to) {
			continue
		}
		if ratio, ok := s.Values[SeriesClientSuccessRatio]; ok {
			rps := s.Values[SeriesClientRPS]
			if rps <= 0 {
				rps = 1
			}
			okW += ratio * rps
			w += rps
			b.haveSuccess = true
		}
		if p, ok := s.Values[SeriesClientP99]; ok {
			p99s = append(p99s, p)
		}
		if p, ok := s.Values[SeriesClientP50]; ok {
			p50s = append(p50s, p)
		}
		if l, ok := s.Values[SeriesConsumerLag]; ok {
			b.lag = max(b.lag, l)
		}
		if g, ok := s.Values[SeriesViewGap]; ok {
			b.gap = max(b.gap, g)
		}
	}
	if b.haveSuccess {
		b.success = okW / w
	}
	// The p99 of one second of a light load is nearly its slowest request:
	// the bands start from how high the seconds before the fault went (the
	// 90th percentile of their p50s and p99s), not from the median, so
	// ordinary noise is not an effect of the fault.
	b.p99, b.p50 = highish(p99s), highish(p50s)
	b.haveP99, b.haveP50 = len(p99s) > 0, len(p50s) > 0
	return b
}

// signal is one figure a fault may move out of its band, and where its
// recovery time goes in a Recovery.
type signal struct {
	name string
	// in says whether a sample is in band; present=false: no data that
	// second, which only counts as out of band for a stall (requests in
	// flight, no answer) or an unknown value.
	in  func(Sample) (inBand, present bool)
	dst **duration.Duration
}

// stalled: requests were in flight that second.
func stalled(s Sample) bool { n, ok := s.Values[SeriesClientInFlight]; return ok && n > 0 }

// signals are the bands b gives: success always, latency, lag and view
// only with a baseline for them. Their recovery times go into r.
func (b baseline) signals(r *Recovery) []signal {
	signals := []signal{{name: SignalSuccess, dst: &r.SuccessRecovered, in: func(s Sample) (bool, bool) {
		if ratio, ok := s.Values[SeriesClientSuccessRatio]; ok {
			return ratio >= b.success-SuccessTolerance, true
		}
		return !stalled(s), stalled(s)
	}}}
	if b.haveP99 {
		// Latency: the p99 band, and the p50's (a fault that slows every
		// request moves the median too, even when the seconds before the
		// fault had slow outliers of the same size).
		limit99 := max(b.p99*P99Factor, b.p99+P99Slack.Seconds())
		limit50 := max(b.p50*P99Factor, b.p50+P50Slack.Seconds())
		signals = append(signals, signal{name: SignalP99, dst: &r.P99Recovered, in: func(s Sample) (bool, bool) {
			p99, ok := s.Values[SeriesClientP99]
			if !ok {
				return !stalled(s), stalled(s)
			}
			p50, has50 := s.Values[SeriesClientP50]
			return p99 <= limit99 && (!has50 || !b.haveP50 || p50 <= limit50), true
		}})
	}
	if b.lag >= 0 {
		signals = append(signals, signal{name: SignalLag, dst: &r.LagRecovered, in: func(s Sample) (bool, bool) {
			if l, ok := s.Values[SeriesConsumerLag]; ok {
				return l <= b.lag, true
			}
			return !s.IsUnknown(SeriesConsumerLag), s.IsUnknown(SeriesConsumerLag)
		}})
	}
	if b.gap >= 0 {
		signals = append(signals, signal{name: SignalView, dst: &r.ViewConverged, in: func(s Sample) (bool, bool) {
			if g, ok := s.Values[SeriesViewGap]; ok {
				return g <= max(b.gap, 0), true
			}
			return !s.IsUnknown(SeriesViewGap), s.IsUnknown(SeriesViewGap)
		}})
	}
	return signals
}

// highish is the 90th percentile of per-second figures (0 without any).
func highish(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	sort.Float64s(vs)
	return vs[min(len(vs)-1, len(vs)*9/10)]
}

// departures finds where a fault moved a signal out of its band: stretches
// out of band for at least LeaveSamples consecutive samples that begin
// before effectUntil (later ones are not the fault's). It returns the first
// sample of the first such stretch and the last sample of the last one.
func departures(ss []Sample, in func(Sample) (bool, bool), effectUntil time.Time) (first, last time.Time, touched bool) {
	run := 0
	var start time.Time
	for _, s := range ss {
		if ok, _ := in(s); ok {
			run = 0
			continue
		}
		if run == 0 {
			start = s.At
		}
		run++
		if run < LeaveSamples || start.After(effectUntil) {
			continue
		}
		if !touched {
			first, touched = start, true
		}
		last = s.At
	}
	return first, last, touched
}

// backAfter is the first sample after last from which the signal holds its
// band for StableSamples consecutive samples with data (or to the end).
func backAfter(ss []Sample, last time.Time, in func(Sample) (bool, bool)) (time.Time, bool) {
	var start time.Time
	run := 0
	for _, s := range ss {
		if !s.At.After(last) {
			continue
		}
		ok, present := in(s)
		switch {
		case !ok:
			run = 0
		case present:
			if run == 0 {
				start = s.At
			}
			run++
			if run == StableSamples {
				return start, true
			}
		}
	}
	return start, run > 0
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
