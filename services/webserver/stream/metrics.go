package stream

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/serve"
)

// metrics are the view's own metrics; Kafka client metrics (produced,
// consumed, lag) come from kafkaio, HTTP metrics from serve.
type metrics struct {
	freshness *prometheus.HistogramVec
	rows      *prometheus.GaugeVec
}

// newMetrics registers the view's metrics, and the request-id record's
// commits when requests is not nil.
func newMetrics(reg prometheus.Registerer, requests *requestLog) *metrics {
	m := &metrics{
		freshness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: metricname.ViewFreshnessSeconds,
			Help: "Time from a rating's event time to its count being visible in this webserver's view, per view update.",
			// 1ms .. 2min, 8 per doubling (within 9 % when interpolated):
			// healthy propagation is tens of milliseconds; a throttled
			// consumer or a broker fault pushes it to minutes.
			Buckets: serve.DoublingBuckets(0.001, 131.072, 8),
		}, []string{"view"}),
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricname.ViewRows,
			Help: "Rows in this webserver's view, per table.",
		}, []string{"view"}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.freshness, m.rows)
	if requests != nil {
		// Read at scrape time: nothing on the write path.
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: metricname.StoreCommitsTotal,
				Help: "Transactions the request-id record committed (group commit: concurrent POSTs' records, and the acknowledgement marks gathered since the last flush, share one)."},
				func() float64 { b, _ := requests.writes.Batches(); return float64(b) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: metricname.StoreCommitWritesTotal,
				Help: "Operations those transactions held: one per request id recorded, one per flush of acknowledgement marks."},
				func() float64 { _, n := requests.writes.Batches(); return float64(n) }),
		)
	}
	return m
}
