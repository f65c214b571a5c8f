package load

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/serve"
)

// Metrics are the client-side view of a run, per variant: what users
// experienced, next to the services' own server-side RED metrics. Names and
// labels are in docs/architecture.md.
type Metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inFlight   *prometheus.GaugeVec
	targetRate *prometheus.GaugeVec
	retries    *prometheus.CounterVec
}

// NewMetrics registers the load metrics with reg, with this process's own
// (CPU, memory), and creates every series of variants at zero, so rate()
// works from the first scrape and a variant that never errs still shows an
// error series.
func NewMetrics(reg prometheus.Registerer, variants []string) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.LoadRequestsTotal,
			Help: "Requests sent by lab load, by variant, kind (rating, movie, list), outcome (acknowledged, rejected, failed, ambiguous) and expected (true: the answer a correct variant gives — 2xx, or 4xx for a request made invalid on purpose).",
		}, []string{"variant", "kind", "outcome", "expected"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricname.LoadRequestDurationSeconds,
			Help:    "Client-side latency of lab load requests, from the moment each was sent, by variant and kind.",
			Buckets: serve.DurationBuckets, // the services' own, so client and server latencies compare bucket for bucket
		}, []string{"variant", "kind"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricname.LoadInFlightRequests,
			Help: "Requests sent by lab load and not answered yet, by variant. Grows while a variant stalls.",
		}, []string{"variant"}),
		targetRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricname.LoadTargetRate,
			Help: "Scheduled arrival rate of lab load in requests per second, by variant.",
		}, []string{"variant"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.LoadRetriesTotal,
			Help: "Ratings lab load sent again with the same request id because the outcome of the previous attempt was unknown (504, no answer), by variant. Zero unless retries are on.",
		}, []string{"variant"}),
	}
	// The generator's own CPU (process_cpu_seconds_total and the rest), for
	// the overview's machine panel: what the instrument costs beside the parts.
	process := collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.targetRate, m.retries, process} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, v := range variants {
		for _, k := range Kinds {
			for _, o := range Outcomes {
				for _, e := range expectedLabels {
					m.requests.WithLabelValues(v, k.String(), string(o), e)
				}
			}
			m.duration.WithLabelValues(v, k.String())
		}
		m.inFlight.WithLabelValues(v)
		m.targetRate.WithLabelValues(v)
		m.retries.WithLabelValues(v)
	}
	return m, nil
}

// variantMetrics are one variant's series, resolved once so that the hot
// path does no label lookups.
type variantMetrics struct {
	requests [len(kindNames)][4][2]prometheus.Counter // kind, outcome, expected
	duration [len(kindNames)]prometheus.Observer
	inFlight prometheus.Gauge
	rate     prometheus.Gauge
	retries  prometheus.Counter
}

func (m *Metrics) forVariant(v string) *variantMetrics {
	if m == nil {
		return nil
	}
	vm := &variantMetrics{inFlight: m.inFlight.WithLabelValues(v), rate: m.targetRate.WithLabelValues(v), retries: m.retries.WithLabelValues(v)}
	for _, k := range Kinds {
		for i, o := range Outcomes {
			for e, label := range expectedLabels {
				vm.requests[k][i][e] = m.requests.WithLabelValues(v, k.String(), string(o), label)
			}
		}
		vm.duration[k] = m.duration.WithLabelValues(v, k.String())
	}
	return vm
}

func outcomeIndex(o Outcome) int {
	for i, v := range Outcomes {
		if v == o {
			return i
		}
	}
	return len(Outcomes) - 1
}

// expectedLabels are the values of the expected label, by index.
var expectedLabels = [2]string{"false", "true"}

func (vm *variantMetrics) observe(a Answer) {
	if vm == nil {
		return
	}
	e := 0
	if a.AsExpected() {
		e = 1
	}
	vm.requests[a.Kind][outcomeIndex(a.Outcome)][e].Inc()
	vm.duration[a.Kind].Observe(a.Latency.Seconds())
	vm.retries.Add(float64(a.Retries))
}

// Retries is how many ratings a variant's load sent again so far
// (lab_load_retries_total), for progress lines.
func (m *Metrics) Retries(variant string) float64 {
	if m == nil {
		return 0
	}
	var d dto.Metric
	if err := m.retries.WithLabelValues(variant).Write(&d); err != nil {
		return 0
	}
	return d.GetCounter().GetValue()
}
