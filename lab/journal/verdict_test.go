package journal

import (
	"testing"
	"time"
)

// A variant in which the run's fault has no equivalent ran as a control:
// its verdict says so, so a reader does not take "held" for having
// weathered the fault. A fault that failed to apply is not a control.
func TestTheVerdictOfAControlSaysNoFaultWasApplied(t *testing.T) {
	applied := FaultEvent{ID: "m1", Fault: "produce_timeout", Variant: "stream", InjectedAt: t0.Add(12 * time.Second), HealedAt: t0.Add(27 * time.Second)}
	noEquivalent := FaultEvent{ID: "m1", Fault: "ambiguous-writes", Variant: "rpc", Error: NoEquivalent + "the RPC variant has no broker"}
	failed := FaultEvent{ID: "m1", Fault: "kill", Variant: "rpc", Error: "kill ratings-rpc: no such part"}
	j := Journal{Variants: []string{"rpc", "stream"}, Verdict: map[string]bool{"rpc": true, "stream": false}}

	j.Faults = []FaultEvent{noEquivalent, applied}
	got := j.VerdictTable().Verdict
	want := []string{VerdictHeld + " " + ControlNote, VerdictNotHeld}
	if got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("verdicts %q, want %q", got, want)
	}

	j.Faults = []FaultEvent{failed, applied}
	if j.Control("rpc") {
		t.Fatal("a fault that failed to apply made the variant a control")
	}
	j.Faults = []FaultEvent{noEquivalent, {ID: "m2", Fault: "kill", Variant: "rpc", InjectedAt: t0}}
	if j.Control("rpc") {
		t.Fatal("a variant with one fault applied is not a control")
	}
	j.Faults = nil
	if j.Control("rpc") {
		t.Fatal("a run without faults (a load run) has no control")
	}
}
