package parts

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ratingslab/lab/lab/layout"
)

// Kafka platforms the log variant can run on (`lab up --kafka`).
const (
	// KafkaEmbedded is one kfake broker run as the part "broker" (default).
	KafkaEmbedded = "embedded"
	// KafkaCluster is Apache Kafka: KRaft nodes run as parts broker-1..N.
	KafkaCluster = "cluster"
	// KafkaExternal is a cluster the lab does not run (`--kafka-bootstrap`).
	KafkaExternal = "external"
)

// DefaultClusterNodes is how many KRaft nodes `lab up --kafka cluster` runs.
const DefaultClusterNodes = 3

// KafkaOptions say which Kafka the lab's log variant uses.
type KafkaOptions struct {
	// Platform is KafkaEmbedded (also when empty), KafkaCluster or KafkaExternal.
	Platform string `json:"platform,omitempty"`
	// Nodes is the cluster's node count (KafkaCluster; default 3), or the
	// embedded broker's (KafkaEmbedded; 1 unless `lab up --kafka-nodes`).
	Nodes int `json:"nodes,omitempty"`
	// Home is the Apache Kafka distribution the nodes run from (KafkaCluster).
	Home string `json:"home,omitempty"`
	// Java is the java executable the nodes run with (KafkaCluster).
	Java string `json:"java,omitempty"`
	// Heap is each node's JVM heap, e.g. "256m" (KafkaCluster).
	Heap string `json:"heap,omitempty"`
	// ClusterID is the KRaft cluster id the nodes are formatted with.
	ClusterID string `json:"cluster_id,omitempty"`
	// Bootstrap are the user's bootstrap addresses (KafkaExternal).
	Bootstrap []string `json:"bootstrap,omitempty"`
	// Brokers are the external cluster's brokers as its metadata advertised
	// them when the lab came up (KafkaExternal); each gets its own edge
	// proxy per client.
	Brokers []KafkaNode `json:"brokers,omitempty"`
}

// PlatformName is the platform, "embedded" when unset.
func (k KafkaOptions) PlatformName() string {
	if k.Platform == "" {
		return KafkaEmbedded
	}
	return k.Platform
}

// Describe names the platform for people, journals and reports:
// "embedded (kfake, 1 node)", "cluster (Apache Kafka, 3 nodes)",
// "external (3 brokers)".
func (k KafkaOptions) Describe() string {
	switch k.PlatformName() {
	case KafkaCluster:
		return fmt.Sprintf("cluster (Apache Kafka, %d nodes)", k.NodeCount())
	case KafkaExternal:
		return fmt.Sprintf("external (%d brokers)", len(k.Brokers))
	}
	n := max(k.Nodes, 1)
	return fmt.Sprintf("embedded (kfake, %d node%s)", n, map[bool]string{true: "s"}[n > 1])
}

// NodeCount is the cluster's node count (DefaultClusterNodes when unset).
func (k KafkaOptions) NodeCount() int {
	if k.Nodes <= 0 {
		return DefaultClusterNodes
	}
	return k.Nodes
}

// KafkaNode is one broker of the lab's Kafka as its clients see it.
type KafkaNode struct {
	// Name is what edges and faults call it: "broker" for the single
	// embedded broker, "broker-<id>" for a node of a cluster.
	Name string `json:"name"`
	// ID is the node id in metadata.
	ID int32 `json:"id"`
	// Advertised is the address metadata gives for it.
	Advertised string `json:"advertised"`
	// index is the node's slot in the port table (-1: the embedded broker's
	// own port, or an external broker).
	index int
}

// KafkaNodeName is the part name of cluster node with id id ("broker-1").
func KafkaNodeName(id int32) string { return "broker-" + strconv.Itoa(int(id)) }

// IsKafkaNode reports whether a part or edge target names a node of a
// cluster (broker-1, broker-2, ...): they are all instances of "the broker".
func IsKafkaNode(name string) bool {
	n, ok := strings.CutPrefix(name, "broker-")
	if !ok {
		return false
	}
	id, err := strconv.Atoi(n)
	return err == nil && id >= 1
}

// LabKafkaNodes lists a cluster of n nodes run by the lab: node i (0-based)
// has id i+1 and listens on the port table's KafkaNode(i).
func LabKafkaNodes(p layout.Ports, n int) []KafkaNode {
	out := make([]KafkaNode, n)
	for i := range out {
		id := int32(i + 1)
		out[i] = KafkaNode{Name: KafkaNodeName(id), ID: id, Advertised: p.KafkaNode(i), index: i}
	}
	return out
}

// KafkaNodes are the brokers of the lab's Kafka, in node order.
func (o Options) KafkaNodes(p layout.Ports) []KafkaNode {
	switch o.Kafka.PlatformName() {
	case KafkaCluster:
		return LabKafkaNodes(p, o.Kafka.NodeCount())
	case KafkaExternal:
		out := make([]KafkaNode, len(o.Kafka.Brokers))
		for i, b := range o.Kafka.Brokers {
			b.index = -1
			out[i] = b
		}
		return out
	}
	if o.Kafka.Nodes > 1 {
		return EmbeddedKafkaNodes(p, o.Kafka.Nodes)
	}
	return []KafkaNode{{Name: "broker", ID: 0, Advertised: p.Broker(), index: -1}}
}

// EmbeddedKafkaNodes lists a multi-node embedded broker (`lab up
// --kafka-nodes n`): n kfake nodes in the one part "broker", node i
// (0-based) with kfake's id i, named broker-<i+1> like a cluster's nodes.
// Node 1 listens on the broker's usual port (so `kcat -b`, the status table
// and the broker's health stay where they are), the others on the port
// table's KafkaNode(i); every client reaches every node through its own
// per-node edge proxy.
func EmbeddedKafkaNodes(p layout.Ports, n int) []KafkaNode {
	out := make([]KafkaNode, n)
	for i := range out {
		out[i] = KafkaNode{Name: KafkaNodeName(int32(i + 1)), ID: int32(i), Advertised: embeddedNodeAddr(p, i), index: i}
	}
	return out
}

// embeddedNodeAddr is where node i of the embedded broker listens.
func embeddedNodeAddr(p layout.Ports, i int) string {
	if i == 0 {
		return p.Broker()
	}
	return p.KafkaNode(i)
}

// EmbeddedListen is the embedded broker's --listen: one address per node.
func (o Options) EmbeddedListen(p layout.Ports) string {
	n := max(o.Kafka.Nodes, 1)
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = embeddedNodeAddr(p, i)
	}
	return strings.Join(addrs, ",")
}

// KafkaBootstrap is where the lab's own tools (replay, poison, tests)
// reach Kafka directly, without an edge proxy.
func (o Options) KafkaBootstrap(p layout.Ports) []string {
	if o.Kafka.PlatformName() == KafkaExternal {
		return append([]string(nil), o.Kafka.Bootstrap...)
	}
	var out []string
	for _, n := range o.KafkaNodes(p) {
		out = append(out, n.Advertised)
	}
	return out
}

// Kafka clients with per-node edge proxies: client numbers in the port
// table's NodeEdge(client, node).
const (
	clientWebserverStream = 0
	clientMoviesConnect   = 1
	clientRatingsStream   = 2                                              // replica i: 2+i
	clientForkMirror      = clientRatingsStream + MaxRatingsStreamReplicas // fork slot n: 6+n
)

// kafkaEdges are one client's edges to every broker. The single embedded
// broker keeps its classic edge ("<from>->broker", slot legacySlot); every
// node of a cluster gets its own ("<from>->broker-2", NodeEdge(client, node)).
func kafkaEdges(o Options, from string, client, legacySlot int) []Edge {
	nodes := o.KafkaNodes(layout.Ports{})
	if len(nodes) == 1 && nodes[0].Name == "broker" {
		return []Edge{{Name: from + "->broker", From: from, To: "broker", Variant: VariantStream, n: legacySlot}}
	}
	out := make([]Edge, 0, len(nodes))
	for i, nd := range nodes {
		e := Edge{Name: from + "->" + nd.Name, From: from, To: nd.Name, Variant: VariantStream, n: -1,
			client: client, node: i, embedded: o.Kafka.PlatformName() == KafkaEmbedded}
		if nd.index < 0 {
			e.upstream = nd.Advertised
		}
		out = append(out, e)
	}
	return out
}

// BrokerEdges are the edges a Kafka client instance of the lab (webserver-stream,
// movies-connect, ratings-stream[-N]) uses to reach each broker.
func BrokerEdges(o Options, from string) []Edge {
	var out []Edge
	for _, e := range EdgesFor(o) {
		if e.From == from && (e.To == "broker" || IsKafkaNode(e.To)) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		panic(fmt.Sprintf("parts: %s is not a Kafka client of the lab", from))
	}
	return out
}

// ForkBrokerEdges are the edges of replay fork n's mirror to each broker of
// the lab (slots 12.. for the embedded broker); forks are started by
// `lab replay fork`, not by `lab up`.
func ForkBrokerEdges(o Options, name string, n int) []Edge {
	return kafkaEdges(o, name, clientForkMirror+n, 12+n)
}

// KafkaClientArgs are the flags every Kafka client part gets: its own
// proxies as bootstrap, and a route per broker so that every broker address
// learned from metadata is dialed through that client's proxy for that
// broker (the classic advertised-address trap).
func KafkaClientArgs(p layout.Ports, edges ...Edge) []string {
	boot := make([]string, len(edges))
	args := []string{"--brokers", ""}
	for i, e := range edges {
		boot[i] = e.Listen(p)
		args = append(args, "--broker-route", e.Upstream(p)+"="+e.Listen(p))
	}
	args[1] = strings.Join(boot, ",")
	return args
}
