package dashboards

import (
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// The contracts row of the Kafka dashboard: what the schema registry and
// the event codecs of the log variant do (lab up --format avro). With
// --format json every record counts under schema id 0 and the registry
// decides nothing.

func contractsRow() row {
	records := sel(metricname.EventRecordsTotal, re("topic", "$topic"))
	failures := sel(metricname.EventDecodeFailuresTotal, re("topic", "$topic"))
	decisions := sel(metricname.SchemaRegistryDecisionsTotal)
	requests := sel(metricname.SchemaRegistryRequestsTotal)
	return row{id: 400, title: "Contracts (schema registry)", panels: []panel{
		{id: 401, kind: timeSeries, variant: variantname.Stream, width: 8, height: 8,
			title: "Records per topic and schema version",
			description: "Values encoded (produced) and decoded (consumed) per second, by topic and the writer's schema id " +
				"(json, or avro:<id>: the registry gives each schema version its own id). A new id appearing is a producer's new contract.",
			unit: "rps", min: ptr(0.0),
			queries: []query{{expr: sumBy("direction, topic, schema", rate(records)),
				legend: "{{direction}} {{topic}} {{schema}}", requires: []string{records}}}},
		{id: 402, kind: timeSeries, variant: variantname.Stream, width: 8, height: 8,
			title: "Registry decisions and refusals",
			description: "The embedded registry's decisions on registrations (registered, existing, incompatible, invalid), " +
				"and the registry requests the parts saw refused or unanswered.",
			unit: "reqps", min: ptr(0.0),
			queries: []query{
				{expr: sumBy("decision", rate(decisions)), legend: "registry: {{decision}}", requires: []string{decisions}},
				{expr: sumBy("part, operation, result", rate(sel(metricname.SchemaRegistryRequestsTotal, `result!="ok"`))),
					legend: "{{part}} {{operation}}: {{result}}", requires: []string{requests}},
			}},
		{id: 403, kind: timeSeries, variant: variantname.Stream, width: 8, height: 8,
			title: "Decode failures by reason",
			description: "Values a consumer could not decode, by topic and reason: wrong-magic-byte, unknown-schema-id, " +
				"incompatible-schema, truncated-body (Avro); malformed, invalid-field, rating-range (both formats); " +
				"registry-unavailable (retried, never dead-lettered). Undecodable ratings go to ratings-dlq with the reason.",
			unit: "rps", min: ptr(0.0),
			queries: []query{{expr: sumBy("topic, reason", rate(failures)), legend: "{{topic}}: {{reason}}", requires: []string{failures}}}},
	}}
}
