package chaos

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ratingslab/lab/experiments"
	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/loadtests"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// defaultLab is a lab started with `lab up` and no flags, from the part table.
func defaultLab(t testing.TB) Lab {
	t.Helper()
	return Lab{Targets: faults.TargetsFor(parts.Options{}, layout.Ports{Base: layout.DefaultPortBase}),
		Breakers: true, Delivery: "effectively-once", ScenarioDirs: []fs.FS{loadtests.Scenarios()}}
}

// Every shipped experiment parses and validates against the lab it was
// written for.
func TestShippedExperimentsAreValid(t *testing.T) {
	entries, err := fs.ReadDir(experiments.FS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, en := range entries {
		if filepath.Ext(en.Name()) != ".yaml" {
			continue
		}
		found++
		t.Run(en.Name(), func(t *testing.T) {
			data, err := fs.ReadFile(experiments.FS(), en.Name())
			if err != nil {
				t.Fatal(err)
			}
			e, err := Parse(data, "experiments/"+en.Name())
			if err != nil {
				t.Fatal(err)
			}
			lab := defaultLab(t)
			lab.Breakers = e.Requires.Breakers != "off"
			if e.Requires.Kafka != "" || e.Requires.Replicas != "" {
				lab.Kafka = e.Requires.Kafka
				lab.Replicas = RequiredOptions(e).Replicas
				lab.Targets = faults.TargetsFor(RequiredOptions(e), layout.Ports{Base: layout.DefaultPortBase})
			}
			p, err := Validate(e, lab, nil)
			if err != nil {
				t.Fatal(err)
			}
			if e.Description == "" || len(p.Variants) != 2 {
				t.Errorf("a shipped experiment explains itself and runs both variants: %+v", e)
			}
			// Every conclusion stands on the audit: each hypothesis checks
			// loss, duplicates and phantoms, and reports the ambiguous.
			for _, want := range []string{"lost_writes", "duplicates", "phantoms", "ambiguous", "audit"} {
				found := false
				for _, pp := range p.Probes {
					if pp.kind.name == want && len(pp.variants) == 2 {
						found = true
					}
				}
				if !found {
					t.Errorf("the hypothesis lacks the %s probe for both variants", want)
				}
			}
		})
	}
	// The list: movies outage, movies latency, ratings crash, ratings
	// pause, broker outage, slow consumer, poison event, breakers off.
	if found < 8 {
		t.Fatalf("found %d shipped experiments, want at least 8", found)
	}
}

// The breakers-off experiment refuses a lab that runs its breakers.
func TestRequiresIsCheckedAgainstTheLab(t *testing.T) {
	data, err := fs.ReadFile(experiments.FS(), "movies-latency-breakers-off.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(data, "experiments/movies-latency-breakers-off.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Validate(e, defaultLab(t), nil)
	want := "experiments/movies-latency-breakers-off.yaml:10: requires.breakers: this experiment needs the RPC variant's circuit breakers off, and this lab runs them on; switch them at runtime with: lab breakers off"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n %v\nwant:\n %s", err, want)
	}
}

// The rebalance experiment refuses a lab with one ratings-stream and names
// the lab up flag; a malformed requires.replicas is an error of its own.
func TestRequiredReplicasAreCheckedAgainstTheLab(t *testing.T) {
	data, err := fs.ReadFile(experiments.FS(), "rebalance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(data, "experiments/rebalance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Validate(e, defaultLab(t), nil)
	if err == nil || !strings.Contains(err.Error(), "requires.replicas: this experiment needs 2 replicas of ratings-stream, and this lab runs 1; restart it with: lab down && lab up --replicas ratings-stream=2") {
		t.Fatalf("error: %v", err)
	}
	for _, bad := range []string{"ratings-stream", "ratings-stream=1", "ratings-stream=two", "=2"} {
		e.Requires.Replicas = bad
		if _, err := Validate(e, defaultLab(t), nil); err == nil || !strings.Contains(err.Error(), "requires.replicas: want part=N with N at least 2") {
			t.Errorf("replicas %q: %v", bad, err)
		}
	}
}

// The README's format example is itself a valid experiment.
func TestREADMEExampleIsValid(t *testing.T) {
	b, err := os.ReadFile("../../experiments/README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("no yaml example in experiments/README.md")
	}
	e, err := Parse(m[1], "README example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(e, defaultLab(t), nil); err != nil {
		t.Fatal(err)
	}
}

// The README's mapping table is the one in the code.
func TestREADMEListsEveryEquivalent(t *testing.T) {
	b, err := os.ReadFile("../../experiments/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range Equivalents() {
		row := "| " + e.Name + " | " + e.Summary + " | " + e.Describe(variantname.RPC) + " | " + e.Describe(variantname.Stream) + " |"
		if !strings.Contains(string(b), row) {
			t.Errorf("experiments/README.md lacks the row\n%s", row)
		}
	}
}

const goodExperiment = `title: t
load:
  scenario: smoke
  duration: 30s
steady_state:
  probes:
    - probe: success_rate
      min: 0.99
method:
  - fault: movies-outage
    at: 5s
    for: 5s
`

// A malformed file is refused with the file, line and field.
func TestParseErrorsNameTheFieldAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"not yaml", "title: [", "x.yaml: not valid YAML"},
		{"empty", "", "x.yaml: empty file"},
		{"unknown top field", "titel: t\n", "x.yaml:1: titel: unknown field (valid: title, description"},
		{"missing title", "load: {scenario: smoke}\n", "x.yaml:1: title: is required"},
		{"bad at", strings.Replace(goodExperiment, "at: 5s", "at: soon", 1), `x.yaml:11: method[0].at: want a duration such as 10s or 1m30s, got "soon"`},
		{"negative for", strings.Replace(goodExperiment, "for: 5s", "for: -5s", 1), "x.yaml:12: method[0].for: must not be negative"},
		{"bad rate", strings.Replace(goodExperiment, "duration: 30s", "rate: fast", 1), `x.yaml:4: load.rate: want a number, got "fast"`},
		{"probes not a list", strings.Replace(goodExperiment, "  probes:\n    - probe: success_rate\n      min: 0.99", "  probes: success_rate", 1), "x.yaml:6: steady_state.probes: want a list"},
		{"unknown step field", strings.Replace(goodExperiment, "for: 5s", "for: 5s\n    when: later", 1), "x.yaml:13: method[0].when: unknown field (valid: fault, target, targets, params, at, for)"},
		{"duplicate key", strings.Replace(goodExperiment, "title: t\n", "title: t\ntitle: u\n", 1), "x.yaml:2: title: appears twice"},
		{"bad seed", strings.Replace(goodExperiment, "duration: 30s", "seed: -1", 1), "x.yaml:4: load.seed: want a whole number"},
		{"bad breakers", strings.Replace(goodExperiment, "title: t\n", "title: t\nrequires: {breakers: maybe}\n", 1), `x.yaml:2: requires.breakers: want on or off, got "maybe"`},
		{"target and targets", strings.Replace(goodExperiment, "for: 5s", "for: 5s\n    targets: {rpc: movies-rpc}\n    target: movies-rpc", 1), "x.yaml:14: method[0].target: give target or targets, not both"},
		{"no variants", strings.Replace(goodExperiment, "title: t\n", "title: t\nvariants: []\n", 1), "x.yaml:2: variants: is empty: leave it out to run every variant"},
		{"no variants, as text", strings.Replace(goodExperiment, "title: t\n", "title: t\nvariants: ''\n", 1), "x.yaml:2: variants: is empty"},
		{"probe for no variant", strings.Replace(goodExperiment, "min: 0.99", "min: 0.99\n      variants: []", 1), "x.yaml:9: steady_state.probes[0].variants: is empty"},
		{"empty resilience", strings.Replace(goodExperiment, "title: t\n", "title: t\nresilience: []\n", 1), "x.yaml:2: resilience: want 1 setting, or 2 to compare back to back; got 0"},
		{"three settings", strings.Replace(goodExperiment, "title: t\n", "title: t\nresilience: [{breakers: on}, {breakers: off}, {retries: 1}]\n", 1), "x.yaml:2: resilience: want 1 setting, or 2 to compare back to back; got 3"},
		{"retries above the bound", strings.Replace(goodExperiment, "title: t\n", "title: t\nresilience:\n  - retries: 6\n", 1), "x.yaml:3: resilience[0].retries: want an integer from 0 to 5, got 6"},
		{"fractional retries", strings.Replace(goodExperiment, "title: t\n", "title: t\nresilience:\n  - retries: 1.5\n", 1), "x.yaml:3: resilience[0].retries: want an integer from 0 to 5, got 1.5"},
		{"empty setting", strings.Replace(goodExperiment, "title: t\n", "title: t\nresilience:\n  - {}\n", 1), "x.yaml:3: resilience[0]: set breakers (on|off), retries (0..5) or both"},
		{"bad breakers setting", strings.Replace(goodExperiment, "title: t\n", "title: t\nresilience:\n  - breakers: maybe\n", 1), `x.yaml:3: resilience[0].breakers: want on or off, got "maybe"`},
		{"resilience and requires", strings.Replace(goodExperiment, "title: t\n", "title: t\nrequires: {breakers: off}\nresilience: [{breakers: on}]\n", 1), "x.yaml:3: resilience: sets the breakers at runtime: leave requires.breakers out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "x.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// Problems only the lab's tables reveal are refused before anything runs,
// still naming the field and line.
func TestValidateErrorsNameTheFieldAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown fault", "fault: movies-outage", "fault: meteor", "x.yaml:10: method[0].fault: unknown fault \"meteor\": want an equivalent (movies-outage"},
		{"param of no action", "for: 5s", "for: 5s\n    params: {latency: 1s}", "x.yaml:13: method[0].params.latency: movies-outage takes no parameter \"latency\""},
		{"bad param value", "fault: movies-outage\n    at: 5s\n    for: 5s", "fault: movies-latency\n    at: 5s\n    for: 5s\n    params: {latency: 2 seconds}", "x.yaml:13: method[0].params.latency: latency in the rpc variant: params.latency: want a duration"},
		{"within warmup", "at: 5s", "at: 2s", "x.yaml:11: method[0].at: movies-outage starts at 2s, within the warmup"},
		{"no for", "    for: 5s\n", "", "x.yaml:10: method[0].for: is required: how long movies-outage lasts"},
		{"ends too late", "for: 5s", "for: 20s", "x.yaml:12: method[0].for: the last fault ends at 25s; the load (30s) must run on for steady_state.recovery (10s) and 2s more"},
		{"instant with for", "fault: movies-outage", "fault: poison-event", "x.yaml:12: method[0].for: poison-event takes effect once and has nothing to heal; drop for"},
		{"unknown probe", "probe: success_rate", "probe: happiness", "x.yaml:7: steady_state.probes[0].probe: unknown probe \"happiness\" (valid: success_rate"},
		{"wrong bound", "min: 0.99", "max: 0.99", "x.yaml:8: steady_state.probes[0].max: success_rate takes a min, not a max"},
		{"fraction", "min: 0.99", "min: 99", "x.yaml:8: steady_state.probes[0].min: is a fraction from 0 to 1"},
		{"probe for the other variant", "min: 0.99", "min: 0.99\n    - probe: consumer_lag\n      variants: [rpc]", "x.yaml:10: steady_state.probes[1].variants: consumer_lag applies to stream only"},
		{"unknown variant", "title: t", "title: t\nvariants: [rpc, soap]", "x.yaml:2: variants[1]: unknown variant \"soap\""},
		{"catalog fault without target", "fault: movies-outage", "fault: latency", "x.yaml:10: method[0].targets: latency is a catalog fault: give target, or targets per variant"},
		{"target of the wrong kind", "fault: movies-outage", "fault: latency\n    target: movies-rpc", "x.yaml:11: method[0].target: target \"movies-rpc\": latency applies to edges"},
		{"equivalent with targets", "fault: movies-outage", "fault: movies-outage\n    target: movies-rpc", "x.yaml:11: method[0].target: movies-outage is an equivalent from the mapping table: its targets are fixed"},
		{"unknown scenario", "scenario: smoke", "scenario: tsunami", "x.yaml:3: load.scenario: tsunami: unknown scenario (known: "},
		{"rollback of no part", "    for: 5s\n", "    for: 5s\nrollbacks:\n  - action: start\n    part: nowhere\n", "x.yaml:15: rollbacks[0].part: \"nowhere\" is not a part of this lab"},
		{"target of the other variant", "fault: movies-outage", "fault: latency\n    targets: {rpc: 'ratings-stream->broker', stream: 'ratings-stream->broker'}", "x.yaml:11: method[0].targets.rpc: \"ratings-stream->broker\" belongs to the stream variant, not rpc"},
		{"targets swapped", "fault: movies-outage", "fault: kill\n    targets: {rpc: ratings-stream, stream: ratings-rpc}", "x.yaml:11: method[0].targets.rpc: \"ratings-stream\" belongs to the stream variant, not rpc: a step's target for a variant must be one of that variant's edges or parts (valid for rpc: movies-rpc, ratings-rpc, webserver-rpc)"},
		{"the broker for rpc", "fault: movies-outage", "fault: kill\n    targets: {rpc: broker}", "x.yaml:11: method[0].targets.rpc: \"broker\" belongs to the stream variant, not rpc"},
		{"a tolerance off the SLO without why", "min: 0.99", "min: 0.95", "x.yaml:8: steady_state.probes[0].min: 0.95 departs from the lab's SLO (success_rate >= 0.99, experiments/README.md \"The SLO\"): leave it out to use the SLO, or say why in steady_state.probes[0].why"},
		{"the same probe twice", "min: 0.99", "min: 0.99\n    - probe: success_rate\n      min: 0.5\n      why: a test", "x.yaml:9: steady_state.probes[1]: success_rate is already checked for rpc by steady_state.probes[0]"},
		{"the same label twice for one variant", "min: 0.99", "min: 0.99\n      name: ok\n    - probe: p99_latency\n      max: 1s\n      name: ok\n      variants: [stream]", "steady_state.probes[1]: ok is already checked for stream by steady_state.probes[0]"},
		{"overlap", "    for: 5s\n", "    for: 5s\n  - fault: kill\n    target: movies-rpc\n    at: 7s\n    for: 2s\n", "x.yaml:15: method[1].at: overlaps method[0] on movies-rpc in the rpc variant (kill and kill at the same time)"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantEditRefused(t, goodExperiment, tc.old, tc.new, tc.want) })
	}
	// --variants is checked too.
	e, err := Parse([]byte(goodExperiment), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(e, defaultLab(t), []string{"grpc"}); err == nil || !strings.Contains(err.Error(), `--variants: unknown variant "grpc"`) {
		t.Fatalf("--variants grpc: %v", err)
	}
}

// wantEditRefused checks that base with old replaced by new is refused by
// Parse or Validate with an error containing want.
func wantEditRefused(t *testing.T, base, old, new, want string) {
	t.Helper()
	src := strings.Replace(base, old, new, 1)
	if src == base {
		t.Fatalf("the edit %q → %q changed nothing", old, new)
	}
	e, err := Parse([]byte(src), "x.yaml")
	if err == nil {
		_, err = Validate(e, defaultLab(t), nil)
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v\nwant it to contain %q\nfile:\n%s", err, want, src)
	}
}

// One probe per variant with its own tolerance is not "the same probe
// twice", and a target given for its own variant is accepted.
func TestOneProbePerVariantAndTargetsOfTheirOwnVariantAreValid(t *testing.T) {
	src := strings.Replace(goodExperiment, "    - probe: success_rate\n      min: 0.99",
		"    - probe: p99_latency\n      max: 1s\n      variants: [rpc]\n    - probe: p99_latency\n      max: 2s\n      why: the log variant's tail is allowed more here\n      variants: [stream]", 1)
	src = strings.Replace(src, "fault: movies-outage", "fault: kill\n    targets: {rpc: ratings-rpc, stream: broker}", 1)
	e, err := Parse([]byte(src), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Validate(e, defaultLab(t), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if len(p.Probes) != 2 || p.Steps[0].Variants[variantname.Stream].Requests[0].Target != "broker" {
		t.Fatalf("plan: %+v", p)
	}
}
