package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/report"
)

func newReportCmd(g *globals) *cobra.Command {
	var out string
	var compare, repeats bool
	cmd := &cobra.Command{
		Use:   "report [JOURNAL] | --compare JOURNAL_A JOURNAL_B | --repeats JOURNAL...",
		Short: "Render a run's journal as a Markdown report and one self-contained HTML page",
		Long: `Renders an experiment journal (from lab chaos run) into a directory holding
index.html — one page, charts embedded, works offline — and report.md with
its charts in charts/. For each variant side by side: request rate, success
rate, p50/p99 latency, breaker state, consumer lag, view freshness and the
acknowledged ratings not yet visible, over time with fault windows shaded;
then the verdict, the fault timeline, recovery metrics, the steady-state
probes and the audit. docs/report.md explains how to read it.

The report comes from the journal alone (no Prometheus, no running lab), so
old runs can be re-rendered; the same journal always renders to the same bytes.
--compare sets two runs side by side, e.g. breakers on vs off.
--repeats summarizes runs of one experiment (what 'lab chaos run --repeat N'
writes): per variant and figure, the median and range (min – max) over the
runs, in summary.md and summary.json.

Without a JOURNAL it renders the newest journal in <dir>/journals. The report
goes beside the journal (run.json → run.report/) unless --out says otherwise.`,
		Example: `  lab report .lab/journals/kill-ratings.json
  lab report .lab/journals/kill-ratings.json --out /tmp/kill-report
  lab report --compare .lab/journals/cut-breakers-on.json .lab/journals/cut-breakers-off.json
  lab report --repeats .lab/journals/ratings_crash-*.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var res report.Output
			var err error
			switch {
			case repeats:
				if compare {
					return errors.New("give --compare or --repeats, not both")
				}
				if len(args) < 2 {
					return fmt.Errorf("--repeats: give the journals of two runs or more, got %d", len(args))
				}
				r, jp, mp, err := report.RepeatFiles(args, out)
				if err != nil {
					return err
				}
				_ = r.WriteMarkdown(g.stdout)
				fmt.Fprintf(g.stdout, "\nsummary: %s\n         %s\n", mp, jp)
				return nil
			case len(args) > 2:
				return fmt.Errorf("%d journals: add --repeats to summarize runs of one experiment", len(args))
			case compare:
				if len(args) != 2 {
					return fmt.Errorf("--compare: give two journals, got %d", len(args))
				}
				dir := out
				if dir == "" {
					dir = report.DefaultCompareDir(args[0], args[1])
				}
				res, err = report.CompareFiles(args[0], args[1], dir)
			case len(args) == 2:
				return errors.New("two journals: add --compare to set them side by side")
			default:
				path := ""
				if len(args) == 1 {
					path = args[0]
				} else if path, err = newestFile(g.dir().Journals(), ".json"); err != nil {
					return fmt.Errorf("no JOURNAL given and %w", err)
				}
				dir := out
				if dir == "" {
					dir = report.DefaultDir(path)
				}
				res, err = report.RenderFile(path, dir)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "report: %s\n        %s (%d charts in %s/charts)\n", res.HTML, res.Markdown, len(res.Charts), res.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "`dir`ectory to write the report into (default: beside the journal)")
	cmd.Flags().BoolVar(&compare, "compare", false, "set two journals side by side")
	cmd.Flags().BoolVar(&repeats, "repeats", false, "summarize runs of one experiment: median and range of every figure")
	return cmd
}
