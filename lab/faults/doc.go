// Package faults is the lab's fault injector. It runs inside the supervisor
// and applies three kinds of faults:
//
//   - on network edges, as Toxiproxy toxics on the edge's own proxy (latency,
//     timeout, reset_peer, bandwidth, slow_close, limit_data, partition);
//   - on processes, through the supervisor (kill, pause, restart);
//   - inside services, through each part's loopback-only /admin/ endpoints
//     (error_rate, handler_latency, slow_db, throttle), plus poison records
//     written straight into the `ratings` log.
//
// Every injected fault gets an id, may heal itself after a duration, shows
// as lab_fault_active{fault,target}, and is healed when the lab goes down.
// The catalog (Kinds) is pure data, so experiment files can be validated
// against it before anything is injected.
package faults
