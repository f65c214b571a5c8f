package stream

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/model"
)

// metrics are the processor's own metrics; Kafka client metrics (consumed,
// produced, lag) come from kafkaio.
type metrics struct {
	batch prometheus.Histogram
	dlq   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "lab_stream_batch_duration_seconds",
		Help: "Time to process one batch of ratings: decode, aggregate, dead-letter, and commit state with offsets.",
		// 0.5ms .. 10s: a small batch commits in about a millisecond; a
		// throttled or faulted one takes seconds.
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	})
	m := &metrics{
		batch: batch,
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lab_dlq_messages_total",
			Help: "Ratings events sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
	}
	// Every reason is exported from the start, at 0: a dashboard shows
	// "no poison yet" rather than "no data".
	for _, r := range model.DLQReasons {
		m.dlq.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(batch, m.dlq)
	}
	return m
}
