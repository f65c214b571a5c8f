package journal

import (
	"strings"
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

// A control that did not hold is not a verdict about the fault: the table
// says so under the verdicts, with how busy the machine was, from the
// samples of that variant.
func TestAControlThatDidNotHoldIsExplainedWithTheMachinesCPU(t *testing.T) {
	noEquivalent := FaultEvent{ID: "m1", Fault: "leader-failover", Variant: "rpc", Error: NoEquivalent + "the RPC variant has no broker"}
	applied := FaultEvent{ID: "m1", Fault: "leader-failover", Variant: "stream", InjectedAt: t0.Add(15 * time.Second)}
	j := Journal{Variants: []string{"rpc", "stream"}, Faults: []FaultEvent{noEquivalent, applied},
		Verdict: map[string]bool{"rpc": false, "stream": true}}
	for i, busy := range []float64{0.5, 1, 0.75} {
		for _, v := range j.Variants {
			s := Sample{At: t0.Add(time.Duration(i) * time.Second), Variant: v}
			s.Set(SeriesMachineCPUBusy, busy)
			j.Samples = append(j.Samples, s)
		}
	}
	notes := j.VerdictTable().Notes
	if len(notes) != 1 {
		t.Fatalf("notes %q, want one, for rpc", notes)
	}
	for _, want := range []string{"rpc ran as the control (no fault applied) and did not hold", "75 % busy on average over the run", "100 % in its busiest second"} {
		if !strings.Contains(notes[0], want) {
			t.Errorf("note %q: want %q", notes[0], want)
		}
	}

	j.Verdict["rpc"] = true // a control that held needs no note
	if notes := j.ControlNotes(); len(notes) != 0 {
		t.Errorf("a held control got notes %q", notes)
	}
	j.Verdict["rpc"], j.Faults = false, []FaultEvent{{ID: "m1", Fault: "kill", Variant: "rpc", InjectedAt: t0}, applied}
	if notes := j.ControlNotes(); len(notes) != 0 {
		t.Errorf("a variant that took the fault and failed got notes %q", notes)
	}
	j.Faults, j.Samples = []FaultEvent{noEquivalent, applied}, nil
	if notes := j.ControlNotes(); len(notes) != 1 || strings.Contains(notes[0], "busy") {
		t.Errorf("without machine samples: notes %q, want one without figures", notes)
	}
}
