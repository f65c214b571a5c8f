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
	what := map[TargetClass]string{TargetEdge: "edges", TargetPart: "parts", TargetService: "parts", TargetTopic: "topics"}[k.Targets]
	return fmt.Errorf("target %q: %s applies to %s: %s", target, k.Name, what, strings.Join(valid, ", "))
}
