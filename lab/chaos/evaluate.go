package chaos

import (
	"fmt"
	"math"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/sampler"
	"github.com/ratingslab/lab/services/lib/duration"
)

// Times of one run, from which the phases are cut.
type runTimes struct {
	t0      time.Time // the load started: the schedule's zero
	loadEnd time.Time // the load ended (early when interrupted)
	drained time.Time // the drain ended
	// interrupted runs are judged only on what they lived through: windows
	// end at the interruption, phases not reached are left out, and nothing
	// is checked after a drain that did not happen.
	interrupted bool
}

func (p *Plan) beforeWindow(rt runTimes) (time.Time, time.Time) {
	return rt.t0.Add(p.Exp.SteadyState.Warmup.D()), rt.t0.Add(p.FirstFault)
}

func (p *Plan) duringSpan(rt runTimes) (time.Time, time.Time) {
	to := rt.t0.Add(p.LastHeal)
	if rt.interrupted && rt.loadEnd.Before(to) {
		to = rt.loadEnd
	}
	return rt.t0.Add(p.FirstFault), to
}

func (p *Plan) afterWindow(rt runTimes) (time.Time, time.Time) {
	return rt.t0.Add(p.LastHeal + p.Exp.SteadyState.Recovery.D()), rt.loadEnd
}

// evaluate checks the hypothesis in every phase for every variant and
// returns the phase results and the verdict per variant.
func (p *Plan) evaluate(s *store, rt runTimes, audits []audit.Result) ([]journal.PhaseResult, map[string]bool) {
	var phases []journal.PhaseResult
	verdict := map[string]bool{}
	for _, v := range p.Variants {
		before := journal.PhaseResult{Name: journal.PhaseBefore, Variant: v, OK: true}
		during := journal.PhaseResult{Name: journal.PhaseDuring, Variant: v, OK: true}
		after := journal.PhaseResult{Name: journal.PhaseAfter, Variant: v, OK: true}
		bFrom, bTo := p.beforeWindow(rt)
		dFrom, dTo := p.duringSpan(rt)
		aFrom, aTo := p.afterWindow(rt)
		before.At, during.At, after.At = bTo, dTo, rt.drained
		ticks := s.ticksOf(v)
		var results []audit.Result
		for _, r := range audits {
			if r.Variant == v {
				results = append(results, r)
			}
		}
		reached := func(from time.Time) bool { return !rt.interrupted || rt.loadEnd.After(from) }
		for _, pp := range p.Probes {
			if !pp.Applies(v) {
				continue
			}
			k := pp.kind
			if k.windowed {
				if reached(bFrom) {
					m := k.measureWindow(windowOf(ticks, bFrom, minTime(bTo, rt.loadEnd)))
					addProbe(&before, journal.ProbeResult{Name: pp.Label, Tolerance: k.describe(pp.tol), Observed: m.text, OK: m.acceptable(pp.tol)})
				}
				if !pp.skip && reached(dFrom) {
					addProbe(&during, p.continuous(pp, ticks, dFrom, dTo, rt.t0))
				}
				if reached(aFrom) {
					m := k.measureWindow(windowOf(ticks, aFrom, aTo))
					name := pp.Label
					if k.final {
						name += " (after recovery)"
					}
					addProbe(&after, journal.ProbeResult{Name: name, Tolerance: k.describe(pp.tol), Observed: m.text, OK: m.acceptable(pp.tol)})
				}
			}
			if k.final && !rt.interrupted {
				m := k.measureFinal(windowOf(ticks, rt.loadEnd.Add(-time.Second), rt.drained), results)
				name := pp.Label
				if k.windowed {
					name += " (after drain)"
				}
				addProbe(&after, journal.ProbeResult{Name: name, Tolerance: k.describe(pp.tol), Observed: m.text, OK: m.acceptable(pp.tol)})
			}
		}
		for _, ph := range []journal.PhaseResult{before, during, after} {
			if len(ph.Probes) > 0 || !rt.interrupted {
				phases = append(phases, ph)
			}
		}
		verdict[v] = before.OK && during.OK && after.OK
	}
	return phases, verdict
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func addProbe(ph *journal.PhaseResult, r journal.ProbeResult) {
	ph.Probes = append(ph.Probes, r)
	ph.OK = ph.OK && r.OK
}

// continuous checks a probe every second while faults are active, each time
// over the trailing window, and reports the worst window.
func (p *Plan) continuous(pp PlannedProbe, ticks []tick, from, to, t0 time.Time) journal.ProbeResult {
	k := pp.kind
	res := journal.ProbeResult{Name: pp.Label, Tolerance: k.describe(pp.during) + fmt.Sprintf(" over every %s window", p.Exp.SteadyState.Window), OK: true}
	win := p.Exp.SteadyState.Window.D()
	checked, failed := 0, 0
	var worst measure
	var worstAt, firstFail time.Time
	for _, t := range ticks {
		if !t.at.After(from) || t.at.After(to) {
			continue
		}
		m := k.measureWindow(trailingOf(ticks, t.at, win))
		checked++
		ok := m.acceptable(pp.during)
		if !ok {
			failed++
			if firstFail.IsZero() {
				firstFail = t.at
			}
		}
		if checked == 1 || worse(k, pp.during, m, worst) {
			worst, worstAt = m, t.at
		}
	}
	switch {
	case checked == 0:
		res.Observed = "no samples while faults were active"
		res.OK = false
	case failed == 0:
		res.Observed = "worst " + worst.text
	default:
		res.OK = false
		res.Observed = fmt.Sprintf("worst %s at +%s; %d of %d windows out of tolerance from +%s",
			worst.text, offset(worstAt, t0), failed, checked, offset(firstFail, t0))
	}
	return res
}

// worse reports whether m is further from the bound than than.
func worse(k probeKind, b bound, m, than measure) bool { return badness(b, m) > badness(b, than) }

// badness orders measures: higher is further from the bound; a stall (no
// data) is the worst, no requests at all the best.
func badness(b bound, m measure) float64 {
	switch {
	case m.noData && !m.acceptable(b):
		return math.Inf(1)
	case m.noData:
		return math.Inf(-1)
	case b.min:
		return -m.value
	}
	return m.value
}

func offset(t, t0 time.Time) string {
	return t.Sub(t0).Round(100 * time.Millisecond).String()
}

// liveViolations lists the probes that do not hold over the latest window,
// for the progress line.
func (p *Plan) liveViolations(s *store, v string, now, t0 time.Time, faultsActive bool) []string {
	var out []string
	win := p.Exp.SteadyState.Window.D()
	if now.Sub(t0) < p.Exp.SteadyState.Warmup.D()+win {
		return nil
	}
	w := s.trailing(v, now, win)
	for _, pp := range p.Probes {
		if !pp.Applies(v) || !pp.kind.windowed || (faultsActive && pp.skip) {
			continue
		}
		b := pp.tol
		if faultsActive {
			b = pp.during
		}
		if m := pp.kind.measureWindow(w); !m.acceptable(b) {
			out = append(out, pp.Label)
		}
	}
	return out
}

// clientWindows are the load generator's figures per variant over the
// whole run and each phase, for the journal (and the report's comparison
// table): exact counts, percentiles from the per-request latencies. The
// run window takes every tick, so it holds every request of the ledger.
func (p *Plan) clientWindows(s *store, rt runTimes) []journal.ClientWindow {
	var out []journal.ClientWindow
	for _, v := range p.Variants {
		ticks := s.ticksOf(v)
		if len(ticks) == 0 {
			continue
		}
		type span struct {
			name     string
			from, to time.Time
		}
		bFrom, bTo := p.beforeWindow(rt)
		dFrom, dTo := p.duringSpan(rt)
		aFrom, aTo := p.afterWindow(rt)
		windows := []span{
			{journal.WindowRun, ticks[0].at.Add(-time.Second), ticks[len(ticks)-1].at},
			{journal.WindowBefore, bFrom, minTime(bTo, rt.loadEnd)},
			{journal.WindowDuring, dFrom, dTo},
			{journal.WindowAfter, aFrom, aTo},
		}
		for _, win := range windows {
			if !win.to.After(win.from) {
				continue
			}
			w := windowOf(ticks, win.from, win.to)
			out = append(out, journal.ClientWindow{Variant: v, Window: win.name, From: win.from, To: win.to,
				All: figures(w.all()), Reads: figures(w.byClass[sampler.Reads]), Writes: figures(w.byClass[sampler.Writes])})
		}
	}
	return out
}

// figures turns a window's counts into the journal's form.
func figures(c sampler.ClassFigures) journal.ClientFigures {
	f := journal.ClientFigures{Answered: c.Answered, AsExpected: c.AsExpected, Unexpected4xx: c.Unexpected4xx, Outcomes: map[string]uint64{}}
	for _, o := range load.Outcomes {
		f.Outcomes[string(o)] = c.Outcomes[o]
	}
	if c.Answered > 0 {
		r := float64(c.AsExpected) / float64(c.Answered)
		f.SuccessRatio = &r
	}
	if c.Latency.N() > 0 {
		d := func(q float64) *duration.Duration { return duration.Ptr(c.Latency.Quantile(q)) }
		f.Latency = journal.LatencyFigures{P50: d(0.5), P90: d(0.9), P99: d(0.99), P999: d(0.999), Max: d(1)}
	}
	return f
}
