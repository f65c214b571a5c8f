package labsource

import (
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/journal"
)

// The experiments table's verdict names a variant that ran as the control,
// as `lab chaos run` and the report do.
func TestTheVerdictTextNamesAControl(t *testing.T) {
	j := journal.Journal{
		Variants: []string{"rpc", "stream"},
		Verdict:  map[string]bool{"rpc": true, "stream": false},
		Faults: []journal.FaultEvent{
			{ID: "m1", Fault: "ambiguous-writes", Variant: "rpc", Error: journal.NoEquivalent + "the RPC variant has no broker"},
			{ID: "m1", Fault: "produce_timeout", Variant: "stream", InjectedAt: time.Now()},
		},
	}
	want := "rpc PASS " + journal.ControlNote + " · stream FAIL"
	if got := verdictText(j); got != want {
		t.Fatalf("verdictText = %q, want %q", got, want)
	}
}
