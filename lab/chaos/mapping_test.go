package chaos

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// Every row of the mapping table says, for each variant, either what it
// does (concrete faults that exist in a lab of the platform each action
// runs on) or why it has no equivalent.
func TestMappingTableIsComplete(t *testing.T) {
	ports := layout.Ports{Base: layout.DefaultPortBase}
	labs := map[string][]faults.Targets{
		"embedded": {defaultLab(t).Targets, faults.TargetsFor(parts.Options{Kafka: parts.KafkaOptions{Nodes: 3}}, ports)},
		"cluster":  {faults.TargetsFor(parts.Options{Kafka: parts.KafkaOptions{Platform: "cluster"}}, ports)},
	}
	for _, e := range Equivalents() {
		for _, v := range variantname.All {
			acts, has := e.Actions[v]
			why, na := e.NotApplicable[v]
			if has == na || (na && why == "") {
				t.Errorf("%s/%s: want either actions or a reason there are none", e.Name, v)
				continue
			}
			if na {
				continue
			}
			for platform, targetSets := range labs {
				var want []Action
				for _, a := range acts {
					if a.onPlatform(platform) {
						want = append(want, a)
					}
				}
				if len(want) == 0 || (e.Kafka != "" && e.Kafka != platform) {
					continue
				}
				resolved := false
				var errs []error
				for _, targets := range targetSets {
					reqs, err := resolveActions(e, v, nil, targets)
					if err != nil || len(reqs) < len(want) {
						errs = append(errs, fmt.Errorf("%v (%d requests for %d actions)", err, len(reqs), len(want)))
						continue
					}
					resolved = true
					for _, r := range reqs {
						if _, _, _, err := faults.Validate(r, targets); err != nil {
							t.Errorf("%s/%s on %s: %+v: %v", e.Name, v, platform, r, err)
						}
						k, _ := faults.Lookup(r.Fault)
						tv := targets.Variants[r.Target]
						if k.Targets != faults.TargetTopic && k.Targets != faults.TargetGroup && tv != v && !(tv == "lab" && v == variantname.Stream) {
							t.Errorf("%s/%s on %s: target %s belongs to variant %q", e.Name, v, platform, r.Target, tv)
						}
					}
				}
				if !resolved {
					t.Errorf("%s/%s: no %s lab resolves it: %v", e.Name, v, platform, errs)
				}
			}
		}
	}
}

// The same equivalent runs on either platform: the embedded broker gets the
// protocol-level fault, a cluster the broker fault; a platform without
// either is told so.
func TestEquivalentsPickTheActionOfThePlatform(t *testing.T) {
	ports := layout.Ports{Base: layout.DefaultPortBase}
	eq, _ := LookupEquivalent("leader-failover")
	emb, err := resolveActions(eq, variantname.Stream, nil, defaultLab(t).Targets)
	if err != nil || len(emb) != 1 || emb[0].Fault != "leader_election" || emb[0].Target != "broker" {
		t.Fatalf("embedded: %+v, %v; want leader_election on broker", emb, err)
	}
	cl, err := resolveActions(eq, variantname.Stream, nil, faults.TargetsFor(parts.Options{Kafka: parts.KafkaOptions{Platform: "cluster"}}, ports))
	if err != nil || len(cl) != 1 || cl[0].Fault != "kill_leader" {
		t.Fatalf("cluster: %+v, %v; want kill_leader", cl, err)
	}
	ext := faults.TargetsFor(parts.Options{Kafka: parts.KafkaOptions{Platform: "external", Brokers: []parts.KafkaNode{{Name: "broker-1", ID: 1, Advertised: "127.0.0.1:9092"}}}}, ports)
	if _, err := resolveActions(eq, variantname.Stream, nil, ext); err == nil || !strings.Contains(err.Error(), "external") {
		t.Fatalf("external: %v, want an error naming the platform", err)
	}
	loss, _ := LookupEquivalent("broker-minority-outage")
	if _, err := resolveActions(loss, variantname.Stream, nil, defaultLab(t).Targets); err == nil || !strings.Contains(err.Error(), "--kafka-nodes 3") {
		t.Fatalf("node loss on a one-node broker: %v, want the way to a three-node one", err)
	}
}

// A part name covers every replica, and an edge from it every replica's edge.
func TestEquivalentsHitEveryReplica(t *testing.T) {
	targets := faults.TargetsFor(parts.Options{Replicas: map[string]int{"ratings-stream": 2}}, layout.Ports{Base: layout.DefaultPortBase})
	crash, _ := LookupEquivalent("ratings-crash")
	reqs, err := resolveActions(crash, variantname.Stream, nil, targets)
	if err != nil {
		t.Fatal(err)
	}
	if got := targetsOf(reqs); !slices.Equal(got, []string{"ratings-stream", "ratings-stream-2"}) {
		t.Fatalf("ratings-crash with two replicas kills %v", got)
	}
	part, _ := LookupEquivalent("ratings-partition")
	reqs, err = resolveActions(part, variantname.Stream, nil, targets)
	if err != nil {
		t.Fatal(err)
	}
	if got := targetsOf(reqs); !slices.Equal(got, []string{"ratings-stream-2->broker", "ratings-stream->broker"}) {
		t.Fatalf("ratings-partition with two replicas cuts %v", got)
	}
}

// A step's params go to the actions whose fault takes them.
func TestEquivalentParamsAreRouted(t *testing.T) {
	targets := defaultLab(t).Targets
	slow, _ := LookupEquivalent("slow-consumer")
	params := map[string]string{"latency": "100ms", "delay": "2s"}
	rpc, err := resolveActions(slow, variantname.RPC, params, targets)
	if err != nil || len(rpc) != 1 || rpc[0].Params["latency"] != "100ms" || rpc[0].Params["delay"] != "" {
		t.Fatalf("rpc: %+v, %v", rpc, err)
	}
	stream, err := resolveActions(slow, variantname.Stream, params, targets)
	if err != nil || len(stream) != 1 || stream[0].Params["delay"] != "2s" || stream[0].Params["latency"] != "" {
		t.Fatalf("stream: %+v, %v", stream, err)
	}
	// Defaults of the table apply when the step gives none.
	lat, _ := LookupEquivalent("movies-latency")
	reqs, _ := resolveActions(lat, variantname.RPC, nil, targets)
	if reqs[0].Params["latency"] != "2s" {
		t.Fatalf("movies-latency default = %v", reqs[0].Params)
	}
}

func targetsOf(reqs []faults.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Target)
	}
	slices.Sort(out)
	return out
}
