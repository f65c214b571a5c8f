package sampler

import (
	"math"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/machinecpu"
	"github.com/ratingslab/lab/services/lib/metricname"
)

// Labels and parts the deriver reads; metric names are in services/lib/metricname.
const (
	webserverPartPrefix  = "webserver"
	supervisorPartLabel  = "part"
	dependencyLabel      = "dependency"
	operationLabel       = "operation"
	httpCodeLabel        = "code"
	restoreStartLabel    = "start"
	histogramQuantileP99 = 0.99
)

// Deriver turns successive scrapes into journal samples, one per variant
// per scrape. It is not safe for concurrent use; feed it from one goroutine
// (Sampler.Run's callback).
type Deriver struct {
	variants    []string
	partVariant map[string]string
	// last successful scrape of each part, and when
	last   map[string]Families
	lastAt map[string]time.Time
	// prevAt is the previous tick; parts first seen after the first tick
	// are assumed to have started from zero at that moment.
	prevAt time.Time
	// running totals since sampling began, per variant
	totals map[string]map[string]float64
	// the view per movie when first read, and the acknowledged ratings per
	// movie then, per variant: the zero of view_gap
	viewStart        map[string]map[int64]int64
	ackedAtViewStart map[string]map[int64]uint64
	// the DLQ's end offset when first read, per variant
	dlqStart map[string]int64
	// the latest take-over's mean restore time, per variant
	restore map[string]float64
	// the machine's CPU times at the previous scrape that had them
	machine *machinecpu.Times
}

// NewDeriver derives series for variants from scrapes of targets (used to
// know which part belongs to which variant).
func NewDeriver(variants []string, targets []Target) *Deriver {
	d := &Deriver{
		variants:         append([]string(nil), variants...),
		partVariant:      map[string]string{},
		last:             map[string]Families{},
		lastAt:           map[string]time.Time{},
		totals:           map[string]map[string]float64{},
		viewStart:        map[string]map[int64]int64{},
		ackedAtViewStart: map[string]map[int64]uint64{},
		dlqStart:         map[string]int64{},
		restore:          map[string]float64{},
	}
	for _, t := range targets {
		d.partVariant[t.Part] = t.Variant
	}
	for _, v := range variants {
		d.totals[v] = map[string]float64{}
	}
	return d
}

// partDelta is what one part did since its previous successful scrape.
type partDelta struct {
	cur, prev Families // prev nil: the part starts from zero
	seconds   float64  // length of the interval
}

// Next derives one sample per variant from s and the load generator's tick
// of each variant (ClientMeter.Cut right after the scrape), in variant
// order.
func (d *Deriver) Next(s Scrape, client map[string]ClientTick) []journal.Sample {
	first := d.prevAt.IsZero()
	deltas := map[string]partDelta{}
	for part, fams := range s.Families {
		prev, seen := d.last[part]
		switch {
		case seen:
			deltas[part] = partDelta{cur: fams, prev: prev, seconds: s.At.Sub(d.lastAt[part]).Seconds()}
		case !first:
			// A part that appears mid-run (the load generator, a
			// restarted part) counts from zero since the last tick.
			deltas[part] = partDelta{cur: fams, seconds: s.At.Sub(d.prevAt).Seconds()}
		}
		d.last[part] = fams
		d.lastAt[part] = s.At
	}

	busy, hasBusy := d.machineBusy(s)
	out := make([]journal.Sample, 0, len(d.variants))
	for _, v := range d.variants {
		smp := journal.Sample{At: s.At, Variant: v, Values: map[string]float64{}}
		if hasBusy {
			smp.Set(journal.SeriesMachineCPUBusy, busy) // the same machine under every variant
		}
		tick, hasClient := client[v]
		if hasClient {
			d.client(&smp, tick, first)
		}
		d.server(&smp, deltas, s)
		d.resources(&smp, deltas, s)
		d.log(&smp, s)
		d.view(&smp, s, tick)
		d.health(&smp, s)
		out = append(out, smp)
	}
	d.prevAt = s.At
	return out
}

// machineBusy is the share of the machine's CPU time that was busy since
// the previous scrape that read it.
func (d *Deriver) machineBusy(s Scrape) (float64, bool) {
	if s.Machine == nil {
		return 0, false
	}
	prev := d.machine
	d.machine = s.Machine
	if prev == nil {
		return 0, false
	}
	return s.Machine.BusySince(*prev)
}

// Label is the value of m's label name, "" when it has none.
func Label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// counterSum sums the counter (or untyped) series of fam that match keep.
func counterSum(fams Families, name string, keep func(*dto.Metric) bool) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		if keep != nil && !keep(m) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

// counterDelta is cur − prev, Prometheus style: a drop means the process
// restarted, and the new value is all that happened since.
func counterDelta(pd partDelta, name string, keep func(*dto.Metric) bool) float64 {
	cur := counterSum(pd.cur, name, keep)
	if pd.prev == nil {
		return cur
	}
	prev := counterSum(pd.prev, name, keep)
	if cur < prev {
		return cur
	}
	return cur - prev
}

// buckets is a cumulative histogram: upper bounds ascending, counts
// cumulative, +Inf last.
type buckets struct {
	upper []float64
	count []float64
}

func histogramSum(fams Families, name string, keep func(*dto.Metric) bool) map[float64]float64 {
	f := fams[name]
	if f == nil {
		return nil
	}
	out := map[float64]float64{}
	for _, m := range f.GetMetric() {
		if keep != nil && !keep(m) {
			continue
		}
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) { // the text format lists +Inf; the count says the same
				out[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
		out[math.Inf(1)] += float64(h.GetSampleCount())
	}
	return out
}

// histogramDelta is the bucket-wise difference of two scrapes.
func histogramDelta(pd partDelta, name string, keep func(*dto.Metric) bool) map[float64]float64 {
	cur := histogramSum(pd.cur, name, keep)
	if cur == nil {
		return nil
	}
	var prev map[float64]float64
	if pd.prev != nil {
		prev = histogramSum(pd.prev, name, keep)
	}
	if prev != nil && prev[math.Inf(1)] > cur[math.Inf(1)] {
		prev = nil // restarted
	}
	out := map[float64]float64{}
	for ub, c := range cur {
		out[ub] = c - prev[ub]
	}
	return out
}

func addBuckets(into, from map[float64]float64) map[float64]float64 {
	if from == nil {
		return into
	}
	if into == nil {
		into = map[float64]float64{}
	}
	for ub, c := range from {
		into[ub] += c
	}
	return into
}

// quantile estimates the q-quantile of a cumulative bucket map the way
// PromQL's histogram_quantile does: linear interpolation inside the bucket
// holding the rank; the highest finite bound when it falls in +Inf. ok is
// false when there are no observations.
func quantile(q float64, bm map[float64]float64) (float64, bool) {
	if len(bm) == 0 {
		return 0, false
	}
	var b buckets
	for ub := range bm {
		b.upper = append(b.upper, ub)
	}
	sort.Float64s(b.upper)
	for _, ub := range b.upper {
		b.count = append(b.count, bm[ub])
	}
	// Cumulative counts summed across series must stay monotone; a
	// scrape taken mid-update can break that by one, so clamp.
	for i := 1; i < len(b.count); i++ {
		if b.count[i] < b.count[i-1] {
			b.count[i] = b.count[i-1]
		}
	}
	total := b.count[len(b.count)-1]
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	for i, c := range b.count {
		if c < rank {
			continue
		}
		if math.IsInf(b.upper[i], 1) {
			if i == 0 {
				return 0, false
			}
			return b.upper[i-1], true
		}
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = b.upper[i-1], b.count[i-1]
		}
		inBucket := c - below
		if inBucket <= 0 {
			return b.upper[i], true
		}
		return lower + (b.upper[i]-lower)*(rank-below)/inBucket, true
	}
	return b.upper[len(b.upper)-1], true
}

// client derives the client_* series from the load generator's tick: exact
// counts, percentiles from its per-request latencies. The first tick (taken
// before the load starts) only sets the zero of the cumulative series.
func (d *Deriver) client(smp *journal.Sample, t ClientTick, first bool) {
	smp.Set(journal.SeriesClientInFlight, float64(t.InFlight))
	smp.Set(journal.SeriesClientRequestsTotal, float64(t.Requests))
	smp.Set(journal.SeriesClientErrorsTotal, float64(t.Errors))
	smp.Set(journal.SeriesClientAckedRatings, float64(t.AckedRatings))
	if first {
		return
	}
	seconds := smp.At.Sub(d.prevAt).Seconds()
	all := t.All()
	if seconds > 0 {
		smp.Set(journal.SeriesClientRPS, float64(all.Answered)/seconds)
		smp.Set(journal.SeriesClientErrorRPS, float64(all.Answered-all.AsExpected)/seconds)
	}
	ratio := func(c ClassFigures, name string) {
		if c.Answered > 0 {
			smp.Set(name, float64(c.AsExpected)/float64(c.Answered))
		}
	}
	ratio(all, journal.SeriesClientSuccessRatio)
	ratio(t.ByClass[Reads], journal.SeriesClientReadSuccess)
	ratio(t.ByClass[Writes], journal.SeriesClientWriteSuccess)
	if all.Latency.N() > 0 {
		smp.Set(journal.SeriesClientP50, all.Latency.Quantile(0.50).Seconds())
		smp.Set(journal.SeriesClientP99, all.Latency.Quantile(0.99).Seconds())
	}
}

// restoreRecordSeries names the series of changelog records read by
// restores, by the start label of lab_stream_restore_changelog_records_total.
var restoreRecordSeries = map[string]string{
	"standby": journal.SeriesRestoreRecordsWarm,
	"scratch": journal.SeriesRestoreRecordsScratch,
}

// server derives the series read from the variant's own parts' /metrics:
// webserver rate and errors, every breaker by name, view freshness.
func (d *Deriver) server(smp *journal.Sample, deltas map[string]partDelta, s Scrape) {
	v := smp.Variant
	var (
		httpAll, http5xx, seconds float64
		httpSeen                  bool
		worst                     = math.Inf(-1)
		transitions               float64
		transSeen                 bool
		fresh                     map[float64]float64
		restored, restoredSeconds float64
		clRead                    = map[string]float64{} // changelog records read by restores, by start
	)
	parts := make([]string, 0, len(s.Families))
	for part := range s.Families {
		parts = append(parts, part)
	}
	sort.Strings(parts)
	for _, part := range parts {
		if d.partVariant[part] != v {
			continue
		}
		fams := s.Families[part]
		if f := fams[metricname.BreakerState]; f != nil {
			for _, m := range f.GetMetric() {
				state := m.GetGauge().GetValue()
				dep := Label(m, dependencyLabel)
				if op := Label(m, operationLabel); op != "" {
					dep += " " + op + "s" // one breaker per operation: "ratings-rpc reads"
				}
				smp.Set(journal.BreakerSeries(part, dep), state)
				worst = max(worst, state)
			}
		}
		pd, has := deltas[part]
		if !has {
			continue
		}
		if strings.HasPrefix(part, webserverPartPrefix) && fams[metricname.HTTPRequestsTotal] != nil {
			httpSeen = true
			seconds = max(seconds, pd.seconds)
			httpAll += counterDelta(pd, metricname.HTTPRequestsTotal, nil)
			http5xx += counterDelta(pd, metricname.HTTPRequestsTotal, func(m *dto.Metric) bool {
				return strings.HasPrefix(Label(m, httpCodeLabel), "5")
			})
		}
		if fams[metricname.BreakerTransitionsTotal] != nil {
			transSeen = true
			transitions += counterDelta(pd, metricname.BreakerTransitionsTotal, nil)
		}
		fresh = addBuckets(fresh, histogramDelta(pd, metricname.ViewFreshnessSeconds, nil))
		if n, sum := histogramCountSumDelta(pd, metricname.StreamRestoreDurationSeconds); n > 0 {
			restored += n
			restoredSeconds += sum
		}
		if fams[metricname.StreamRestoreChangelogRecordsTotal] != nil {
			for start, series := range restoreRecordSeries {
				clRead[series] += counterDelta(pd, metricname.StreamRestoreChangelogRecordsTotal, func(m *dto.Metric) bool {
					return Label(m, restoreStartLabel) == start
				})
			}
		}
	}
	for series, n := range clRead {
		d.totals[v][series] += n
		smp.Set(series, d.totals[v][series])
	}
	if restored > 0 {
		d.restore[v] = restoredSeconds / restored
	}
	if r, ok := d.restore[v]; ok {
		smp.Set(journal.SeriesRestoreSeconds, r)
	}
	if httpSeen && seconds > 0 {
		smp.Set(journal.SeriesServerRPS, httpAll/seconds)
		if httpAll > 0 {
			smp.Set(journal.SeriesServerErrorRatio, http5xx/httpAll)
		}
	}
	if !math.IsInf(worst, -1) {
		smp.Set(journal.SeriesBreakerState, worst)
	}
	if transSeen {
		d.totals[v][journal.SeriesBreakerTransitions] += transitions
		smp.Set(journal.SeriesBreakerTransitions, d.totals[v][journal.SeriesBreakerTransitions])
	}
	if q, has := quantile(histogramQuantileP99, fresh); has {
		smp.Set(journal.SeriesFreshnessP99, q)
	}
}

// log derives consumer_lag and dlq_records_total from what the sampler
// read from outside the processes (the broker, the consumer's store): null
// when either could not be read.
func (d *Deriver) log(smp *journal.Sample, s Scrape) {
	v := smp.Variant
	if l, ok := s.Lags[v]; ok {
		if l.Known() {
			smp.Set(journal.SeriesConsumerLag, float64(l.Total))
		} else {
			smp.SetUnknown(journal.SeriesConsumerLag)
		}
	}
	if r, ok := s.DLQ[v]; ok {
		if r.Err != "" {
			smp.SetUnknown(journal.SeriesDLQRecords)
			return
		}
		start, seen := d.dlqStart[v]
		if !seen {
			d.dlqStart[v], start = r.End, r.End
		}
		smp.Set(journal.SeriesDLQRecords, float64(r.End-start))
	}
}

// view derives view_count_total, view_gap (acknowledged, not yet visible)
// and view_unacknowledged (visible, never acknowledged), per movie, since
// the view was first read. A rating acknowledged before the view read began
// should be in it (AckedBefore, when the sampler has it), so the gap does
// not count ratings acknowledged while the pages were being read; a rating
// visible in the read was committed before it ended, so the unacknowledged
// ones are counted against the acknowledgements at the tick's cut.
func (d *Deriver) view(smp *journal.Sample, s Scrape, t ClientTick) {
	v := smp.Variant
	vt, ok := s.Views[v]
	if !ok {
		return
	}
	if vt.Err != "" {
		smp.SetUnknown(journal.SeriesViewGap)
		smp.SetUnknown(journal.SeriesViewUnacknowledged)
		return
	}
	smp.Set(journal.SeriesViewCount, float64(vt.Count))
	if t.AckedByMovie == nil {
		return // no load generator: nothing to compare with
	}
	ackedBefore := s.AckedBefore[v]
	if ackedBefore == nil {
		ackedBefore = t.AckedByMovie
	}
	if _, seen := d.viewStart[v]; !seen {
		d.viewStart[v] = vt.Movies
		d.ackedAtViewStart[v] = ackedBefore
	}
	start, ackedStart := d.viewStart[v], d.ackedAtViewStart[v]
	var pending, extra int64
	movies := map[int64]bool{}
	for id := range vt.Movies {
		movies[id] = true
	}
	for id := range t.AckedByMovie {
		movies[id] = true
	}
	for id := range movies {
		grown := vt.Movies[id] - start[id]
		if acked := int64(ackedBefore[id]) - int64(ackedStart[id]); acked > grown {
			pending += acked - grown
		}
		if acked := int64(t.AckedByMovie[id]) - int64(ackedStart[id]); grown > acked {
			extra += grown - acked
		}
	}
	smp.Set(journal.SeriesViewGap, float64(pending))
	smp.Set(journal.SeriesViewUnacknowledged, float64(extra))
}

// health derives parts_down (from the supervisor's lab_part_up) and
// scrape_errors.
func (d *Deriver) health(smp *journal.Sample, s Scrape) {
	v := smp.Variant
	errs := 0
	for part := range s.Errors {
		if d.partVariant[part] == v {
			errs++
		}
	}
	smp.Set(journal.SeriesScrapeErrors, float64(errs))
	for _, fams := range s.Families {
		f := fams[metricname.PartUp]
		if f == nil {
			continue
		}
		down := 0.0
		for _, m := range f.GetMetric() {
			if d.partVariant[Label(m, supervisorPartLabel)] == v && m.GetGauge().GetValue() == 0 {
				down++
			}
		}
		smp.Set(journal.SeriesPartsDown, down)
	}
}

// histogramCountSumDelta is how many observations a histogram (all its
// series) got since the part's previous scrape, and their sum.
func histogramCountSumDelta(pd partDelta, name string) (count, sum float64) {
	at := func(fams Families) (n, s float64) {
		f := fams[name]
		if f == nil {
			return 0, 0
		}
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				n += float64(h.GetSampleCount())
				s += h.GetSampleSum()
			}
		}
		return n, s
	}
	count, sum = at(pd.cur)
	if pd.prev == nil {
		return count, sum
	}
	pn, ps := at(pd.prev)
	if count < pn { // restarted: all it has is new
		return count, sum
	}
	return count - pn, sum - ps
}
