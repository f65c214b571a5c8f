package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// errAuditFailed makes `lab audit` exit non-zero when it finds something,
// so scripts can gate on it; the table has already said what.
var errAuditFailed = errors.New("audit: the ledger cannot explain every variant's state (see above)")

type auditFlags struct {
	ledger   string
	baseline string
	stored   bool
	save     bool
	asJSON   bool
}

func newAuditCmd(g *globals) *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit [JOURNAL]",
		Short: "Check each variant's state against the load ledger: lost, duplicate, phantom writes",
		Long: `Compares every variant's state — per movie count and sum, read through the
public API (GET /api/movies) and straight from the variant's own store
(ratings-rpc's SQLite, the ratings-stream replicas' SQLite) — with the ledger
of the ratings the load generator sent:

  lost        acknowledged ratings missing
  duplicates  ratings applied more than once
  phantoms    ratings applied although the client saw a failure (5xx, 4xx)
  ambiguous   ratings that got no answer (timeouts), applied or not

The arithmetic is exact, in tenths of a point: a movie's count must lie
between baseline + acknowledged and baseline + acknowledged + ambiguous, and
its sum must be one that some choice of the ambiguous ratings gives.
ratings-rpc also keeps every applied request id, so its store is checked by
request id too. Run it after the load has drained (the stream variant
applies asynchronously).

With a JOURNAL (from lab chaos run) it uses the journal's ledger and the
baseline taken at the start of the run; --stored prints the audit recorded in
the journal without touching the lab; --save writes a fresh audit back into it.
Without one it audits --ledger (default: the newest ledger) against --baseline
(a file from 'lab audit snapshot'), or against an empty start.

Exits non-zero when any variant's state is not explained by the ledger.`,
		Example: `  lab audit .lab/journals/kill-ratings.json
  lab audit .lab/journals/kill-ratings.json --stored
  lab audit snapshot --out before.json && lab load --scenario smoke && lab audit --baseline before.json
  lab audit --ledger .lab/ledgers/run-1.jsonl --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAudit(cmd.Context(), g, f, args)
		},
	}
	cmd.Flags().StringVar(&f.ledger, "ledger", "", "ledger `file` to audit (default: the journal's, or the newest in <dir>/ledgers)")
	cmd.Flags().StringVar(&f.baseline, "baseline", "", "`file` of states before the run, written by 'lab audit snapshot' (default: the journal's, or empty)")
	cmd.Flags().BoolVar(&f.stored, "stored", false, "print the audit recorded in JOURNAL; do not read the lab")
	cmd.Flags().BoolVar(&f.save, "save", false, "write the fresh audit (and the states it read) into JOURNAL")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the results as JSON")
	cmd.AddCommand(newAuditSnapshotCmd(g))
	return cmd
}

func runAudit(ctx context.Context, g *globals, f auditFlags, args []string) error {
	var (
		j           *journal.Journal
		journalPath string
	)
	if len(args) == 1 {
		journalPath = args[0]
		jj, err := journal.Read(journalPath)
		if err != nil {
			return err
		}
		j = &jj
	}
	switch {
	case f.stored && j == nil:
		return errors.New("--stored: needs a JOURNAL to read the audit from")
	case f.save && j == nil:
		return errors.New("--save: needs a JOURNAL to write the audit into")
	case f.stored && f.save:
		return errors.New("--stored and --save: pick one (print the recorded audit, or record a fresh one)")
	}
	if f.stored {
		if len(j.Audit) == 0 {
			return fmt.Errorf("journal %s holds no audit; run 'lab audit %s' against the lab", journalPath, journalPath)
		}
		return printAudit(g.stdout, j.Audit, f.asJSON)
	}

	spec := audit.Spec{Dir: g.dir(), Client: &http.Client{Timeout: 10 * time.Second}}
	switch {
	case f.ledger != "":
		spec.Ledger = f.ledger
	case j != nil && j.Ledger != "":
		spec.Ledger = j.Ledger
	case j != nil:
		return fmt.Errorf("journal %s names no ledger; give one with --ledger", journalPath)
	default:
		newest, err := newestFile(g.dir().Ledgers(), ".jsonl")
		if err != nil {
			return fmt.Errorf("--ledger: %w (run 'lab load' first, or name a ledger file)", err)
		}
		spec.Ledger = newest
	}
	switch {
	case f.baseline != "":
		b, err := readSnapshots(f.baseline)
		if err != nil {
			return err
		}
		spec.Baseline = b
	case j != nil:
		spec.Baseline = j.Baseline
	}
	final, results, err := audit.Run(ctx, spec)
	if err != nil {
		return err
	}
	if !f.asJSON {
		fmt.Fprintf(g.stdout, "ledger %s\n\n", spec.Ledger)
	}
	if err := printAudit(g.stdout, results, f.asJSON); err != nil {
		return err
	}
	if f.save {
		j.Audit, j.Final = results, final
		if err := journal.Write(journalPath, *j); err != nil {
			return err
		}
		if !f.asJSON {
			fmt.Fprintf(g.stdout, "\nsaved into %s\n", journalPath)
		}
	}
	for _, r := range results {
		if !r.OK {
			return errAuditFailed
		}
	}
	return nil
}

// printAudit prints one line per variant and source, then every finding.
func printAudit(w io.Writer, results []audit.Result, asJSON bool) error {
	if asJSON {
		return printJSON(w, results)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "variant\tsource\tacked\trejected (unexpected)\tfailed\tambiguous\tlost\tduplicates\tphantoms\tamb. applied\tamb. not applied\tsum mismatches\tresult\t")
	for _, r := range results {
		result := "ok"
		switch {
		case !r.Checked:
			result = "NOT CHECKED"
		case !r.OK:
			result = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d (%d)\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", r.Variant, r.Source,
			r.Acknowledged, r.Rejected, r.UnexpectedRejections, r.Failed, r.Ambiguous, r.Lost, r.Duplicates, r.Phantoms,
			r.AmbiguousApplied, r.AmbiguousNotApplied, r.SumMismatches, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		prefix := r.Variant + " " + r.Source + ": "
		if r.Error != "" {
			fmt.Fprintf(w, "\n%scould not be read: %s\n", prefix, r.Error)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "\n%snote: %s\n", prefix, n)
		}
		if len(r.UnexpectedIDs) > 0 {
			fmt.Fprintf(w, "\n%s%d valid rating(s) answered 4xx (a failure of the variant): %s\n", prefix, r.UnexpectedRejections, strings.Join(r.UnexpectedIDs, " "))
		}
		if rq := r.Requests; rq != nil {
			fmt.Fprintf(w, "\n%sby request id: lost %d, phantoms %d, ambiguous applied %d of %d, altered %d\n", prefix,
				rq.Lost, rq.Phantoms, rq.AmbiguousApplied, rq.AmbiguousApplied+rq.AmbiguousNotApplied, rq.Altered)
			for _, l := range []struct {
				what string
				ids  []string
			}{{"lost", rq.LostIDs}, {"phantom", rq.PhantomIDs}, {"altered", rq.AlteredIDs}} {
				if len(l.ids) > 0 {
					fmt.Fprintf(w, "  %s: %s\n", l.what, strings.Join(l.ids, " "))
				}
			}
		}
		if len(r.Movies) > 0 {
			fmt.Fprintf(w, "\n%s%d movie(s) the ledger cannot explain:\n", prefix, len(r.Movies))
			for _, m := range r.Movies {
				fmt.Fprintf(w, "  movie %d: %s\n", m.MovieID, m.Explanation)
			}
		}
	}
	return nil
}

func newAuditSnapshotCmd(g *globals) *cobra.Command {
	var out string
	var variants, apiFlags []string
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Record every variant's state now, as the baseline of a later audit",
		Long: `Reads every variant's per-movie count and sum through its public API and from
its own store and writes them as JSON: take one before 'lab load', then give
it to 'lab audit --baseline FILE' so that ratings from before the run are not
counted as duplicates. (Experiments take this snapshot themselves.)`,
		Example: `  lab audit snapshot --out before.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ports := g.ports()
			apis := map[string]string{"rpc": "http://" + ports.WebserverRPC(), "stream": "http://" + ports.WebserverStream()}
			for _, a := range apiFlags {
				v, u, ok := strings.Cut(a, "=")
				if !ok || !strings.HasPrefix(u, "http") {
					return fmt.Errorf("--api %q: want variant=http://host:port", a)
				}
				apis[v] = u
			}
			for _, v := range variants {
				if _, ok := apis[v]; !ok {
					return fmt.Errorf("--variants: unknown variant %q (known: rpc, stream; others need --api)", v)
				}
			}
			snaps := audit.Observe(cmd.Context(), &http.Client{Timeout: 10 * time.Second}, g.dir(), variants, apis)
			for _, s := range snaps {
				if s.Error != "" {
					fmt.Fprintf(g.stderr, "warning: %s %s: %s\n", s.Variant, s.Source, s.Error)
				}
			}
			if out == "" || out == "-" {
				return printJSON(g.stdout, snaps)
			}
			var b bytes.Buffer
			if err := printJSON(&b, snaps); err != nil {
				return err
			}
			if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			fmt.Fprintf(g.stdout, "baseline of %s written to %s\n", strings.Join(variants, ", "), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "`file` to write (default: standard output)")
	cmd.Flags().StringSliceVar(&variants, "variants", slices.Clone(variantname.All), "variants to read")
	cmd.Flags().StringArrayVar(&apiFlags, "api", nil, "public API of a variant, `variant=URL` (default: the lab's webserver ports)")
	return cmd
}

// readSnapshots reads a baseline file written by `lab audit snapshot`.
func readSnapshots(path string) ([]audit.Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--baseline: %w", err)
	}
	var snaps []audit.Snapshot
	if err := json.Unmarshal(b, &snaps); err != nil {
		return nil, fmt.Errorf("--baseline %s: not a snapshot file from 'lab audit snapshot': %w", path, err)
	}
	for i, s := range snaps {
		if s.Variant == "" || (s.Source != audit.SourceAPI && s.Source != audit.SourceStore) {
			return nil, fmt.Errorf("--baseline %s: entry %d: variant %q, source %q: want a variant and source api or store", path, i, s.Variant, s.Source)
		}
	}
	return snaps, nil
}

// newestFile is the most recently modified file with the extension in dir.
func newestFile(dir, ext string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("no files in %s: %w", dir, err)
	}
	type cand struct {
		path string
		mod  time.Time
	}
	var cs []cand
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ext) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		cs = append(cs, cand{filepath.Join(dir, e.Name()), info.ModTime()})
	}
	if len(cs) == 0 {
		return "", fmt.Errorf("no *%s file in %s", ext, dir)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].mod.After(cs[j].mod) })
	return cs[0].path, nil
}
