package breaker

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/serve"
)

// callBuckets (seconds): the lab's dense duration buckets (8 per doubling,
// 1 ms to 32.8 s), so a timed-out attempt lands in a bucket near its
// timeout and an interpolated p99 is within 9 % of the exact one.
var callBuckets = serve.DurationBuckets

// Metrics are the per-dependency metrics of one process (docs/architecture.md).
// Register once per registry and share between that process's dependencies.
type Metrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	calls       *prometheus.CounterVec
	duration    *prometheus.HistogramVec

	mu   sync.Mutex
	deps []*Dependency
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lab_breaker_state",
			Help: "Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open, -1 disabled (breakers off).",
		}, []string{"dependency"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lab_breaker_transitions_total",
			Help: "Circuit breaker state transitions per dependency.",
		}, []string{"dependency", "from", "to"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lab_dependency_calls_total",
			Help: "Outbound call attempts per dependency by result: success, failure, rejected (by the open breaker).",
		}, []string{"dependency", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lab_dependency_call_duration_seconds",
			Help:    "Duration of outbound call attempts that reached the dependency.",
			Buckets: callBuckets,
		}, []string{"dependency"}),
	}
	reg.MustRegister(m)
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.state.Describe(ch)
	m.transitions.Describe(ch)
	m.calls.Describe(ch)
	m.duration.Describe(ch)
}

// Collect implements prometheus.Collector. It refreshes the state gauges
// first: gobreaker moves from open to half-open only when asked, and a
// scrape must not show "open" after the open timeout has passed.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	deps := append([]*Dependency(nil), m.deps...)
	m.mu.Unlock()
	for _, d := range deps {
		m.state.WithLabelValues(d.name).Set(d.stateValue())
	}
	m.state.Collect(ch)
	m.transitions.Collect(ch)
	m.calls.Collect(ch)
	m.duration.Collect(ch)
}

// depMetrics are one dependency's series, resolved once: label lookups per
// call would be most of the wrapper's cost.
type depMetrics struct {
	calls    map[result]prometheus.Counter
	duration prometheus.Observer
}

// register creates the dependency's series up front, so rate() and
// dashboards see zeros rather than gaps, and returns them (nil without Metrics).
func (m *Metrics) register(d *Dependency) *depMetrics {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	m.deps = append(m.deps, d)
	m.mu.Unlock()
	m.state.WithLabelValues(d.name).Set(d.stateValue())
	dm := &depMetrics{calls: map[result]prometheus.Counter{}, duration: m.duration.WithLabelValues(d.name)}
	for _, r := range []result{resultSuccess, resultFailure, resultRejected} {
		dm.calls[r] = m.calls.WithLabelValues(d.name, string(r))
	}
	return dm
}

func (m *Metrics) transition(dep, from, to string, value float64) {
	if m == nil {
		return
	}
	m.transitions.WithLabelValues(dep, from, to).Inc()
	m.state.WithLabelValues(dep).Set(value)
}

func (dm *depMetrics) observe(r result, took time.Duration, reached bool) {
	if dm == nil {
		return
	}
	dm.calls[r].Inc()
	if reached {
		dm.duration.Observe(took.Seconds())
	}
}
