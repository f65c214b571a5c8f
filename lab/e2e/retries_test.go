package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/lab/report"
)

// TestIdempotentRetries runs the shipped idempotent-retries experiment,
// shortened from the command line (--duration, --rate, --set) and repeated
// (--repeat 2), on a real lab: answers on each webserver's write edge are
// 3 s late, both webservers answer 504 "outcome unknown", and the load
// generator sends those ratings again with the same request id. The
// mechanism must occur (retries of ratings whose first answer was unknown,
// in both variants; in stream, retries the service answered) and the
// contract must hold: no rating counted twice, nothing acknowledged lost, no
// phantom. The summary of the two runs has a median and a range per figure.
func TestIdempotentRetries(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t)
	out, err := l.Run("chaos", "run", "idempotent-retries", "--quiet", "--repeat", "2",
		"--duration", "30s", "--rate", "20", "--set", "method[0].at=8s", "--set", "method[0].for=8s",
		"--set", "steady_state.recovery=8s", "--set", "drain=20s")
	paths := regexp.MustCompile(`Journal: (\S+)`).FindAllStringSubmatch(out, -1)
	if len(paths) != 2 {
		t.Fatalf("lab chaos run --repeat 2: want 2 journals (%v):\n%s", err, out)
	}
	for _, m := range paths {
		j, err := journal.Read(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if j.Error != "" {
			t.Fatalf("%s: the run ended early: %s", m[1], j.Error)
		}
		var def struct {
			Load struct {
				Duration string `json:"duration"`
				Retries  *struct {
					Max int `json:"max"`
				} `json:"retries"`
			} `json:"load"`
			Overrides []struct{ Path, Value string } `json:"overrides"`
		}
		if err := json.Unmarshal(j.Definition, &def); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(j.Settings["overrides"], "load.duration=30s") || def.Load.Duration != "30s" || def.Load.Retries == nil || def.Load.Retries.Max != 4 || len(def.Overrides) != 6 {
			t.Errorf("%s: the journal does not record the overrides and the retry policy: %v\n%s", m[1], j.Settings, j.Definition)
		}
		checkRetriedNothingDoubled(t, j)
	}
	// The summary: every figure with its median and range over both runs.
	sm := regexp.MustCompile(`Summary of 2 runs: (\S+)\s+(\S+summary\.json)`).FindStringSubmatch(out)
	if sm == nil {
		t.Fatalf("no summary of the runs in the output:\n%s", out)
	}
	b, err := os.ReadFile(sm[2])
	if err != nil {
		t.Fatal(err)
	}
	var r report.Repeats
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Journals) != 2 || len(r.Figures) == 0 {
		t.Fatalf("summary: %d journals, %d figures", len(r.Journals), len(r.Figures))
	}
	seen := map[string]bool{}
	for _, f := range r.Figures {
		seen[f.Variant+" "+f.Name] = true
		if f.Measured > 0 && (f.Median == nil || *f.Min > *f.Median || *f.Median > *f.Max) {
			t.Errorf("%s %s: median %v outside its range %v..%v", f.Variant, f.Name, f.Median, f.Min, f.Max)
		}
	}
	for _, v := range []string{"rpc", "stream"} {
		for _, name := range []string{"p99 latency (run)", "success ratio (during)", "audit (api): retried", "audit (store): duplicates", "fault m1: failed during fault"} {
			if !seen[v+" "+name] {
				t.Errorf("the summary lacks %s's %q", v, name)
			}
		}
	}
	if !strings.Contains(out, "| rpc | p99 latency (run) |") {
		t.Errorf("the summary table is not printed:\n%s", out)
	}
	// The summary comes from the journals alone: written again, it is the same.
	again := t.TempDir()
	if rout, err := l.Run("report", "--repeats", paths[0][1], paths[1][1], "--out", again); err != nil {
		t.Fatalf("lab report --repeats: %v\n%s", err, rout)
	}
	if b2, err := os.ReadFile(filepath.Join(again, "summary.json")); err != nil || !bytes.Equal(b, b2) {
		t.Errorf("lab report --repeats wrote another summary (%v)", err)
	}
}

// checkRetriedNothingDoubled checks one run: retries happened in both
// variants, and the audit found nothing counted twice, lost or phantom.
func checkRetriedNothingDoubled(t *testing.T, j journal.Journal) {
	t.Helper()
	led, err := ledger.Read(j.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	unknownFirst := map[string]int{} // retried ratings whose first answer was unknown
	answeredLater := map[string]int{}
	for _, e := range led.Entries {
		if len(e.Attempts) < 2 {
			continue
		}
		if e.Attempts[0].Outcome == ledger.Ambiguous {
			unknownFirst[e.Variant]++
		}
		for _, a := range e.Attempts[1:] {
			if a.Status == 202 || a.Status == 201 || a.Status == 504 {
				answeredLater[e.Variant]++ // a retry the service itself answered
				break
			}
		}
	}
	for _, v := range []string{"rpc", "stream"} {
		if unknownFirst[v] == 0 {
			t.Errorf("%s: no rating of unknown outcome was retried: the experiment showed nothing", v)
		}
	}
	if answeredLater["stream"] == 0 {
		t.Error("stream: no retry reached webserver-stream's write path")
	}
	t.Logf("retried after an unknown answer: %v; retries answered by the service: %v", unknownFirst, answeredLater)
	checked := map[string]int{}
	for _, a := range j.Audit {
		if !a.Checked {
			t.Errorf("%s/%s: audit not checked: %s", a.Variant, a.Source, a.Error)
			continue
		}
		checked[a.Variant]++
		if a.Retried == 0 {
			t.Errorf("%s/%s: the audit counts no retried rating", a.Variant, a.Source)
		}
		if a.Duplicates != 0 || a.RetriedDoubled != 0 || a.Lost != 0 || a.Phantoms != 0 {
			t.Errorf("%s/%s: doubled %d (by a retry %d), lost %d, phantoms %d: %+v", a.Variant, a.Source, a.Duplicates, a.RetriedDoubled, a.Lost, a.Phantoms, a.Movies)
		}
		if a.Requests != nil && !a.Requests.OK() {
			t.Errorf("%s/%s: by request id: %+v", a.Variant, a.Source, a.Requests)
		}
	}
	if checked["rpc"] == 0 || checked["stream"] == 0 {
		t.Errorf("audited sources per variant: %v", checked)
	}
}
