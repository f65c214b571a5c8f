package faults

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Targets are what faults can be applied to in one running lab.
type Targets struct {
	// Edges are the edge proxies by name ("ratings-rpc->movies-rpc").
	Edges []string `json:"edges"`
	// Parts are every process instance ("broker", "ratings-stream-2").
	Parts []string `json:"parts"`
	// Services maps each service instance to its loopback admin listener:
	// its /admin/ endpoints carry the in-service faults, its /metrics the
	// samples.
	Services map[string]string `json:"services"`
	// Topics are the topics poison can be written to.
	Topics []string `json:"topics"`
	// Groups are the consumer groups of the lab's own consumers.
	Groups []string `json:"groups,omitempty"`
	// Kafka maps each embedded broker part that takes protocol faults to
	// its admin address (none on a real or external cluster).
	Kafka map[string]string `json:"kafka,omitempty"`
	// Platform is the lab's Kafka platform (embedded, cluster, external)
	// and KafkaNodes how many brokers it has.
	Platform   string `json:"platform,omitempty"`
	KafkaNodes int    `json:"kafka_nodes,omitempty"`
	// Variants maps every edge and part to its variant (rpc, stream, lab).
	Variants map[string]string `json:"variants"`
}

// For lists the valid targets of a fault, sorted.
func (t Targets) For(k Kind) []string {
	var out []string
	switch k.Targets {
	case TargetEdge:
		out = slices.Clone(t.Edges)
	case TargetPart:
		out = slices.Clone(t.Parts)
	case TargetService:
		for name := range t.Services {
			if k.AppliesTo(name) {
				out = append(out, name)
			}
		}
	case TargetTopic:
		out = slices.Clone(t.Topics)
	case TargetGroup:
		out = slices.Clone(t.Groups)
	case TargetKafka:
		for name := range t.Kafka {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Check reports whether target is valid for the fault, naming the valid ones.
func (t Targets) Check(k Kind, target string) error {
	valid := t.For(k)
	if slices.Contains(valid, target) {
		return nil
	}
	if target == "" {
		return fmt.Errorf("target: %s needs a target (valid: %s)", k.Name, strings.Join(valid, ", "))
	}
	if k.Targets == TargetKafka && len(valid) == 0 {
		return fmt.Errorf("target %q: %s is a protocol fault of the embedded Kafka broker, and this lab has none (on a real cluster, kill or pause a broker-N instead)", target, k.Name)
	}
	what := map[TargetClass]string{TargetEdge: "edges", TargetPart: "parts", TargetService: "parts", TargetTopic: "topics", TargetKafka: "the embedded broker", TargetGroup: "consumer groups"}[k.Targets]
	return fmt.Errorf("target %q: %s applies to %s: %s", target, k.Name, what, strings.Join(valid, ", "))
}
