package chaos

import (
	"slices"
	"testing"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
)

// Every row of the mapping table says, for each variant, either what it
// does (concrete faults that exist in a default lab) or why it has no
// equivalent.
func TestMappingTableIsComplete(t *testing.T) {
	for _, e := range Equivalents() {
		targets := defaultLab(t).Targets
		if e.Kafka != "" {
			targets = faults.TargetsFor(parts.Options{Kafka: parts.KafkaOptions{Platform: e.Kafka}}, layout.Ports{Base: layout.DefaultPortBase})
		}
		for _, v := range AllVariants {
			acts, has := e.Actions[v]
			why, na := e.NotApplicable[v]
			if has == na || (na && why == "") {
				t.Errorf("%s/%s: want either actions or a reason there are none", e.Name, v)
				continue
			}
			if na {
				continue
			}
			reqs, err := resolveActions(e, v, nil, targets)
			if err != nil || len(reqs) < len(acts) {
				t.Errorf("%s/%s: %v (%d requests for %d actions)", e.Name, v, err, len(reqs), len(acts))
			}
			for _, r := range reqs {
				if _, _, _, err := faults.Validate(r, targets); err != nil {
					t.Errorf("%s/%s: %+v: %v", e.Name, v, r, err)
				}
				k, _ := faults.Lookup(r.Fault)
				if tv := targets.Variants[r.Target]; k.Targets != faults.TargetTopic && tv != v && !(tv == "lab" && v == VariantStream) {
					t.Errorf("%s/%s: target %s belongs to variant %q", e.Name, v, r.Target, tv)
				}
			}
		}
	}
}

// A part name covers every replica, and an edge from it every replica's edge.
func TestEquivalentsHitEveryReplica(t *testing.T) {
	targets := faults.TargetsFor(parts.Options{Replicas: map[string]int{"ratings-stream": 2}}, layout.Ports{Base: layout.DefaultPortBase})
	crash, _ := LookupEquivalent("ratings-crash")
	reqs, err := resolveActions(crash, VariantStream, nil, targets)
	if err != nil {
		t.Fatal(err)
	}
	if got := targetsOf(reqs); !slices.Equal(got, []string{"ratings-stream", "ratings-stream-2"}) {
		t.Fatalf("ratings-crash with two replicas kills %v", got)
	}
	part, _ := LookupEquivalent("ratings-partition")
	reqs, err = resolveActions(part, VariantStream, nil, targets)
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
	rpc, err := resolveActions(slow, VariantRPC, params, targets)
	if err != nil || len(rpc) != 1 || rpc[0].Params["latency"] != "100ms" || rpc[0].Params["delay"] != "" {
		t.Fatalf("rpc: %+v, %v", rpc, err)
	}
	stream, err := resolveActions(slow, VariantStream, params, targets)
	if err != nil || len(stream) != 1 || stream[0].Params["delay"] != "2s" || stream[0].Params["latency"] != "" {
		t.Fatalf("stream: %+v, %v", stream, err)
	}
	// Defaults of the table apply when the step gives none.
	lat, _ := LookupEquivalent("movies-latency")
	reqs, _ := resolveActions(lat, VariantRPC, nil, targets)
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
