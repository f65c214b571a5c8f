package parts

import (
	"fmt"

	"github.com/ratingslab/lab/lab/layout"
)

// Edge is one network edge between two parts. Every edge has its own fault
// proxy, so a fault on one edge touches nothing else.
type Edge struct {
	Name    string // "from->to", e.g. "webserver-rpc->ratings-rpc", "ratings-stream->broker-2"
	From    string // client instance
	To      string // server part ("broker" or a cluster node "broker-N" for Kafka clients)
	Variant Variant
	n       int // proxy slot in the port table's edge range (-1: a per-node edge)

	// Per-node Kafka edges (n == -1): the client's number and the node's
	// index in the port table's NodeEdge(client, node), and the node's
	// address when the lab does not run it (an external cluster).
	client, node int
	upstream     string
	embedded     bool // a node of the embedded broker (embeddedNodeAddr)
}

// Listen is where the edge's proxy listens; clients are handed this address.
func (e Edge) Listen(p layout.Ports) string {
	if e.n < 0 {
		return p.NodeEdge(e.client, e.node)
	}
	if e.To == RegistryPart {
		return p.RegistryEdge(e.n)
	}
	return p.Edge(e.n)
}

// Upstream is the address the proxy forwards to.
func (e Edge) Upstream(p layout.Ports) string {
	if e.upstream != "" {
		return e.upstream
	}
	if e.n < 0 && e.embedded {
		return embeddedNodeAddr(p, e.node)
	}
	if e.n < 0 {
		return p.KafkaNode(e.node)
	}
	switch e.To {
	case "ratings-rpc":
		return p.RatingsRPC()
	case "movies-rpc":
		return p.MoviesRPC()
	case "broker":
		return p.Broker()
	case RegistryPart:
		return p.Registry()
	}
	panic("parts: edge to unknown part " + e.To)
}

// Server is the part whose process listens behind the edge: To, except
// that every node of the embedded broker is the one part "broker", and ""
// for a broker the lab does not run (an external cluster).
func (e Edge) Server() string {
	switch {
	case e.upstream != "":
		return ""
	case e.n < 0 && e.embedded:
		return "broker"
	}
	return e.To
}

// MaxRatingsStreamReplicas bounds `--replicas ratings-stream=N`.
const MaxRatingsStreamReplicas = 4

// Edges returns every edge of an embedded-broker lab with the given
// ratings-stream replica count (EdgesFor with default options).
func Edges(ratingsStreamReplicas int) []Edge {
	return EdgesFor(Options{Replicas: map[string]int{"ratings-stream": ratingsStreamReplicas}})
}

// EdgesFor returns every edge of a lab started with o: the RPC calls, and
// each Kafka client's edge to each broker of the lab's Kafka.
func EdgesFor(o Options) []Edge {
	es := []Edge{
		{Name: "webserver-rpc->ratings-rpc", From: "webserver-rpc", To: "ratings-rpc", Variant: VariantRPC, n: 0},
		{Name: "ratings-rpc->movies-rpc", From: "ratings-rpc", To: "movies-rpc", Variant: VariantRPC, n: 1},
	}
	es = append(es, kafkaEdges(o, "webserver-stream", clientWebserverStream, 2)...)
	es = append(es, kafkaEdges(o, "movies-connect", clientMoviesConnect, 3)...)
	replicas := max(o.Replicas["ratings-stream"], 1)
	for i := 0; i < replicas && i < MaxRatingsStreamReplicas; i++ {
		es = append(es, kafkaEdges(o, InstanceName("ratings-stream", i), clientRatingsStream+i, 4+i)...)
	}
	return append(es, registryEdges(replicas)...)
}

// EdgeFrom returns the edge a client instance uses to reach part `to` (an
// RPC edge, or the embedded broker's; see BrokerEdges for Kafka clients).
func EdgeFrom(from, to string) Edge {
	for _, e := range Edges(MaxRatingsStreamReplicas) {
		if e.From == from && e.To == to {
			return e
		}
	}
	panic(fmt.Sprintf("parts: no edge %s->%s", from, to))
}

// ForkBrokerEdge is the embedded broker's edge of replay fork n (slots
// 12..); see ForkBrokerEdges for any platform.
func ForkBrokerEdge(name string, n int) Edge { return ForkBrokerEdges(Options{}, name, n)[0] }
