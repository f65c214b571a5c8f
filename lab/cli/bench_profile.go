package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/bench"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/supervisor"
)

// newBenchProfileCmd saves a CPU profile of one part from its loopback
// admin listener's /debug/pprof/profile while a load runs.
func newBenchProfileCmd(g *globals) *cobra.Command {
	var (
		seconds int
		rate    float64
		out     string
	)
	cmd := &cobra.Command{
		Use:   "profile PART",
		Short: "Save a CPU profile of one part (its admin /debug/pprof/profile) while a load runs",
		Long: `Asks PART's loopback admin listener (its public port + 64) for a CPU profile
of --seconds and saves it. With --rate (the default 300/s) it loads the part's
variant with rating POSTs for the same time, so the profile shows the work of
a rating; --rate 0 profiles under whatever load you run yourself (lab load,
lab chaos run). Read it with 'go tool pprof -top FILE' (or -http=:0 for the
graph). Parts of the lab's infrastructure (broker, schema-registry) are
loaded through the stream variant; PART "supervisor" profiles the edge proxies
(Toxiproxy, in the supervisor), loaded through the rpc variant.`,
		Example: `  lab bench profile ratings-rpc --seconds 20
  lab bench profile broker --rate 1000 --out broker.pprof
  lab bench profile webserver-stream --rate 0 --seconds 30   # during your own load
  lab bench profile supervisor --rate 1500   # the edge proxies, loaded through the rpc variant`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if seconds < 1 || seconds > 600 {
				return fmt.Errorf("--seconds %d: must be in [1, 600]", seconds)
			}
			if rate < 0 || rate > 50000 {
				return fmt.Errorf("--rate %v: must be in [0, 50000] req/s", rate)
			}
			c, _, st, err := labClients(g)
			if err != nil {
				return err
			}
			ps, err := c.Parts(ctx)
			if err != nil {
				return err
			}
			// The supervisor (the edge proxies of both variants) serves
			// pprof on its loopback control API; it is loaded through rpc.
			ps = append(ps, supervisor.PartStatus{Name: "supervisor", Variant: "rpc", PID: st.PID,
				Admin: strings.TrimPrefix(st.Control, "http://"), Health: supervisor.HealthOK})
			i := slices.IndexFunc(ps, func(p supervisor.PartStatus) bool { return p.Name == args[0] })
			if i < 0 {
				var names []string
				for _, p := range ps {
					names = append(names, p.Name)
				}
				return fmt.Errorf("no part %q in this lab; parts: %v", args[0], names)
			}
			part := ps[i]
			if part.Admin == "" {
				return fmt.Errorf("%s has no admin listener of the lab (not a Go part of this binary: Prometheus, a Kafka node, Apicurio): profile it with its own tools", part.Name)
			}
			if part.Health != supervisor.HealthOK {
				return fmt.Errorf("%s is %s: profile a healthy part ('lab status')", part.Name, part.Health)
			}
			if out == "" {
				dir := g.dir().Path("profiles")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				out = filepath.Join(dir, fmt.Sprintf("%s-%s.pprof", part.Name, time.Now().UTC().Format("20060102T150405Z")))
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			keep := false
			defer func() {
				f.Close()
				if !keep {
					os.Remove(out)
				}
			}()

			loadDone := make(chan string, 1)
			lctx, stopLoad := context.WithCancel(ctx)
			defer stopLoad()
			if rate > 0 {
				variant := part.Variant
				if variant == "lab" {
					variant = "stream"
				}
				web := slices.IndexFunc(ps, func(p supervisor.PartStatus) bool { return p.Name == "webserver-"+variant })
				if web < 0 {
					return fmt.Errorf("no webserver-%s in this lab to load %s through; use --rate 0 and your own load", variant, part.Name)
				}
				tmp, err := os.MkdirTemp("", "lab-bench-profile")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				runID := load.NewRunID("bench-profile", time.Now())
				// The load covers the whole profile: a second on each side.
				go func() {
					v, _, err := load.RunRatingsStep(lctx, runID, load.Target{Variant: variant, BaseURL: "http://" + ps[web].Addr},
						rate, time.Duration(seconds+2)*time.Second, filepath.Join(tmp, runID+".jsonl"))
					if err != nil {
						loadDone <- "load: " + err.Error()
						return
					}
					loadDone <- fmt.Sprintf("load on %s: %d/%d acknowledged, achieved %.1f/s, p99 %.1f ms",
						variant, v.Outcomes[load.Acknowledged], v.Sent, v.AchievedRate, v.Latency.P99)
				}()
				fmt.Fprintf(g.stderr, "loading %s with %.0f ratings/s through webserver-%s\n", variant, rate, variant)
				if err := bench.Sleep(ctx, time.Second); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.stderr, "profiling %s (pid %d) for %ds from http://%s/debug/pprof/profile (load average %.2f)\n",
				part.Name, part.PID, seconds, part.Admin, bench.LoadAverage())
			pctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+30)*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+part.Admin+"/debug/pprof/profile?seconds="+strconv.Itoa(seconds), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("%s's admin listener: %w", part.Name, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
				return fmt.Errorf("%s's /debug/pprof/profile answered %s: %s", part.Name, resp.Status, b)
			}
			n, err := io.Copy(f, resp.Body)
			if err != nil {
				return fmt.Errorf("reading the profile: %w", err)
			}
			if err := f.Sync(); err != nil {
				return err
			}
			keep = true
			if rate > 0 {
				select {
				case msg := <-loadDone:
					fmt.Fprintln(g.stderr, msg)
				case <-time.After(15 * time.Second):
					stopLoad()
					fmt.Fprintln(g.stderr, <-loadDone)
				}
			}
			fmt.Fprintf(g.stdout, "CPU profile of %s (%d s, %d bytes, load average %.2f): %s\nread it: go tool pprof -top %s\n",
				part.Name, seconds, n, bench.LoadAverage(), out, out)
			return nil
		},
	}
	cmd.Flags().IntVar(&seconds, "seconds", 15, "profile length")
	cmd.Flags().Float64Var(&rate, "rate", 300, "rating POSTs per second sent through the part's variant while profiling (0: none, profile under your own load)")
	cmd.Flags().StringVar(&out, "out", "", "profile file to create (default <dir>/profiles/PART-TIME.pprof)")
	return cmd
}
