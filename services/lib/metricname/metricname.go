// Package metricname is the one home of the lab's metric names: the services
// and lab parts that define each metric, the dashboards generator that
// queries it and the sampler that reads it all use these constants, so a
// renamed metric fails to compile instead of silently emptying a panel.
// Names follow Prometheus's naming guide; help texts and labels stay with
// each metric's definition. Histograms' series add _bucket, _sum, _count.
package metricname

// Every service's HTTP server (services/lib/serve).
const (
	HTTPInflightLimit          = "lab_http_inflight_limit"
	HTTPInflightRequests       = "lab_http_inflight_requests"
	HTTPQueueLimit             = "lab_http_queue_limit"
	HTTPQueuedRequests         = "lab_http_queued_requests"
	HTTPRejectedRequestsTotal  = "lab_http_rejected_requests_total"
	HTTPRequestDurationSeconds = "lab_http_request_duration_seconds"
	HTTPRequestsTotal          = "lab_http_requests_total"
)

// Outbound calls of the RPC variant: breakers and connection pools (services/lib/breaker).
const (
	BreakerState                   = "lab_breaker_state"
	BreakerTransitionsTotal        = "lab_breaker_transitions_total"
	DependencyCallDurationSeconds  = "lab_dependency_call_duration_seconds"
	DependencyCallsTotal           = "lab_dependency_calls_total"
	DependencyPoolConnections      = "lab_dependency_pool_connections"
	DependencyPoolInUseConnections = "lab_dependency_pool_in_use_connections"
	DependencyPoolWaitingCalls     = "lab_dependency_pool_waiting_calls"
)

// Kafka clients of the log variant (services/lib/kafkaio).
const (
	KafkaConsumedMessagesTotal = "lab_kafka_consumed_messages_total"
	KafkaConsumerLagMessages   = "lab_kafka_consumer_lag_messages"
	KafkaProduceErrorsTotal    = "lab_kafka_produce_errors_total"
	KafkaProduceRetriesTotal   = "lab_kafka_produce_retries_total"
	KafkaProducedMessagesTotal = "lab_kafka_produced_messages_total"
)

// Event formats and the schema registry (services/lib/eventformat, lab/registry).
const (
	EventDecodeFailuresTotal     = "lab_event_decode_failures_total"
	EventRecordsTotal            = "lab_event_records_total"
	SchemaRegistryCacheHitsTotal = "lab_schema_registry_cache_hits_total"
	SchemaRegistryDecisionsTotal = "lab_schema_registry_decisions_total"
	SchemaRegistryRequestsTotal  = "lab_schema_registry_requests_total"
)

// The stream processor ratings-stream (services/ratings/stream).
const (
	DLQMessagesTotal                 = "lab_dlq_messages_total"
	StreamBatchDurationSeconds       = "lab_stream_batch_duration_seconds"
	StreamChangelogRecordsTotal      = "lab_stream_changelog_records_total"
	StreamChangelogTransactionsTotal = "lab_stream_changelog_transactions_total"
	StreamRestoreDurationSeconds     = "lab_stream_restore_duration_seconds"
	StreamRestoreRecordsTotal        = "lab_stream_restore_records_total"
	StreamTransactionsTotal          = "lab_stream_transactions_total"
	// Standby replicas (--standby-replicas).
	StreamRestoreChangelogRecordsTotal = "lab_stream_restore_changelog_records_total"
	StreamStandbyLagRecords            = "lab_stream_standby_lag_records"
	StreamStandbyPartitions            = "lab_stream_standby_partitions"
	StreamStandbyRecordsTotal          = "lab_stream_standby_records_total"
)

// The webserver-stream view (services/webserver/stream).
const (
	ViewFreshnessSeconds = "lab_view_freshness_seconds"
	ViewRows             = "lab_view_rows"
)

// Group commit of a part's SQLite store (services/lib/sqlitedb.GroupCommit):
// writes / commits is the mean batch.
const (
	StoreCommitsTotal      = "lab_store_commits_total"
	StoreCommitWritesTotal = "lab_store_commit_writes_total"
)

// The load generator, client side (lab/load).
const (
	LoadInFlightRequests       = "lab_load_in_flight_requests"
	LoadRequestDurationSeconds = "lab_load_request_duration_seconds"
	LoadRequestsTotal          = "lab_load_requests_total"
	LoadRetriesTotal           = "lab_load_retries_total"
	LoadTargetRate             = "lab_load_target_rate"
)

// The lab itself: supervisor, fault injector, embedded broker.
const (
	BrokerLostRecords = "lab_broker_lost_records"
	// The embedded broker's log cleaner (services/lib/kafkaio/embedded/cleaner.go).
	BrokerLogCleanerRunsTotal   = "lab_broker_log_cleaner_runs_total"
	BrokerLogCleanerHeldSeconds = "lab_broker_log_cleaner_held_seconds"
	BrokerLogCleanerDirtyRatio  = "lab_broker_log_cleaner_dirty_ratio"
	FaultActive                 = "lab_fault_active"
	PartUp                      = "lab_part_up"
	// The whole machine's CPU time by mode, from /proc/stat (lab/machinecpu).
	MachineCPUSecondsTotal = "lab_machine_cpu_seconds_total"
)
