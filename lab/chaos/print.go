package chaos

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ratingslab/lab/lab/journal"
)

// PrintVerdict writes the fault timeline as applied and the verdict table:
// every probe of every phase, one column per variant.
func PrintVerdict(w io.Writer, j journal.Journal, path string) {
	fmt.Fprintf(w, "\nFaults as applied (offsets from the start of the load):\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range j.Faults {
		when := "not applied"
		switch {
		case !f.InjectedAt.IsZero() && !f.HealedAt.IsZero() && f.PlannedFor > 0:
			when = fmt.Sprintf("+%s → +%s", offset(f.InjectedAt, j.Started), offset(f.HealedAt, j.Started))
		case !f.InjectedAt.IsZero() && f.PlannedFor == 0:
			when = fmt.Sprintf("+%s (once)", offset(f.InjectedAt, j.Started))
		case !f.InjectedAt.IsZero():
			when = fmt.Sprintf("+%s → not healed", offset(f.InjectedAt, j.Started))
		}
		what := strings.Join(f.Targets, ", ")
		if f.Error != "" {
			what = joinNonEmpty(" ", what, "("+f.Error+")")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.ID, f.Fault, f.Variant, when, what)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nSteady-state hypothesis: %s\n", j.Title)
	type row struct{ phase, probe, tol string }
	var rows []row
	cells := map[row]map[string]string{}
	// Rows in phase order; within a phase, the variants' probe lists are
	// merged so a probe one variant lacks keeps its place.
	for _, phase := range []string{journal.PhaseBefore, journal.PhaseDuring, journal.PhaseAfter} {
		var order []row
		for _, ph := range j.Phases {
			if ph.Name != phase {
				continue
			}
			at := 0
			for _, pr := range ph.Probes {
				k := row{ph.Name, pr.Name, pr.Tolerance}
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
		rows = append(rows, order...)
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  PHASE\tPROBE\tTOLERANCE")
	for _, v := range j.Variants {
		fmt.Fprintf(tw, "\t%s", strings.ToUpper(v))
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\t%s", r.phase, r.probe, r.tol)
		for _, v := range j.Variants {
			c := cells[r][v]
			if c == "" {
				c = "n/a"
			}
			fmt.Fprintf(tw, "\t%s", c)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "  VERDICT\t\t")
	for _, v := range j.Variants {
		if j.Verdict[v] {
			fmt.Fprintf(tw, "\t✓ held")
		} else {
			fmt.Fprintf(tw, "\t✗ did not hold")
		}
	}
	fmt.Fprintln(tw)
	tw.Flush()
	if j.Error != "" {
		fmt.Fprintf(w, "\nNote: %s\n", j.Error)
	}
	if path != "" {
		fmt.Fprintf(w, "\nJournal: %s\n", path)
	}
}
