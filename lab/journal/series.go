package journal

// Names of the sampled series (see the package documentation for meanings).
const (
	SeriesClientRPS           = "client_rps"
	SeriesClientSuccessRatio  = "client_success_ratio"
	SeriesClientErrorRPS      = "client_error_rps"
	SeriesClientErrorsTotal   = "client_errors_total"
	SeriesClientRequestsTotal = "client_requests_total"
	SeriesClientAckedRatings  = "client_acked_ratings_total"
	SeriesClientP50           = "client_p50_seconds"
	SeriesClientP99           = "client_p99_seconds"
	SeriesClientInFlight      = "client_in_flight"
	SeriesServerRPS           = "server_rps"
	SeriesServerErrorRatio    = "server_error_ratio"
	SeriesBreakerState        = "breaker_state"
	SeriesBreakerTransitions  = "breaker_transitions_total"
	SeriesConsumerLag         = "consumer_lag"
	SeriesFreshnessP99        = "freshness_p99_seconds"
	SeriesDLQRPS              = "dlq_rps"
	SeriesViewCount           = "view_count_total"
	SeriesViewGap             = "view_gap"
	SeriesPartsDown           = "parts_down"
	SeriesScrapeErrors        = "scrape_errors"
)
