package faults

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/model"
)

// TargetClass says what a fault applies to.
type TargetClass string

const (
	TargetEdge    TargetClass = "edge"    // a network edge, e.g. "ratings-rpc->movies-rpc"
	TargetPart    TargetClass = "part"    // any process of the lab, the broker included
	TargetService TargetClass = "service" // a part with an HTTP admin endpoint
	TargetTopic   TargetClass = "topic"   // a topic of the log
	TargetKafka   TargetClass = "kafka"   // the embedded Kafka broker's protocol (kfake faults)
	TargetGroup   TargetClass = "group"   // a consumer group of the log
)

// ParamType is how a parameter's text is read.
type ParamType string

const (
	ParamDuration ParamType = "duration" // Go duration: 250ms, 2s, 1m
	ParamFraction ParamType = "fraction" // 0..1
	ParamInt      ParamType = "int"
	ParamFloat    ParamType = "float"
	ParamChoice   ParamType = "choice"
)

// Param is one parameter of a fault.
type Param struct {
	Name    string    `json:"name"`
	Type    ParamType `json:"type"`
	Default string    `json:"default"`
	Help    string    `json:"help"`
	Choices []string  `json:"choices,omitempty"`
	// Range is the valid range as text, for listings.
	Range string `json:"range,omitempty"`

	minDur, maxDur time.Duration
	minNum, maxNum float64
}

// Kind is one fault of the catalog.
type Kind struct {
	Name      string      `json:"name"`
	Summary   string      `json:"summary"`
	Mechanism string      `json:"mechanism"`
	Targets   TargetClass `json:"targets"`
	// Services lists the parts (by part name, replicas included) a service
	// fault applies to; empty means every part with an HTTP endpoint.
	Services []string `json:"services,omitempty"`
	Params   []Param  `json:"params"`
	// Heal says what healing does.
	Heal string `json:"heal"`
	// Instant faults take effect once and leave nothing to heal (poison;
	// restart without --for). They may not be given a duration when Timed is false.
	Instant bool `json:"instant,omitempty"`
	// Timed says whether --for is accepted.
	Timed bool `json:"timed"`

	// act is what the fault does (edgeToxic, adminEndpoint, processAction,
	// or a constructor for effects with logic of their own).
	act effectMaker
}

// InstantFor reports whether the fault, given --for d (0: none), takes
// effect once and leaves nothing to heal. An instant fault that accepts a
// duration (restart --for 30s) stays in force until healed.
func (k Kind) InstantFor(d time.Duration) bool { return k.Instant && (!k.Timed || d == 0) }

// Limits shared by several faults.
const (
	MaxDelay    = 60 * time.Second // latency, jitter, slow handler, slow DB
	MaxDuration = 24 * time.Hour   // --for
	MaxPoison   = 1000
)

func durationParam(name, def, help string, lo, hi time.Duration) Param {
	return Param{Name: name, Type: ParamDuration, Default: def, Help: help, minDur: lo, maxDur: hi,
		Range: fmt.Sprintf("%s..%s", lo, hi)}
}

func numParam(name string, t ParamType, def, help string, lo, hi float64) Param {
	return Param{Name: name, Type: t, Default: def, Help: help, minNum: lo, maxNum: hi,
		Range: fmt.Sprintf("%s..%s", fmtNum(lo), fmtNum(hi))}
}

func choiceParam(name, def, help string, choices ...string) Param {
	return Param{Name: name, Type: ParamChoice, Default: def, Help: help, Choices: choices, Range: strings.Join(choices, "|")}
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Directions of an edge toxic: upstream is client→server (requests),
// downstream is server→client (answers).
var directions = []string{"downstream", "upstream", "both"}

func directionParam(def string) Param {
	return choiceParam("direction", def, "which way the toxic acts: downstream = answers (server→client), upstream = requests (client→server), both", directions...)
}

func toxicityParam() Param {
	return numParam("toxicity", ParamFraction, "1", "fraction of connections the toxic applies to", 0, 1)
}

// Poison kinds: each produces a record the stream processor must send to
// the DLQ with the matching reason (services/model.Reason*).
var poisonKinds = []string{"malformed", "rating-range", "unknown-movie", "key-mismatch",
	"wrong-magic-byte", "unknown-schema-id", "truncated-body"}

// ServiceFaultParts are the parts service faults may target, per fault.
var (
	slowDBParts   = []string{"movies-rpc", "movies-connect"}
	throttleParts = []string{"ratings-stream"}
	contractParts = []string{"webserver-rpc", "webserver-stream"}
	registryParts = []string{"schema-registry"}
)

// contractChanges are the v2 contracts (services/model.Contract).
var contractChanges = []string{"v2-add-optional", "v2-rename-field", "v2-change-type"}

// compatibilityLevels are the registry's levels (lab/registry.Levels).
var compatibilityLevels = []string{"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"}

// Parameters of the Kafka protocol faults.
func kafkaTopicParam() Param {
	names := make([]string, len(model.Topics))
	for i, t := range model.Topics {
		names[i] = t.Name
	}
	return choiceParam("topic", model.TopicRatings, "the topic whose partitions are faulted", names...)
}

func kafkaPartitionParam() Param {
	return numParam("partition", ParamInt, "-1", "the partition; -1: every partition of the topic", -1, 1023)
}

func kafkaFractionParam() Param {
	return numParam("fraction", ParamFraction, "1", "fraction of the matching requests answered so", 0.001, 1)
}

// kinds is the catalog, in listing order.
var kinds = []Kind{
	{Name: "latency", Targets: TargetEdge, Timed: true,
		act:       edgeToxic{Type: "latency", Attributes: []string{"latency", "jitter"}},
		Summary:   "add latency (and jitter) to traffic on an edge",
		Mechanism: "Toxiproxy latency toxic on the edge's proxy",
		Heal:      "removes the toxic",
		Params: []Param{
			durationParam("latency", "1s", "added delay per chunk of data", 0, MaxDelay),
			durationParam("jitter", "0s", "random +/- variation of the delay", 0, MaxDelay),
			directionParam("downstream"), toxicityParam(),
		}},
	{Name: "timeout", Targets: TargetEdge, Timed: true,
		act:       edgeToxic{Type: "timeout", Attributes: []string{"timeout"}},
		Summary:   "blackhole: data stops flowing; the connection is closed after `timeout` (0 = held open forever)",
		Mechanism: "Toxiproxy timeout toxic on the edge's proxy",
		Heal:      "removes the toxic; connections it held are closed",
		Params: []Param{
			durationParam("timeout", "0s", "close the connection after this long (0: never)", 0, time.Hour),
			directionParam("downstream"), toxicityParam(),
		}},
	{Name: "reset_peer", Targets: TargetEdge, Timed: true,
		act:       edgeToxic{Type: "reset_peer", Attributes: []string{"timeout"}},
		Summary:   "reset connections (TCP RST) immediately or after `timeout`",
		Mechanism: "Toxiproxy reset_peer toxic on the edge's proxy",
		Heal:      "removes the toxic",
		Params: []Param{
			durationParam("timeout", "0s", "reset after this long (0: at once)", 0, time.Hour),
			directionParam("downstream"), toxicityParam(),
		}},
	{Name: "bandwidth", Targets: TargetEdge, Timed: true,
		act:       edgeToxic{Type: "bandwidth", Attributes: []string{"rate"}},
		Summary:   "limit the edge's bandwidth",
		Mechanism: "Toxiproxy bandwidth toxic on the edge's proxy",
		Heal:      "removes the toxic",
		Params: []Param{
			numParam("rate", ParamInt, "10", "KB per second", 0, 1<<30),
			directionParam("downstream"), toxicityParam(),
		}},
	{Name: "slow_close", Targets: TargetEdge, Timed: true,
		act:       edgeToxic{Type: "slow_close", Attributes: []string{"delay"}},
		Summary:   "delay the closing of connections",
		Mechanism: "Toxiproxy slow_close toxic on the edge's proxy",
		Heal:      "removes the toxic",
		Params: []Param{
			durationParam("delay", "1s", "how long a close is held back", 0, time.Hour),
			directionParam("downstream"), toxicityParam(),
		}},
	{Name: "limit_data", Targets: TargetEdge, Timed: true,
		act:       edgeToxic{Type: "limit_data", Attributes: []string{"bytes"}},
		Summary:   "close each connection after it carried `bytes` bytes",
		Mechanism: "Toxiproxy limit_data toxic on the edge's proxy",
		Heal:      "removes the toxic",
		Params: []Param{
			numParam("bytes", ParamInt, "1024", "bytes allowed per connection", 0, 1<<40),
			directionParam("downstream"), toxicityParam(),
		}},
	// Nothing gets through either way and nothing is closed: clients see
	// their requests hang, as in a real partition.
	{Name: "partition", Targets: TargetEdge, Timed: true,
		act:       edgeToxic{Type: "timeout", Fixed: map[string]any{"timeout": 0}, BothWays: true},
		Summary:   "network partition: nothing gets through in either direction; connections hang",
		Mechanism: "Toxiproxy timeout toxics (timeout 0) upstream and downstream",
		Heal:      "removes the toxics; connections caught in the partition are closed, clients reconnect"},
	{Name: "kill", Targets: TargetPart, Timed: true,
		act:       killPart,
		Summary:   "SIGKILL a part (the broker included; its data survives)",
		Mechanism: "supervisor: SIGKILL; the edges in front of the part refuse connections while it is down, as its port does",
		Heal:      "starts the part again; its edges open once it listens"},
	{Name: "pause", Targets: TargetPart, Timed: true,
		act:       processAction{Apply: supervisor.ActionPause, Heal: supervisor.ActionResume},
		Summary:   "freeze a part with SIGSTOP: it holds its connections and answers nothing",
		Mechanism: "supervisor: SIGSTOP",
		Heal:      "SIGCONT"},
	{Name: "restart", Targets: TargetPart, Timed: true, Instant: true,
		act:       processAction{Apply: supervisor.ActionRestart, ApplyTimed: supervisor.ActionStop, Heal: supervisor.ActionStart},
		Summary:   "stop a part gracefully (SIGTERM) and start it again; with --for it stays down that long",
		Mechanism: "supervisor: stop (SIGTERM, SIGKILL after 5s), then start",
		Heal:      "starts the part (at once when no --for is given)"},
	{Name: "kill_leader", Targets: TargetTopic, Timed: true,
		act:       makeEffect(newLeaderEffect),
		Summary:   "leader failover: SIGKILL the broker that leads a partition of the topic right now (default: the partition with the most records); on a cluster a follower takes over, on the embedded broker it is a broker outage",
		Mechanism: "supervisor: the partition's leader is read from metadata when the fault is applied, then that broker part (broker-N) is killed",
		Heal:      "starts that broker again",
		Params: []Param{
			numParam("partition", ParamInt, "-1", "the partition whose leader is killed; -1 picks the one holding the most records", -1, 1023),
		}},
	{Name: "kill_coordinator", Targets: TargetGroup, Timed: true,
		act:       makeEffect(newCoordinatorEffect),
		Summary:   "coordinator failover: SIGKILL the broker that coordinates the consumer group right now; on a cluster another broker takes the group over and its members rejoin, on the embedded broker it is a broker outage (coordinator_move is its protocol-level version)",
		Mechanism: "supervisor: the group's coordinator is found (FindCoordinator) when the fault is applied, then that broker part (broker-N) is killed",
		Heal:      "starts that broker again"},
	{Name: "error_rate", Targets: TargetService, Timed: true,
		act:       adminEndpoint{Path: adminFaults, Shared: true, Field: "error_rate", Param: "rate", Shows: "%v of requests answered 500"},
		Summary:   "answer a fraction of the part's requests with HTTP 500",
		Mechanism: "part admin endpoint POST /admin/faults {error_rate}",
		Heal:      "sets the error rate back to 0",
		Params:    []Param{numParam("rate", ParamFraction, "0.5", "fraction of requests answered 500", 0, 1)}},
	{Name: "handler_latency", Targets: TargetService, Timed: true,
		act:       adminEndpoint{Path: adminFaults, Shared: true, Field: "latency", Param: "latency", Shows: "%v added to every request"},
		Summary:   "add latency inside the part's request handlers",
		Mechanism: "part admin endpoint POST /admin/faults {latency}",
		Heal:      "sets the added latency back to 0",
		Params:    []Param{durationParam("latency", "500ms", "added to every request", 0, MaxDelay)}},
	{Name: "slow_db", Targets: TargetService, Services: slowDBParts, Timed: true,
		act:       adminEndpoint{Path: adminSlowDB, Field: "delay", Param: "delay", Shows: "delay %v"},
		Summary:   "slow every legacy-DB query of the part",
		Mechanism: "part admin endpoint POST /admin/slow-db {delay}",
		Heal:      "DELETE /admin/slow-db",
		Params:    []Param{durationParam("delay", "500ms", "added to every legacy-DB query", 0, MaxDelay)}},
	{Name: "throttle", Targets: TargetService, Services: throttleParts, Timed: true,
		act:       adminEndpoint{Path: adminThrottle, Field: "delay", Param: "delay", Shows: "delay %v"},
		Summary:   "slow consumer: the stream processor sleeps `delay` before every batch it fetched, so lag and staleness build up",
		Mechanism: "part admin endpoint POST /admin/throttle {delay}",
		Heal:      "DELETE /admin/throttle",
		Params:    []Param{durationParam("delay", "1s", "sleep before each fetched batch", 0, MaxDelay)}},
	{Name: "contract_change", Targets: TargetService, Services: contractParts, Timed: true,
		act:       makeEffect(newContractEffect),
		Summary:   "deploy a new rating contract on the producer side (webserver → ratings): the consumers keep v1; in Avro the registry decides on the new schema at once",
		Mechanism: "part admin endpoint POST /admin/contract {contract}; the answer (the registry's decision) is the fault's outcome",
		Heal:      "DELETE /admin/contract: back to v1",
		Params: []Param{choiceParam("change", "v2-rename-field",
			"the change: v2-add-optional (a new field with a default: compatible), v2-rename-field (rating → score), v2-change-type (rating as a string)",
			contractChanges...)}},
	{Name: "registry_compatibility", Targets: TargetService, Services: registryParts, Timed: true,
		act:       makeEffect(newCompatibilityEffect),
		Summary:   "set a subject's compatibility level on the schema registry (e.g. NONE, so an incompatible schema is accepted and reaches the consumers)",
		Mechanism: "registry API PUT /config/{subject} {compatibility}",
		Heal:      "puts back the subject's level from before (or removes the subject-level setting)",
		Params: []Param{
			choiceParam("subject", "ratings-value", "registry subject (TopicNameStrategy: <topic>-value)", "ratings-value", "movies-value", "rated-movies-value"),
			choiceParam("level", "NONE", "compatibility level", compatibilityLevels...),
		}},

	// Kafka protocol faults (lab/broker/kafkafaults.go): what a real
	// cluster answers when brokers fail, answered by the embedded broker.
	{Name: "not_enough_replicas", Targets: TargetKafka, Timed: true,
		act:       makeEffect(newKafkaEffect),
		Summary:   "writes to the topic are refused with NOT_ENOUGH_REPLICAS and nothing is appended: what acks=all producers get when the ISR is below min.insync.replicas (a cluster with two of three brokers down)",
		Mechanism: "kfake Fault on Produce, through the broker's admin endpoint POST /admin/kafka/faults",
		Heal:      "removes the fault",
		Params:    []Param{kafkaTopicParam(), kafkaPartitionParam(), kafkaFractionParam()}},
	{Name: "produce_timeout", Targets: TargetKafka, Timed: true,
		act:       makeEffect(newKafkaEffect),
		Summary:   "writes to the topic are appended, then answered REQUEST_TIMED_OUT (or NOT_ENOUGH_REPLICAS_AFTER_APPEND): ambiguous writes, as when a follower in the ISR stalls under acks=all; a producer that retries appends again",
		Mechanism: "kfake Fault on Produce answered after the append, through POST /admin/kafka/faults",
		Heal:      "removes the fault",
		Params: []Param{kafkaTopicParam(), kafkaPartitionParam(), kafkaFractionParam(),
			choiceParam("error", "REQUEST_TIMED_OUT", "the answer after the append", "REQUEST_TIMED_OUT", "NOT_ENOUGH_REPLICAS_AFTER_APPEND")}},
	{Name: "leader_election", Targets: TargetKafka, Timed: true,
		act:       makeEffect(newKafkaEffect),
		Summary:   "leader failover: the topic's partitions have no leader while the fault lasts (produce, fetch and offset requests answered NOT_LEADER_OR_FOLLOWER), then get new leaders with new leader epochs (on another node of a multi-node broker) — as when the leader broker dies",
		Mechanism: "kfake Fault on Produce/Fetch/ListOffsets/OffsetForLeaderEpoch, then MoveTopicPartition per partition at heal",
		Heal:      "removes the fault and elects the new leaders",
		Params:    []Param{kafkaTopicParam(), kafkaPartitionParam()}},
	{Name: "coordinator_move", Targets: TargetKafka, Timed: true,
		act:       makeEffect(newKafkaEffect),
		Summary:   "the consumer group's coordinator moves: group requests (heartbeat, join, sync, offset commit and fetch) are answered NOT_COORDINATOR while the fault lasts; members rejoin, and past the session timeout they are expired: the group rebalances",
		Mechanism: "kfake RehashCoordinators, and a Fault on the group's requests, through POST /admin/kafka/faults",
		Heal:      "removes the fault; the group settles on its (new) coordinator",
		Params:    []Param{choiceParam("group", "ratings-stream", "the consumer group", "ratings-stream")}},
	{Name: "node_loss", Targets: TargetKafka, Timed: true,
		act:       makeEffect(newKafkaEffect),
		Summary:   "a node of a multi-node embedded broker (lab up --kafka-nodes 3) is lost: its listener and every connection to it close, its partition leaders and coordinators move to the other nodes (nothing is lost: the nodes share one log)",
		Mechanism: "kfake RemoveNode and the node's connections closed, through POST /admin/kafka/faults",
		Heal:      "kfake AddNode: the node is back on its port and partitions are spread again",
		Params:    []Param{numParam("node", ParamInt, "1", "the node, 1-based as in broker-1", 1, 3)}},
	{Name: "poison", Targets: TargetTopic, Instant: true,
		act:       makeEffect(newPoisonEffect),
		Summary:   "write records to `ratings` that no correct producer would write; the processor must route them to ratings-dlq and keep going",
		Mechanism: "the supervisor produces them straight to the broker (a foreign or buggy producer)",
		Heal:      "nothing to heal: the records stay in the log",
		Params: []Param{
			numParam("count", ParamInt, "1", "how many poison records", 1, MaxPoison),
			choiceParam("kind", "malformed", "what is wrong with them: malformed (not JSON), rating-range (rating 42), unknown-movie (movie 999999), key-mismatch (key is not the movie id); for --format avro: wrong-magic-byte (not the Confluent wire format), unknown-schema-id (an id the registry never gave), truncated-body (the ratings schema's id, then a body cut short)", poisonKinds...),
		}},
}

// Kinds returns the catalog in listing order.
func Kinds() []Kind { return slices.Clone(kinds) }

// Names lists every fault name, in listing order.
func Names() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.Name
	}
	return out
}

// Lookup finds a fault by name; hyphens are accepted for underscores
// ("reset-peer" is reset_peer).
func Lookup(name string) (Kind, error) {
	n := strings.ReplaceAll(strings.TrimSpace(name), "-", "_")
	for _, k := range kinds {
		if k.Name == n {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("unknown fault %q (valid: %s)", name, strings.Join(Names(), ", "))
}

// Param returns the named parameter.
func (k Kind) Param(name string) (Param, bool) {
	for _, p := range k.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// ParamNames lists the fault's parameter names.
func (k Kind) ParamNames() []string {
	out := make([]string, len(k.Params))
	for i, p := range k.Params {
		out[i] = p.Name
	}
	return out
}

// AppliesTo reports whether a service fault may target part (an instance
// name such as "ratings-stream-2" counts as its part).
func (k Kind) AppliesTo(instance string) bool {
	if len(k.Services) == 0 {
		return true
	}
	base := BasePart(instance)
	return slices.Contains(k.Services, base)
}

// BasePart strips a replica suffix: "ratings-stream-2" → "ratings-stream".
// The nodes of a Kafka cluster (broker-1, broker-2, ...) are all "broker".
func BasePart(instance string) string {
	if parts.IsKafkaNode(instance) {
		return "broker"
	}
	if i := strings.LastIndexByte(instance, '-'); i > 0 {
		if n, err := strconv.Atoi(instance[i+1:]); err == nil && n >= 2 {
			return instance[:i]
		}
	}
	return instance
}

// Params are a fault's parameter values, as normalized text.
type Params map[string]string

// Resolve checks given parameter values against the fault, fills in
// defaults and returns the normalized set. Errors name the parameter as
// "params.<name>".
func (k Kind) Resolve(given map[string]string) (Params, error) {
	out := Params{}
	for name := range given {
		if _, ok := k.Param(name); !ok {
			valid := "none"
			if len(k.Params) > 0 {
				valid = strings.Join(k.ParamNames(), ", ")
			}
			return nil, fmt.Errorf("params.%s: %s has no parameter %q (valid: %s)", name, k.Name, name, valid)
		}
	}
	for _, p := range k.Params {
		v, ok := given[p.Name]
		if !ok {
			v = p.Default
		}
		norm, err := p.normalize(v)
		if err != nil {
			return nil, fmt.Errorf("params.%s: %w", p.Name, err)
		}
		out[p.Name] = norm
	}
	return out, nil
}

// normalize checks one value and returns its canonical text.
func (p Param) normalize(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch p.Type {
	case ParamDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return "", fmt.Errorf("want a duration such as 250ms or 2s, got %q", v)
		}
		if d < p.minDur || d > p.maxDur {
			return "", fmt.Errorf("must be from %s to %s, got %s", p.minDur, p.maxDur, d)
		}
		return d.String(), nil
	case ParamFraction, ParamFloat, ParamInt:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return "", fmt.Errorf("want a number, got %q", v)
		}
		if p.Type == ParamInt && f != math.Trunc(f) {
			return "", fmt.Errorf("want a whole number, got %q", v)
		}
		if f < p.minNum || f > p.maxNum {
			return "", fmt.Errorf("must be from %s to %s, got %s", fmtNum(p.minNum), fmtNum(p.maxNum), v)
		}
		return fmtNum(f), nil
	case ParamChoice:
		if !slices.Contains(p.Choices, v) {
			return "", fmt.Errorf("must be one of %s, got %q", strings.Join(p.Choices, ", "), v)
		}
		return v, nil
	}
	return "", fmt.Errorf("parameter type %s is not supported", p.Type)
}

// Duration reads a normalized duration parameter.
func (ps Params) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(ps[name])
	return d
}

// Float reads a normalized numeric parameter.
func (ps Params) Float(name string) float64 {
	f, _ := strconv.ParseFloat(ps[name], 64)
	return f
}

// Int reads a normalized whole-number parameter.
func (ps Params) Int(name string) int64 { return int64(ps.Float(name)) }
