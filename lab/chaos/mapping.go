package chaos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/kv"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// Equivalent is one row of the mapping table: a fault described by what
// happens to the system ("the movies service is down"), and the concrete
// faults that make it happen in each variant. An experiment step naming an
// equivalent applies its actions to every selected variant at the same
// moment. experiments/README.md prints this table; keep them in sync
// (TestREADMEListsEveryEquivalent checks it).
type Equivalent struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
	// Actions per variant.
	Actions map[string][]Action `json:"actions"`
	// NotApplicable says, per variant, why it has no equivalent: the
	// variant runs under the same load without the fault, as a control.
	NotApplicable map[string]string `json:"not_applicable,omitempty"`
	// Kafka, when set, is the Kafka platform the equivalent needs
	// ("cluster": it names nodes broker-1..3).
	Kafka string `json:"kafka,omitempty"`
}

// Action is one concrete fault. Target is a part name (every replica of it
// is hit) or an edge "from->to" whose from is a part name (the edges of
// every replica are hit). Params are the equivalent's defaults; a step's
// params override them and go to every action whose fault has a parameter
// of that name.
type Action struct {
	Fault  string            `json:"fault"`
	Target string            `json:"target"`
	Params map[string]string `json:"params,omitempty"`
	// Kafka, when set, is the only Kafka platform the action runs on: the
	// embedded broker answers a fault at the protocol level ("embedded")
	// where a real cluster has a broker killed or paused ("cluster"). The
	// same experiment runs on either; the journal says which ran it.
	Kafka string `json:"kafka,omitempty"`
}

// onPlatform reports whether the action runs on a lab's Kafka platform.
func (a Action) onPlatform(platform string) bool {
	return a.Kafka == "" || a.Kafka == cmpOr(platform, "embedded")
}

var equivalents = []Equivalent{
	{Name: "movies-outage", Summary: "the movies role is down",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "kill", Target: "movies-rpc"}},
			variantname.Stream: {{Fault: "kill", Target: "movies-connect"}},
		}},
	{Name: "movies-latency", Summary: "the network to the movies role is slow (default 2s)",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "latency", Target: "ratings-rpc->movies-rpc", Params: map[string]string{"latency": "2s"}}},
			variantname.Stream: {{Fault: "latency", Target: "movies-connect->broker", Params: map[string]string{"latency": "2s"}}},
		}},
	{Name: "movies-partition", Summary: "the movies role is cut off from the part that needs it, every other link works (a partial partition)",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "partition", Target: "ratings-rpc->movies-rpc"}},
			variantname.Stream: {{Fault: "partition", Target: "movies-connect->broker"}},
		}},
	{Name: "movies-errors", Summary: "the movies service fails a fraction of its requests fast (default 0.5)",
		Actions: map[string][]Action{
			variantname.RPC: {{Fault: "error_rate", Target: "movies-rpc", Params: map[string]string{"rate": "0.5"}}},
		},
		NotApplicable: map[string]string{
			variantname.Stream: "movies-connect reads the legacy DB directly and answers no requests; its failing is movies-outage",
		}},
	{Name: "movies-slow-db", Summary: "the legacy movies DB answers slowly (default 1s per query)",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "slow_db", Target: "movies-rpc", Params: map[string]string{"delay": "1s"}}},
			variantname.Stream: {{Fault: "slow_db", Target: "movies-connect", Params: map[string]string{"delay": "1s"}}},
		}},
	{Name: "ratings-crash", Summary: "the ratings role crashes (kill -9); it restarts when the fault heals",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "kill", Target: "ratings-rpc"}},
			variantname.Stream: {{Fault: "kill", Target: "ratings-stream"}},
		}},
	{Name: "ratings-pause", Summary: "the ratings role freezes (SIGSTOP): connections stay open, nothing answers",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "pause", Target: "ratings-rpc"}},
			variantname.Stream: {{Fault: "pause", Target: "ratings-stream"}},
		}},
	{Name: "ratings-latency", Summary: "the network in front of the ratings role is slow (default 1s)",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "latency", Target: "webserver-rpc->ratings-rpc", Params: map[string]string{"latency": "1s"}}},
			variantname.Stream: {{Fault: "latency", Target: "ratings-stream->broker", Params: map[string]string{"latency": "1s"}}},
		}},
	{Name: "ratings-partition", Summary: "the ratings role is cut off the network",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "partition", Target: "webserver-rpc->ratings-rpc"}},
			variantname.Stream: {{Fault: "partition", Target: "ratings-stream->broker"}},
		}},
	{Name: "ratings-errors", Summary: "the ratings service fails a fraction of its requests (default 0.5)",
		Actions: map[string][]Action{
			variantname.RPC: {{Fault: "error_rate", Target: "ratings-rpc", Params: map[string]string{"rate": "0.5"}}},
		},
		NotApplicable: map[string]string{
			variantname.Stream: "ratings-stream answers no requests on the write path; a failing processor is ratings-crash",
		}},
	{Name: "webserver-crash", Summary: "the public webserver crashes (kill -9)",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "kill", Target: "webserver-rpc"}},
			variantname.Stream: {{Fault: "kill", Target: "webserver-stream"}},
		}},
	{Name: "broker-outage", Summary: "the Kafka broker is down (kill -9; its data survives)",
		Actions: map[string][]Action{
			variantname.Stream: {{Fault: "kill", Target: "broker"}},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "the RPC variant has no broker: this is the log variant's own single point of failure",
		}},
	{Name: "broker-partition", Summary: "every client of the log variant is cut off the broker",
		Actions: map[string][]Action{
			variantname.Stream: {
				{Fault: "partition", Target: "webserver-stream->broker"},
				{Fault: "partition", Target: "ratings-stream->broker"},
				{Fault: "partition", Target: "movies-connect->broker"},
			},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "the RPC variant has no broker",
		}},
	{Name: "leader-failover", Summary: "the broker leading the busiest `ratings` partition crashes (kill -9); on a cluster a follower in the ISR takes over. Embedded: no leader while the step lasts (NOT_LEADER_OR_FOLLOWER), then new leaders and epochs",
		Actions: map[string][]Action{
			variantname.Stream: {
				{Fault: "leader_election", Target: "broker", Params: map[string]string{"topic": "ratings"}, Kafka: "embedded"},
				{Fault: "kill_leader", Target: "ratings", Kafka: "cluster"},
			},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "the RPC variant has no broker and no replicas: its nearest case is ratings-crash",
		}},
	{Name: "broker-minority-outage", Summary: "one Kafka broker of three crashes (kill -9 broker-3): every partition keeps two replicas in sync. Embedded (--kafka-nodes 3): node 3 is lost, its connections close, its partitions move",
		Actions: map[string][]Action{
			variantname.Stream: {
				{Fault: "node_loss", Target: "broker", Params: map[string]string{"node": "3"}, Kafka: "embedded"},
				{Fault: "kill", Target: "broker-3", Kafka: "cluster"},
			},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "the RPC variant has no broker",
		}},
	{Name: "broker-majority-outage", Summary: "two Kafka brokers of three are shut down (controlled shutdown of broker-2 and broker-3): the ISR shrinks below min.insync.replicas=2, acks=all writes get NOT_ENOUGH_REPLICAS. Embedded: writes to `ratings` answered the same",
		Actions: map[string][]Action{
			variantname.Stream: {
				{Fault: "not_enough_replicas", Target: "broker", Params: map[string]string{"topic": "ratings"}, Kafka: "embedded"},
				{Fault: "restart", Target: "broker-2", Kafka: "cluster"}, {Fault: "restart", Target: "broker-3", Kafka: "cluster"},
			},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "the RPC variant has no broker",
		}},
	{Name: "ambiguous-writes", Summary: "acks=all writes to `ratings` are appended, then answered REQUEST_TIMED_OUT: the producer cannot know they were written, and a retry writes them again. Cluster: a paused follower (broker-3) until it leaves the ISR; the partitions it leads stall",
		Actions: map[string][]Action{
			variantname.Stream: {
				{Fault: "produce_timeout", Target: "broker", Params: map[string]string{"topic": "ratings"}, Kafka: "embedded"},
				{Fault: "pause", Target: "broker-3", Kafka: "cluster"},
			},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "the RPC variant has no broker; its own ambiguous calls are timeouts (ratings-latency)",
		}},
	{Name: "coordinator-failover", Summary: "the broker coordinating ratings-stream's group goes away: group requests fail until a new coordinator takes over, members rejoin, the group rebalances. Embedded: NOT_COORDINATOR while the step lasts; cluster: the coordinator is killed",
		Actions: map[string][]Action{
			variantname.Stream: {
				{Fault: "coordinator_move", Target: "broker", Params: map[string]string{"group": "ratings-stream"}, Kafka: "embedded"},
				{Fault: "kill_coordinator", Target: "ratings-stream", Kafka: "cluster"},
			},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "the RPC variant has no consumer group",
		}},
	{Name: "slow-consumer", Summary: "whoever applies ratings is slow: ratings-rpc handlers (default +300ms), the stream processor (default 1s per batch)",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "handler_latency", Target: "ratings-rpc", Params: map[string]string{"latency": "300ms"}}},
			variantname.Stream: {{Fault: "throttle", Target: "ratings-stream", Params: map[string]string{"delay": "1s"}}},
		}},
	{Name: "schema-change", Summary: "the producer side of the ratings contract deploys a new version while the consumers keep v1 (default v2-rename-field: incompatible)",
		Actions: map[string][]Action{
			variantname.RPC:    {{Fault: "contract_change", Target: "webserver-rpc", Params: map[string]string{"change": "v2-rename-field"}}},
			variantname.Stream: {{Fault: "contract_change", Target: "webserver-stream", Params: map[string]string{"change": "v2-rename-field"}}},
		}},
	{Name: "registry-compat-none", Summary: "the schema registry stops checking the ratings contract (compatibility NONE on ratings-value)",
		Actions: map[string][]Action{
			variantname.Stream: {{Fault: "registry_compatibility", Target: "schema-registry", Params: map[string]string{"subject": "ratings-value", "level": "NONE"}}},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "no registry checks the RPC variant's JSON contract: every change reaches ratings-rpc unchecked anyway",
		}},
	{Name: "registry-outage", Summary: "the schema registry is down (kill -9; its data survives)",
		Actions: map[string][]Action{
			variantname.Stream: {{Fault: "kill", Target: "schema-registry"}},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "the RPC variant uses no schema registry",
		}},
	{Name: "poison-event", Summary: "records no correct producer writes land in `ratings` (default 5, malformed)",
		Actions: map[string][]Action{
			variantname.Stream: {{Fault: "poison", Target: "ratings", Params: map[string]string{"count": "5", "kind": "malformed"}}},
		},
		NotApplicable: map[string]string{
			variantname.RPC: "webserver-rpc validates every rating synchronously: a malformed one gets a 400 and goes nowhere",
		}},
}

// Equivalents returns the mapping table.
func Equivalents() []Equivalent { return slices.Clone(equivalents) }

// LookupEquivalent finds a row of the mapping table.
func LookupEquivalent(name string) (Equivalent, bool) {
	for _, e := range equivalents {
		if e.Name == name {
			return e, true
		}
	}
	return Equivalent{}, false
}

// EquivalentNames lists the table's names.
func EquivalentNames() []string {
	out := make([]string, len(equivalents))
	for i, e := range equivalents {
		out[i] = e.Name
	}
	return out
}

// Describe writes a variant's actions as text: "kill movies-rpc".
func (e Equivalent) Describe(variant string) string {
	acts, ok := e.Actions[variant]
	if !ok {
		return "— (" + e.NotApplicable[variant] + ")"
	}
	var parts []string
	for _, a := range acts {
		s := a.Fault + " " + a.Target
		if a.Kafka != "" {
			s = a.Kafka + ": " + s
		}
		if len(a.Params) > 0 {
			s += " (" + kv.Join(a.Params) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// expandTarget turns an action's target into the lab's concrete targets:
// every replica of a part, or the edges of every replica.
func expandTarget(k faults.Kind, target string, t faults.Targets) []string {
	var pool []string
	switch k.Targets {
	case faults.TargetPart:
		pool = t.Parts
	case faults.TargetService, faults.TargetKafka:
		pool = t.For(k)
	case faults.TargetTopic, faults.TargetGroup:
		return []string{target}
	case faults.TargetEdge:
		from, to, ok := strings.Cut(target, "->")
		if !ok {
			return nil
		}
		var out []string
		for _, e := range t.Edges {
			f, tt, _ := strings.Cut(e, "->")
			if (f == from || faults.BasePart(f) == from) && (tt == to || faults.BasePart(tt) == to) {
				out = append(out, e)
			}
		}
		return out
	}
	var out []string
	for _, p := range pool {
		if p == target || faults.BasePart(p) == target {
			out = append(out, p)
		}
	}
	return out
}

// resolveActions builds the concrete fault requests of an equivalent in one
// variant, with the step's params routed to the actions that take them.
func resolveActions(e Equivalent, variant string, stepParams map[string]string, t faults.Targets) ([]faults.Request, error) {
	var out []faults.Request
	var skipped []string
	for _, a := range e.Actions[variant] {
		if !a.onPlatform(t.Platform) {
			skipped = append(skipped, a.Kafka)
			continue
		}
		k, err := faults.Lookup(a.Fault)
		if err != nil {
			return nil, err
		}
		params := faults.ParamValues{}
		for name, v := range a.Params {
			params[name] = v
		}
		for name, v := range stepParams {
			if _, ok := k.Param(name); ok {
				params[name] = v
			}
		}
		targets := expandTarget(k, a.Target, t)
		if len(targets) == 0 && e.Kafka != "" {
			return nil, fmt.Errorf("%s needs a Kafka %s (it hits %s): lab down && lab up --kafka %s", e.Name, e.Kafka, a.Target, e.Kafka)
		}
		if len(targets) == 0 {
			return nil, fmt.Errorf("the lab has no %s for %s in the %s variant", a.Target, a.Fault, variant)
		}
		if n, ok := params["node"]; ok && k.Targets == faults.TargetKafka {
			if node, _ := strconv.Atoi(n); node > t.KafkaNodes {
				return nil, fmt.Errorf("%s hits broker-%s, and this lab's embedded broker has %d node(s): lab down && lab up --kafka-nodes 3", e.Name, n, t.KafkaNodes)
			}
		}
		for _, tg := range targets {
			out = append(out, faults.Request{Fault: k.Name, Target: tg, Params: params})
		}
	}
	if len(out) == 0 && len(skipped) > 0 {
		return nil, fmt.Errorf("%s has no action on this lab's Kafka platform (%s), only on: %s", e.Name, cmpOr(t.Platform, "embedded"), strings.Join(skipped, ", "))
	}
	return out, nil
}
