package sampler

import (
	"sync"
	"time"

	"github.com/ratingslab/lab/lab/latency"
	"github.com/ratingslab/lab/lab/load"
)

// ClientMeter is the load generator's side of the sampling: a load.Observer
// that tallies every request as it is sent and answered, and hands out one
// ClientTick per variant per sampler tick (Cut). Nothing is interpolated:
// counts are exact and percentiles come from the per-request latencies
// (latency.Recorder, within latency.ErrorBound).
type ClientMeter struct {
	mu       sync.Mutex
	variants map[string]*clientVariant
}

// Class splits requests into reads (GET) and writes (POST /api/ratings).
type Class int

const (
	Reads Class = iota
	Writes
	classes
)

// ClassOf is a request kind's class.
func ClassOf(k load.Kind) Class {
	if k == load.KindRating {
		return Writes
	}
	return Reads
}

// ClassFigures count one class's answers in a tick.
type ClassFigures struct {
	Answered, AsExpected, Unexpected4xx uint64
	Outcomes                            map[load.Outcome]uint64
	Latency                             latency.Counts
}

func (c *ClassFigures) add(a load.Answer, rec *latency.Recorder) {
	c.Answered++
	if a.AsExpected() {
		c.AsExpected++
	} else if a.Outcome == load.Rejected {
		c.Unexpected4xx++
	}
	if c.Outcomes == nil {
		c.Outcomes = map[load.Outcome]uint64{}
	}
	c.Outcomes[a.Outcome]++
	rec.Record(a.Latency)
}

// ClientTick is one variant's requests answered since the previous Cut.
type ClientTick struct {
	At time.Time
	// ByClass are the answers of the tick by class.
	ByClass [classes]ClassFigures
	// InFlight: requests sent and not answered at the Cut.
	InFlight uint64
	// Cumulative since the meter began: answers, answers not as expected,
	// acknowledged ratings in all and per movie.
	Requests, Errors, AckedRatings uint64
	AckedByMovie                   map[int64]uint64
}

// All merges the classes.
func (t ClientTick) All() ClassFigures {
	out := ClassFigures{Outcomes: map[load.Outcome]uint64{}}
	for _, c := range t.ByClass {
		out.Answered += c.Answered
		out.AsExpected += c.AsExpected
		out.Unexpected4xx += c.Unexpected4xx
		for o, n := range c.Outcomes {
			out.Outcomes[o] += n
		}
		out.Latency = latency.Merge(out.Latency, c.Latency)
	}
	return out
}

type clientVariant struct {
	sent, answered uint64
	errors, acked  uint64
	ackedByMovie   map[int64]uint64
	cur            [classes]ClassFigures
	rec            [classes]latency.Recorder
}

// NewClientMeter meters the given variants; answers of others are ignored.
func NewClientMeter(variants []string) *ClientMeter {
	m := &ClientMeter{variants: map[string]*clientVariant{}}
	for _, v := range variants {
		m.variants[v] = &clientVariant{ackedByMovie: map[int64]uint64{}}
	}
	return m
}

// Sent implements load.Observer.
func (m *ClientMeter) Sent(variant string, _ uint64) {
	m.mu.Lock()
	if v := m.variants[variant]; v != nil {
		v.sent++
	}
	m.mu.Unlock()
}

// Answered implements load.Observer.
func (m *ClientMeter) Answered(a load.Answer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.variants[a.Variant]
	if v == nil {
		return
	}
	v.answered++
	if !a.AsExpected() {
		v.errors++
	}
	if a.Kind == load.KindRating && a.Outcome == load.Acknowledged {
		v.acked++
		v.ackedByMovie[a.MovieID]++
	}
	c := ClassOf(a.Kind)
	v.cur[c].add(a, &v.rec[c])
}

// Acked returns the acknowledged ratings per movie of every variant so
// far (Sampler.Acked, read before the views).
func (m *ClientMeter) Acked() map[string]map[int64]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]map[int64]uint64, len(m.variants))
	for name, v := range m.variants {
		acked := make(map[int64]uint64, len(v.ackedByMovie))
		for id, n := range v.ackedByMovie {
			acked[id] = n
		}
		out[name] = acked
	}
	return out
}

// Cut ends the current tick of every variant at at and returns them.
func (m *ClientMeter) Cut(at time.Time) map[string]ClientTick {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]ClientTick, len(m.variants))
	for name, v := range m.variants {
		t := ClientTick{At: at, Requests: v.answered, Errors: v.errors, AckedRatings: v.acked,
			AckedByMovie: make(map[int64]uint64, len(v.ackedByMovie))}
		if v.sent > v.answered {
			t.InFlight = v.sent - v.answered
		}
		for id, n := range v.ackedByMovie {
			t.AckedByMovie[id] = n
		}
		for c := range classes {
			t.ByClass[c] = v.cur[c]
			t.ByClass[c].Latency = v.rec[c].Cut()
			v.cur[c] = ClassFigures{}
		}
		out[name] = t
	}
	return out
}
