package chaos

import (
	"strings"
	"testing"
)

func mustOverrides(t *testing.T, specs ...string) []Override {
	t.Helper()
	var out []Override
	for _, s := range specs {
		o, err := ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// --set changes any field as if it were written in the file, adds fields
// the file leaves out, and the experiment remembers what was set.
func TestOverridesSetFieldsOfTheFile(t *testing.T) {
	sets := mustOverrides(t, "load.rate=20", "load.duration=40s", "load.seed=9",
		"steady_state.probes[0].min=0.95", "steady_state.recovery=12s",
		"method[0].for=8s", "method[0].params={latency: 3s}", "variants=[stream]", "requires.breakers=off", "drain=5s")
	e, err := ParseWith([]byte(goodExperiment), "x.yaml", sets)
	if err != nil {
		t.Fatal(err)
	}
	if e.Load.Rate != 20 || e.Load.Duration.String() != "40s" || e.Load.Seed == nil || *e.Load.Seed != 9 {
		t.Errorf("load: %+v", e.Load)
	}
	if e.SteadyState.Probes[0].Min != "0.95" || e.SteadyState.Recovery.String() != "12s" {
		t.Errorf("steady state: %+v", e.SteadyState)
	}
	if e.Method[0].For.String() != "8s" || e.Method[0].Params["latency"] != "3s" {
		t.Errorf("method: %+v", e.Method[0])
	}
	if len(e.Variants) != 1 || e.Variants[0] != "stream" || e.Requires.Breakers != "off" || e.Drain.String() != "5s" {
		t.Errorf("experiment: %+v", e)
	}
	if len(e.Overrides) != len(sets) {
		t.Errorf("overrides recorded: %v", e.Overrides)
	}
	// The file's own lines still name its own fields.
	if _, err := ParseWith([]byte(strings.Replace(goodExperiment, "at: 5s", "at: soon", 1)), "x.yaml", sets); err == nil ||
		!strings.HasPrefix(err.Error(), "x.yaml:11: method[0].at:") {
		t.Errorf("a file error with overrides: %v", err)
	}
}

// A bad --set is refused naming the --set and the field, before anything
// runs: unknown paths, values of the wrong type, indexes the file lacks.
func TestBadOverridesNameTheSet(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"load.rat=20", "--set load.rat=20 (x.yaml): unknown field (valid: scenario, rate, duration, seed, retries)"},
		{"load.rate=fast", `--set load.rate=fast (x.yaml): want a number, got "fast"`},
		{"load.rate=-1", "--set load.rate=-1 (x.yaml): must be more than 0 requests/s"},
		{"load.duration=10", `--set load.duration=10 (x.yaml): want a duration such as 10s or 1m30s, got "10"`},
		{"load.seed=x", "--set load.seed=x (x.yaml): want a whole number"},
		{"load.retries.max=lots", `--set load.retries.max=lots (x.yaml): want a whole number`},
		{"nope.deeper=1", "--set nope.deeper=1 (x.yaml): nope: unknown field (valid: title, description"},
		{"method[3].at=5s", "--set method[3].at=5s (x.yaml): method has 1 entry, so there is no method[3]"},
		{"load[0]=1", "--set load[0]=1 (x.yaml): load is not a list"},
		{"title.sub=1", "--set title.sub=1 (x.yaml): title is not a mapping, so it has no field sub"},
		{"method[0].at=soon", `--set method[0].at=soon (x.yaml): want a duration such as 10s or 1m30s, got "soon"`},
		{"steady_state.probes[0]={probe: success_rate, mn: 1}", "steady_state.probes[0].mn: unknown field"},
		{"load={rate: 5}", "--set load={rate: 5} (x.yaml): load.scenario: is required"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			o, err := ParseOverride(tc.set)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseWith([]byte(goodExperiment), "x.yaml", []Override{o})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "--set ") {
				t.Errorf("the error does not start with the --set it came from: %v", err)
			}
		})
	}
	for _, bad := range []string{"load.rate", "=5", "load.rate=", "load..rate=1", "method[x].at=1s", "method[0.at=1s"} {
		o, err := ParseOverride(bad)
		if err == nil {
			_, err = ParseWith([]byte(goodExperiment), "x.yaml", []Override{o})
		}
		if err == nil || !strings.Contains(err.Error(), bad) && !strings.Contains(err.Error(), o.Path) {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

// A value the lab refuses (checked by Validate, not the decoder) names its
// --set too.
func TestValidateNamesTheSet(t *testing.T) {
	e, err := ParseWith([]byte(goodExperiment), "x.yaml", mustOverrides(t, "steady_state.probes[0].min=lots"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Validate(e, defaultLab(t), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "--set steady_state.probes[0].min=lots (x.yaml): ") {
		t.Fatalf("error %v", err)
	}
}

// A probe window is whole sampling seconds: 1500ms is refused by name
// before anything runs.
func TestAWindowOfPartSecondsIsRefused(t *testing.T) {
	e, err := ParseWith([]byte(goodExperiment), "x.yaml", mustOverrides(t, "steady_state.window=1500ms"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Validate(e, defaultLab(t), nil)
	if err == nil || !strings.Contains(err.Error(), "steady_state.window") || !strings.Contains(err.Error(), "whole number of seconds") {
		t.Fatalf("window 1500ms: error %v, want one naming steady_state.window", err)
	}
}
