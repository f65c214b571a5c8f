package bench

import "math"

// Search finds the highest rate that holds: it multiplies the rate by
// Factor while steps hold, then bisects between the highest rate held and
// the lowest not held until they are within Precision of each other (or
// MaxSteps ran). It is a pure state machine: the caller runs the steps.
type Search struct {
	lo, hi float64 // highest held (0: none yet), lowest not held (+Inf: none yet)
	next   float64
	steps  int
	cfg    SearchConfig
}

// SearchConfig shapes a Search.
type SearchConfig struct {
	Start     float64 // first rate (req/s)
	Factor    float64 // growth while every step holds (> 1)
	Precision float64 // stop when (hi-lo)/lo is at most this
	MaxSteps  int     // hard bound on steps
	// Quantum rounds every rate to a multiple of it (10/s by default), so
	// rates stay readable and bisection ends.
	Quantum float64
}

// NewSearch starts a search at cfg.Start.
func NewSearch(cfg SearchConfig) *Search {
	if cfg.Quantum <= 0 {
		cfg.Quantum = 10
	}
	s := &Search{hi: math.Inf(1), cfg: cfg}
	s.next = s.round(cfg.Start)
	return s
}

func (s *Search) round(r float64) float64 {
	return math.Max(s.cfg.Quantum, math.Round(r/s.cfg.Quantum)*s.cfg.Quantum)
}

// Next is the rate of the next step; ok is false when the search is done.
func (s *Search) Next() (rate float64, ok bool) {
	if s.Done() {
		return 0, false
	}
	return s.next, true
}

// Done reports whether the search has its answer (or ran out of steps).
func (s *Search) Done() bool {
	switch {
	case s.steps >= s.cfg.MaxSteps:
		return true
	case s.lo == 0 && s.hi <= s.cfg.Quantum:
		return true // not even the smallest rate holds
	case math.IsInf(s.hi, 1):
		return false
	case s.lo > 0 && (s.hi-s.lo)/s.lo <= s.cfg.Precision:
		return true
	}
	return s.hi-s.lo <= s.cfg.Quantum
}

// Record notes how the step at rate ended.
func (s *Search) Record(rate float64, held bool) {
	s.steps++
	if held {
		s.lo = math.Max(s.lo, rate)
	} else {
		s.hi = math.Min(s.hi, rate)
	}
	switch {
	case math.IsInf(s.hi, 1):
		s.next = s.round(s.lo * s.cfg.Factor)
	case s.lo == 0:
		s.next = s.round(s.hi / s.cfg.Factor)
	default:
		s.next = s.round((s.lo + s.hi) / 2)
	}
	if s.next <= s.lo || s.next >= s.hi {
		s.steps = s.cfg.MaxSteps // nothing left between them at this quantum
	}
}

// Best is the highest rate held so far (0: none).
func (s *Search) Best() float64 { return s.lo }

// Bounded reports whether a rate not held was found above Best: without
// one, Best is only a lower bound (the search ran out of steps climbing).
func (s *Search) Bounded() bool { return !math.IsInf(s.hi, 1) }
