package dashboards

import (
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// One drill-down dashboard per variant: the same skeleton (RED per service,
// runtime), the variant's own middle (RPC: outbound calls and breakers; log:
// Kafka clients, processing and views). $variant is a hidden constant, so
// both dashboards come from this one function.

// infraRoutes are the parts' own endpoints (scrapes every second, health
// probes, fault admin), kept out of the RED panels.
const infraRoutes = "/metrics|/healthz|/admin/.*|/debug/pprof/.*"

func drillDown(variant string) board {
	scope := []string{eq("variant", "$variant"), re("part", "$part")}
	b := board{
		file:    variant,
		uid:     "lab-" + variant,
		variant: variant,
		tags:    []string{"ratings-lab", variant},
		vars: []variable{
			{name: "variant", kind: constantVariable, values: variant, live: variant},
			{name: "part", display: "Part", kind: queryVariable, match: `up{variant="$variant"}`, label: "part", live: allValue},
		},
	}
	red := row{id: 100, title: "RED per service — server side", panels: redPanels(scope)}
	runtime := row{id: 900, title: "Runtime", panels: runtimePanels(scope)}
	verdicts := row{id: 1000, title: "Verdicts — audit and recovery from the journals (lab data source)", panels: []panel{
		auditTable(1001, variant), recoveryTable(1002, variant),
	}}
	switch variant {
	case variantname.RPC:
		b.title = "RPC variant — services"
		b.description = "Per service and per dependency: what each RPC service serves, what it calls, and how its breakers react."
		b.rows = []row{red, {id: 200, title: "Outbound calls — per dependency", panels: []panel{
			withTitle(callsByResult(201, "part, dependency, result", "{{part}} → {{dependency}} {{result}}", scope...), "Calls by dependency and result", 8),
			callDuration(202, scope),
			withTitle(breakerStates(203, scope...), "Circuit breakers", 8),
		}}, {id: 300, title: "Bounded resources — connection pools and calls per edge", panels: []panel{
			poolUtilisation(301, scope),
			poolWaiting(302, scope),
			edgeCalls(303, scope),
		}}, bulkheads(scope), runtime, verdicts}
	case variantname.Stream:
		b.title = "Log variant — services"
		b.description = "Per service: what each log-variant service serves, produces and consumes, how far behind it is, and how fresh its view is."
		b.rows = []row{red,
			{id: 200, title: "Kafka clients — per topic", panels: []panel{
				withTitle(kafkaRate(201, metricname.KafkaProducedMessagesTotal, "part, topic", "{{part}} → {{topic}}", scope...), "Produced (acknowledged) by part and topic", 8),
				withTitle(kafkaRate(202, metricname.KafkaConsumedMessagesTotal, "part, topic", "{{part}} ← {{topic}}", scope...), "Consumed (applied) by part and topic", 8),
				withTitle(consumerLag(203, "part, topic", "{{part}} {{topic}}", scope...), "Consumer lag by part and topic", 8),
			}},
			{id: 300, title: "Processing and views", panels: []panel{
				batchDuration(301, scope),
				withTitle(viewFreshness(302, scope...), "View freshness p50 / p99", 6),
				viewRows(303, scope),
				withTitle(deadLetters(304, scope...), "Dead-lettered events", 6),
				restoreTime(305, scope),
				standbyReplicas(306, scope),
				changelogWrites(307, scope),
			}},
			bulkheads(scope),
			runtime, verdicts}
	}
	// Every panel of a drill-down shows its variant.
	for i := range b.rows {
		for j := range b.rows[i].panels {
			b.rows[i].panels[j].variant = variant
		}
	}
	return b
}

func redPanels(scope []string) []panel {
	served := append(append([]string{}, scope...), nre("route", infraRoutes))
	requests := sel(metricname.HTTPRequestsTotal, served...)
	bucket := sel(metricname.HTTPRequestDurationSeconds+"_bucket", served...)
	return []panel{
		{
			id: 101, kind: timeSeries, width: 8, height: 8,
			title:       "Rate — requests by part and route",
			description: "Requests served per second (lab_http_requests_total), without the parts' own /metrics, /healthz, /admin/ and /debug/pprof/ endpoints (their admin listener).",
			unit:        "reqps", min: ptr(0.0),
			queries: []query{{expr: sumBy("part, route", rate(requests)), legend: "{{part}} {{route}}", requires: []string{requests}}},
		},
		{
			id: 102, kind: timeSeries, width: 8, height: 8,
			title:       "Errors — share of 5xx answers",
			description: "Share of requests answered with a 5xx status, per part and route.",
			unit:        "percentunit", min: ptr(0.0), max: ptr(1.0),
			queries: []query{{
				expr:   shareBy("part, route", sel(metricname.HTTPRequestsTotal, append(append([]string{}, served...), re("code", "5.."))...), requests),
				legend: "{{part}} {{route}}",
			}},
		},
		{
			id: 103, kind: timeSeries, width: 8, height: 8,
			title:       "Duration — p50 / p99 by part and route",
			description: "Server-side time to answer (lab_http_request_duration_seconds).",
			unit:        "s", min: ptr(0.0),
			queries: []query{
				{expr: quantile("0.5", "part, route", bucket), legend: "p50 {{part}} {{route}}", requires: []string{bucket}},
				{expr: quantile("0.99", "part, route", bucket), legend: "p99 {{part}} {{route}}"},
			},
		},
	}
}

func runtimePanels(scope []string) []panel {
	up := sel("up", scope...)
	return []panel{
		{
			id: 901, kind: stateTimeline, width: 6, height: 7,
			title:       "Scrape up",
			description: "Whether Prometheus could scrape the part within one second: a paused (SIGSTOP) or killed part turns red.",
			queries:     []query{{expr: maxBy("part", up), legend: "{{part}}", requires: []string{up}}},
			states:      []state{{value: "0", text: "down", colour: "red"}, {value: "1", text: "up", colour: "green"}},
		},
		{
			id: 902, kind: timeSeries, width: 6, height: 7,
			title:       "Goroutines",
			description: "Goroutines per part: a growing count under a fault means requests piling up behind a slow dependency.",
			unit:        "short", min: ptr(0.0),
			queries: []query{{expr: sumBy("part", sel("go_goroutines", scope...)), legend: "{{part}}", requires: []string{sel("go_goroutines", scope...)}}},
		},
		{
			id: 903, kind: timeSeries, width: 6, height: 7,
			title:       "Memory — resident and Go heap in use",
			description: "Resident set size of each part's process, and the Go heap in use.",
			unit:        "bytes", min: ptr(0.0),
			queries: []query{
				{expr: sumBy("part", sel("process_resident_memory_bytes", scope...)), legend: "{{part}} resident", requires: []string{sel("process_resident_memory_bytes", scope...)}},
				{expr: sumBy("part", sel("go_memstats_heap_inuse_bytes", scope...)), legend: "{{part}} heap", requires: []string{sel("go_memstats_heap_inuse_bytes", scope...)}},
			},
		},
		{
			id: 904, kind: timeSeries, width: 6, height: 7,
			title:       "CPU",
			description: "CPU time per second of wall time, per part (100% = one core).",
			unit:        "percentunit", min: ptr(0.0),
			queries: []query{{expr: sumBy("part", rate(sel("process_cpu_seconds_total", scope...))), legend: "{{part}}", requires: []string{sel("process_cpu_seconds_total", scope...)}}},
		},
	}
}

// breakerStates is the state timeline of the RPC circuit breakers.
func breakerStates(id uint32, matchers ...string) panel {
	states := sel(metricname.BreakerState, matchers...)
	return panel{
		id: id, kind: stateTimeline, variant: variantname.RPC, width: 12, height: 8,
		title:       "Circuit breakers",
		description: "State of each caller's breaker per dependency and operation (lab_breaker_state; reads and writes have their own): closed, half-open (probing), open (rejecting calls), disabled (lab breakers off).",
		queries:     []query{{expr: maxBy("part, dependency, operation", states), legend: "{{part}} → {{dependency}} {{operation}}s", requires: []string{states}}},
		states: []state{
			{value: "-1", text: "disabled", colour: "grey"},
			{value: "0", text: "closed", colour: "green"},
			{value: "1", text: "half-open", colour: "yellow"},
			{value: "2", text: "open", colour: "red"},
		},
	}
}

// poolUtilisation is the share of each edge's connection pool in use.
func poolUtilisation(id uint32, scope []string) panel {
	inUse := sel(metricname.DependencyPoolInUseConnections, scope...)
	size := sel(metricname.DependencyPoolConnections, scope...)
	return panel{
		id: id, kind: timeSeries, variant: variantname.RPC, width: 8, height: 8,
		title: "Connection pool in use — per edge",
		description: "Share of the caller's connection pool to each dependency held by a call now (lab_dependency_pool_in_use_connections / lab_dependency_pool_connections, --max-conns). " +
			"At 100 % further calls wait for a connection, reads and writes alike: with breakers off and a slow dependency, this is where the cascade starts.",
		unit: "percentunit", min: ptr(0.0), max: ptr(1.0),
		queries: []query{{expr: sumBy("part, dependency", inUse) + " / " + sumBy("part, dependency", size), legend: "{{part}} → {{dependency}}", requires: []string{inUse, size}}},
	}
}

// poolWaiting is the calls waiting for a connection per edge.
func poolWaiting(id uint32, scope []string) panel {
	waiting := sel(metricname.DependencyPoolWaitingCalls, scope...)
	return panel{
		id: id, kind: timeSeries, variant: variantname.RPC, width: 8, height: 8,
		title:       "Calls waiting for a connection — per edge",
		description: "Calls queued for a pooled connection to each dependency (lab_dependency_pool_waiting_calls, at most --max-pending); each waits at most its attempt's timeout.",
		unit:        "short", min: ptr(0.0),
		queries: []query{{expr: sumBy("part, dependency", waiting), legend: "{{part}} → {{dependency}}", requires: []string{waiting}}},
	}
}

// edgeCalls is the call attempts per second on each edge beside what the
// dependency served: retry amplification shows as the gap.
func edgeCalls(id uint32, scope []string) panel {
	calls := sel(metricname.DependencyCallsTotal, append(append([]string{}, scope...), `result!="rejected"`)...)
	served := sel(metricname.HTTPRequestsTotal, append(append([]string{}, scope...), nre("route", infraRoutes))...)
	return panel{
		id: id, kind: timeSeries, variant: variantname.RPC, width: 8, height: 8,
		title: "Calls per second — per edge, and served per part",
		description: "Call attempts per second on each edge, retries included, breaker rejections not (lab_dependency_calls_total), " +
			"beside the requests each part served (lab_http_requests_total): with retries on, a failing dependency gets a multiple of the load.",
		unit: "reqps", min: ptr(0.0),
		queries: []query{
			{expr: sumBy("part, dependency", rate(calls)), legend: "{{part}} → {{dependency}}", requires: []string{calls}},
			{expr: sumBy("part", rate(served)), legend: "served by {{part}}"},
		},
	}
}

// bulkheads is every part's bulkhead: requests in flight, queued, and
// rejected (503) per second.
func bulkheads(scope []string) row {
	inflight := sel(metricname.HTTPInflightRequests, scope...)
	limit := sel(metricname.HTTPInflightLimit, scope...)
	queued := sel(metricname.HTTPQueuedRequests, scope...)
	rejected := sel(metricname.HTTPRejectedRequestsTotal, scope...)
	return row{id: 400, title: "Bulkheads — requests in flight and queued per part", panels: []panel{
		{
			id: 401, kind: timeSeries, width: 8, height: 8,
			title:       "Bulkhead in use — per part",
			description: "Share of each part's bulkhead in use (lab_http_inflight_requests / lab_http_inflight_limit, --max-inflight): requests being handled now.",
			unit:        "percentunit", min: ptr(0.0), max: ptr(1.0),
			queries: []query{{expr: sumBy("part", inflight) + " / " + sumBy("part", limit), legend: "{{part}}", requires: []string{inflight, limit}}},
		},
		{
			id: 402, kind: timeSeries, width: 8, height: 8,
			title:       "Queued for a slot — per part",
			description: "Requests waiting for a bulkhead slot (lab_http_queued_requests, at most --max-queue).",
			unit:        "short", min: ptr(0.0),
			queries: []query{{expr: sumBy("part", queued), legend: "{{part}}", requires: []string{queued}}},
		},
		{
			id: 403, kind: timeSeries, width: 8, height: 8,
			title:       "Shed by the bulkhead — per part",
			description: "Requests answered 503 by a full bulkhead per second (lab_http_rejected_requests_total): queue_full, queue_timeout.",
			unit:        "reqps", min: ptr(0.0),
			queries: []query{{expr: sumBy("part, reason", rate(rejected)), legend: "{{part}} {{reason}}", requires: []string{rejected}}},
		},
	}}
}

// callsByResult is the outbound call rate split by result.
func callsByResult(id uint32, by, legend string, matchers ...string) panel {
	calls := sel(metricname.DependencyCallsTotal, matchers...)
	return panel{
		id: id, kind: timeSeries, variant: variantname.RPC, width: 12, height: 8, stacked: true,
		title: "Dependency calls by result",
		description: "Outbound call attempts per second by result (lab_dependency_calls_total): success, failure (error or timeout; each retry is one more), " +
			"rejected (an open breaker refused the call), passed_on (a 503 the dependency passed on from its own dependency: not counted by the breaker).",
		unit: "reqps", min: ptr(0.0),
		queries: []query{{expr: sumBy(by, rate(calls)), legend: legend, requires: []string{calls}}},
		colours: []seriesColour{{match: ".*success", colour: "green"}, {match: ".*failure", colour: "red"}, {match: ".*rejected", colour: "purple"}, {match: ".*passed_on", colour: "orange"}},
	}
}

func callDuration(id uint32, scope []string) panel {
	bucket := sel(metricname.DependencyCallDurationSeconds+"_bucket", scope...)
	return panel{
		id: id, kind: timeSeries, width: 8, height: 8,
		title:       "Call duration — p50 / p99 by dependency",
		description: "Time of outbound calls including retries (lab_dependency_call_duration_seconds); capped by the call timeout.",
		unit:        "s", min: ptr(0.0),
		queries: []query{
			{expr: quantile("0.5", "part, dependency", bucket), legend: "p50 {{part}} → {{dependency}}", requires: []string{bucket}},
			{expr: quantile("0.99", "part, dependency", bucket), legend: "p99 {{part}} → {{dependency}}"},
		},
	}
}

// consumerLag is the sum of partition lags by the given labels.
func consumerLag(id uint32, by, legend string, matchers ...string) panel {
	lag := sel(metricname.KafkaConsumerLagMessages, matchers...)
	return panel{
		id: id, kind: timeSeries, variant: variantname.Stream, width: 12, height: 8,
		title: "Consumer lag",
		description: "Records on the log not yet applied by each consumer (lab_kafka_consumer_lag_messages): " +
			"the log variant queues work instead of failing it.",
		unit: "short", min: ptr(0.0),
		queries: []query{{expr: sumBy(by, lag), legend: legend, requires: []string{lag}}},
	}
}

func viewFreshness(id uint32, matchers ...string) panel {
	bucket := sel(metricname.ViewFreshnessSeconds+"_bucket", matchers...)
	return panel{
		id: id, kind: timeSeries, variant: variantname.Stream, width: 12, height: 8,
		title: "View freshness p50 / p99",
		description: "How old an event is when it becomes visible in a view (lab_view_freshness_seconds), per part and view. " +
			"Gaps mean nothing was applied in the window: look at the lag.",
		unit: "s", min: ptr(0.0),
		queries: []query{
			{expr: quantile("0.5", "part, view", bucket), legend: "p50 {{part}} {{view}}", requires: []string{bucket}},
			{expr: quantile("0.99", "part, view", bucket), legend: "p99 {{part}} {{view}}"},
		},
	}
}

func deadLetters(id uint32, matchers ...string) panel {
	return panel{
		id: id, kind: timeSeries, variant: variantname.Stream, width: 12, height: 8,
		title:       "Dead-lettered events",
		description: "Events written to ratings-dlq per second, by part and reason (lab_dlq_messages_total). Zero until the first one.",
		unit:        "mps", min: ptr(0.0),
		queries: []query{{expr: orNone(sumBy("part, reason", rate(sel(metricname.DLQMessagesTotal, matchers...))), "reason"), legend: "{{part}} {{reason}}"}},
		colours: []seriesColour{{match: ".*none", colour: "green"}},
	}
}

func batchDuration(id uint32, scope []string) panel {
	bucket := sel(metricname.StreamBatchDurationSeconds+"_bucket", scope...)
	return panel{
		id: id, kind: timeSeries, width: 6, height: 8,
		title:       "Batch duration p50 / p99",
		description: "Time to process one consumed batch and commit state and offsets together (lab_stream_batch_duration_seconds).",
		unit:        "s", min: ptr(0.0),
		queries: []query{
			{expr: quantile("0.5", "part", bucket), legend: "p50 {{part}}", requires: []string{bucket}},
			{expr: quantile("0.99", "part", bucket), legend: "p99 {{part}}"},
		},
	}
}

// restoreTime is how long taken-over partitions took to include the whole
// log, by where their state came from (ratings-stream, effectively-once).
func restoreTime(id uint32, scope []string) panel {
	sum, count := sel(metricname.StreamRestoreDurationSeconds+"_sum", scope...), sel(metricname.StreamRestoreDurationSeconds+"_count", scope...)
	return panel{
		id: id, kind: timeSeries, width: 12, height: 8,
		title: "Partition restore time (after a rebalance)",
		description: "Mean time from a partition's assignment until its state included every rating that was in the log then, for partitions restored in the window, " +
			"by where the state came from: changelog (restored from ratings-stream-changelog, then the tail), standby (a standby replica's warm copy, then the changelog written since: lab up --standby-replicas), local (the replica's own database), start (replayed from offset 0). " +
			"lab_stream_restore_duration_seconds; gaps: no partition changed hands.",
		unit: "s", min: ptr(0.0),
		queries: []query{{expr: sumBy("part, from", "increase("+sum+"["+rateWindow+"])") + " / " + sumBy("part, from", "increase("+count+"["+rateWindow+"])"),
			legend: "{{part}} from {{from}}", requires: []string{count}, onEvent: true}},
	}
}

// standbyReplicas is what ratings-stream's standby replicas hold and how
// far behind the changelog they are (lab up --standby-replicas).
func standbyReplicas(id uint32, scope []string) panel {
	lag, kept := sel(metricname.StreamStandbyLagRecords, scope...), sel(metricname.StreamStandbyPartitions, scope...)
	return panel{
		id: id, kind: timeSeries, width: 12, height: 8,
		title: "Standby replicas: changelog records behind, partitions kept",
		description: "Per ratings-stream replica: changelog records committed but not yet in its standby copies (lab_stream_standby_lag_records) and how many partitions it keeps a copy of " +
			"(lab_stream_standby_partitions). Both 0 without lab up --standby-replicas. A take-over of a partition with a copy reads only the changelog written after it.",
		unit: "short", min: ptr(0.0),
		queries: []query{
			{expr: maxBy("part", lag), legend: "{{part}} records behind", requires: []string{lag}},
			{expr: maxBy("part", kept), legend: "{{part}} partitions kept", requires: []string{kept}},
		},
	}
}

// changelogWrites is what effectively-once ratings-stream writes to its
// changelog: records and the transactions carrying them.
func changelogWrites(id uint32, scope []string) panel {
	records, txns := sel(metricname.StreamChangelogRecordsTotal, scope...), sel(metricname.StreamChangelogTransactionsTotal, scope...)
	return panel{
		id: id, kind: timeSeries, width: 12, height: 8,
		title: "Changelog writes: records and transactions",
		description: "Per ratings-stream replica: records written to ratings-stream-changelog and ratings-stream-request-ids per second (lab_stream_changelog_records_total) and the transactions carrying them " +
			"(lab_stream_changelog_transactions_total: one per partition at most every --changelog-interval, 100 ms by default). Every record is work for the broker, and the changelog's, at the dirty ratio, for its log cleaner; 0 with lab up --restore log.",
		unit: "ops", min: ptr(0.0),
		queries: []query{
			{expr: sumBy("part", rate(records)), legend: "{{part}} records/s", requires: []string{records}},
			{expr: sumBy("part", rate(txns)), legend: "{{part}} transactions/s", requires: []string{txns}},
		},
	}
}

func viewRows(id uint32, scope []string) panel {
	rows := sel(metricname.ViewRows, scope...)
	return panel{
		id: id, kind: timeSeries, width: 6, height: 8,
		title:       "View rows",
		description: "Rows in each materialized view or table (lab_view_rows): movies known, movies rated.",
		unit:        "short", min: ptr(0.0),
		queries: []query{{expr: maxBy("part, view", rows), legend: "{{part}} {{view}}", requires: []string{rows}}},
	}
}

// What the Kafka client counters count.
var kafkaCounterMeaning = map[string]string{
	metricname.KafkaProducedMessagesTotal: "Records per second the broker acknowledged (acks=all) to the producing part (lab_kafka_produced_messages_total).",
	metricname.KafkaConsumedMessagesTotal: "Records per second the consuming part applied and committed (lab_kafka_consumed_messages_total).",
}

// kafkaRate is a Kafka client counter's rate by the given labels.
func kafkaRate(id uint32, metric, by, legend string, matchers ...string) panel {
	s := sel(metric, matchers...)
	return panel{
		id: id, kind: timeSeries, variant: variantname.Stream, width: 8, height: 8,
		description: kafkaCounterMeaning[metric],
		unit:        "mps", min: ptr(0.0),
		queries: []query{{expr: sumBy(by, rate(s)), legend: legend, requires: []string{s}}},
	}
}
