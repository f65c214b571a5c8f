package load

import (
	"math"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// schedulePacer is a vegeta.Pacer for a piecewise-linear arrival rate (k6's
// constant- and ramping-arrival-rate). Unlike vegeta's own pacers it knows the
// exact number of requests the schedule holds and stops there, so two
// variants driven by the same schedule get exactly the same requests.
type schedulePacer struct {
	segs  []segment
	start []float64 // cumulative hits at the start of each segment
	offs  []time.Duration
	total uint64
}

var _ vegeta.Pacer = (*schedulePacer)(nil)

func newSchedulePacer(a Arrival) *schedulePacer {
	p := &schedulePacer{segs: a.segments(), total: a.ExpectedRequests()}
	var hits float64
	var off time.Duration
	for _, s := range p.segs {
		p.start = append(p.start, hits)
		p.offs = append(p.offs, off)
		hits += (s.from + s.to) / 2 * s.dur.Seconds()
		off += s.dur
	}
	return p
}

// Pace implements vegeta.Pacer: it waits until the moment request number
// hits+1 is due. When the attacker has fallen behind (the moment is past) it
// answers 0, so the schedule catches up instead of drifting.
func (p *schedulePacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= p.total {
		return 0, true
	}
	due := p.dueAt(float64(hits + 1))
	if due <= elapsed {
		return 0, false
	}
	return due - elapsed, false
}

// dueAt is the moment the schedule has sent n requests: the inverse of the
// cumulative hit count.
func (p *schedulePacer) dueAt(n float64) time.Duration {
	for i, s := range p.segs {
		secs := s.dur.Seconds()
		inSeg := (s.from + s.to) / 2 * secs
		need := n - p.start[i]
		if need > inSeg+1e-9 && i < len(p.segs)-1 {
			continue
		}
		// Solve from*t + (to-from)/(2*secs)*t² = need for t in [0, secs],
		// in the form that is stable for a flat segment too.
		a := (s.to - s.from) / (2 * secs)
		b := s.from
		disc := b*b + 4*a*need
		if disc < 0 {
			disc = 0
		}
		denom := b + math.Sqrt(disc)
		t := secs
		if denom > 0 {
			t = 2 * need / denom
		}
		t = math.Min(math.Max(t, 0), secs)
		return p.offs[i] + time.Duration(t*float64(time.Second))
	}
	return 0
}

// Rate implements vegeta.Pacer: the scheduled rate at elapsed, requests/s.
func (p *schedulePacer) Rate(elapsed time.Duration) float64 {
	for i, s := range p.segs {
		if elapsed < p.offs[i]+s.dur {
			f := float64(elapsed-p.offs[i]) / float64(s.dur)
			return s.from + (s.to-s.from)*f
		}
	}
	return 0
}

// anchoredPacer shifts a pacer onto a start instant shared by all variants.
// Each vegeta attack measures elapsed time from its own start; the attacks
// of a run start within microseconds of each other but not at once (they are
// goroutines), so without the shift request seq could leave for one variant
// a scheduling delay later than for another.
type anchoredPacer struct {
	inner vegeta.Pacer
	lag   time.Duration // how long after the shared start this attack began
}

func (p anchoredPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	return p.inner.Pace(elapsed+p.lag, hits)
}

func (p anchoredPacer) Rate(elapsed time.Duration) float64 { return p.inner.Rate(elapsed + p.lag) }
