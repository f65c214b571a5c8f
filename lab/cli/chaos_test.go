package cli

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/faults"
)

// Bad command-line parameters of an experiment are refused naming the flag
// or the --set, before the lab is even asked (nothing can be injected).
func TestChaosRunRefusesBadParametersFirst(t *testing.T) {
	for want, args := range map[string][]string{
		"--set load.rat=5 (experiments/movies-outage.yaml":     {"--set", "load.rat=5"},
		`--set load.rate=fast (experiments/movies-outage.yaml`: {"--set", "load.rate=fast"},
		"--set method[4].at=1s (":                              {"--set", "method[4].at=1s"},
		"--set nothing: want path=value":                       {"--set", "nothing"},
		"--rate fast: want requests per second":                {"--rate", "fast"},
		"--duration soon: want a duration":                     {"--duration", "soon"},
		"--set load.seed=-3 (":                                 {"--seed", "-3"},
		"--repeat 0: want 1 to 50 runs":                        {"--repeat", "0"},
		"--set load.retries.max=11 (":                          {"--set", "load.retries.max=11"},
	} {
		t.Run(want, func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := runLab(t, dir, append([]string{"chaos", "run", "movies-outage"}, args...)...)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("want an error containing %q, got %v", want, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused run wrote %d entries in its lab directory", len(entries))
			}
		})
	}
	// Valid overrides pass the same checks and reach the lab (none runs here).
	_, _, err := runLab(t, t.TempDir(), "chaos", "run", "movies-outage", "--rate", "20/s", "--duration", "40s",
		"--set", "method[0].at=10s", "--set", "method[0].for=10s")
	if err == nil || !strings.Contains(err.Error(), "is not running") {
		t.Fatalf("valid overrides: want the lab-not-running error, got %v", err)
	}
}

// `lab chaos validate` shows what will run: every method step in time
// order, faults with each variant's concrete faults and actions with what
// they do, not a count of the fault steps.
func TestChaosValidateDescribesEveryStep(t *testing.T) {
	out := mustRunLab(t, t.TempDir(), "chaos", "validate", "movies-catalog-edit")
	for _, want := range []string{
		"method: 1 fault, 1 action",
		"m1   +15s → +45s      fault movies-outage",
		"rpc: kill movies-rpc",
		"stream: kill movies-connect",
		`m2   +20s             action movie-add: "The Lab Movie" (2026), the next free id; 20% of the ratings from then on rate it`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate should say %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "m1 ") > strings.Index(out, "m2 ") {
		t.Errorf("steps out of time order:\n%s", out)
	}
	// A step with nothing to do in one variant says so, and why.
	out = mustRunLab(t, t.TempDir(), "chaos", "validate", "poison-event")
	if !strings.Contains(out, "rpc: nothing (webserver-rpc validates every rating synchronously") {
		t.Errorf("validate should say what the rpc variant gets for a poison event:\n%s", out)
	}
}

// Runs are named by what actually varies: the fields that differ between
// two resilience settings, and no breaker setting at all when the RPC
// variant (whose callers they set) does not run.
func TestChaosRunsAreNamedByWhatVaries(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    string
		mustNot string
	}{
		{[]string{"movies-partition", "--variants", "stream"}, "resilience: not applied (it sets the RPC variant's callers, and rpc does not run): one run", "breakers-on"},
		{[]string{"movies-partition"}, "resilience: RPC breakers on, set at runtime for the run (run name ends -breakers-on)", ""},
		{[]string{"cascade"}, "resilience: 2 runs back to back on the same lab, RPC breakers off, then RPC breakers on (run names end -breakers-off, -breakers-on)", ""},
		{[]string{"retry-storm"}, "(run names end -retries-0, -retries-3)", "-breakers-off"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := mustRunLab(t, t.TempDir(), append([]string{"chaos", "validate"}, tc.args...)...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("want %q in:\n%s", tc.want, out)
			}
			if tc.mustNot != "" && strings.Contains(out, tc.mustNot) {
				t.Errorf("%q should not name the run:\n%s", tc.mustNot, out)
			}
		})
	}
}

// An active fault reads as due to heal, or, past its time, as being healed
// (its heal can take Toxiproxy 5 s), never "heals in -3s".
func TestAnActiveFaultPastItsTimeReadsAsBeingHealed(t *testing.T) {
	now := time.Date(2026, 12, 7, 15, 12, 5, 0, time.UTC)
	f := faults.Fault{ID: "f-9", Fault: "latency", Target: "ratings-rpc->movies-rpc", State: faults.StateActive,
		InjectedAt: now.Add(-23 * time.Second), HealsAt: now.Add(2 * time.Second)}
	if got := describeFault(f, now); !strings.Contains(got, ", heals in 2s, active for 23s") {
		t.Errorf("before its time: %q", got)
	}
	f.HealsAt = now.Add(-3 * time.Second)
	if got := describeFault(f, now); !strings.Contains(got, ", being healed (due 3s ago), active for 23s") {
		t.Errorf("past its time: %q", got)
	}
}
