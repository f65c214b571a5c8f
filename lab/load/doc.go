// Package load is the lab's load generator: scenario files (shared with the
// k6 scripts in loadtests/), a deterministic request sequence derived from a
// seed, an open-model engine on top of vegeta that drives several variants
// with the same sequence at the same moments, the ledger of every rating sent
// (read back by the audit), client-side metrics and the live progress view.
//
// Why open model: a closed-model generator (N workers, each waiting for its
// answer) sends fewer requests while the system stalls and so hides the stall
// from its own latency numbers (coordinated omission). Here every request has
// its moment on the schedule; a slow answer never delays the next request, and
// latency is measured from the moment the request was sent.
package load
