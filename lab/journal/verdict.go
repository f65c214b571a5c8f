package journal

import (
	"fmt"
	"slices"
	"strings"
)

// VerdictTable is a run's steady-state hypothesis as one table: a row per
// probe of each phase, a cell per variant, and the verdict per variant.
// `lab chaos run` prints it and the report renders it, both from here, so
// the terminal and the report agree line for line.
type VerdictTable struct {
	Variants []string
	Rows     []VerdictRow
	// Verdict per variant, in Variants order: VerdictHeld or VerdictNotHeld,
	// followed by ControlNote for a variant that ran as a control.
	Verdict []string
	// Notes explain verdicts that cannot be read at face value (ControlNotes).
	Notes []string
}

// VerdictRow is one probe in one phase.
type VerdictRow struct {
	Phase, Probe, Tolerance string
	// Cells per variant: "✓ observed", "✗ observed", or NotApplicable.
	Cells []string
}

// Words of the verdict table.
const (
	VerdictHeld    = "✓ held"
	VerdictNotHeld = "✗ did not hold"
	NotApplicable  = "n/a"
)

// VerdictTable builds the table. Rows come in phase order; within a phase
// the variants' probe lists are merged so a probe one variant lacks keeps
// its place.
func (j Journal) VerdictTable() VerdictTable {
	t := VerdictTable{Variants: j.Variants}
	type key struct{ phase, probe, tol string }
	cells := map[key]map[string]string{}
	for _, phase := range []string{PhaseBefore, PhaseDuring, PhaseAfter} {
		var order []key
		for _, ph := range j.Phases {
			if ph.Name != phase {
				continue
			}
			at := 0
			for _, pr := range ph.Probes {
				k := key{ph.Name, pr.Name, pr.Tolerance}
				if cells[k] == nil {
					cells[k] = map[string]string{}
					order = slices.Insert(order, at, k)
				}
				at = slices.Index(order, k) + 1
				mark := "✓"
				if !pr.OK {
					mark = "✗"
				}
				cells[k][ph.Variant] = mark + " " + pr.Observed
			}
		}
		for _, k := range order {
			row := VerdictRow{Phase: k.phase, Probe: k.probe, Tolerance: k.tol}
			for _, v := range j.Variants {
				c := cells[k][v]
				if c == "" {
					c = NotApplicable
				}
				row.Cells = append(row.Cells, c)
			}
			t.Rows = append(t.Rows, row)
		}
	}
	for _, v := range j.Variants {
		verdict := VerdictNotHeld
		if j.Verdict[v] {
			verdict = VerdictHeld
		}
		if j.Control(v) {
			verdict += " " + ControlNote
		}
		t.Verdict = append(t.Verdict, verdict)
	}
	t.Notes = j.ControlNotes()
	return t
}

// ControlNotes say, for each variant that ran as a control and did not
// hold, that no fault of the run failed it, so something besides the
// faults weighed on the comparison — with how busy the machine every part
// shares was (SeriesMachineCPUBusy): on a small machine a control fails for
// want of CPU more often than for anything else, and the figure lets a
// reader see whether that was so.
func (j Journal) ControlNotes() []string {
	var notes []string
	for _, v := range j.Variants {
		if j.Verdict[v] || !j.Control(v) {
			continue
		}
		note := fmt.Sprintf("%s ran as the control (no fault applied) and did not hold: no fault of this run failed it, so the run compares the variants under something else as well.", v)
		var sum, peak float64
		n := 0
		for _, smp := range j.Samples {
			if busy, ok := smp.Get(SeriesMachineCPUBusy); ok && smp.Variant == v {
				sum += busy
				peak = max(peak, busy)
				n++
			}
		}
		if n > 0 {
			note += fmt.Sprintf(" The machine's CPUs, which every part shares, were %.0f %% busy on average over the run and %.0f %% in its busiest second (/proc/stat; the machine CPU chart).", 100*sum/float64(n), 100*peak)
		}
		notes = append(notes, note)
	}
	return notes
}

// ControlNote follows the verdict of a variant that ran as a control.
const ControlNote = "(control: no fault applied)"

// NoEquivalent starts the Error of a fault that was not applied to a
// variant because the fault has no equivalent in it.
const NoEquivalent = "no equivalent in this variant: "

// Control reports whether variant v ran as a control: the run had faults
// for it and none had an equivalent in it, so its verdict is about the
// load alone, not about weathering the fault.
func (j Journal) Control(v string) bool {
	faults := 0
	for _, f := range j.Faults {
		if f.Variant != v {
			continue
		}
		if !f.InjectedAt.IsZero() || !strings.HasPrefix(f.Error, NoEquivalent) {
			return false
		}
		faults++
	}
	return faults > 0
}
