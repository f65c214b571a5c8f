package breaker

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/serve"
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
	poolSize    *prometheus.GaugeVec
	poolInUse   *prometheus.GaugeVec
	poolWaiting *prometheus.GaugeVec

	mu   sync.Mutex
	deps []*Dependency
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricname.BreakerState,
			Help: "Circuit breaker state per dependency and operation (read, write): 0 closed, 1 half-open, 2 open, -1 disabled (breakers off).",
		}, []string{"dependency", "operation"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.BreakerTransitionsTotal,
			Help: "Circuit breaker state transitions per dependency and operation.",
		}, []string{"dependency", "operation", "from", "to"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.DependencyCallsTotal,
			Help: "Outbound call attempts per dependency and operation by result: success, failure, rejected (by the open breaker), passed_on (a 503 the dependency passed on from its own dependency). Its rate is the calls per second on the edge, retries included.",
		}, []string{"dependency", "operation", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricname.DependencyCallDurationSeconds,
			Help:    "Duration of outbound call attempts that reached the dependency (the wait for a pooled connection included).",
			Buckets: callBuckets,
		}, []string{"dependency", "operation"}),
		poolSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricname.DependencyPoolConnections,
			Help: "Size of the connection pool to the dependency (--max-conns): calls in flight at once.",
		}, []string{"dependency"}),
		poolInUse: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricname.DependencyPoolInUseConnections,
			Help: "Connections of the pool to the dependency held by a call now.",
		}, []string{"dependency"}),
		poolWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricname.DependencyPoolWaitingCalls,
			Help: "Calls waiting for a connection to the dependency now (at most --max-pending).",
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
	m.poolSize.Describe(ch)
	m.poolInUse.Describe(ch)
	m.poolWaiting.Describe(ch)
}

// Collect implements prometheus.Collector. It refreshes the state gauges
// first: gobreaker moves from open to half-open only when asked, and a
// scrape must not show "open" after the open timeout has passed.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	deps := append([]*Dependency(nil), m.deps...)
	m.mu.Unlock()
	for _, d := range deps {
		for _, op := range Operations {
			m.state.WithLabelValues(d.name, string(op)).Set(d.stateValue(op))
		}
		if d.pool != nil {
			m.poolSize.WithLabelValues(d.name).Set(float64(d.pool.size))
			m.poolInUse.WithLabelValues(d.name).Set(float64(d.pool.inUse()))
			m.poolWaiting.WithLabelValues(d.name).Set(float64(d.pool.queued()))
		}
	}
	m.state.Collect(ch)
	m.transitions.Collect(ch)
	m.calls.Collect(ch)
	m.duration.Collect(ch)
	m.poolSize.Collect(ch)
	m.poolInUse.Collect(ch)
	m.poolWaiting.Collect(ch)
}

// depMetrics are one dependency's series, resolved once: label lookups per
// call would be most of the wrapper's cost.
type depMetrics struct {
	calls    map[result]prometheus.Counter
	duration prometheus.Observer
}

// register creates the dependency's series per operation up front, so
// rate() and dashboards see zeros rather than gaps, and returns them (nil
// series without Metrics).
func (m *Metrics) register(d *Dependency) map[Operation]*depMetrics {
	out := map[Operation]*depMetrics{}
	if m == nil {
		return out
	}
	m.mu.Lock()
	m.deps = append(m.deps, d)
	m.mu.Unlock()
	for _, op := range Operations {
		m.state.WithLabelValues(d.name, string(op)).Set(d.stateValue(op))
		dm := &depMetrics{calls: map[result]prometheus.Counter{}, duration: m.duration.WithLabelValues(d.name, string(op))}
		for _, r := range results {
			dm.calls[r] = m.calls.WithLabelValues(d.name, string(op), string(r))
		}
		out[op] = dm
	}
	return out
}

func (m *Metrics) transition(dep string, op Operation, from, to string, value float64) {
	if m == nil {
		return
	}
	m.transitions.WithLabelValues(dep, string(op), from, to).Inc()
	m.state.WithLabelValues(dep, string(op)).Set(value)
}

func (m *Metrics) setState(dep string, op Operation, value float64) {
	if m == nil {
		return
	}
	m.state.WithLabelValues(dep, string(op)).Set(value)
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
