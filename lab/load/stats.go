package load

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratingslab/lab/lab/latency"
)

// variantStats is the running tally of one variant: written by the variant's
// result loop, read by the progress view and the summary.
type variantStats struct {
	sent atomic.Uint64 // requests handed to the attacker (targeter calls)

	mu          sync.Mutex
	done        uint64
	asExpected  uint64
	unexpected4 uint64 // 4xx to valid requests
	retried     uint64 // ratings sent more than once (RetryPolicy)
	retries     uint64 // the extra sends
	outcomes    [len(kindNames)][4]uint64
	causes      map[Cause]uint64
	all, window latency.Recorder
	firstSent   time.Time
	lastSent    time.Time
}

func newVariantStats() *variantStats {
	return &variantStats{causes: map[Cause]uint64{}}
}

func (s *variantStats) record(a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done++
	if a.AsExpected() {
		s.asExpected++
	} else if a.Outcome == Rejected {
		s.unexpected4++
	}
	s.outcomes[a.Kind][outcomeIndex(a.Outcome)]++
	if a.Retries > 0 {
		s.retried++
		s.retries += uint64(a.Retries)
	}
	if a.Cause != CauseNone {
		s.causes[a.Cause]++
	}
	s.all.Record(a.Latency)
	s.window.Record(a.Latency)
	if s.firstSent.IsZero() || a.SentAt.Before(s.firstSent) {
		s.firstSent = a.SentAt
	}
	if a.SentAt.After(s.lastSent) {
		s.lastSent = a.SentAt
	}
}

// Snapshot is one variant's state at a moment of the run.
type Snapshot struct {
	Variant  string
	Sent     uint64 // requests sent so far
	Done     uint64 // requests with an outcome
	InFlight uint64
	// AsExpected counts 2xx to valid requests and 4xx to the generator's
	// invalid ones; Unexpected4xx the 4xx to valid requests (failures).
	AsExpected    uint64
	Unexpected4xx uint64
	Outcomes      map[Outcome]uint64
	Causes        map[Cause]uint64
	// P50, P99 over the whole run so far; WindowP99 over the answers
	// since the previous snapshot. Within latency.ErrorBound of exact.
	P50, P99   time.Duration
	WindowP99  time.Duration
	WindowDone uint64
}

// snapshot reads the tally; resetWindow starts a new per-interval window.
func (s *variantStats) snapshot(variant string, resetWindow bool) Snapshot {
	sent := s.sent.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.all.Snapshot()
	var window latency.Counts
	if resetWindow {
		window = s.window.Cut()
	} else {
		window = s.window.Snapshot()
	}
	snap := Snapshot{
		Variant:       variant,
		Sent:          sent,
		Done:          s.done,
		AsExpected:    s.asExpected,
		Unexpected4xx: s.unexpected4,
		Outcomes:      map[Outcome]uint64{},
		Causes:        map[Cause]uint64{},
		P50:           all.Quantile(0.50),
		P99:           all.Quantile(0.99),
		WindowP99:     window.Quantile(0.99),
		WindowDone:    window.N(),
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
	return snap
}
