package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/bench"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// postReport is `lab bench post --json`.
type postReport struct {
	Command   string         `json:"command"`
	StartedAt time.Time      `json:"started_at"`
	EndedAt   time.Time      `json:"ended_at"`
	CPUs      int            `json:"cpus"`
	Held      string         `json:"held_means"`
	Variants  []postVariant  `json:"variants"`
	Ceiling   []bench.Result `json:"bare_hop_ceiling,omitempty"`
	Real      []bench.Result `json:"variant_search"`
	// With --alone: each variant (and its bare hops) searched alone first.
	Alone        []postVariant  `json:"variants_alone,omitempty"`
	CeilingAlone []bench.Result `json:"bare_hop_ceiling_alone,omitempty"`
	RealAlone    []bench.Result `json:"variant_search_alone,omitempty"`
	Note         string         `json:"note,omitempty"`
}

// postVariant is one variant's line: its highest rate held beside the
// ceiling of its bare hops, measured in the same run.
type postVariant struct {
	Variant      string             `json:"variant"`
	MaxRate      float64            `json:"max_rate"`
	Bounded      bool               `json:"bounded"`
	P99Ms        float64            `json:"p99_ms_at_max"`
	LoadAvg      float64            `json:"load_avg_1m_at_max"`
	Ceiling      float64            `json:"bare_hop_ceiling,omitempty"`
	CeilBounded  bool               `json:"bare_hop_ceiling_bounded,omitempty"`
	CeilLoadAvg  float64            `json:"load_avg_1m_at_ceiling,omitempty"`
	ShareOfCeil  float64            `json:"share_of_ceiling,omitempty"`
	CPUPerRating map[string]float64 `json:"cpu_us_per_rating_at_max,omitempty"`
	CeilCPU      map[string]float64 `json:"bare_hop_cpu_us_per_rating,omitempty"`
	Warning      string             `json:"warning,omitempty"`
}

// newBenchPostCmd searches the highest POST rate every chosen variant
// sustains at once, and the same for their bare hops.
func newBenchPostCmd(g *globals) *cobra.Command {
	var (
		variants   []string
		variant    string
		maxP99     time.Duration
		minSuccess float64
		step       time.Duration
		cooldown   time.Duration
		start      float64
		factor     float64
		precision  float64
		maxSteps   int
		ceiling    bool
		alone      bool
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "post",
		Short: "Highest POST /api/ratings rate each variant holds at once, beside its bare-hop ceiling and CPU per rating",
		Long: `Searches, for every variant of --variants at once, the highest rate of rating
POSTs it holds: a step holds when the success ratio (ratings answered as
expected / scheduled) is at least --min-success, the exact p99 (the load
generator's own per-request latencies) is below --max-p99, and the achieved
rate is at most 1 % below the step's (the generator kept up). Each variant's search climbs by --factor
from --start until a step is not held, then bisects to --precision. A variant
whose search ended keeps running at its highest rate held while the others
search on, so "at once" stays true.

Then the bare-hop ceiling: the variants' parts are stopped, trivial handlers
(one process each, 'lab bench hop') take their ports behind the lab's own edge
proxies — rpc: webserver → ratings → movies, stream: webserver → broker — and
the same search runs on them; the parts are started again afterwards. The
ceiling is what the topology alone (processes, loopback HTTP, proxies, this
load generator) allows on this machine: a variant's share of it is a figure
that stays meaningful on a busy machine.

CPU per acknowledged rating comes from /proc/<pid>/stat of every part, the
supervisor (it runs the edge proxies) and this process (the load generator),
per step; shared processes are divided by all variants' ratings. Ratings are
real: they stay in the lab's state. Each step's 1-minute load average is
printed beside it: figures taken on a busy machine say so.

A step that fails says why under its line: the ratings that failed by cause
as the generator saw them (5xx, timeout, ...), and what the variant's own
parts counted while it ran, read from their admin /metrics before and
after — requests their bulkhead answered 503 (queue_full, queue_timeout),
calls to a dependency that failed, met an open breaker (rejected) or came
back with a 503 passed on from further down, and Kafka writes that failed
after their retries — and their calls to each other:
how many, the mean time of one (the wait for a pooled connection included)
and the size of that pool.`,
		Example: `  lab bench post                                   # rpc and stream at once, then their bare hops
  lab bench post --variants rpc                    # one variant alone
  lab bench post --step 20s --max-steps 12 --json > post.json
  lab bench post --ceiling=false --start 500`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if variant != "" {
				variants = []string{variant}
			}
			switch {
			case maxP99 <= 0:
				return fmt.Errorf("--max-p99 %v: must be > 0", maxP99)
			case minSuccess <= 0 || minSuccess > 100:
				return fmt.Errorf("--min-success %v: a percentage in (0, 100]", minSuccess)
			case step <= 0 || step > 5*time.Minute:
				return fmt.Errorf("--step %v: must be in (0, 5m]", step)
			case cooldown < 0 || cooldown > time.Minute:
				return fmt.Errorf("--cooldown %v: must be in [0, 1m]", cooldown)
			case start < 1 || start > 50000:
				return fmt.Errorf("--start %v: a rate in [1, 50000] req/s", start)
			case factor <= 1 || factor > 10:
				return fmt.Errorf("--factor %v: must be in (1, 10]", factor)
			case precision <= 0 || precision >= 1:
				return fmt.Errorf("--precision %v: must be in (0, 1)", precision)
			case maxSteps < 1 || maxSteps > 30:
				return fmt.Errorf("--max-steps %d: must be in [1, 30]", maxSteps)
			}
			c, _, st, err := labClients(g)
			if err != nil {
				return err
			}
			ps, err := c.Parts(ctx)
			if err != nil {
				return err
			}
			info, err := c.Lab(ctx)
			if err != nil {
				return err
			}
			var targets []bench.Target
			for _, v := range variants {
				v = strings.TrimSpace(v)
				i := slices.IndexFunc(ps, func(p supervisor.PartStatus) bool { return p.Name == "webserver-"+v })
				if i < 0 || !slices.Contains(variantname.All, v) {
					return fmt.Errorf("--variants: %q is not a variant of this lab (rpc, stream)", v)
				}
				if slices.ContainsFunc(targets, func(t bench.Target) bool { return t.Variant == v }) {
					return fmt.Errorf("--variants: %s given twice", v)
				}
				targets = append(targets, bench.Target{Variant: v, URL: "http://" + ps[i].Addr})
			}
			if len(targets) == 0 {
				return fmt.Errorf("--variants: name at least one of rpc, stream")
			}
			tmp, err := os.MkdirTemp("", "lab-bench-post")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			rep := postReport{
				Command: "lab " + strings.Join(os.Args[1:], " "), StartedAt: time.Now().UTC(), CPUs: cpuCount(),
				Held: fmt.Sprintf("success ≥ %g%%, exact p99 < %v, achieved rate at most 1%% below", minSuccess, maxP99),
			}
			runID := load.NewRunID("bench-post", time.Now())
			cfg := bench.Config{
				Phase: "variant", Targets: targets, Step: step, Cooldown: cooldown, MaxP99: maxP99,
				MinSuccess: minSuccess / 100, KeepLoad: true, LedgerDir: tmp, RunID: runID,
				Search: bench.SearchConfig{Start: start, Factor: factor, Precision: precision, MaxSteps: maxSteps},
				Procs:  func() []bench.Proc { return labProcs(ctx, c, info.PID) },
				OnStep: func(s bench.Step) { printStep(g.stderr, s) },
			}
			fmt.Fprintf(g.stderr, "lab bench post: %s at once; steps of %v (+%v cooldown), at most %d per search; held: %s; %d CPUs, load average %.2f\n",
				variantList(targets), step, cooldown, maxSteps, rep.Held, rep.CPUs, bench.LoadAverage())
			fmt.Fprintf(g.stderr, "[1/%d] the variants (at most ~%v)\n", 1+boolInt(ceiling), time.Duration(maxSteps)*(step+cooldown))
			alone = alone && len(targets) > 1
			if alone {
				rep.RealAlone, err = runAlone(ctx, cfg)
				if err != nil {
					return err
				}
			}
			rep.Real, err = bench.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if ceiling {
				fmt.Fprintf(g.stderr, "[2/2] the bare hops: stopping the variants' parts; trivial handlers on their ports (at most ~%v)\n", time.Duration((1+len(targets)*boolInt(alone))*maxSteps)*(step+cooldown))
				rep.CeilingAlone, rep.Ceiling, err = bareHopCeiling(ctx, g, c, ps, info, cfg, append(rep.RealAlone, rep.Real...), alone)
				if err != nil {
					return err
				}
			}
			rep.EndedAt = time.Now().UTC()
			rep.Variants = summarize(rep.Real, rep.Ceiling)
			if alone {
				rep.Alone = summarize(rep.RealAlone, rep.CeilingAlone)
			}
			rep.Note = "Kafka platform " + st.Options.Kafka.PlatformName()
			if asJSON {
				return printJSON(g.stdout, rep)
			}
			printPostReport(g.stdout, rep)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&variants, "variants", slices.Clone(variantname.All), "variants to load at once (rpc, stream)")
	cmd.Flags().StringVar(&variant, "variant", "", "one variant alone (same as --variants VARIANT)")
	cmd.Flags().MarkHidden("variant")
	cmd.Flags().DurationVar(&maxP99, "max-p99", 100*time.Millisecond, "exact p99 latency a step must stay below")
	cmd.Flags().Float64Var(&minSuccess, "min-success", 99.9, "percentage of scheduled ratings a step must get answered as expected")
	cmd.Flags().DurationVar(&step, "step", 10*time.Second, "length of each rate step")
	cmd.Flags().DurationVar(&cooldown, "cooldown", 3*time.Second, "pause after each step (queues and lag drain)")
	cmd.Flags().Float64Var(&start, "start", 200, "first rate of each search (req/s per variant)")
	cmd.Flags().Float64Var(&factor, "factor", 2, "growth of the rate while steps hold")
	cmd.Flags().Float64Var(&precision, "precision", 0.1, "bisect until the highest held and lowest failed rates are this close (fraction)")
	cmd.Flags().IntVar(&maxSteps, "max-steps", 10, "steps per search at most")
	cmd.Flags().BoolVar(&ceiling, "ceiling", true, "also measure the bare-hop ceiling (stops and restarts the variants' parts)")
	cmd.Flags().BoolVar(&alone, "alone", false, "first search each variant (and its bare hops) alone, then all at once")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON on stdout (progress stays on stderr)")
	return cmd
}

// bareHopCeiling runs the search on bare hops in place of the variants'
// parts, and starts the parts again whatever happens.
func bareHopCeiling(ctx context.Context, g *globals, c *supervisor.Client, ps []supervisor.PartStatus, info supervisor.LabInfo, cfg bench.Config, real []bench.Result, alone bool) (aloneRes, res []bench.Result, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	var specs []bench.HopSpec
	var names []string
	for _, t := range cfg.Targets {
		hs, err := bench.BareHops(ps, info, t.Variant)
		if err != nil {
			return nil, nil, err
		}
		specs = append(specs, hs...)
		names = append(names, t.Variant)
	}
	stop := bench.PartsToStop(ps, names)
	if err := bench.StopParts(ctx, c, stop); err != nil {
		return nil, nil, err
	}
	var hops []*bench.Hop
	defer func() {
		for _, h := range hops {
			h.Stop()
		}
		fmt.Fprintf(g.stderr, "starting %s again\n", strings.Join(stop, ", "))
		// Put the lab back even after Ctrl-C.
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if rerr := bench.StartParts(rctx, c, stop, 90*time.Second); rerr != nil {
			err = fmt.Errorf("%v; and the lab's parts did not come back: %w", err, rerr)
		}
	}()
	for _, s := range specs {
		h, err := bench.StartHop(ctx, exe, s, g.stderr)
		if err != nil {
			return nil, nil, err
		}
		hops = append(hops, h)
	}
	if err := bench.WaitEdges(ctx, hops); err != nil {
		return nil, nil, err
	}
	cfg.Phase = "bare hops"
	cfg.RunID += "-bare"
	cfg.Procs = func() []bench.Proc {
		out := []bench.Proc{{Name: "supervisor", PID: info.PID}}
		for _, h := range hops {
			out = append(out, bench.Proc{Name: "hop " + h.Spec.Part, Variant: h.Spec.Variant, PID: h.PID})
		}
		return out
	}
	// The hops hold at least what the parts held: start there.
	for _, r := range real {
		cfg.Search.Start = math.Max(cfg.Search.Start, r.MaxRate)
	}
	if alone {
		if aloneRes, err = runAlone(ctx, cfg); err != nil {
			return aloneRes, nil, err
		}
	}
	res, err = bench.Run(ctx, cfg)
	return aloneRes, res, err
}

// runAlone searches each target of cfg alone, one after the other.
func runAlone(ctx context.Context, cfg bench.Config) ([]bench.Result, error) {
	var out []bench.Result
	for _, t := range cfg.Targets {
		one := cfg
		one.Targets, one.Phase, one.RunID = []bench.Target{t}, cfg.Phase+" alone", cfg.RunID+"-alone"
		res, err := bench.Run(ctx, one)
		out = append(out, res...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// labProcs are the processes a variant step accounts for: every part (the
// broker and the schema registry serve the stream variant; Prometheus is
// shared) and the supervisor, shared.
func labProcs(ctx context.Context, c *supervisor.Client, supervisorPID int) []bench.Proc {
	out := []bench.Proc{{Name: "supervisor", PID: supervisorPID}}
	ps, err := c.Parts(ctx)
	if err != nil {
		return out
	}
	for _, p := range ps {
		if p.PID <= 0 {
			continue
		}
		v := p.Variant
		switch {
		case v != "lab":
		case strings.HasPrefix(p.Name, "broker") || p.Name == parts.RegistryPart:
			v = "stream" // the log variant's infrastructure
		default:
			v = "" // Prometheus and other extras serve both
		}
		proc := bench.Proc{Name: p.Name, Variant: v, PID: p.PID}
		if p.Admin != "" {
			proc.Metrics = "http://" + p.Admin + "/metrics"
		}
		out = append(out, proc)
	}
	return out
}

func summarize(real, ceiling []bench.Result) []postVariant {
	var out []postVariant
	for _, r := range real {
		pv := postVariant{Variant: r.Variant, MaxRate: r.MaxRate, Bounded: r.Bounded}
		if r.AtMax != nil {
			pv.P99Ms, pv.LoadAvg, pv.CPUPerRating = r.AtMax.P99Ms, r.AtMax.LoadAvg, r.AtMax.CPUPerRating
		}
		for _, cr := range ceiling {
			if cr.Variant != r.Variant {
				continue
			}
			pv.Ceiling, pv.CeilBounded = cr.MaxRate, cr.Bounded
			if cr.AtMax != nil {
				pv.CeilLoadAvg, pv.CeilCPU = cr.AtMax.LoadAvg, cr.AtMax.CPUPerRating
			}
			if cr.MaxRate > 0 {
				pv.ShareOfCeil = math.Round(r.MaxRate/cr.MaxRate*1000) / 1000
			}
			if cr.MaxRate < r.MaxRate {
				pv.Warning = fmt.Sprintf("the bare hops held less than the variant (load average %.1f then, %.1f at the variant's max): the machine's load changed between the phases, so this ceiling is not one; run again on a quieter machine",
					pv.CeilLoadAvg, pv.LoadAvg)
			}
		}
		out = append(out, pv)
	}
	return out
}

func printStep(w io.Writer, s bench.Step) {
	verdict := "held"
	if !s.Held {
		verdict = "NOT held: " + s.Why
	}
	if s.Background {
		verdict = "(kept at its highest rate held while the other searches)"
	}
	fmt.Fprintf(w, "  %-9s step %2d  %-6s %6.0f/s: acked %d/%d (%.2f%%), achieved %.1f/s, p50 %.1f ms, p99 %.1f ms, load %.2f — %s\n",
		s.Phase, s.N, s.Variant, s.Rate, s.Acked, s.Scheduled, s.Success*100, s.Achieved, s.P50Ms, s.P99Ms, s.LoadAvg, verdict)
	if len(s.Failures) > 0 {
		fmt.Fprintf(w, "      failed, as the generator saw them: %s\n", bench.CountsLine(s.Failures))
	}
	if len(s.Refused) > 0 {
		fmt.Fprintf(w, "      counted in the %s parts: %s\n", s.Variant, bench.CountsLine(s.Refused))
	}
	if !s.Held && !s.Background && len(s.Calls) > 0 {
		fmt.Fprintf(w, "      calls between them: %s\n", bench.CallsLine(s.Calls))
	}
}

func printPostReport(w io.Writer, rep postReport) {
	if len(rep.Alone) > 0 {
		fmt.Fprintf(w, "Highest POST rate held (%s), each variant alone, %d CPUs:\n", rep.Held, rep.CPUs)
		printVariants(w, rep.Alone, len(rep.CeilingAlone) > 0)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Highest POST rate held (%s), %s at once, %d CPUs:\n", rep.Held, variantNames(rep.Variants), rep.CPUs)
	printVariants(w, rep.Variants, len(rep.Ceiling) > 0)
	fmt.Fprintln(w, "\nCPU per acknowledged rating at the max rate held, all at once (µs; shared processes divided by every variant's ratings):")
	for _, v := range rep.Variants {
		fmt.Fprintf(w, "  %-7s %s\n", v.Variant, cpuLine(v.CPUPerRating))
		if len(v.CeilCPU) > 0 {
			fmt.Fprintf(w, "  %-7s %s\n", "  hops", cpuLine(v.CeilCPU))
		}
	}
	fmt.Fprintf(w, "\nreproduce: %s\n", rep.Command)
}

func printVariants(w io.Writer, vs []postVariant, withCeiling bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tmax rate held\tp99 there\tload avg\tbare-hop ceiling\tload avg\tshare of ceiling\t")
	for _, v := range vs {
		ceil, share, cl := "-", "-", "-"
		if withCeiling {
			ceil = rateText(v.Ceiling, v.CeilBounded)
			share = fmt.Sprintf("%.0f %%", v.ShareOfCeil*100)
			if !v.CeilBounded && v.Ceiling > 0 {
				share = "≤ " + share // the ceiling is only a lower bound
			}
			cl = fmt.Sprintf("%.2f", v.CeilLoadAvg)
		}
		rate, p99, load := rateText(v.MaxRate, v.Bounded), fmt.Sprintf("%.1f ms", v.P99Ms), fmt.Sprintf("%.2f", v.LoadAvg)
		if v.MaxRate == 0 {
			// Not even the lowest rate tried held: its steps above say why.
			rate, p99, load = "none held", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", v.Variant, rate, p99, load, ceil, cl, share)
	}
	tw.Flush()
	for _, v := range vs {
		if v.Warning != "" {
			fmt.Fprintf(w, "warning: %s: %s\n", v.Variant, v.Warning)
		}
	}
}

func cpuLine(m map[string]float64) string {
	if len(m) == 0 {
		return "no rate held"
	}
	names := make([]string, 0, len(m))
	total := 0.0
	for n, v := range m {
		names = append(names, n)
		total += v
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]] > m[names[j]] })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f", n, m[n]))
	}
	return fmt.Sprintf("total %.0f: %s", total, strings.Join(parts, ", "))
}

func rateText(r float64, bounded bool) string {
	if !bounded && r > 0 {
		return fmt.Sprintf("≥ %.0f/s", r)
	}
	return fmt.Sprintf("%.0f/s", r)
}

func variantList(ts []bench.Target) string {
	var names []string
	for _, t := range ts {
		names = append(names, t.Variant)
	}
	return strings.Join(names, " and ")
}

func variantNames(vs []postVariant) string {
	var names []string
	for _, v := range vs {
		names = append(names, v.Variant)
	}
	return strings.Join(names, " and ")
}

func cpuCount() int { return runtime.NumCPU() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// newBenchHopCmd is the process body of one bare hop, and a trivial server
// for `lab bench load --target`.
func newBenchHopCmd(g *globals) *cobra.Command {
	var listen, next string
	var status, procs int
	cmd := &cobra.Command{
		Use:   "hop",
		Short: "Serve a trivial handler that passes each request on to --next (the bare hops of 'lab bench post'; a server for 'lab bench load --target')",
		Example: `  lab bench hop --listen 127.0.0.1:10290
  lab bench hop --listen 127.0.0.1:10291 --next http://127.0.0.1:10290 --status 202`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if procs < 0 {
				return fmt.Errorf("--procs %d: want 1 or more (0: every CPU)", procs)
			}
			if procs > 0 {
				runtime.GOMAXPROCS(procs)
			}
			return bench.RunHop(cmd.Context(), listen, next, status, g.stderr)
		},
	}
	cmd.Flags().IntVar(&procs, "procs", 0, "CPUs the hop runs Go code on at once (GOMAXPROCS; 0: every CPU); 'lab bench post' gives each hop its part's")
	cmd.Flags().StringVar(&listen, "listen", "", "loopback `address` to serve")
	cmd.Flags().StringVar(&next, "next", "", "base `URL` each request is passed on to (none: answer at once)")
	cmd.Flags().IntVar(&status, "status", 201, "status of every answer")
	return cmd
}
