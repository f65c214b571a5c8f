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
// Version is CurrentVersion (2); Read rejects other versions — by name, and
// for version 1 with the reason its figures mean something else — a missing
// file and corrupt JSON with an error that names the file (and the byte
// offset for corrupt JSON). Durations are strings in Go syntax ("1.5s");
// times are RFC 3339 with nanoseconds.
//
// # Which figure is which
//
// Client figures (client_*, Client windows, probes on them) come from the
// load generator's own per-request outcomes and latencies, fed to the
// runner as they happen (load.Observer): counts are exact, percentiles are
// nearest-rank within latency.ErrorBound (0.2 %) of the exact order
// statistic — the same figures a reader computes from the run's ledger.
// Consumer lag and DLQ records are read from outside the processes: the
// broker's offsets over a direct connection, the consumer's durable
// position from its own store (package lag). Server figures (server_*,
// breakers, freshness) are scraped from the parts' /metrics; freshness is
// interpolated in a dense histogram (8 buckets per doubling, so within 9 %).
//
// # Series
//
// Sample.Values maps a series name to its value for one variant over the
// second that ends at Sample.At. A series that does not apply or had no
// data in that second (no requests, not applicable to the variant) is
// absent, never NaN; a series that applies but could not be measured (the
// broker or a store unreadable) is null in the file (Sample.Unknown) and is
// drawn as a gap, never as a stale number. Rates are per second of that
// interval; quantiles describe that second only. The names (constants
// Series*):
//
//	client_rps                  answers per second the load generator got (all kinds, all outcomes)
//	client_success_ratio        answers as expected / answers, in that second: 2xx, or 4xx for a request made invalid on
//	                            purpose; an unexpected 4xx, a 5xx, a 504 or no answer counts against it
//	client_read_success_ratio   the same for reads (GET) only
//	client_write_success_ratio  the same for ratings (POST) only
//	client_error_rps            answers not as expected per second
//	client_errors_total         answers not as expected since sampling began (cumulative)
//	client_requests_total       answers of any outcome since sampling began (cumulative)
//	client_acked_ratings_total  acknowledged ratings since sampling began (cumulative)
//	client_p50_seconds          median latency of the answers in that second (nearest rank, ±0.2 %)
//	client_p99_seconds          99th percentile latency of the answers in that second (nearest rank, ±0.2 %)
//	client_in_flight            requests sent and not yet answered, at the end of the second
//	server_rps                  requests per second the variant's webserver answered (lab_http_requests_total;
//	                            includes the sampler's own view read, one a second)
//	server_error_ratio          share of those answered 5xx
//	breaker_state:<part>/<dep>  one per circuit breaker (rpc): 0 closed, 1 half-open, 2 open, -1 disabled
//	breaker_state               the worst of them (the highest value)
//	breaker_transitions_total   breaker transitions since sampling began (rpc only)
//	consumer_lag                records of `ratings` the processor has not durably consumed: the broker's end offsets
//	                            minus the positions in its store (or group), summed over partitions (stream only;
//	                            null when either side cannot be read)
//	freshness_p99_seconds       99th percentile of lab_view_freshness_seconds observed in that second (stream only)
//	restore_seconds             the latest partition take-over: mean time from assignment until a taken-over partition
//	                            included the whole log (lab_stream_restore_duration_seconds' sum and count over the
//	                            partitions restored in the last second that had any; exact); held until the next
//	                            (stream only)
//	restore_changelog_records_warm     changelog records read by restores since sampling began on top of warm copies
//	                                   (standby replicas, or the partitions a replica kept: --standby-replicas)
//	restore_changelog_records_scratch  ... from the changelog's start (lab_stream_restore_changelog_records_total{start};
//	                                   stream only)
//	dlq_records_total           records in ratings-dlq since sampling began, from the broker (stream only; null when
//	                            the broker cannot be read)
//	view_count_total            sum of the per-movie counts the public API GET /api/movies serves
//	view_gap                    acknowledged, not yet visible: per movie, acknowledged ratings since the view was first
//	                            read minus the view's growth, where positive, summed; 0 when the view keeps up
//	view_unacknowledged         visible, never acknowledged: per movie, the view's growth beyond the acknowledged
//	                            ratings, summed (ratings applied after a 504 or a lost answer; a rating committed but
//	                            not yet acknowledged shows for an instant)
//	parts_down                  parts of the variant the supervisor reports not up (lab_part_up == 0)
//	scrape_errors               targets of the variant whose /metrics could not be read in that second
//	machine_cpu_busy            share (0..1) of the machine's CPU time, all cores, busy since the previous sample
//	                            (/proc/stat: all but idle and iowait); the same machine under every variant
//
// Producers may add series; readers ignore names they do not know.
//
// # Client windows
//
// Journal.Client holds, per variant, the load generator's figures over the
// whole run ("run") and each phase of the hypothesis ("before", "during",
// "after"): answers, answers as expected, success ratio, outcomes,
// unexpected 4xx and latency percentiles (p50, p90, p99, p99.9, max), for
// all requests, reads and writes. An answer belongs to the window in which
// it arrived. The "run" window holds every request of the run's ledger, so
// its percentiles are the ledger's within 0.2 %.
//
// # Recovery
//
// Recovery metrics (one Recovery per fault and variant) are computed from the
// samples by ComputeRecovery: a runner sets j.Recovery = ComputeRecovery(j)
// once samples and faults are in, before Write. Each says which signals the
// fault moved out of their baseline band (Touched); an untouched signal has
// no recovery time. docs/report.md says exactly what each one means. A report renders a journal without them by computing
// them itself (and says so).
//
// # Producing a journal
//
// package sampler scrapes the parts and derives the samples; package audit
// reads the baseline (audit.Observe at the start), the final states and
// checks them (audit.All or audit.Run); package report renders the result
// (report.RenderFile(path, report.DefaultDir(path))).
package journal
