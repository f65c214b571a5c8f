// Package chaos runs chaos experiments on a running lab: `lab chaos run
// FILE` reads an experiment (experiments/*.yaml, format in
// experiments/README.md), puts every chosen variant under the same load,
// injects the same faults on each on a schedule, checks a steady-state
// hypothesis throughout, and writes a journal (lab/journal) from which
// `lab report` alone draws its charts and verdicts.
//
// An experiment goes through three stages, each in its own files:
//
//   - Decode: experiment.go reads the YAML into an Experiment, naming the
//     field and line of every error; override.go applies --set and its
//     shorthands to the YAML tree first; resilience.go is the RPC callers'
//     runtime setting an experiment may compare.
//   - Plan: plan.go checks an Experiment against the lab it will run on
//     (Lab) and resolves it into a Plan. A step is written once, by what it
//     does to a role ("the rating store is unreachable"); mapping.go's
//     table (Equivalents, shown by `lab chaos list`) turns it into each variant's
//     concrete fault (lab/faults). probes.go lists the steady-state probes
//     and slo.go the lab's one objective (LabSLO) a probe's tolerance
//     defaults to.
//   - Run: Preflight checks the lab can take it; Run (runner.go) goes
//     through its phases: a baseline once the lab has settled (settle.go),
//     sampling every part and the load generator's own per-request feed
//     (lab/sampler into store.go), the load (lab/load) and the fault
//     schedule started together, a drain and the audit (lab/audit) of every
//     rating in the run's ledger, and the journal. evaluate.go cuts the
//     samples into windows (before, during, after the faults) and gives
//     each variant its verdict; print.go prints it.
//
// Whatever happens, a run heals every fault it injected and runs the
// experiment's rollbacks before it returns, also when interrupted (Ctrl-C):
// nothing a run injected outlives it.
package chaos
