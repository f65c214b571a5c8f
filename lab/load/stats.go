package load

import (
	"sync"
	"sync/atomic"
	"time"
)

// variantStats is the running tally of one variant: written by the variant's
// result loop, read by the progress view and the summary.
type variantStats struct {
	sent atomic.Uint64 // requests handed to the attacker (targeter calls)

	mu          sync.Mutex
	done        uint64
	asExpected  uint64
	outcomes    [len(kindNames)][4]uint64
	causes      map[Cause]uint64
	all, window latencyHistogram
	firstSent   time.Time
	lastSent    time.Time
}

func newVariantStats() *variantStats {
	return &variantStats{causes: map[Cause]uint64{}}
}

func (s *variantStats) record(req Request, o Outcome, c Cause, sentAt time.Time, latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done++
	if expected(req, o) {
		s.asExpected++
	}
	s.outcomes[req.Kind][outcomeIndex(o)]++
	if c != CauseNone {
		s.causes[c]++
	}
	s.all.add(latency)
	s.window.add(latency)
	if s.firstSent.IsZero() || sentAt.Before(s.firstSent) {
		s.firstSent = sentAt
	}
	if sentAt.After(s.lastSent) {
		s.lastSent = sentAt
	}
}

// Snapshot is one variant's state at a moment of the run.
type Snapshot struct {
	Variant  string
	Sent     uint64 // requests sent so far
	Done     uint64 // requests with an outcome
	InFlight uint64
	// AsExpected counts 2xx, and 4xx for unknown movies.
	AsExpected uint64
	Outcomes   map[Outcome]uint64
	Causes     map[Cause]uint64
	P50, P99   time.Duration // over the whole run so far
	WindowP99  time.Duration // over answers since the previous snapshot
	WindowDone uint64
}

// snapshot reads the tally; window resets the per-interval histogram.
func (s *variantStats) snapshot(variant string, resetWindow bool) Snapshot {
	sent := s.sent.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{
		Variant:    variant,
		Sent:       sent,
		Done:       s.done,
		AsExpected: s.asExpected,
		Outcomes:   map[Outcome]uint64{},
		Causes:     map[Cause]uint64{},
		P50:        s.all.quantile(0.50),
		P99:        s.all.quantile(0.99),
		WindowP99:  s.window.quantile(0.99),
		WindowDone: s.window.n,
	}
	if sent > s.done {
		snap.InFlight = sent - s.done
	}
	for k := range s.outcomes {
		for i, o := range Outcomes {
			snap.Outcomes[o] += s.outcomes[k][i]
		}
	}
	for c, n := range s.causes {
		snap.Causes[c] = n
	}
	if resetWindow {
		s.window.reset()
	}
	return snap
}
