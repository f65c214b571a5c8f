// Package variantname names the two integration patterns the lab runs side
// by side — the "variant" of every part, metric label, load target, fault
// mapping and report column — so each name is spelled in one place.
package variantname

const (
	// RPC is the variant integrated by synchronous calls with timeouts and
	// circuit breakers.
	RPC = "rpc"
	// Stream is the variant integrated through the Kafka event log.
	Stream = "stream"
)

// All is both variants in display order.
var All = []string{RPC, Stream}
