// Package layout knows where a lab keeps its state and which port each part
// listens on. Every address in the lab derives from one base port so that two
// labs (for example two test runs) can live side by side.
package layout

import "fmt"

// DefaultPortBase is the first port of the lab's block of PortBlock ports.
const DefaultPortBase = 7700

// PortBlock is how many consecutive ports one lab reserves. The block is laid
// out in ranges (offsets from the base):
//
//	  0–9    lab infrastructure (control, broker, Prometheus, Grafana, Toxiproxy,
//	         load metrics, schema registry)
//	 10–29   services' public listeners
//	 30–49   edge fault proxies
//	 50–61   replay forks
//	 64–127  loopback admin listeners: a part's admin port is its public offset + 64
//	128–191  the real Kafka cluster (node and controller listeners, per-broker edges)
const PortBlock = 192

// TestPortBases is how many port blocks fit between 20000 and the start of
// Linux's ephemeral port range (32768): tests pick their lab's base among
// them, so a lab under test never collides with an outgoing connection.
const TestPortBases = (32768 - 20000) / PortBlock

// TestPortBase returns the base of test block n (0 <= n < TestPortBases).
func TestPortBase(n int) int { return 20000 + n*PortBlock }

// Ports is the lab's port table, documented in the README. Offsets are fixed;
// only the base moves.
type Ports struct{ Base int }

// Offsets from the base. Keep in sync with the README's port table.
const (
	offControl   = 0 // supervisor control API (loopback only)
	offBroker    = 1 // embedded Kafka broker (kfake)
	offProm      = 2 // Prometheus, when installed
	offGrafana   = 3 // Grafana, when installed
	offToxiproxy = 4 // Toxiproxy HTTP API for the edge proxies
	offLoad      = 5 // `lab load` client-side metrics while a load runs
	offRegistry  = 6 // schema registry (embedded, or Apicurio)

	offWebserverRPC  = 10
	offRatingsRPC    = 11
	offMoviesRPC     = 12
	offWebserverLog  = 20
	offRatingsStream = 21 // replica i listens on offRatingsStream+i (i < 4)
	offMoviesConnect = 25

	offEdges = 30 // edge proxies, see Edge* below
	offForks = 50 // `lab replay fork` projections

	// offAdmin: a part's loopback admin listener (/healthz, /metrics,
	// /debug/pprof/, /admin/) is at its public offset + offAdmin.
	offAdmin = 64

	// The real (or multi-node embedded) Kafka cluster, 128–191.
	offKafkaNodes       = 128 // node n's client listener: 128+n
	offKafkaControllers = 131 // node n's KRaft controller listener: 131+n
	offNodeEdges        = 136 // per-(client, node) edge proxies: 136 + client*MaxKafkaNodes + node
)

// MaxKafkaNodes bounds a lab's Kafka cluster.
const MaxKafkaNodes = 3

// MaxNodeEdgeClients bounds how many Kafka clients get per-node edge proxies
// (offsets 136..136+MaxNodeEdgeClients*MaxKafkaNodes-1 stay inside the block).
const MaxNodeEdgeClients = 16

func (p Ports) addr(off int) string { return fmt.Sprintf("127.0.0.1:%d", p.Base+off) }

func (p Ports) Control() string    { return p.addr(offControl) }
func (p Ports) Broker() string     { return p.addr(offBroker) }
func (p Ports) Prometheus() string { return p.addr(offProm) }
func (p Ports) Grafana() string    { return p.addr(offGrafana) }
func (p Ports) Toxiproxy() string  { return p.addr(offToxiproxy) }
func (p Ports) Load() string       { return p.addr(offLoad) }
func (p Ports) Registry() string   { return p.addr(offRegistry) }

// KafkaNode is the client listener of cluster node n (0-based, n < MaxKafkaNodes).
func (p Ports) KafkaNode(n int) string { return p.addr(offKafkaNodes + n) }

// KafkaController is the KRaft controller listener of cluster node n.
func (p Ports) KafkaController(n int) string { return p.addr(offKafkaControllers + n) }

// NodeEdge is the listen address of the fault proxy between Kafka client
// number client (0-based, < MaxNodeEdgeClients) and cluster node n.
func (p Ports) NodeEdge(client, n int) string {
	return p.addr(offNodeEdges + client*MaxKafkaNodes + n)
}

func (p Ports) WebserverRPC() string    { return p.addr(offWebserverRPC) }
func (p Ports) RatingsRPC() string      { return p.addr(offRatingsRPC) }
func (p Ports) MoviesRPC() string       { return p.addr(offMoviesRPC) }
func (p Ports) WebserverStream() string { return p.addr(offWebserverLog) }
func (p Ports) MoviesConnect() string   { return p.addr(offMoviesConnect) }

// RatingsStream is the HTTP address (health, metrics, state) of replica i (0-based).
func (p Ports) RatingsStream(i int) string { return p.addr(offRatingsStream + i) }

// Edge is the listen address of the fault proxy for edge number n (see parts.Edges).
func (p Ports) Edge(n int) string { return p.addr(offEdges + n) }

// registryEdgeOffsets are the edge proxies between the schema registry's
// clients and the registry: webserver-stream, movies-connect, then
// ratings-stream replicas 1..4 (the last two in the infrastructure range's
// spare offsets).
var registryEdgeOffsets = [...]int{38, 39, 40, 41, 7, 8}

// MaxRegistryEdges bounds the registry's edge proxies.
const MaxRegistryEdges = len(registryEdgeOffsets)

// RegistryEdge is the listen address of registry edge proxy n (< MaxRegistryEdges).
func (p Ports) RegistryEdge(n int) string { return p.addr(registryEdgeOffsets[n]) }

// Fork is the HTTP address of replay fork number n.
func (p Ports) Fork(n int) string { return p.addr(offForks + n) }

// Admin is the loopback admin listener of whatever listens on public, an
// address of this lab's ports 0–63 (a service, the broker, a fork): the same
// port plus 64. Any other address has no admin listener here ("").
func (p Ports) Admin(public string) string {
	var port int
	if _, err := fmt.Sscanf(public, "127.0.0.1:%d", &port); err != nil {
		return ""
	}
	off := port - p.Base
	if off < 0 || off >= offAdmin {
		return ""
	}
	return p.addr(off + offAdmin)
}

// AdminBroker is the embedded broker's admin listener (health with its data
// check, metrics, pprof, the Kafka protocol faults).
func (p Ports) AdminBroker() string { return p.addr(offBroker + offAdmin) }

func (p Ports) AdminWebserverRPC() string    { return p.addr(offWebserverRPC + offAdmin) }
func (p Ports) AdminRatingsRPC() string      { return p.addr(offRatingsRPC + offAdmin) }
func (p Ports) AdminMoviesRPC() string       { return p.addr(offMoviesRPC + offAdmin) }
func (p Ports) AdminWebserverStream() string { return p.addr(offWebserverLog + offAdmin) }
func (p Ports) AdminMoviesConnect() string   { return p.addr(offMoviesConnect + offAdmin) }

// AdminRatingsStream is replica i's admin listener.
func (p Ports) AdminRatingsStream(i int) string { return p.addr(offRatingsStream + i + offAdmin) }

// Validate rejects a base whose block would not fit in the port range.
func (p Ports) Validate() error {
	if p.Base < 1024 || p.Base+PortBlock > 65535 {
		return fmt.Errorf("--port-base %d: must be between 1024 and %d so the lab's %d ports fit", p.Base, 65535-PortBlock, PortBlock)
	}
	return nil
}
