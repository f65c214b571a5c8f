package chaos

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/latency"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/sampler"
	"github.com/ratingslab/lab/services/lib/metricname"
)

// The store reads two histograms: the parts' view freshness
// (metricname.ViewFreshnessSeconds), so a window's freshness quantile is
// computed from the window's own observations rather than guessed from
// per-second quantiles; and the load generator's own latency
// (metricname.LoadRequestDurationSeconds), read once at the end for the
// dashboard figure beside the exact one.

// tick is one variant's second: the journal sample plus what the windows
// need — the load generator's answers of that second (exact counts and
// latencies) and the freshness histogram's delta.
type tick struct {
	at     time.Time
	sample journal.Sample
	client sampler.ClientTick
	fresh  buckets // view freshness observations in this tick
}

// store keeps every tick of a run, per variant. The sampler goroutine adds;
// the runner reads.
type store struct {
	mu          sync.Mutex
	variants    []string
	partVariant map[string]string
	ticks       map[string][]tick
	lastHist    map[string]buckets // last cumulative histogram per "metric/part"
}

func newStore(variants []string, targets []sampler.Target) *store {
	s := &store{variants: variants, partVariant: map[string]string{}, ticks: map[string][]tick{}, lastHist: map[string]buckets{}}
	for _, t := range targets {
		s.partVariant[t.Part] = t.Variant
	}
	return s
}

// add records one scrape, the samples derived from it and the load
// generator's ticks cut right after it.
func (s *store) add(sc sampler.Scrape, samples []journal.Sample, client map[string]sampler.ClientTick) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := map[string]buckets{}
	for part, fams := range sc.Families {
		v := s.partVariant[part]
		if f := fams[metricname.ViewFreshnessSeconds]; f != nil {
			if fresh[v] == nil {
				fresh[v] = buckets{}
			}
			fresh[v].add(s.histDelta(metricname.ViewFreshnessSeconds+"/"+part, histogram(f, nil)))
		}
	}
	for _, smp := range samples {
		v := smp.Variant
		t := tick{at: smp.At, sample: smp, client: client[v], fresh: fresh[v]}
		if t.fresh == nil {
			t.fresh = buckets{}
		}
		s.ticks[v] = append(s.ticks[v], t)
	}
}

// histDelta returns what a cumulative histogram gained since the last tick.
func (s *store) histDelta(key string, cur buckets) buckets {
	prev, seen := s.lastHist[key]
	s.lastHist[key] = cur
	if !seen {
		// First sight: the sampler starts before the load, so whatever a
		// part counted before is not the run's.
		return buckets{}
	}
	return delta(cur, prev)
}

// histogram sums the histogram series of a family that match keep.
func histogram(f *dto.MetricFamily, keep func(*dto.Metric) bool) buckets {
	out := buckets{}
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		if keep != nil && !keep(m) {
			continue
		}
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		for _, b := range h.GetBucket() {
			if math.IsInf(b.GetUpperBound(), 1) {
				continue
			}
			out[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		out[math.Inf(1)] += float64(h.GetSampleCount())
	}
	return out
}

// samples returns every tick's journal sample, in time order per variant.
func (s *store) samples() []journal.Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []journal.Sample
	for _, v := range s.variants {
		for _, t := range s.ticks[v] {
			out = append(out, t.sample)
		}
	}
	return out
}

// latest returns the newest sample of a variant.
func (s *store) latest(v string) (journal.Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.ticks[v]
	if len(ts) == 0 {
		return journal.Sample{}, false
	}
	return ts[len(ts)-1].sample, true
}

// window sums a variant's ticks in (from, to].
// trailing is a variant's window of the last d before end (trailingOf).
func (s *store) trailing(v string, end time.Time, d time.Duration) window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return trailingOf(s.ticks[v], end, d)
}

// ticksOf returns a copy of a variant's ticks.
func (s *store) ticksOf(v string) []tick {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tick(nil), s.ticks[v]...)
}

// window is what the probes read over a stretch of time.
type window struct {
	from, to time.Time
	ticks    int
	// byClass are the load generator's answers in the window (exact).
	byClass    [2]sampler.ClassFigures
	inFlight   float64 // most requests in flight at any tick
	fresh      buckets
	lag, gap   float64 // worst (highest) known value seen
	lagN, gapN int
	// lagUnknown: seconds in which the lag could not be measured.
	lagUnknown int
	lastLag    float64
	lastGap    float64
	lastLagOK  bool
	lastGapOK  bool
	lastDLQ    float64 // records in ratings-dlq since sampling began
	lastDLQOK  bool
}

// trailingOf is the window of the last d before end, d a whole number of
// sampling seconds. A tick stands for the second before it, and each is cut
// after its scrape, so cuts jitter by milliseconds: the tick 5 s before a
// tick may be 4.99 s before it. A tick within half a second after end−d
// covers mostly the second before the window and is left out, so a 5 s
// window holds 5 ticks, never 6.
func trailingOf(ts []tick, end time.Time, d time.Duration) window {
	return windowOf(ts, end.Add(-d+time.Second/2), end)
}

func windowOf(ts []tick, from, to time.Time) window {
	w := window{from: from, to: to, fresh: buckets{}}
	for _, t := range ts {
		if !t.at.After(from) || t.at.After(to) {
			continue
		}
		w.ticks++
		for c := range w.byClass {
			w.byClass[c] = mergeFigures(w.byClass[c], t.client.ByClass[c])
		}
		w.fresh.add(t.fresh)
		w.inFlight = math.Max(w.inFlight, float64(t.client.InFlight))
		if l, ok := t.sample.Get(journal.SeriesConsumerLag); ok {
			if w.lagN == 0 || l > w.lag {
				w.lag = l
			}
			w.lagN++
			w.lastLag, w.lastLagOK = l, true
		} else {
			if t.sample.IsUnknown(journal.SeriesConsumerLag) {
				w.lagUnknown++
			}
			w.lastLagOK = false
		}
		if g, ok := t.sample.Get(journal.SeriesViewGap); ok {
			if w.gapN == 0 || g > w.gap {
				w.gap = g
			}
			w.gapN++
			w.lastGap, w.lastGapOK = g, true
		} else {
			w.lastGapOK = false
		}
		if d, ok := t.sample.Get(journal.SeriesDLQRecords); ok {
			w.lastDLQ, w.lastDLQOK = d, true
		} else {
			w.lastDLQOK = false
		}
	}
	return w
}

func mergeFigures(a, b sampler.ClassFigures) sampler.ClassFigures {
	out := sampler.ClassFigures{Answered: a.Answered + b.Answered, AsExpected: a.AsExpected + b.AsExpected,
		Unexpected4xx: a.Unexpected4xx + b.Unexpected4xx, Latency: latency.Merge(a.Latency, b.Latency), Outcomes: map[load.Outcome]uint64{}}
	for o, n := range a.Outcomes {
		out.Outcomes[o] += n
	}
	for o, n := range b.Outcomes {
		out.Outcomes[o] += n
	}
	return out
}

// all merges the window's classes.
func (w window) all() sampler.ClassFigures { return mergeFigures(w.byClass[0], w.byClass[1]) }

// measure is one probe's value over a window. noData means the probe could
// not be measured; ok then says whether that is acceptable.
type measure struct {
	value  float64
	text   string
	noData bool
}

// measureWindow reads a windowed probe.
func (k probeKind) measureWindow(w window) measure {
	all := w.all()
	name := k.name
	if r, ok := strings.CutPrefix(name, "read_"); ok {
		all, name = w.byClass[sampler.Reads], r
	}
	noAnswers := func() measure {
		if w.inFlight > 0 {
			// Requests hang: a stall is the opposite of steady.
			return measure{noData: true, text: fmt.Sprintf("no answers (%.0f in flight)", w.inFlight)}
		}
		return measure{noData: true, text: "no requests"}
	}
	switch name {
	case "success_rate":
		if all.Answered == 0 {
			return noAnswers()
		}
		v := float64(all.AsExpected) / float64(all.Answered)
		text := k.format(v)
		if all.Unexpected4xx > 0 {
			text += fmt.Sprintf(" (%d unexpected 4xx)", all.Unexpected4xx)
		}
		return measure{value: v, text: text}
	case "p99_latency":
		if all.Latency.N() == 0 {
			return noAnswers()
		}
		q := all.Latency.Quantile(0.99).Seconds()
		return measure{value: q, text: k.format(q)}
	case "consumer_lag":
		if w.lagUnknown > 0 {
			return measure{noData: true, text: fmt.Sprintf("unknown for %d s (the broker or the consumer's store could not be read)", w.lagUnknown)}
		}
		if w.lagN == 0 {
			return measure{noData: true, text: "no data (lag not measured)"}
		}
		return measure{value: w.lag, text: k.format(w.lag)}
	case "freshness":
		q, ok := w.fresh.quantile(0.99)
		if !ok {
			return measure{noData: true, text: "no data (no rating reached the view)"}
		}
		return measure{value: q, text: "≈" + k.format(q)}
	case "view_gap":
		if w.gapN == 0 {
			return measure{noData: true, text: "no data (the view could not be read)"}
		}
		return measure{value: w.gap, text: k.format(w.gap)}
	}
	return measure{noData: true, text: "not measured over windows"}
}

// acceptable says whether a measure satisfies a bound. No data fails,
// except "no requests" (nothing was asked of the variant).
func (m measure) acceptable(b bound) bool {
	if m.noData {
		return m.text == "no requests"
	}
	return b.holds(m.value)
}

// measureFinal reads a probe after the drain: the last lag, view gap and
// dead-letter count, and the audit's findings.
func (k probeKind) measureFinal(last window, results []audit.Result) measure {
	switch k.name {
	case "consumer_lag":
		if !last.lastLagOK {
			return measure{noData: true, text: "unknown (the broker or the consumer's store could not be read)"}
		}
		return measure{value: last.lastLag, text: k.format(last.lastLag)}
	case "view_gap":
		if !last.lastGapOK {
			return measure{noData: true, text: "no data (the view could not be read)"}
		}
		return measure{value: last.lastGap, text: k.format(last.lastGap)}
	case "dead_letters":
		if !last.lastDLQOK {
			return measure{noData: true, text: "unknown (the broker could not be read)"}
		}
		return measure{value: last.lastDLQ, text: k.format(last.lastDLQ)}
	case "lost_writes", "duplicates", "phantoms", "ambiguous", "retried", "audit":
		return k.measureAudit(results)
	}
	return measure{noData: true, text: "not measured after the drain"}
}

// measureAudit reads the audit's findings for a variant, per source.
func (k probeKind) measureAudit(results []audit.Result) measure {
	var worst float64
	var texts []string
	var problems string
	checked := 0
	for _, r := range results {
		if !r.Checked {
			problems = joinNonEmpty("; ", problems, r.Source+": "+r.Error)
			continue
		}
		checked++
		var v float64
		text := ""
		switch k.name {
		case "lost_writes":
			v = float64(r.Lost)
		case "duplicates":
			v = float64(r.Duplicates)
		case "phantoms":
			v = float64(r.Phantoms)
		case "ambiguous":
			text = fmt.Sprintf("%d: %d applied, %d not", r.Ambiguous, r.AmbiguousApplied, r.AmbiguousNotApplied)
		case "retried":
			v = float64(r.Retried)
			text = fmt.Sprintf("%d (%d resends), %d doubled", r.Retried, r.Retries, r.RetriedDoubled)
		case "audit":
			if !r.OK {
				v = 1
				text = fmt.Sprintf("lost %d, duplicates %d, phantoms %d, sum mismatches %d, unexpected 4xx %d",
					r.Lost, r.Duplicates, r.Phantoms, r.SumMismatches, r.UnexpectedRejections)
				if rq := r.Requests; rq != nil && !rq.OK() {
					text += fmt.Sprintf("; by request id: lost %d, phantoms %d, altered %d", rq.Lost, rq.Phantoms, rq.Altered)
				}
			} else {
				text = "nothing found"
			}
		}
		if text == "" {
			text = k.format(v)
		}
		worst = math.Max(worst, v)
		texts = append(texts, text+" ("+r.Source+")")
	}
	if checked == 0 {
		return measure{noData: true, text: "audit could not read the variant: " + problems}
	}
	out := measure{value: worst, text: joinNonEmpty(", ", texts...)}
	if problems != "" {
		out.text += " (unread: " + problems + ")"
	}
	return out
}
