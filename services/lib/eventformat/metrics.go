package eventformat

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/model"
)

// registryUnavailable is the reason of a decode that could not ask the
// registry (retried, not dead-lettered).
const registryUnavailable = "registry-unavailable"

// Metrics count records per topic and schema id (one id per schema
// version), decode failures by reason, and registry requests by result.
type Metrics struct {
	records  *prometheus.CounterVec
	failures *prometheus.CounterVec
	requests *prometheus.CounterVec
	cached   prometheus.Counter
}

// NewMetrics registers the metrics on reg (nil: counted, not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.EventRecordsTotal,
			Help: "Event values this part encoded (produced) or decoded (consumed), by topic and writer schema (json, or avro:<registry id>: one value per schema version registered, bounded by deployments, not by traffic).",
		}, []string{"topic", "direction", "schema"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.EventDecodeFailuresTotal,
			Help: "Event values this part could not decode, by topic and reason (wrong-magic-byte, unknown-schema-id, incompatible-schema, truncated-body, ..., registry-unavailable).",
		}, []string{"topic", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.SchemaRegistryRequestsTotal,
			Help: "Requests this part sent to the schema registry, by operation and result (ok, refused, not_found, unreachable).",
		}, []string{"operation", "result"}),
		cached: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricname.SchemaRegistryCacheHitsTotal,
			Help: "Schema lookups by id answered from this part's cache (no request).",
		}),
	}
	// Every series a dashboard panel reads exists from the start (reading
	// zero), not only after the first failure.
	for _, topic := range model.ValueTopics {
		for _, reason := range decodeReasons {
			m.failures.WithLabelValues(topic, reason)
		}
	}
	for _, op := range []string{"register", "schema_by_id"} {
		for _, result := range []string{"ok", "refused", "not_found", "unreachable"} {
			m.requests.WithLabelValues(op, result)
		}
	}
	if reg != nil {
		reg.MustRegister(m.records, m.failures, m.requests, m.cached)
	}
	return m
}

// decodeReasons are the reason label's values.
var decodeReasons = []string{model.ReasonMalformed, model.ReasonInvalidField, model.ReasonRatingRange,
	model.ReasonWrongMagicByte, model.ReasonUnknownSchema, model.ReasonIncompatibleSchema, model.ReasonTruncated,
	registryUnavailable}

func (m *Metrics) Encoded(topic string, id int) {
	m.records.WithLabelValues(topic, "produced", schemaLabel(id)).Inc()
}

func (m *Metrics) Decoded(topic string, id int) {
	m.records.WithLabelValues(topic, "consumed", schemaLabel(id)).Inc()
}

// schemaLabel names a writer schema: "json", or "avro:<id>".
func schemaLabel(id int) string {
	if id == 0 {
		return "json"
	}
	return "avro:" + strconv.Itoa(id)
}

func (m *Metrics) DecodeFailed(topic, reason string) {
	m.failures.WithLabelValues(topic, reason).Inc()
}

func (m *Metrics) request(op string, err error) {
	result := "ok"
	var re *RefusedError
	if err != nil {
		result = "unreachable"
		if e := describe(err); errors.As(e, &re) {
			result = "refused"
			if re.Status == 404 {
				result = "not_found"
			}
		}
	}
	m.requests.WithLabelValues(op, result).Inc()
}
