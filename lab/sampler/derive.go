package sampler

import (
	"math"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/lab/journal"
)

// Metric names read by the deriver (docs/architecture.md).
const (
	metricLoadRequests   = "lab_load_requests_total"
	metricLoadDuration   = "lab_load_request_duration_seconds"
	metricLoadInFlight   = "lab_load_in_flight_requests"
	metricHTTPRequests   = "lab_http_requests_total"
	metricBreakerState   = "lab_breaker_state"
	metricBreakerTrans   = "lab_breaker_transitions_total"
	metricConsumerLag    = "lab_kafka_consumer_lag_messages"
	metricViewFreshness  = "lab_view_freshness_seconds"
	metricDLQ            = "lab_dlq_messages_total"
	metricPartUp         = "lab_part_up"
	outcomeAcknowledged  = "acknowledged"
	outcomeFailed        = "failed"
	outcomeAmbiguous     = "ambiguous"
	kindRating           = "rating"
	loadVariantLabel     = "variant"
	webserverPartPrefix  = "webserver"
	supervisorPartLabel  = "part"
	httpCodeLabel        = "code"
	loadKindLabel        = "kind"
	loadOutcomeLabel     = "outcome"
	histogramQuantileP50 = 0.50
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
	// first view count per variant, for view_gap
	viewStart map[string]int64
	// client acked ratings when the view was first read, per variant
	ackedAtViewStart map[string]float64
	// parts that have reported consumer lag: while one of them cannot be
	// read, the variant's lag is unknown, not the sum of the others
	lagParts map[string]bool
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
		viewStart:        map[string]int64{},
		ackedAtViewStart: map[string]float64{},
		lagParts:         map[string]bool{},
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

// Next derives one sample per variant from s, in variant order.
func (d *Deriver) Next(s Scrape) []journal.Sample {
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

	out := make([]journal.Sample, 0, len(d.variants))
	for _, v := range d.variants {
		smp := journal.Sample{At: s.At, Variant: v, Values: map[string]float64{}}
		d.client(&smp, deltas, s)
		d.server(&smp, deltas, s)
		d.view(&smp, s)
		d.health(&smp, s)
		out = append(out, smp)
	}
	d.prevAt = s.At
	return out
}

// isLoad reports whether a part's series carry their own variant label.
func isLoad(fams Families) bool {
	_, ok := fams[metricLoadRequests]
	return ok
}

func labelOf(m *dto.Metric, name string) string {
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

// client derives the client_* series from the load generator's metrics.
func (d *Deriver) client(smp *journal.Sample, deltas map[string]partDelta, s Scrape) {
	v := smp.Variant
	ofVariant := func(m *dto.Metric) bool { return labelOf(m, loadVariantLabel) == v }
	withOutcome := func(outcomes ...string) func(*dto.Metric) bool {
		return func(m *dto.Metric) bool {
			if !ofVariant(m) {
				return false
			}
			o := labelOf(m, loadOutcomeLabel)
			for _, want := range outcomes {
				if o == want {
					return true
				}
			}
			return false
		}
	}
	var (
		found              bool
		seconds            float64
		all, ok, errs, ack float64
		lat                map[float64]float64
		inFlight           float64
		inFlightSeen       bool
	)
	for part, fams := range s.Families {
		if !isLoad(fams) {
			continue
		}
		if f := fams[metricLoadInFlight]; f != nil {
			for _, m := range f.GetMetric() {
				if ofVariant(m) {
					inFlight += m.GetGauge().GetValue()
					inFlightSeen = true
				}
			}
		}
		pd, has := deltas[part]
		if !has {
			continue
		}
		found = true
		seconds = max(seconds, pd.seconds)
		all += counterDelta(pd, metricLoadRequests, ofVariant)
		ok += counterDelta(pd, metricLoadRequests, withOutcome(outcomeAcknowledged))
		errs += counterDelta(pd, metricLoadRequests, withOutcome(outcomeFailed, outcomeAmbiguous))
		ack += counterDelta(pd, metricLoadRequests, func(m *dto.Metric) bool {
			return withOutcome(outcomeAcknowledged)(m) && labelOf(m, loadKindLabel) == kindRating
		})
		lat = addBuckets(lat, histogramDelta(pd, metricLoadDuration, ofVariant))
	}
	if inFlightSeen {
		smp.Set(journal.SeriesClientInFlight, inFlight)
	}
	if !found || seconds <= 0 {
		return
	}
	tot := d.totals[v]
	tot[journal.SeriesClientErrorsTotal] += errs
	tot[journal.SeriesClientRequestsTotal] += all
	tot[journal.SeriesClientAckedRatings] += ack
	for _, name := range []string{journal.SeriesClientErrorsTotal, journal.SeriesClientRequestsTotal, journal.SeriesClientAckedRatings} {
		smp.Set(name, tot[name])
	}
	smp.Set(journal.SeriesClientRPS, all/seconds)
	smp.Set(journal.SeriesClientErrorRPS, errs/seconds)
	if ok+errs > 0 {
		smp.Set(journal.SeriesClientSuccessRatio, ok/(ok+errs))
	}
	if q, has := quantile(histogramQuantileP50, lat); has {
		smp.Set(journal.SeriesClientP50, q)
	}
	if q, has := quantile(histogramQuantileP99, lat); has {
		smp.Set(journal.SeriesClientP99, q)
	}
}

// server derives the series read from the variant's own parts.
func (d *Deriver) server(smp *journal.Sample, deltas map[string]partDelta, s Scrape) {
	v := smp.Variant
	var (
		httpAll, http5xx, seconds float64
		httpSeen                  bool
		breaker                   = -1.0
		transitions               float64
		transSeen                 bool
		lag                       float64
		lagSeen                   bool
		fresh                     map[float64]float64
		dlq, dlqSeconds           float64
		dlqSeen                   bool
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
		if f := fams[metricBreakerState]; f != nil {
			for _, m := range f.GetMetric() {
				breaker = max(breaker, m.GetGauge().GetValue())
			}
		}
		if f := fams[metricConsumerLag]; f != nil {
			d.lagParts[part] = true
			lagSeen = true
			for _, m := range f.GetMetric() {
				lag += m.GetGauge().GetValue()
			}
		}
		pd, has := deltas[part]
		if !has {
			continue
		}
		if strings.HasPrefix(part, webserverPartPrefix) && fams[metricHTTPRequests] != nil {
			httpSeen = true
			seconds = max(seconds, pd.seconds)
			httpAll += counterDelta(pd, metricHTTPRequests, nil)
			http5xx += counterDelta(pd, metricHTTPRequests, func(m *dto.Metric) bool {
				return strings.HasPrefix(labelOf(m, httpCodeLabel), "5")
			})
		}
		if fams[metricBreakerTrans] != nil {
			transSeen = true
			transitions += counterDelta(pd, metricBreakerTrans, nil)
		}
		fresh = addBuckets(fresh, histogramDelta(pd, metricViewFreshness, nil))
		if fams[metricDLQ] != nil {
			dlqSeen = true
			dlq += counterDelta(pd, metricDLQ, nil)
			dlqSeconds = max(dlqSeconds, pd.seconds)
		}
	}
	if httpSeen && seconds > 0 {
		smp.Set(journal.SeriesServerRPS, httpAll/seconds)
		if httpAll > 0 {
			smp.Set(journal.SeriesServerErrorRatio, http5xx/httpAll)
		}
	}
	if breaker >= 0 {
		smp.Set(journal.SeriesBreakerState, breaker)
	}
	if transSeen {
		d.totals[v][journal.SeriesBreakerTransitions] += transitions
		smp.Set(journal.SeriesBreakerTransitions, d.totals[v][journal.SeriesBreakerTransitions])
	}
	for part := range d.lagParts {
		if _, ok := s.Families[part]; !ok && d.partVariant[part] == v {
			lagSeen = false // a consumer is down or stopped: its lag is unknown
		}
	}
	if lagSeen {
		smp.Set(journal.SeriesConsumerLag, lag)
	}
	if q, has := quantile(histogramQuantileP99, fresh); has {
		smp.Set(journal.SeriesFreshnessP99, q)
	}
	if dlqSeen && dlqSeconds > 0 {
		smp.Set(journal.SeriesDLQRPS, dlq/dlqSeconds)
	}
}

// view derives view_count_total and view_gap.
func (d *Deriver) view(smp *journal.Sample, s Scrape) {
	v := smp.Variant
	vt, ok := s.Views[v]
	if !ok || vt.Err != "" {
		return
	}
	smp.Set(journal.SeriesViewCount, float64(vt.Count))
	acked := d.totals[v][journal.SeriesClientAckedRatings]
	start, seen := d.viewStart[v]
	if !seen {
		d.viewStart[v] = vt.Count
		d.ackedAtViewStart[v] = acked
		start = vt.Count
	}
	gap := (acked - d.ackedAtViewStart[v]) - float64(vt.Count-start)
	smp.Set(journal.SeriesViewGap, gap)
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
		f := fams[metricPartUp]
		if f == nil {
			continue
		}
		down := 0.0
		for _, m := range f.GetMetric() {
			if d.partVariant[labelOf(m, supervisorPartLabel)] == v && m.GetGauge().GetValue() == 0 {
				down++
			}
		}
		smp.Set(journal.SeriesPartsDown, down)
	}
}
