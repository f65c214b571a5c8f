package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/services/lib/duration"
)

// Repeats is one experiment run several times (`lab chaos run --repeat N`):
// every figure of every run, per variant, with its median and range. Runs
// vary only by the lab's own timing (same experiment, same seed, same
// faults), so the range is how much a single run's figure can be trusted.
type Repeats struct {
	Title    string   `json:"title"`
	Journals []string `json:"journals"`
	Variants []string `json:"variants"`
	// Held counts, per variant, the runs whose hypothesis held.
	Held    map[string]int `json:"held"`
	Figures []Figure       `json:"figures"`
}

// Figure is one measured quantity of one variant across the runs.
type Figure struct {
	Variant string `json:"variant"`
	Name    string `json:"name"`
	// Unit is "ratio", "seconds" or "count".
	Unit string `json:"unit"`
	// Values has one entry per run, null where the run did not measure it
	// (a signal never recovered, a source unread).
	Values []*float64 `json:"values"`
	// Median, Min and Max are over the measured values (absent when none).
	Median *float64 `json:"median,omitempty"`
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	// Measured counts the runs with a value.
	Measured int `json:"measured"`
}

// Unit of a figure.
const (
	UnitRatio   = "ratio"
	UnitSeconds = "seconds"
	UnitCount   = "count"
)

// SummarizeRepeats gathers the figures of runs of one experiment, in run
// order: the exact client figures of the whole run and of the faults'
// window, the audit per source, and each fault's recovery times.
func SummarizeRepeats(names []string, js []journal.Journal) Repeats {
	r := Repeats{Journals: names, Held: map[string]int{}}
	if len(js) > 0 {
		r.Title, r.Variants = js[0].Title, js[0].Variants
	}
	type key struct{ variant, name string }
	byKey := map[key]*Figure{}
	var order []key
	put := func(run int, variant, name, unit string, v *float64) {
		k := key{variant, name}
		f := byKey[k]
		if f == nil {
			f = &Figure{Variant: variant, Name: name, Unit: unit, Values: make([]*float64, len(js))}
			byKey[k] = f
			order = append(order, k)
		}
		f.Values[run] = v
	}
	num := func(x float64) *float64 { return &x }
	secs := func(d *duration.Duration) *float64 {
		if d == nil {
			return nil
		}
		return num(d.D().Seconds())
	}
	for i, j := range js {
		for _, v := range j.Variants {
			if j.Verdict[v] {
				r.Held[v]++
			}
			for _, w := range []string{journal.WindowRun, journal.WindowDuring} {
				c, ok := j.FindClient(v, w)
				if !ok {
					continue
				}
				put(i, v, "success ratio ("+w+")", UnitRatio, c.All.SuccessRatio)
				put(i, v, "p50 latency ("+w+")", UnitSeconds, secs(c.All.Latency.P50))
				put(i, v, "p99 latency ("+w+")", UnitSeconds, secs(c.All.Latency.P99))
				put(i, v, "p99.9 latency ("+w+")", UnitSeconds, secs(c.All.Latency.P999))
				put(i, v, "p99 write latency ("+w+")", UnitSeconds, secs(c.Writes.Latency.P99))
			}
			for _, a := range j.Audit {
				if a.Variant != v {
					continue
				}
				counts := []struct {
					name string
					n    int64
				}{{"acknowledged", a.Acknowledged}, {"failed", a.Failed}, {"ambiguous", a.Ambiguous},
					{"ambiguous applied", a.AmbiguousApplied}, {"lost", a.Lost}, {"duplicates", a.Duplicates},
					{"phantoms", a.Phantoms}, {"unexpected 4xx", a.UnexpectedRejections},
					{"retried", a.Retried}, {"retried doubled", a.RetriedDoubled}}
				for _, c := range counts {
					var val *float64
					if a.Checked || c.name == "acknowledged" || c.name == "failed" || c.name == "ambiguous" || c.name == "retried" {
						val = num(float64(c.n)) // ledger tallies need no read of the variant
					}
					put(i, v, "audit ("+a.Source+"): "+c.name, UnitCount, val)
				}
			}
			for _, rc := range j.Recovery {
				if rc.Variant != v {
					continue
				}
				p := "fault " + rc.FaultID + ": "
				put(i, v, p+"time to detect", UnitSeconds, secs(rc.TimeToDetect))
				// A signal the fault left in its band has no recovery
				// time: no value for that run (the runs column shows it).
				if slices.Contains(rc.Touched, journal.SignalSuccess) {
					put(i, v, p+"success recovered", UnitSeconds, secs(rc.SuccessRecovered))
				}
				if slices.Contains(rc.Touched, journal.SignalP99) {
					put(i, v, p+"latency recovered", UnitSeconds, secs(rc.P99Recovered))
				}
				if slices.Contains(rc.Touched, journal.SignalLag) {
					put(i, v, p+"lag recovered", UnitSeconds, secs(rc.LagRecovered))
				}
				if slices.Contains(rc.Touched, journal.SignalView) {
					put(i, v, p+"view converged", UnitSeconds, secs(rc.ViewConverged))
				}
				put(i, v, p+"failed during fault", UnitCount, num(float64(rc.FailedDuringFault)))
			}
			for _, ce := range j.CatalogEdits {
				for _, cv := range ce.Variants {
					if cv.Variant != v {
						continue
					}
					p := "catalog edit " + ce.ID + ": "
					put(i, v, p+"convergence after the edit", UnitSeconds, secs(cv.AfterEdit))
					put(i, v, p+"convergence after the heal", UnitSeconds, secs(cv.AfterHeal))
					put(i, v, p+"refused (owed)", UnitCount, num(float64(cv.Refused-cv.RefusedLate)))
					put(i, v, p+"refused, not owed", UnitCount, num(float64(cv.RefusedLate)))
					put(i, v, p+"failed", UnitCount, num(float64(cv.Failed)))
					put(i, v, p+"ambiguous", UnitCount, num(float64(cv.Ambiguous)))
				}
			}
		}
	}
	for _, k := range order {
		f := byKey[k]
		var vals []float64
		for _, v := range f.Values {
			if v != nil {
				vals = append(vals, *v)
			}
		}
		f.Measured = len(vals)
		if len(vals) > 0 {
			slices.Sort(vals)
			m := vals[len(vals)/2]
			if len(vals)%2 == 0 {
				m = (vals[len(vals)/2-1] + vals[len(vals)/2]) / 2
			}
			f.Median, f.Min, f.Max = num(m), num(vals[0]), num(vals[len(vals)-1])
		}
		r.Figures = append(r.Figures, *f)
	}
	return r
}

// format writes a value of the figure's unit for people.
func (f Figure) format(v *float64) string {
	if v == nil {
		return "—"
	}
	switch f.Unit {
	case UnitRatio:
		return pct(*v)
	case UnitSeconds:
		return fmtDuration(time.Duration(*v * float64(time.Second)))
	}
	return fmt.Sprintf("%g", *v)
}

// Median and Range for people: "12.3 s", "10 s – 14 s".
func (f Figure) MedianText() string { return f.format(f.Median) }

func (f Figure) RangeText() string {
	if f.Min == nil {
		return "—"
	}
	if *f.Min == *f.Max {
		return f.format(f.Min)
	}
	return f.format(f.Min) + " – " + f.format(f.Max)
}

// WriteMarkdown writes the summary as a Markdown table (also readable in a
// terminal).
func (r Repeats) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s — %d runs\n\n", r.Title, len(r.Journals))
	fmt.Fprintf(&b, "Median and range (min – max) of each figure over the runs; a figure measured in fewer runs says in how many (a signal the fault left untouched or that never recovered within the run, a source that could not be read). Exact client figures from the load generator's ledger; journals:\n\n")
	for _, j := range r.Journals {
		fmt.Fprintf(&b, "- %s\n", j)
	}
	b.WriteString("\n| variant | hypothesis held |\n|---|---|\n")
	for _, v := range r.Variants {
		fmt.Fprintf(&b, "| %s | %d of %d runs |\n", v, r.Held[v], len(r.Journals))
	}
	b.WriteString("\n| variant | figure | median | range | runs |\n|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d/%d |\n", f.Variant, f.Name, f.MedianText(), f.RangeText(), f.Measured, len(f.Values))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// DefaultRepeatsDir is where the summary of a series goes by default: a
// directory beside the first journal (a .json file there would pass for a
// journal).
func DefaultRepeatsDir(first string, runs int) string {
	return filepath.Join(filepath.Dir(first), fmt.Sprintf("%s.repeat-%d", journalName(first), runs))
}

// WriteRepeatFiles writes the summary into dir: summary.json and
// summary.md; it returns their paths.
func WriteRepeatFiles(r Repeats, dir string) (jsonPath, mdPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	jsonPath, mdPath = filepath.Join(dir, "summary.json"), filepath.Join(dir, "summary.md")
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return "", "", err
	}
	var md strings.Builder
	if err := r.WriteMarkdown(&md); err != nil {
		return "", "", err
	}
	return jsonPath, mdPath, os.WriteFile(mdPath, []byte(md.String()), 0o644)
}

// RepeatFiles reads journals of one experiment and writes their summary
// into dir (DefaultRepeatsDir when empty).
func RepeatFiles(paths []string, dir string) (Repeats, string, string, error) {
	js := make([]journal.Journal, 0, len(paths))
	for _, p := range paths {
		j, err := journal.Read(p)
		if err != nil {
			return Repeats{}, "", "", err
		}
		if len(js) > 0 && j.Title != js[0].Title {
			return Repeats{}, "", "", fmt.Errorf("%s: %q is another experiment than %s (%q): repeats summarize runs of one experiment", p, j.Title, paths[0], js[0].Title)
		}
		js = append(js, j)
	}
	if dir == "" {
		dir = DefaultRepeatsDir(paths[0], len(paths))
	}
	r := SummarizeRepeats(paths, js)
	jp, mp, err := WriteRepeatFiles(r, dir)
	return r, jp, mp, err
}
