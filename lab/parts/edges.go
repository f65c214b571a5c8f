package parts

import (
	"fmt"

	"github.com/ratingslab/lab/lab/layout"
)

// Edge is one network edge between two parts. Every edge has its own fault
// proxy, so a fault on one edge touches nothing else.
type Edge struct {
	Name    string // "from->to", e.g. "webserver-rpc->ratings-rpc"
	From    string // client instance
	To      string // server part
	Variant Variant
	n       int // proxy slot in the port table
}

// Listen is where the edge's proxy listens; clients are handed this address.
func (e Edge) Listen(p layout.Ports) string {
	if e.To == RegistryPart {
		return p.RegistryEdge(e.n)
	}
	return p.Edge(e.n)
}

// Upstream is the address the proxy forwards to.
func (e Edge) Upstream(p layout.Ports) string {
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

// MaxRatingsStreamReplicas bounds `--replicas ratings-stream=N`.
const MaxRatingsStreamReplicas = 4

// Edges returns every edge of a lab with the given ratings-stream replica count.
func Edges(ratingsStreamReplicas int) []Edge {
	es := []Edge{
		{Name: "webserver-rpc->ratings-rpc", From: "webserver-rpc", To: "ratings-rpc", Variant: VariantRPC, n: 0},
		{Name: "ratings-rpc->movies-rpc", From: "ratings-rpc", To: "movies-rpc", Variant: VariantRPC, n: 1},
		{Name: "webserver-stream->broker", From: "webserver-stream", To: "broker", Variant: VariantStream, n: 2},
		{Name: "movies-connect->broker", From: "movies-connect", To: "broker", Variant: VariantStream, n: 3},
	}
	for i := 0; i < ratingsStreamReplicas && i < MaxRatingsStreamReplicas; i++ {
		from := InstanceName("ratings-stream", i)
		es = append(es, Edge{Name: from + "->broker", From: from, To: "broker", Variant: VariantStream, n: 4 + i})
	}
	return append(es, registryEdges(ratingsStreamReplicas)...)
}

// EdgeFrom returns the edge a client instance uses to reach part `to`.
func EdgeFrom(from, to string) Edge {
	for _, e := range Edges(MaxRatingsStreamReplicas) {
		if e.From == from && e.To == to {
			return e
		}
	}
	panic(fmt.Sprintf("parts: no edge %s->%s", from, to))
}

// ForkBrokerEdge is the broker edge of replay fork n (slots 12..); forks are
// started by `lab replay fork`, not by `lab up`.
func ForkBrokerEdge(name string, n int) Edge {
	return Edge{Name: name + "->broker", From: name, To: "broker", Variant: VariantStream, n: 12 + n}
}

// KafkaClientArgs are the flags every Kafka client part gets: its own proxy
// as bootstrap, and a route so that the broker address learned from metadata
// is dialed through that same proxy (the classic advertised-address trap).
func KafkaClientArgs(p layout.Ports, e Edge) []string {
	return []string{"--brokers", e.Listen(p), "--broker-route", p.Broker() + "=" + e.Listen(p)}
}
