package dashboards

import (
	"github.com/ratingslab/lab/lab/prom"
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// The overview is for someone watching a cascade unfold: the lab row on top
// says what was done (faults) and what is running; below, one row per
// signal, the RPC variant on the left in blue and the log variant on the
// right in orange, with the same unit and scale on both sides.

// Client-side outcomes of lab load (lab/load: outcome label).
const (
	outcomeAcked     = "acknowledged"
	outcomeFailed    = "failed"    // 5xx, or never sent
	outcomeAmbiguous = "ambiguous" // no answer: timeout, reset
	kindRating       = "rating"    // POST /api/ratings (lab/load: kind label)
)

var kindVar = variable{
	name: "kind", display: "Request kind", kind: customVariable,
	values: "rating,movie,list", live: allValue,
}

func overview() board {
	return board{
		file:  "overview",
		uid:   "lab-overview",
		title: "RPC vs Log — overview",
		description: "The two integration patterns side by side under the same load and the same faults: " +
			"RPC (blue, left) and log (orange, right). Fault periods are annotations.",
		tags:            []string{"ratings-lab"},
		colourByVariant: true,
		vars:            []variable{kindVar},
		rows: []row{
			{id: 100, title: "Lab — active faults, parts and the machine's CPU", panels: []panel{activeFaults(101), partsUp(102), machineCPU(103)}},
			sideBySide(200, "Success rate — answered / sent, as the load generator sees it", clientSuccess),
			sideBySide(300, "Latency p50 / p99 — client side", clientLatency),
			sideBySide(400, "Throughput — sent and acknowledged", clientThroughput),
			sideBySide(500, "Errors by kind — failed or ambiguous requests", clientErrors),
			{id: 600, title: "Back-pressure — circuit breakers (RPC) vs consumer lag (log)", panels: []panel{
				withTitle(breakerStates(601, eq("variant", variantname.RPC)), "RPC · circuit breakers", 12),
				withTitle(consumerLag(602, "part, topic", "{{part}} {{topic}}", eq("variant", variantname.Stream)), "Log · consumer lag", 12),
			}},
			{id: 700, title: "Shedding vs delay — rejected calls (RPC) vs view freshness (log)", panels: []panel{
				rejectedCalls(701),
				withTitle(viewFreshness(702, eq("variant", variantname.Stream)), "Log · view freshness p50 / p99", 12),
			}},
			{id: 800, title: "Failures absorbed — calls by result (RPC) vs dead-lettered events (log)", panels: []panel{
				withTitle(callsByResult(801, "dependency, result", "{{dependency}} {{result}}", eq("variant", variantname.RPC)), "RPC · dependency calls by result", 12),
				withTitle(deadLetters(802, eq("variant", variantname.Stream)), "Log · dead-lettered events", 12),
			}},
			sideBySide(900, "Audit — the load generator's ledger of ratings", ledger),
			sideBySide(1000, "Exact client latency — from the runs' ledgers (lab data source)", exactLatency),
			{id: 1100, title: "Experiments — verdicts and audits from the journals (lab data source)", panels: []panel{
				experimentsTable(1101), auditTable(1102, ""),
			}},
		},
	}
}

// sideBySide is a row with the signal for RPC (left) and log (right).
func sideBySide(id uint32, title string, signal func(id uint32, variant string) panel) row {
	return row{id: id, title: title, panels: []panel{signal(id+1, variantname.RPC), signal(id+2, variantname.Stream)}}
}

func withTitle(p panel, title string, width uint32) panel {
	p.title, p.width = title, width
	return p
}

// variantTitle names a variant in panel titles.
func variantTitle(variant string) string {
	switch variant {
	case variantname.RPC:
		return "RPC"
	case variantname.Stream:
		return "Log"
	}
	return "Lab"
}

// loadRequests selects the load generator's request counter for a variant.
func loadRequests(variant string, more ...string) string {
	return sel(metricname.LoadRequestsTotal, append([]string{eq("variant", variant), re("kind", "$kind")}, more...)...)
}

func faultsQuery() query {
	return query{
		expr:     maxBy("fault, target", metricname.FaultActive) + " > 0",
		legend:   "{{fault}} on {{target}}",
		requires: []string{metricname.FaultActive},
	}
}

func activeFaults(id uint32) panel {
	return panel{
		id: id, kind: stateTimeline, variant: VariantLab, width: 8, height: 7,
		title:       "Active faults",
		description: "Faults the supervisor has applied (lab_fault_active), per fault and target edge or part.",
		queries:     []query{faultsQuery()},
		states:      []state{{value: "1", text: "active", colour: "red"}},
	}
}

func partsUp(id uint32) panel {
	return panel{
		id: id, kind: stateTimeline, variant: VariantLab, width: 8, height: 7,
		title:       "Parts up",
		description: "Whether each part's process runs and is healthy, as the supervisor sees it (lab_part_up). A killed or paused part turns red.",
		queries: []query{{
			expr: maxBy("part", metricname.PartUp), legend: "{{part}}",
			requires: []string{metricname.PartUp},
		}},
		states: []state{{value: "0", text: "down", colour: "red"}, {value: "1", text: "up", colour: "green"}},
	}
}

// machineCPU shows whether the machine had CPU to spare: both variants,
// the broker and Prometheus share its cores, so a variant can fail for
// want of CPU rather than because of its pattern.
func machineCPU(id uint32) panel {
	machine := sel(metricname.MachineCPUSecondsTotal)
	allCores := "sum(" + rate(machine) + ")"
	return panel{
		id: id, kind: timeSeries, variant: VariantLab, width: 8, height: 7,
		title: "Machine CPU — busy, and used by each variant's parts",
		description: "Share of the machine's CPU time (all cores together) in use: every mode but idle and iowait, from /proc/stat " +
			"(lab_machine_cpu_seconds_total, exported by the supervisor). Beside it the share each group of processes used " +
			"(process_cpu_seconds_total summed by variant): rpc and stream are the parts of each variant; lab the broker, the schema registry " +
			"and the supervisor (the edge proxies); load the load generator while lab load runs. " +
			"Prometheus and anything else on the machine make up the rest. Near 100 % both variants are short of CPU: " +
			"a slow or failing variant may then be the machine's limit, not its pattern's.",
		unit: "percentunit", min: ptr(0.0), max: ptr(1.0),
		queries: []query{
			{expr: "sum(" + rate(sel(metricname.MachineCPUSecondsTotal, nre("mode", "idle|iowait"))) + ") / " + allCores,
				legend: "machine busy", requires: []string{machine}},
			{expr: sumBy("variant", rate(sel("process_cpu_seconds_total"))) + " / on () group_left () " + allCores,
				legend: "{{variant}}", requires: []string{sel("process_cpu_seconds_total")}},
		},
		colours: []seriesColour{
			{match: "machine busy", colour: "red"},
			{match: "^" + variantname.RPC + "$", colour: variantColour[variantname.RPC]},
			{match: "^" + variantname.Stream + "$", colour: variantColour[variantname.Stream]},
			{match: "^" + VariantLab + "$", colour: "grey"},
			{match: "^" + prom.VariantLoad + "$", colour: "purple"},
		},
	}
}

func clientSuccess(id uint32, variant string) panel {
	return panel{
		id: id, kind: timeSeries, variant: variant, width: 12, height: 8,
		title: variantTitle(variant) + " · success rate",
		description: "Share of requests the variant answered as expected (2xx; a 4xx only for a request lab load made invalid on purpose) " +
			"among all answered, per request kind. Failed (5xx, refused), ambiguous (504, timeout, reset) and unexpected 4xx count against it.",
		unit: "percentunit", min: ptr(0.0), max: ptr(1.0),
		queries: []query{{
			expr:     shareBy("kind", loadRequests(variant, eq("expected", "true")), loadRequests(variant)),
			legend:   "{{kind}}",
			requires: []string{loadRequests(variant, eq("outcome", outcomeAcked))},
		}},
	}
}

func clientLatency(id uint32, variant string) panel {
	bucket := sel(metricname.LoadRequestDurationSeconds+"_bucket", eq("variant", variant), re("kind", "$kind"))
	return panel{
		id: id, kind: timeSeries, variant: variant, width: 12, height: 8,
		title: variantTitle(variant) + " · latency p50 / p99",
		description: "Client-side latency per request kind, measured from the moment the request was due (open model: no coordinated omission). " +
			"Interpolated from lab_load_request_duration_seconds (8 buckets per doubling: within 9 %); experiment reports take exact percentiles from every request.",
		unit: "s", min: ptr(0.0),
		queries: []query{
			{expr: quantile("0.5", "kind", bucket), legend: "p50 {{kind}}", requires: []string{bucket}},
			{expr: quantile("0.99", "kind", bucket), legend: "p99 {{kind}}"},
		},
	}
}

func clientThroughput(id uint32, variant string) panel {
	return panel{
		id: id, kind: timeSeries, variant: variant, width: 12, height: 8,
		title:       variantTitle(variant) + " · throughput",
		description: "Requests sent per second (the schedule, independent of the variant's health) and acknowledged per second, per kind.",
		unit:        "reqps", min: ptr(0.0),
		queries: []query{
			{expr: sumBy("kind", rate(loadRequests(variant))), legend: "{{kind}} sent", requires: []string{loadRequests(variant)}},
			{expr: sumBy("kind", rate(loadRequests(variant, eq("outcome", outcomeAcked)))), legend: "{{kind}} acknowledged"},
		},
	}
}

func clientErrors(id uint32, variant string) panel {
	return panel{
		id: id, kind: timeSeries, variant: variant, width: 12, height: 8, stacked: true,
		title: variantTitle(variant) + " · errors by kind",
		description: "Failed (5xx, connection refused) and ambiguous (timeout, reset: may have been applied) requests per second, " +
			"per request kind. Zero while there are none.",
		unit: "reqps", min: ptr(0.0),
		queries: []query{
			{expr: sumBy("kind", rateOrZero(loadRequests(variant, eq("outcome", outcomeFailed)), loadRequests(variant))), legend: "{{kind}} failed"},
			{expr: sumBy("kind", rateOrZero(loadRequests(variant, eq("outcome", outcomeAmbiguous)), loadRequests(variant))), legend: "{{kind}} ambiguous"},
		},
		colours: []seriesColour{{match: ".* failed", colour: "red"}, {match: ".* ambiguous", colour: "purple"}},
	}
}

func ledger(id uint32, variant string) panel {
	ratings := sel(metricname.LoadRequestsTotal, eq("variant", variant), eq("kind", kindRating))
	return panel{
		id: id, kind: timeSeries, variant: variant, width: 12, height: 8,
		title: variantTitle(variant) + " · ratings by outcome (ledger)",
		description: "Ratings sent by the current `lab load` run, by how they ended: what the audit checks each variant's state against " +
			"after the drain (an acknowledged rating must be there; an ambiguous one may be).",
		unit: "short", min: ptr(0.0),
		queries: []query{{expr: sumBy("outcome", ratings), legend: "{{outcome}}", requires: []string{ratings}}},
		colours: outcomeColours,
	}
}

var outcomeColours = []seriesColour{
	{match: "acknowledged", colour: "green"}, {match: "rejected", colour: "blue"},
	{match: "failed", colour: "red"}, {match: "ambiguous", colour: "purple"},
}

// rejectedCalls are calls an open breaker refused without trying.
func rejectedCalls(id uint32) panel {
	rpc := eq("variant", variantname.RPC)
	return panel{
		id: id, kind: timeSeries, variant: variantname.RPC, width: 12, height: 8,
		title: "RPC · calls rejected by open breakers",
		description: "Outbound calls an open circuit breaker refused without trying, per caller and dependency: " +
			"the RPC variant sheds load instead of queueing it. Zero while breakers are closed.",
		unit: "reqps", min: ptr(0.0),
		queries: []query{{
			expr:     sumBy("part, dependency", rateOrZero(sel(metricname.DependencyCallsTotal, rpc, eq("result", "rejected")), sel(metricname.DependencyCallsTotal, rpc))),
			legend:   "{{part}} → {{dependency}}",
			requires: []string{sel(metricname.DependencyCallsTotal, rpc)},
		}},
	}
}
