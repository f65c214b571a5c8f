package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/supervisor"
)

func init() { benchCommands = append(benchCommands, newBenchPostCmd) }

// newBenchPostCmd finds the highest POST rate a running variant sustains
// under a p99 bound, with the same engine and ledger as `lab load`.
func newBenchPostCmd(g *globals) *cobra.Command {
	var (
		variant string
		maxP99  time.Duration
		step    time.Duration
		rates   []string
	)
	cmd := &cobra.Command{
		Use:   "post",
		Short: "Find the highest POST /api/ratings rate a running variant sustains under a p99 bound",
		Long: `Runs constant-rate steps of rating POSTs (open model, like 'lab load') against
the running lab's webserver of one variant, at increasing rates, until a step is
not held: every request sent and acknowledged, achieved rate within 1 %, and p99
below --max-p99. The generator shares this machine's CPU with the lab, so the
figure is for the whole machine. Ratings are real: they stay in the lab's state.`,
		Example: `  lab bench post --variant rpc --max-p99 100ms
  lab bench post --variant stream --max-p99 50ms --rates 200,500,1000,2000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := supervisor.ReadState(g.dir())
			if err != nil {
				return fmt.Errorf("the lab must be up ('lab up'): %w", err)
			}
			ports := g.ports()
			ports.Base = st.PortBase
			var target string
			switch variant {
			case "rpc":
				target = "http://" + ports.WebserverRPC()
			case "stream":
				target = "http://" + ports.WebserverStream()
			default:
				return fmt.Errorf("--variant %q: must be rpc or stream", variant)
			}
			if maxP99 <= 0 || step <= 0 || step > time.Minute {
				return fmt.Errorf("--max-p99 must be > 0 and --step in (0, 1m]")
			}
			cfg := load.BenchConfig{Target: target, Step: step, MaxP99: maxP99}
			for _, r := range rates {
				v, err := load.ParseRate(r)
				if err != nil {
					return fmt.Errorf("--rates: %w", err)
				}
				cfg.Rates = append(cfg.Rates, v)
			}
			steps, err := load.BenchMaxRate(cmd.Context(), cfg, func(s load.BenchStep) {
				verdict := "held"
				if !s.Held {
					verdict = "NOT held"
				}
				fmt.Fprintf(g.stderr, "%8.0f/s: sent %d/%d, achieved %.1f/s, errors %d, p99 %.2f ms — %s\n",
					s.Rate, s.Sent, s.Scheduled, s.Achieved, s.Errors, s.P99Ms, verdict)
			})
			if err != nil {
				return err
			}
			best := 0.0
			for _, s := range steps {
				if s.Held {
					best = s.Rate
				}
			}
			fmt.Fprintf(g.stdout, "%s: highest POST rate held at p99 < %v: %.0f/s\n", variant, maxP99, best)
			return nil
		},
	}
	cmd.Flags().StringVar(&variant, "variant", "rpc", "variant to load: rpc or stream")
	cmd.Flags().DurationVar(&maxP99, "max-p99", 100*time.Millisecond, "p99 latency bound a step must meet")
	cmd.Flags().DurationVar(&step, "step", 10*time.Second, "length of each rate step")
	cmd.Flags().StringSliceVar(&rates, "rates", []string{"100", "200", "400", "600", "800", "1000", "1500", "2000", "3000", "4000"}, "rates to try, in order")
	return cmd
}
