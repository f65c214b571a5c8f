package chaos

import (
	"fmt"
	"io"
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
	vt := j.VerdictTable() // the report renders the same table
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  PHASE\tPROBE\tTOLERANCE")
	for _, v := range vt.Variants {
		fmt.Fprintf(tw, "\t%s", strings.ToUpper(v))
	}
	fmt.Fprintln(tw)
	for _, r := range vt.Rows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.Phase, r.Probe, r.Tolerance, strings.Join(r.Cells, "\t"))
	}
	fmt.Fprintf(tw, "  VERDICT\t\t\t%s\n", strings.Join(vt.Verdict, "\t"))
	tw.Flush()
	if j.Error != "" {
		fmt.Fprintf(w, "\nNote: %s\n", j.Error)
	}
	if path != "" {
		fmt.Fprintf(w, "\nJournal: %s\n", path)
	}
}
