// Package journal is the record of one lab run: what was run (the experiment
// definition and seed), the faults as they were applied, one sample per
// second per variant of the named series below, the steady-state probes per
// phase, recovery metrics per fault, the audit and the verdict. Reports render
// from a journal alone, so a run can be re-rendered, compared and shared long
// after the lab that produced it is gone.
//
// # File
//
// A journal is one JSON object in <state dir>/journals/<run>.json, written by
// Write (atomically: a temporary file renamed into place) and read by Read.
// Version is CurrentVersion; Read rejects other versions, a missing file and
// corrupt JSON with an error that names the file (and the byte offset for
// corrupt JSON). Durations are strings in Go syntax ("1.5s"); times are
// RFC 3339 with nanoseconds.
//
// # Series
//
// Sample.Values maps a series name to its value for one variant over the
// second that ends at Sample.At. A series without data in that second (no
// requests, part not scraped, not applicable to the variant) is absent, never
// NaN. Rates are computed from counter deltas between two scrapes, quantiles
// from histogram bucket deltas (so they describe that second only, not the run
// so far). The names (constants Series*):
//
//	client_rps                 requests answered per second as the load generator saw them (all kinds, all outcomes)
//	client_success_ratio       acknowledged / (acknowledged + failed + ambiguous) in that second; rejections (4xx) are
//	                           the client's doing and count on neither side
//	client_error_rps           failed + ambiguous answers per second
//	client_errors_total        failed + ambiguous answers since sampling began (cumulative)
//	client_requests_total      answers of any outcome since sampling began (cumulative)
//	client_acked_ratings_total acknowledged ratings (kind=rating) since sampling began (cumulative)
//	client_p50_seconds         median client latency of the answers in that second
//	client_p99_seconds         99th percentile client latency of the answers in that second
//	client_in_flight           requests sent and not yet answered
//	server_rps                 requests per second the variant's webserver answered (lab_http_requests_total;
//	                           includes the sampler's own view read, one a second)
//	server_error_ratio         share of those answered 5xx
//	breaker_state              worst breaker of the variant: 0 closed, 1 half-open, 2 open (rpc only)
//	breaker_transitions_total  breaker transitions since sampling began (rpc only)
//	consumer_lag               sum of lab_kafka_consumer_lag_messages over the variant's parts (stream only)
//	freshness_p99_seconds      99th percentile of lab_view_freshness_seconds observed in that second (stream only)
//	dlq_rps                    events sent to the DLQ per second (stream only)
//	view_count_total           sum of the per-movie counts the public API GET /api/movies serves
//	view_gap                   acknowledged ratings not (yet) visible in the public view: client_acked_ratings_total
//	                           minus the growth of view_count_total since sampling began; ~0 when the view keeps up
//	parts_down                 parts of the variant the supervisor reports not up (lab_part_up == 0)
//	scrape_errors              targets of the variant whose /metrics could not be read in that second
//
// Producers may add series; readers ignore names they do not know.
//
// # Recovery
//
// Recovery metrics (one Recovery per fault and variant) are computed from the
// samples by ComputeRecovery: a runner sets j.Recovery = ComputeRecovery(j)
// once samples and faults are in, before Write. docs/report.md says exactly
// what each one means. A report renders a journal without them by computing
// them itself (and says so).
//
// # Producing a journal
//
// package sampler scrapes the parts and derives the samples; package audit
// reads the baseline (audit.Observe at the start), the final states and
// checks them (audit.All or audit.Run); package report renders the result
// (report.RenderFile(path, report.DefaultDir(path))).
package journal
