package report

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/services/lib/duration"
)

// Repeated runs of one experiment summarize to the median and range of
// every figure, per variant, and say how many runs measured each.
func TestRepeatsGiveMedianAndRangePerFigure(t *testing.T) {
	base, err := journal.Read("testdata/journal.json")
	if err != nil {
		t.Fatal(err)
	}
	v := base.Variants[0]
	var js []journal.Journal
	for i, p99 := range []time.Duration{time.Second, 3 * time.Second, 2 * time.Second} {
		j := base
		j.Client = append([]journal.ClientWindow(nil), base.Client...)
		for k, c := range j.Client {
			if c.Variant == v && c.Window == journal.WindowRun {
				c.All.Latency.P99 = duration.Ptr(p99)
				j.Client[k] = c
			}
		}
		j.Verdict = map[string]bool{v: i != 1}
		j.CatalogEdits = []journal.CatalogEdit{{ID: "m2", Variants: []journal.CatalogConvergence{{Variant: v, AfterEdit: duration.Ptr(p99 * 10), Refused: 5}}}}
		js = append(js, j)
	}
	r := SummarizeRepeats([]string{"a.json", "b.json", "c.json"}, js)
	if r.Held[v] != 2 {
		t.Errorf("held %d of 3, want 2", r.Held[v])
	}
	var p99 *Figure
	for i, f := range r.Figures {
		if f.Variant == v && f.Name == "p99 latency (run)" {
			p99 = &r.Figures[i]
		}
	}
	if p99 == nil {
		t.Fatalf("no run p99 figure for %s in %+v", v, r.Figures)
	}
	if *p99.Median != 2 || *p99.Min != 1 || *p99.Max != 3 || p99.Measured != 3 {
		t.Errorf("p99: median %v min %v max %v measured %d", *p99.Median, *p99.Min, *p99.Max, p99.Measured)
	}
	if p99.MedianText() != "2s" || p99.RangeText() != "1s – 3s" {
		t.Errorf("p99 text: %s, %s", p99.MedianText(), p99.RangeText())
	}
	// So is a catalog edit's convergence.
	sawCatalog := false
	for _, f := range r.Figures {
		if f.Variant == v && f.Name == "catalog edit m2: convergence after the edit" {
			sawCatalog = true
			if f.MedianText() != "20s" || f.RangeText() != "10s – 30s" {
				t.Errorf("catalog convergence: %s, %s", f.MedianText(), f.RangeText())
			}
		}
	}
	if !sawCatalog {
		t.Error("no catalog convergence figure")
	}
	// The audit and each fault's recovery are figures too.
	var sawAudit, sawRecovery bool
	for _, f := range r.Figures {
		sawAudit = sawAudit || strings.HasPrefix(f.Name, "audit (") && strings.HasSuffix(f.Name, ": lost")
		sawRecovery = sawRecovery || strings.HasPrefix(f.Name, "fault ") && strings.HasSuffix(f.Name, "failed during fault")
	}
	if !sawAudit || !sawRecovery {
		t.Errorf("audit figures %v, recovery figures %v", sawAudit, sawRecovery)
	}
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| "+v+" | p99 latency (run) | 2s | 1s – 3s | 3/3 |") || !strings.Contains(md.String(), "| "+v+" | 2 of 3 runs |") {
		t.Errorf("markdown:\n%s", md.String())
	}
}

// An even number of runs takes the mean of the middle two; a figure no run
// measured has no median.
func TestRepeatMedianOfEvenRunsAndUnmeasured(t *testing.T) {
	one, two := 1.0, 4.0
	js := []journal.Journal{{Variants: []string{"rpc"}, Recovery: []journal.Recovery{{FaultID: "m1", Variant: "rpc", Touched: []string{journal.SignalSuccess}, SuccessRecovered: duration.Ptr(time.Duration(one * float64(time.Second)))}}},
		{Variants: []string{"rpc"}, Recovery: []journal.Recovery{{FaultID: "m1", Variant: "rpc", Touched: []string{journal.SignalSuccess}, SuccessRecovered: duration.Ptr(time.Duration(two * float64(time.Second)))}}},
		{Variants: []string{"rpc"}, Recovery: []journal.Recovery{{FaultID: "m1", Variant: "rpc", Touched: []string{journal.SignalSuccess}}}}, // never recovered
	}
	r := SummarizeRepeats([]string{"a", "b", "c"}, js)
	for _, f := range r.Figures {
		switch f.Name {
		case "fault m1: success recovered":
			if *f.Median != 2.5 || f.Measured != 2 || f.RangeText() != "1s – 4s" {
				t.Errorf("%s: median %v measured %d range %s", f.Name, *f.Median, f.Measured, f.RangeText())
			}
		case "fault m1: time to detect":
			if f.Median != nil || f.MedianText() != "—" {
				t.Errorf("%s: a figure no run measured has a median %v", f.Name, *f.Median)
			}
		}
	}
}

// Repeats are of one experiment: journals of another are refused.
func TestRepeatFilesRefuseAnotherExperiment(t *testing.T) {
	dir := t.TempDir()
	base, err := journal.Read("testdata/journal.json")
	if err != nil {
		t.Fatal(err)
	}
	other := base
	other.Title = "something else"
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	if err := journal.Write(a, base); err != nil {
		t.Fatal(err)
	}
	if err := journal.Write(b, other); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := RepeatFiles([]string{a, b}, ""); err == nil || !strings.Contains(err.Error(), "another experiment") {
		t.Fatalf("want a refusal, got %v", err)
	}
	if _, jp, mp, err := RepeatFiles([]string{a, a}, ""); err != nil || filepath.Dir(jp) != filepath.Join(dir, "a.repeat-2") || filepath.Base(mp) != "summary.md" {
		t.Fatalf("summary of two runs: %v, %s, %s", err, jp, mp)
	}
}
