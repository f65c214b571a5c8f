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
	printCatalogEdits(w, j)

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
	for _, n := range vt.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
	if j.Error != "" {
		fmt.Fprintf(w, "\nNote: %s\n", j.Error)
	}
	if path != "" {
		fmt.Fprintf(w, "\nJournal: %s\n", path)
	}
}

// printCatalogEdits shows how each variant answered the ratings of a movie
// added during the run.
func printCatalogEdits(w io.Writer, j journal.Journal) {
	for _, c := range j.CatalogEdits {
		fmt.Fprintf(w, "\nCatalog edit %s: movie %d %q", c.ID, c.MovieID, c.Title)
		if !c.AddedAt.IsZero() {
			fmt.Fprintf(w, " added at +%s", offset(c.AddedAt, j.Started))
		}
		fmt.Fprintf(w, "; a refusal (422) is owed until the variant answers one with a 2xx, at most until +%s\n", c.RefuseUntil)
		if c.Error != "" {
			fmt.Fprintf(w, "  (%s)\n", c.Error)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  FIGURE")
		for _, v := range c.Variants {
			fmt.Fprintf(tw, "\t%s", strings.ToUpper(v.Variant))
		}
		fmt.Fprintln(tw)
		for _, row := range c.Figures() {
			fmt.Fprintf(tw, "  %s\n", strings.Join(row, "\t"))
		}
		tw.Flush()
	}
}
