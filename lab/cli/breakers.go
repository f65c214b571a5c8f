package cli

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/services/lib/breaker"
)

// newBreakersCmd is `lab breakers`: the RPC variant's breakers and retries,
// switched at runtime through the control API.
func newBreakersCmd(g *globals) *cobra.Command {
	var retries int
	cmd := &cobra.Command{
		Use:   "breakers [on|off]",
		Short: "Switch the RPC variant's circuit breakers (and retries) at runtime, without a restart",
		Long: `Switches the circuit breakers of every RPC caller (webserver-rpc -> ratings-rpc,
ratings-rpc -> movies-rpc) on or off, and sets their retries, on the running lab:
the lab's control API passes the change to each part's admin listener at once
(breakers start afresh, closed), and parts restarted later keep it. No
'lab down'/'lab up' in between, so two runs of an experiment can compare both
settings on the same lab. Without arguments it only shows the settings
('lab status' shows them too).`,
		Example: `  lab breakers off              # the naked cascade
  lab breakers on --retries 0   # back to the defaults
  lab breakers --retries 3      # a retry storm waiting to happen`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"on", "off"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var req breaker.Resilience
			if len(args) == 1 {
				req.Breakers = &args[0]
			}
			if cmd.Flags().Changed("retries") {
				req.Retries = &retries
			}
			if err := req.Validate(); err != nil {
				return err
			}
			c, _, _, err := labClients(g)
			if err != nil {
				return err
			}
			if req.Breakers == nil && req.Retries == nil {
				ps, err := c.Parts(cmd.Context())
				if err != nil {
					return fmt.Errorf("the lab's control API: %w", err)
				}
				for _, l := range breakerStatus(g, c, &statusReport{Parts: ps, Extras: map[string]any{}}) {
					fmt.Fprintln(g.stdout, l)
				}
				return nil
			}
			out, err := c.SetResilience(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("the lab's control API: %w", err)
			}
			names := make([]string, 0, len(out))
			for n := range out {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				b, _ := json.Marshal(out[n])
				fmt.Fprintf(g.stdout, "%s: %s\n", n, b)
			}
			fmt.Fprintln(g.stdout, "Changed at runtime; 'lab status' shows every breaker per operation.")
			return nil
		},
	}
	cmd.Flags().IntVar(&retries, "retries", 0, fmt.Sprintf("retries after a failed attempt, 0..%d (full-jitter exponential backoff)", breaker.MaxRetries))
	return cmd
}
