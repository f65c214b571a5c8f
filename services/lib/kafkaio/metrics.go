package kafkaio

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/metricname"
)

// Metrics are the Kafka client metrics of one part (docs/architecture.md).
// Labels are bounded: topic names and partition numbers only.
type Metrics struct {
	produced *prometheus.CounterVec
	consumed *prometheus.CounterVec
	lag      *prometheus.GaugeVec
	// Producer trouble: the retries kafka-go made (a leader moved, a broker
	// was down) and the errors a write finally failed with, by Kafka error.
	produceRetries *prometheus.CounterVec
	produceErrors  *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.KafkaProducedMessagesTotal,
			Help: "Records the broker acknowledged (acks=all), by topic.",
		}, []string{"topic"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.KafkaConsumedMessagesTotal,
			Help: "Records consumed and applied (committed) by this part, by topic.",
		}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricname.KafkaConsumerLagMessages,
			Help: "Records on the partition not yet applied by this part: high watermark minus next offset to apply.",
		}, []string{"topic", "partition"}),
		produceRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.KafkaProduceRetriesTotal,
			Help: "Produce attempts the client retried (leader changes, brokers down, timeouts), by topic.",
		}, []string{"topic"}),
		produceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.KafkaProduceErrorsTotal,
			Help: "Writes that failed after their retries, by topic and Kafka error (e.g. NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT; timeout = the caller's deadline).",
		}, []string{"topic", "error"}),
	}
	if reg != nil {
		reg.MustRegister(m.produced, m.consumed, m.lag, m.produceRetries, m.produceErrors)
	}
	return m
}

func discardMetrics() *Metrics { return NewMetrics(nil) }

// Consumed counts n records of topic as applied.
func (m *Metrics) Consumed(topic string, n int) {
	m.consumed.WithLabelValues(topic).Add(float64(n))
}

// Produced counts n records of topic as acknowledged (for producers that do
// not go through Producer).
func (m *Metrics) Produced(topic string, n int) {
	m.produced.WithLabelValues(topic).Add(float64(n))
}

// SetLag records the lag of one partition.
func (m *Metrics) SetLag(topic string, partition int, lag int64) {
	if lag < 0 {
		lag = 0
	}
	m.lag.WithLabelValues(topic, strconv.Itoa(partition)).Set(float64(lag))
}

// DropLag removes a partition this part no longer consumes (after a
// rebalance), so a stale value does not linger.
func (m *Metrics) DropLag(topic string, partition int) {
	m.lag.DeleteLabelValues(topic, strconv.Itoa(partition))
}
