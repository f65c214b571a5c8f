package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/supervisor"
)

// statusReport is `lab status --json`. Up is true only for a running lab,
// one `lab up` handed over with every part started: a script that waits for
// the lab asks for up, not for an answering supervisor. Phase says where a
// lab that is not up is.
type statusReport struct {
	Up     bool                    `json:"up"`
	Phase  string                  `json:"phase"` // running, starting, stopping or down
	Dir    string                  `json:"dir"`
	Lab    *supervisor.LabInfo     `json:"lab,omitempty"`
	Parts  []supervisor.PartStatus `json:"parts,omitempty"`
	Extras map[string]any          `json:"extras,omitempty"`
}

// phaseDown is the phase `lab status --json` reports when no supervisor
// answers.
const phaseDown = "down"

// statusSections are the sections `lab status` prints after the parts and
// edges, in this order; each adds its lines and its key to the JSON extras.
var statusSections = []func(g *globals, c *supervisor.Client, r *statusReport) []string{
	faultStatus,   // active faults (chaos.go)
	forkStatus,    // replay forks (replay.go)
	breakerStatus, // breaker settings (status_breakers.go)
	kafkaStatus,   // the Kafka platform and the last restores (status_kafka.go)
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every part's pid, address, health and uptime",
		Long: `Show the lab's parts: pid, address, health (healthy, starting, unhealthy,
paused, stopped, exited, failed; pending while the lab starts) and uptime, then the edge proxies and anything active
(faults, breaker settings). --json prints the same for scripts: "up" is true
only once the lab is running (every part started and handed over by 'lab up');
"phase" is running, starting, stopping or down.`,
		Example: `  lab status
  lab status --json | jq '.parts[] | select(.health != "healthy")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := g.dir()
			rep := statusReport{Dir: string(dir), Phase: phaseDown}
			st, err := supervisor.ReadState(dir)
			if err != nil && !errors.Is(err, supervisor.ErrNoState) {
				return err
			}
			var c *supervisor.Client
			answering := false
			if err == nil {
				c = supervisor.NewClient(st.Control)
				pctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
				ps, perr := c.Parts(pctx)
				cancel()
				if perr == nil {
					answering, rep.Parts = true, ps
					rep.Phase = string(st.Current())
					if info, ierr := c.Lab(cmd.Context()); ierr == nil {
						rep.Lab = &info
						// A supervisor reports no phase only as it exits.
						rep.Phase = string(cmp.Or(info.Phase, supervisor.PhaseStopping))
					}
					rep.Up = rep.Phase == string(supervisor.PhaseRunning)
				} else if live := liveProcesses(dir, st); len(live) > 0 {
					return unresponsiveLabError(dir, st, live, perr)
				}
			}
			var extra []string
			if answering {
				rep.Extras = map[string]any{}
				for _, sec := range statusSections {
					extra = append(extra, sec(g, c, &rep)...)
				}
			}
			if asJSON {
				return printJSON(g.stdout, rep)
			}
			if !answering {
				fmt.Fprintf(g.stdout, "The lab in %s is not running. Start it with 'lab up' (or 'make lab up').\n", dir)
				return nil
			}
			pid, base := st.PID, st.PortBase // lab.json's, when the supervisor's own answer is missing
			if rep.Lab != nil {
				pid, base = rep.Lab.PID, rep.Lab.PortBase
			}
			fmt.Fprintf(g.stdout, "Lab in %s (supervisor pid %d, ports from %d)\n", dir, pid, base)
			switch supervisor.Phase(rep.Phase) {
			case supervisor.PhaseStarting:
				fmt.Fprintln(g.stdout, "The lab is starting: 'lab up' has not seen every part healthy yet (if that 'lab up' ends first, the lab stops). 'lab down' stops it now.")
			case supervisor.PhaseStopping:
				fmt.Fprintln(g.stdout, "The lab is stopping.")
			}
			fmt.Fprintln(g.stdout)
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PART\tVARIANT\tPID\tADDRESS\tHEALTH\tUPTIME\tNOTE")
			for _, p := range rep.Parts {
				pid := "-"
				if p.PID > 0 {
					pid = fmt.Sprint(p.PID)
				}
				up := p.Uptime
				if up == "" {
					up = "-"
				}
				note := p.Error
				if note == "" && p.Warning != "" {
					note = "WARNING: " + p.Warning
				}
				if len(note) > 60 && p.Warning == "" {
					note = note[:57] + "..."
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Variant, pid, p.Addr, p.Health, up, note)
			}
			tw.Flush()
			fmt.Fprintf(g.stdout, "\nAdmin listeners (loopback only; a part's port + 64): /healthz, /metrics, /debug/pprof/, /admin/ — e.g. http://%s/debug/pprof/\n", g.ports().AdminWebserverRPC())
			if rep.Lab != nil && len(rep.Lab.Edges) > 0 {
				fmt.Fprintln(g.stdout, "\nEdge proxies (Toxiproxy):")
				tw = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				for _, e := range rep.Lab.Edges {
					fmt.Fprintf(tw, "  %s\t%s -> %s\n", e.Name, e.Listen, e.Upstream)
				}
				tw.Flush()
			}
			for _, l := range extra {
				fmt.Fprintln(g.stdout, l)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}
