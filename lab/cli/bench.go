package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/bench"
	"github.com/ratingslab/lab/lab/supervisor"
)

func newBenchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the lab: startup time, idle memory, load-generator ceiling, POST rate under a p99 bound",
		Long: `Measurements of the lab that are not Go benchmarks. Results go to stdout in a
form you can paste into docs/benchmarks.md. Go benchmarks of single components
run with 'go test -bench' (see docs/benchmarks.md for the commands).`,
	}
	cmd.AddCommand(
		newBenchUpCmd(g), newBenchLoadCmd(g),
		newBenchPostCmd(g), newBenchHopCmd(g), // bench_post.go
		newBenchProfileCmd(g), // bench_profile.go
	)
	return cmd
}

func newBenchUpCmd(g *globals) *cobra.Command {
	var runs int
	var settle []time.Duration
	var kafkaPlatform string
	var withProm, sameDir bool
	cmd := &cobra.Command{
		Use:         "up",
		Annotations: map[string]string{annotPorts: portsOwn},
		Short:       "Time 'lab up' to all-healthy and measure the whole lab's idle RSS",
		Long: `Starts and stops a fresh lab RUNS times in a temporary directory (its own
port block from --port-base), timing 'lab up' until every part is healthy, and
after the last start waits --settle, then sums the resident memory (VmRSS) of the
supervisor and every part. Per process it prints RSS, PSS (shared pages counted
once across the lab) and RSS split into anonymous memory (heap, stacks) and
file-backed pages (the binary's code and data the process touched).

--settle takes a list (5s,60s,300s): the same idle lab is measured at each
time after its last 'lab up', so you see what grows while it idles (Go heaps
fill up to their collector's goal, Prometheus' head block grows).`,
		Example: `  lab bench up --runs 5 --port-base 7900
  lab bench up --runs 10 --same-dir --prometheus --port-base 7900   # down/up cycles on one dir, as a user does
  lab bench up --runs 1 --prometheus --settle 5s,60s,300s --port-base 7900   # idle memory after 5 s, a minute, 5 minutes
  lab bench up --runs 3 --port-base 7900 --kafka cluster   # three Apache Kafka nodes, formatted fresh each run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runs < 1 || runs > 50 {
				return fmt.Errorf("--runs %d: must be between 1 and 50", runs)
			}
			if err := checkSettle(settle); err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			var times []time.Duration
			var dir string
			for i := 0; i < runs; i++ {
				if dir == "" || !sameDir {
					if dir, err = os.MkdirTemp("", "labbench"); err != nil {
						return err
					}
				}
				base := []string{"--dir", dir, "--port-base", strconv.Itoa(g.portBase)}
				start := time.Now()
				up := append(slices.Clone(base), "up")
				if !withProm {
					up = append(up, "--no-prometheus")
				}
				if kafkaPlatform != "" {
					up = append(up, "--kafka", kafkaPlatform)
				}
				if out, err := exec.CommandContext(cmd.Context(), exe, up...).CombinedOutput(); err != nil {
					return fmt.Errorf("lab up: %v\n%s", err, out)
				}
				times = append(times, time.Since(start))
				healthy := time.Now()
				var measure []time.Duration // memory is measured after the last start only
				if i == runs-1 {
					measure = settle
				}
				for _, idle := range measure {
					time.Sleep(time.Until(healthy.Add(idle))) // let the lab go idle before measuring memory
					rss, pss, detail, err := labRSS(cmd.Context(), g.ports().Control())
					if err != nil {
						return err
					}
					fmt.Fprintf(g.stdout, "idle memory after %v (load average %.2f): RSS %.1f MiB total, PSS %.1f MiB (shared pages of the lab binary counted once)\n%s",
						idle, bench.LoadAverage(), float64(rss)/(1<<20), float64(pss)/(1<<20), detail)
				}
				if out, err := exec.CommandContext(cmd.Context(), exe, append(base, "down")...).CombinedOutput(); err != nil {
					return fmt.Errorf("lab down: %v\n%s", err, out)
				}
				if !sameDir || i == runs-1 {
					os.RemoveAll(dir)
				}
				fmt.Fprintf(g.stderr, "run %d/%d: up in %.2fs (load average %.2f)\n", i+1, runs, times[i].Seconds(), bench.LoadAverage())
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			fmt.Fprintf(g.stdout, "lab up to all-healthy over %d runs: min %.2fs, median %.2fs, max %.2fs\n",
				runs, times[0].Seconds(), times[len(times)/2].Seconds(), times[len(times)-1].Seconds())
			return nil
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 5, "how many fresh labs to start")
	cmd.Flags().DurationSliceVar(&settle, "settle", []time.Duration{10 * time.Second}, "idle time after the last start before measuring memory; a list (5s,60s,300s) measures the same lab at each")
	cmd.Flags().StringVar(&kafkaPlatform, "kafka", "", "Kafka platform of the labs (lab up --kafka): embedded or cluster")
	cmd.Flags().BoolVar(&sameDir, "same-dir", false, "start every run on the same state dir (the first run creates it): a user's 'lab down'/'lab up' cycle")
	cmd.Flags().BoolVar(&withProm, "prometheus", false, "start Prometheus with each lab (when installed), as a plain 'lab up' does")
	return cmd
}

// checkSettle accepts idle times that are positive, increasing and at most
// an hour in all (the lab is measured at each, in order).
func checkSettle(settle []time.Duration) error {
	if len(settle) == 0 {
		return fmt.Errorf("--settle: give at least one idle time (e.g. 60s)")
	}
	for i, d := range settle {
		switch {
		case d <= 0:
			return fmt.Errorf("--settle %v: idle times must be positive", d)
		case i > 0 && d <= settle[i-1]:
			return fmt.Errorf("--settle: %v after %v: list idle times in increasing order", d, settle[i-1])
		case d > time.Hour:
			return fmt.Errorf("--settle %v: at most 1h", d)
		}
	}
	return nil
}

// labRSS sums VmRSS and PSS (proportional set size: a page shared by n
// processes, like the lab binary's code, counts 1/n in each) of the
// supervisor and every running part, and shows each process's RSS split
// into anonymous memory (heap, stacks, runtime) and file-backed pages (the
// binary's code and data it touched, shared libraries).
func labRSS(ctx context.Context, control string) (rss, pss int64, detail string, err error) {
	c := supervisor.NewClient(control)
	ps, err := c.Parts(ctx)
	if err != nil {
		return 0, 0, "", err
	}
	info, err := c.Lab(ctx)
	if err != nil {
		return 0, 0, "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %-18s %9s %9s %9s %9s\n", "process", "RSS", "PSS", "anon", "file")
	add := func(name string, pid int) {
		r := procKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
		p := procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
		a := procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Anonymous:")
		rss += r << 10
		pss += p << 10
		fmt.Fprintf(&b, "  %-18s %5.1f MiB %5.1f MiB %5.1f MiB %5.1f MiB\n", name, float64(r)/1024, float64(p)/1024, float64(a)/1024, float64(r-a)/1024)
	}
	add("supervisor", info.PID)
	for _, p := range ps {
		if p.PID > 0 {
			add(p.Name, p.PID)
		}
	}
	return rss, pss, b.String(), nil
}

// procKB reads the "<field> N kB" line of a /proc file (0 when absent).
func procKB(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
