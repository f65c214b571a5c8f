package journal

import "strings"

// Names of the sampled series (see the package documentation for meanings).
const (
	SeriesClientRPS            = "client_rps"
	SeriesClientSuccessRatio   = "client_success_ratio"
	SeriesClientReadSuccess    = "client_read_success_ratio"
	SeriesClientWriteSuccess   = "client_write_success_ratio"
	SeriesClientErrorRPS       = "client_error_rps"
	SeriesClientErrorsTotal    = "client_errors_total"
	SeriesClientRequestsTotal  = "client_requests_total"
	SeriesClientAckedRatings   = "client_acked_ratings_total"
	SeriesClientP50            = "client_p50_seconds"
	SeriesClientP99            = "client_p99_seconds"
	SeriesClientInFlight       = "client_in_flight"
	SeriesServerRPS            = "server_rps"
	SeriesServerErrorRatio     = "server_error_ratio"
	SeriesBreakerState         = "breaker_state"
	SeriesBreakerTransitions   = "breaker_transitions_total"
	SeriesConsumerLag          = "consumer_lag"
	SeriesFreshnessP99         = "freshness_p99_seconds"
	SeriesRestoreSeconds       = "restore_seconds"
	SeriesDLQRecords           = "dlq_records_total"
	SeriesViewCount            = "view_count_total"
	SeriesViewGap              = "view_gap"
	SeriesViewUnacknowledged   = "view_unacknowledged"
	SeriesPartsDown            = "parts_down"
	SeriesScrapeErrors         = "scrape_errors"
	SeriesMachineCPUBusy       = "machine_cpu_busy"
	seriesBreakerPrefix        = SeriesBreakerState + ":"
	breakerSeriesPartSeparator = "/"
)

// Changelog records read by restores since sampling began, by where the
// reading started (lab_stream_restore_changelog_records_total{start}).
const (
	SeriesRestoreRecordsWarm    = "restore_changelog_records_warm"
	SeriesRestoreRecordsScratch = "restore_changelog_records_scratch"
)

// Breaker states as the breaker series hold them (lab_breaker_state).
const (
	BreakerDisabled = -1
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// BreakerStateName names a breaker series value.
func BreakerStateName(v float64) string {
	switch v {
	case BreakerDisabled:
		return "disabled"
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// BreakerSeries is the series of one breaker by name: the caller part and
// the dependency it calls ("breaker_state:webserver-rpc/ratings-rpc").
func BreakerSeries(part, dependency string) string {
	return seriesBreakerPrefix + part + breakerSeriesPartSeparator + dependency
}

// ParseBreakerSeries is BreakerSeries' inverse; ok is false for any other
// series.
func ParseBreakerSeries(name string) (part, dependency string, ok bool) {
	rest, ok := strings.CutPrefix(name, seriesBreakerPrefix)
	if !ok {
		return "", "", false
	}
	part, dependency, ok = strings.Cut(rest, breakerSeriesPartSeparator)
	return part, dependency, ok
}

// Signals a recovery measures (Recovery.Touched).
const (
	SignalSuccess = "success"
	SignalP99     = "p99"
	SignalLag     = "lag"
	SignalView    = "view"
)

// Bounded resources of the services ([K]): per part, and per edge (a
// caller part and the dependency it calls).
const (
	// SeriesPartRPS: requests a part served per second (lab_http_requests_total
	// of its public listener): at movies-rpc, the calls that reached it.
	SeriesPartRPS = "part_rps"
	// SeriesPartInFlight and SeriesPartQueued: the part's bulkhead now
	// (lab_http_inflight_requests, lab_http_queued_requests).
	SeriesPartInFlight = "part_in_flight"
	SeriesPartQueued   = "part_queued"
	// SeriesPoolUtilisation: share of the edge's connection pool held by
	// calls now (0..1); SeriesPoolWaiting: calls waiting for a connection.
	SeriesPoolUtilisation = "pool_utilisation"
	SeriesPoolWaiting     = "pool_waiting"
	// SeriesEdgeCallsRPS: call attempts per second on the edge, retries
	// included, breaker rejections not (lab_dependency_calls_total).
	SeriesEdgeCallsRPS = "edge_calls_rps"
)

// PartSeries is the series kind of one part ("part_rps:movies-rpc").
func PartSeries(kind, part string) string { return kind + ":" + part }

// EdgeSeries is the series kind of one edge ("edge_calls_rps:ratings-rpc/movies-rpc").
func EdgeSeries(kind, part, dependency string) string {
	return kind + ":" + part + breakerSeriesPartSeparator + dependency
}

// ParseSeries splits "kind:name" into kind and name ("" kinds for plain series).
func ParseSeries(series string) (kind, name string) {
	kind, name, ok := strings.Cut(series, ":")
	if !ok {
		return "", series
	}
	return kind, name
}
