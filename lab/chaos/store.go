package chaos

import (
	"fmt"
	"math"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/sampler"
)

// Metric names the store reads beyond the journal's derived series: the
// histograms, so that a window's quantile is computed from the window's own
// observations rather than guessed from per-second quantiles.
const (
	metricLoadLatency = "lab_load_request_duration_seconds"
	metricFreshness   = "lab_view_freshness_seconds"
	loadPart          = "load" // the sampler target of the in-process load engine
)

// tick is one variant's second: the journal sample plus what the windows
// need (answers and errors in that second, histogram deltas).
type tick struct {
	at       time.Time
	sample   journal.Sample
	answered float64 // client answers in this tick
	errors   float64 // failed + ambiguous in this tick
	latency  buckets // client latency observations in this tick
	fresh    buckets // view freshness observations in this tick
}

// store keeps every tick of a run, per variant. The sampler goroutine adds;
// the runner reads.
type store struct {
	mu          sync.Mutex
	variants    []string
	partVariant map[string]string
	ticks       map[string][]tick
	totals      map[string][2]float64 // last cumulative answers, errors per variant
	lastHist    map[string]buckets    // last cumulative histogram per "metric/part/variant"
}

func newStore(variants []string, targets []sampler.Target) *store {
	s := &store{variants: variants, partVariant: map[string]string{}, ticks: map[string][]tick{},
		totals: map[string][2]float64{}, lastHist: map[string]buckets{}}
	for _, t := range targets {
		s.partVariant[t.Part] = t.Variant
	}
	return s
}

// add records one scrape and the samples derived from it.
func (s *store) add(sc sampler.Scrape, samples []journal.Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, smp := range samples {
		v := smp.Variant
		t := tick{at: smp.At, sample: smp, latency: buckets{}, fresh: buckets{}}
		prev := s.totals[v]
		if ans, ok := smp.Get(journal.SeriesClientRequestsTotal); ok {
			t.answered = math.Max(0, ans-prev[0])
			prev[0] = ans
		}
		if errs, ok := smp.Get(journal.SeriesClientErrorsTotal); ok {
			t.errors = math.Max(0, errs-prev[1])
			prev[1] = errs
		}
		s.totals[v] = prev
		if fams, ok := sc.Families[loadPart]; ok {
			t.latency = s.histDelta(metricLoadLatency+"/"+v, histogram(fams[metricLoadLatency], func(m *dto.Metric) bool { return label(m, "variant") == v }))
		}
		for part, fams := range sc.Families {
			if s.partVariant[part] != v {
				continue
			}
			if f := fams[metricFreshness]; f != nil {
				t.fresh.add(s.histDelta(metricFreshness+"/"+part, histogram(f, nil)))
			}
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

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
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
func (s *store) window(v string, from, to time.Time) window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return windowOf(s.ticks[v], from, to)
}

// ticksOf returns a copy of a variant's ticks.
func (s *store) ticksOf(v string) []tick {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tick(nil), s.ticks[v]...)
}

// window is what the probes read over a stretch of time.
type window struct {
	from, to  time.Time
	ticks     int
	answered  float64
	errors    float64
	inFlight  float64 // most requests in flight at any tick
	latency   buckets
	fresh     buckets
	lag, gap  float64 // worst (highest) value seen
	lagN      int
	gapN      int
	lastLag   float64
	lastGap   float64
	lastLagOK bool
	lastGapOK bool
}

func windowOf(ts []tick, from, to time.Time) window {
	w := window{from: from, to: to, latency: buckets{}, fresh: buckets{}}
	for _, t := range ts {
		if !t.at.After(from) || t.at.After(to) {
			continue
		}
		w.ticks++
		w.answered += t.answered
		w.errors += t.errors
		w.latency.add(t.latency)
		w.fresh.add(t.fresh)
		if f, ok := t.sample.Get(journal.SeriesClientInFlight); ok {
			w.inFlight = math.Max(w.inFlight, f)
		}
		if l, ok := t.sample.Get(journal.SeriesConsumerLag); ok {
			if w.lagN == 0 || l > w.lag {
				w.lag = l
			}
			w.lagN++
			w.lastLag, w.lastLagOK = l, true
		} else {
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
	}
	return w
}

// measure is one probe's value over a window. noData means the probe could
// not be measured; ok then says whether that is acceptable.
type measure struct {
	value  float64
	text   string
	noData bool
}

// measureWindow reads a windowed probe.
func (k probeKind) measureWindow(w window) measure {
	noAnswers := func() measure {
		if w.inFlight > 0 {
			// Requests hang: a stall is the opposite of steady.
			return measure{noData: true, text: fmt.Sprintf("no answers (%.0f in flight)", w.inFlight)}
		}
		return measure{noData: true, text: "no requests"}
	}
	switch k.name {
	case "success_rate":
		if w.answered == 0 {
			return noAnswers()
		}
		v := 1 - w.errors/w.answered
		return measure{value: v, text: k.format(v)}
	case "p99_latency":
		q, ok := w.latency.quantile(0.99)
		if !ok {
			return noAnswers()
		}
		return measure{value: q, text: k.format(q)}
	case "consumer_lag":
		if w.lagN == 0 {
			return measure{noData: true, text: "no data (no consumer reported lag)"}
		}
		return measure{value: w.lag, text: k.format(w.lag)}
	case "freshness":
		q, ok := w.fresh.quantile(0.99)
		if !ok {
			return measure{noData: true, text: "no data (no rating reached the view)"}
		}
		return measure{value: q, text: k.format(q)}
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

// measureFinal reads a probe after the drain: the last lag and view gap,
// and the audit's findings.
func (k probeKind) measureFinal(last window, results []audit.Result) measure {
	switch k.name {
	case "consumer_lag":
		if !last.lastLagOK {
			return measure{noData: true, text: "no data (no consumer reported lag)"}
		}
		return measure{value: last.lastLag, text: k.format(last.lastLag)}
	case "view_gap":
		if !last.lastGapOK {
			return measure{noData: true, text: "no data (the view could not be read)"}
		}
		return measure{value: last.lastGap, text: k.format(last.lastGap)}
	case "lost_writes", "duplicates", "audit":
		var worst float64
		var text, problems string
		checked := 0
		for _, r := range results {
			if !r.Checked {
				problems = joinNonEmpty("; ", problems, r.Source+": "+r.Error)
				continue
			}
			checked++
			var v float64
			switch k.name {
			case "lost_writes":
				v = float64(r.Lost)
			case "duplicates":
				v = float64(r.Duplicates)
			case "audit":
				if !r.OK {
					v = 1
					problems = joinNonEmpty("; ", problems, fmt.Sprintf("%s: lost %d, duplicates %d, phantoms %d, sum mismatches %d",
						r.Source, r.Lost, r.Duplicates, r.Phantoms, r.SumMismatches))
				}
			}
			worst = math.Max(worst, v)
			if k.name != "audit" {
				text = joinNonEmpty(", ", text, fmt.Sprintf("%s %s", k.format(v), r.Source))
			}
		}
		if checked == 0 {
			return measure{noData: true, text: "audit could not read the variant: " + problems}
		}
		if k.name == "audit" {
			if worst > 0 {
				return measure{value: 1, text: problems}
			}
			return measure{value: 0, text: "ok"}
		}
		if problems != "" {
			text += " (unread: " + problems + ")"
		}
		return measure{value: worst, text: text}
	}
	return measure{noData: true, text: "not measured after the drain"}
}
