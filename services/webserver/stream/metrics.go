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

func newMetrics(reg prometheus.Registerer) *metrics {
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
	if reg != nil {
		reg.MustRegister(m.freshness, m.rows)
	}
	return m
}
