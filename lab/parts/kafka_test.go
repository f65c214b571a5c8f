package parts

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/layout"
)

// routes reads --brokers and --broker-route back from a client's arguments.
func routes(t *testing.T, args []string) (boot []string, route map[string]string) {
	t.Helper()
	route = map[string]string{}
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "--brokers":
			boot = strings.Split(args[i+1], ",")
		case "--broker-route":
			adv, local, ok := strings.Cut(args[i+1], "=")
			if !ok {
				t.Fatalf("bad route %q", args[i+1])
			}
			route[adv] = local
		}
	}
	return boot, route
}

// On a cluster every Kafka client gets its own proxy to every node, and
// routes each node's advertised address to its own proxy for that node;
// no two edges share a port and every port stays in the lab's block.
func TestClusterEdgesRouteEveryNodeThroughTheClientsOwnProxy(t *testing.T) {
	p := layout.Ports{Base: 20000}
	o := Options{Replicas: map[string]int{"ratings-stream": MaxRatingsStreamReplicas},
		Kafka: KafkaOptions{Platform: KafkaCluster}}
	nodes := o.KafkaNodes(p)
	if len(nodes) != DefaultClusterNodes || nodes[0].Name != "broker-1" || nodes[2].Advertised != p.KafkaNode(2) {
		t.Fatalf("nodes: %+v", nodes)
	}
	seen := map[string]string{}
	for _, e := range EdgesFor(o) {
		l := e.Listen(p)
		if other, dup := seen[l]; dup {
			t.Fatalf("%s and %s both listen on %s", e.Name, other, l)
		}
		seen[l] = e.Name
		if port := portOf(t, l); port < p.Base || port >= p.Base+layout.PortBlock {
			t.Fatalf("%s listens on %s, outside the block", e.Name, l)
		}
	}
	clients := []string{"webserver-stream", "movies-connect", "ratings-stream", "ratings-stream-2", "ratings-stream-3", "ratings-stream-4"}
	for _, c := range clients {
		es := BrokerEdges(o, c)
		if len(es) != len(nodes) {
			t.Fatalf("%s has %d broker edges, want one per node", c, len(es))
		}
		boot, route := routes(t, KafkaClientArgs(p, es...))
		for i, n := range nodes {
			want := c + "->" + n.Name
			if es[i].Name != want || es[i].Upstream(p) != n.Advertised {
				t.Errorf("edge %d of %s: %s -> %s, want %s -> %s", i, c, es[i].Name, es[i].Upstream(p), want, n.Advertised)
			}
			if route[n.Advertised] != es[i].Listen(p) || !slices.Contains(boot, es[i].Listen(p)) {
				t.Errorf("%s: %s must route to and bootstrap from %s; routes %v, bootstrap %v", c, n.Advertised, es[i].Listen(p), route, boot)
			}
		}
	}
	fork := ForkBrokerEdges(o, "fork-a", 2)
	if len(fork) != len(nodes) || seen[fork[0].Listen(p)] != "" {
		t.Errorf("a fork's mirror needs its own edge per node, apart from the lab's: %+v", fork)
	}
}

// The embedded broker keeps one classic edge per client, on the slots the
// README's port table documents.
func TestEmbeddedBrokerKeepsOneEdgePerClient(t *testing.T) {
	p := layout.Ports{Base: 20000}
	es := BrokerEdges(Options{}, "webserver-stream")
	if len(es) != 1 || es[0].Name != "webserver-stream->broker" || es[0].Listen(p) != p.Edge(2) || es[0].Upstream(p) != p.Broker() {
		t.Fatalf("embedded edges: %+v", es)
	}
	boot, route := routes(t, KafkaClientArgs(p, es...))
	if len(boot) != 1 || boot[0] != p.Edge(2) || route[p.Broker()] != p.Edge(2) {
		t.Fatalf("bootstrap %v routes %v", boot, route)
	}
	if got := (Options{}).KafkaBootstrap(p); !slices.Equal(got, []string{p.Broker()}) {
		t.Fatalf("bootstrap for tools: %v", got)
	}
}

// A multi-node embedded broker (--kafka-nodes 3) is one part listening on
// three addresses — node 1 on the broker's own port, the others in the
// cluster range — and every client reaches each node through its own proxy.
func TestMultiNodeEmbeddedBrokerHasPerNodeEdges(t *testing.T) {
	p := layout.Ports{Base: 20000}
	o := Options{Kafka: KafkaOptions{Nodes: 3}, Replicas: map[string]int{"ratings-stream": 2}}
	want := []string{p.Broker(), p.KafkaNode(1), p.KafkaNode(2)}
	if got := strings.Split(o.EmbeddedListen(p), ","); !slices.Equal(got, want) {
		t.Fatalf("--listen %v, want %v", got, want)
	}
	if got := o.KafkaBootstrap(p); !slices.Equal(got, want) {
		t.Fatalf("bootstrap for tools %v, want %v", got, want)
	}
	es := BrokerEdges(o, "ratings-stream-2")
	if len(es) != 3 {
		t.Fatalf("edges %+v, want one per node", es)
	}
	boot, route := routes(t, KafkaClientArgs(p, es...))
	for i, e := range es {
		if e.Name != "ratings-stream-2->broker-"+strconv.Itoa(i+1) || e.Upstream(p) != want[i] || e.Listen(p) != p.NodeEdge(clientRatingsStream+1, i) {
			t.Errorf("edge %d: %+v (listen %s, upstream %s)", i, e, e.Listen(p), e.Upstream(p))
		}
		if route[want[i]] != e.Listen(p) || boot[i] != e.Listen(p) {
			t.Errorf("node %d: bootstrap %v routes %v", i+1, boot, route)
		}
	}
	if n := len(o.KafkaNodes(p)); n != 3 {
		t.Fatalf("%d nodes", n)
	}
	if single := (Options{}).EmbeddedListen(p); single != p.Broker() {
		t.Fatalf("one node listens on %s, want %s", single, p.Broker())
	}
}

// An external cluster's brokers are proxied like a lab cluster's nodes, by
// the addresses their metadata advertised.
func TestExternalBrokersAreProxiedByTheirAdvertisedAddress(t *testing.T) {
	p := layout.Ports{Base: 20000}
	o := Options{Kafka: KafkaOptions{Platform: KafkaExternal, Bootstrap: []string{"127.0.0.9:9092"},
		Brokers: []KafkaNode{{Name: "broker-7", ID: 7, Advertised: "127.0.0.9:9092"}, {Name: "broker-8", ID: 8, Advertised: "127.0.0.9:9093"}}}}
	es := BrokerEdges(o, "movies-connect")
	if len(es) != 2 || es[1].Name != "movies-connect->broker-8" || es[1].Upstream(p) != "127.0.0.9:9093" || es[1].Listen(p) != p.NodeEdge(1, 1) {
		t.Fatalf("external edges: %+v", es)
	}
	if got := o.KafkaBootstrap(p); !slices.Equal(got, []string{"127.0.0.9:9092"}) {
		t.Fatalf("bootstrap for tools: %v", got)
	}
	for _, in := range []string{"broker-1", "broker-12"} {
		if !IsKafkaNode(in) {
			t.Errorf("%s is a cluster node", in)
		}
	}
	for _, in := range []string{"broker", "broker-0", "broker-x", "ratings-stream-2"} {
		if IsKafkaNode(in) {
			t.Errorf("%s is not a cluster node", in)
		}
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, _ := strings.Cut(addr, ":")
	n := 0
	for _, c := range port {
		n = n*10 + int(c-'0')
	}
	return n
}

// An edge knows the part whose process listens behind it, so that the edge
// can refuse connections while that process is down: the embedded broker's
// nodes are all the part "broker", a cluster's nodes are parts of their own,
// and an external broker is no part of the lab.
func TestEveryEdgeNamesThePartListeningBehindIt(t *testing.T) {
	for _, tc := range []struct {
		what string
		o    Options
		want map[string]string // edge name -> server part
	}{
		{"embedded", Options{}, map[string]string{
			"webserver-rpc->ratings-rpc": "ratings-rpc", "ratings-rpc->movies-rpc": "movies-rpc",
			"movies-connect->broker": "broker", "ratings-stream->" + RegistryPart: RegistryPart}},
		{"embedded, three nodes", Options{Kafka: KafkaOptions{Nodes: 3}}, map[string]string{
			"webserver-stream->broker-2": "broker", "movies-connect->broker-3": "broker"}},
		{"cluster", Options{Kafka: KafkaOptions{Platform: KafkaCluster}}, map[string]string{
			"webserver-stream->broker-2": "broker-2", "ratings-stream->broker-1": "broker-1"}},
		{"external", Options{Kafka: KafkaOptions{Platform: KafkaExternal, Bootstrap: []string{"127.0.0.9:9092"},
			Brokers: []KafkaNode{{Name: "broker-7", ID: 7, Advertised: "127.0.0.9:9092"}}}}, map[string]string{
			"webserver-stream->broker-7": "", "webserver-rpc->ratings-rpc": "ratings-rpc"}},
	} {
		got := map[string]string{}
		for _, e := range EdgesFor(tc.o) {
			got[e.Name] = e.Server()
		}
		for name, want := range tc.want {
			if server, ok := got[name]; !ok || server != want {
				t.Errorf("%s: edge %s serves %q (present %v), want %q", tc.what, name, server, ok, want)
			}
		}
	}
}
