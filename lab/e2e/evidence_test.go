package e2e

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/latency"
	"github.com/ratingslab/lab/lab/load/ledger"
)

// evidenceScenario is ratings-heavy, with reads and a few requests for
// movies outside the catalog (expected 4xx).
const evidenceScenario = `{
  "name": "evidence-scenario",
  "description": "Ratings-heavy load for the evidence test.",
  "seed": 9,
  "arrival": { "executor": "constant-arrival-rate", "rate": 30, "duration": "40s" },
  "mix": { "rating": 0.7, "movie": 0.3 },
  "movies": { "min_id": 1, "max_id": 60, "unknown_fraction": 0.05 },
  "request_timeout": "10s"
}`

// evidenceExperiment has three faults of known effect: 300 ms on the
// answers webserver-stream gets from the broker (a latency of known size),
// 1.5 s on the answers of webserver-rpc → ratings-rpc (past webserver-rpc's
// 1 s timeout: ratings-rpc applies the rating, the client hears 504), and
// the broker killed for 4 s.
const evidenceExperiment = `title: Evidence — a known latency, unknown outcomes, a broker kill
description: The figures of a verdict checked against the ledger and the broker.
variants: [rpc, stream]
load:
  scenario: evidence-scenario.json
steady_state:
  warmup: 2s
  recovery: 5s
  probes:
    - probe: success_rate
      min: 0
      why: the test checks the figures against the ledger, not the verdict
    - probe: lost_writes
    - probe: duplicates
    - probe: phantoms
    - probe: ambiguous
    - probe: audit
method:
  - fault: latency
    target: "webserver-stream->broker"
    params: {latency: 300ms}
    at: 5s
    for: 8s
  - fault: latency
    target: "webserver-rpc->ratings-rpc"
    params: {latency: 1500ms}
    at: 15s
    for: 3s
  - fault: kill
    targets: {stream: broker}
    at: 22s
    for: 4s
drain: 30s
`

// TestEvidenceIsExact runs one experiment and checks the figures of its
// journal and report against the ledger and what the faults must have done:
//   - a latency fault of known size: the report's p99 is within 2 % of the
//     ledger's exact p99 (and shows the 300 ms);
//   - an upstream timeout under load: the ratings answered 504 are
//     "ambiguous" in the ledger, and the audit counts those ratings-rpc
//     applied later as "ambiguous, applied", never as phantoms;
//   - a broker kill: the journal's consumer lag is unknown (null) while the
//     broker is down, not 0.
func TestEvidenceIsExact(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "evidence-scenario.json"), []byte(evidenceScenario), 0o644)
	file := filepath.Join(dir, "evidence.yaml")
	os.WriteFile(file, []byte(evidenceExperiment), 0o644)
	out, err := l.Run("chaos", "run", file)
	m := regexp.MustCompile(`Journal: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lab chaos run: no journal (%v):\n%s", err, out)
	}
	j, err := journal.Read(m[1])
	if err != nil {
		t.Fatal(err)
	}
	led, err := ledger.Read(j.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	rm := regexp.MustCompile(`Report: \S+\n\s+(\S+report\.md)`).FindStringSubmatch(out)
	if rm == nil {
		t.Fatalf("no Markdown report in the output:\n%s", out)
	}
	md, err := os.ReadFile(rm[1])
	if err != nil {
		t.Fatal(err)
	}

	t.Run("report p99 is the ledger's", func(t *testing.T) {
		for _, v := range j.Variants {
			var all []time.Duration
			for _, e := range append(append([]ledger.Entry(nil), led.Entries...), led.Reads...) {
				if e.Variant == v {
					all = append(all, e.LatencyNs)
				}
			}
			exact := latency.Exact(all, 0.99)
			row := regexp.MustCompile(`\| ` + v + ` \| run \| all \| (\d+) \| [^|]+ \| \d+ \| [^|]+ \| ([^|]+) \|`).FindStringSubmatch(string(md))
			if row == nil {
				t.Fatalf("%s: no run/all row in the report's client figures", v)
			}
			reported, err := time.ParseDuration(strings.ReplaceAll(strings.TrimSpace(row[2]), "µ", "u"))
			if err != nil {
				t.Fatal(err)
			}
			if off := math.Abs(float64(reported-exact)) / float64(exact); off > 0.02 {
				t.Errorf("%s: the report's p99 %v is %.2f %% off the ledger's exact %v (%d requests)", v, reported, off*100, exact, len(all))
			}
			if row[1] != itoa(len(all)) {
				t.Errorf("%s: the report counts %s answers, the ledger %d", v, row[1], len(all))
			}
			t.Logf("%s: p99 %v in the report, %v from the ledger", v, reported, exact)
			if v == "stream" && exact < 300*time.Millisecond {
				t.Errorf("stream p99 %v: a 300 ms latency on a fifth of the run must show", exact)
			}
		}
	})

	t.Run("an upstream timeout is ambiguous, and applied later is not a phantom", func(t *testing.T) {
		unknown := 0
		for _, e := range led.Entries {
			if e.Variant == "rpc" && e.Cause == ledger.CauseOutcomeUnknown {
				unknown++
				if e.Outcome != ledger.Ambiguous || e.Status != 504 {
					t.Errorf("%s: %s/%d, want ambiguous 504", e.RequestID, e.Outcome, e.Status)
				}
			}
		}
		if unknown == 0 {
			t.Fatal("no rating was answered 504 while ratings-rpc's answers took 1.5 s")
		}
		var store *audit.Result
		for i, a := range j.Audit {
			if a.Variant == "rpc" && a.Source == audit.SourceStore {
				store = &j.Audit[i]
			}
		}
		if store == nil || !store.Checked || store.Requests == nil {
			t.Fatalf("no audit of ratings-rpc's store by request id: %+v", j.Audit)
		}
		if store.Phantoms != 0 || store.Requests.Phantoms != 0 || store.AmbiguousApplied == 0 || store.Requests.AmbiguousApplied == 0 {
			t.Errorf("audit: phantoms %d (by id %d), ambiguous applied %d (by id %d): the 504s ratings-rpc applied are ambiguous, applied",
				store.Phantoms, store.Requests.Phantoms, store.AmbiguousApplied, store.Requests.AmbiguousApplied)
		}
		t.Logf("rpc: %d answered 504; audit: %d ambiguous, %d applied, %d not", unknown, store.Ambiguous, store.AmbiguousApplied, store.AmbiguousNotApplied)
	})

	t.Run("a broker kill makes the lag unknown, not 0", func(t *testing.T) {
		var kill journal.FaultEvent
		for _, f := range j.Faults {
			if f.Fault == "kill" && f.Variant == "stream" {
				kill = f
			}
		}
		if kill.InjectedAt.IsZero() || kill.HealedAt.IsZero() {
			t.Fatalf("the broker kill was not applied: %+v", kill)
		}
		inside := 0
		for _, s := range j.Samples {
			if s.Variant != "stream" || !s.At.After(kill.InjectedAt.Add(1500*time.Millisecond)) || s.At.After(kill.HealedAt) {
				continue
			}
			inside++
			if v, ok := s.Get(journal.SeriesConsumerLag); ok || !s.IsUnknown(journal.SeriesConsumerLag) {
				t.Errorf("at +%v with the broker down the lag is %v (present %v), want unknown", s.At.Sub(j.Started).Round(100*time.Millisecond), v, ok)
			}
		}
		if inside == 0 {
			t.Fatal("no sample while the broker was down")
		}
		b, _ := os.ReadFile(m[1])
		if !strings.Contains(string(b), `"consumer_lag": null`) {
			t.Error("the journal file does not hold the unknown lag as null")
		}
	})
}
