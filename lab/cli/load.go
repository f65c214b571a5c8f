package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/bench"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/loadtests"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// loadFlags are `lab load`'s flags.
type loadFlags struct {
	scenario      string
	scenariosDir  string
	variants      []string
	targets       []string
	rate          string
	duration      time.Duration
	durationSet   bool
	seed          string
	from          string
	skipBad       bool
	asJSON        bool
	force         bool
	runID         string
	grace         time.Duration
	metricsListen string
	linger        time.Duration
	quiet         bool
	list          bool
	failOnThresh  bool
	retries       int
	retryBackoff  time.Duration
}

func newLoadCmd(g *globals) *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Drive the variants with the same open-model load and keep a ledger of every rating",
		Long: `Sends one scenario's request sequence to every selected variant at the same
moments: same seed, same requests, same schedule. The load is an open model
(vegeta, uncapped workers): requests leave on schedule however slow the answers
are, and latency is measured from each send, so a stall shows in the tail
instead of being hidden.

Scenarios are the files in loadtests/scenarios (the k6 scripts read the same
ones); --scenario takes a name or a path to a JSON/YAML file. --rate and
--duration override the schedule; --seed the sequence. --from replays a ratings
file (ratings.dat "user::movie::rating" lines, or JSON lines) as the POST
stream at the scenario's rate.

Every rating sent is recorded with its outcome (acknowledged, rejected, failed,
ambiguous) in <dir>/ledgers/<run-id>.jsonl; the audit reads it. Ctrl-C stops
sending, gives requests in flight --grace to finish and still completes the
ledger; a second Ctrl-C aborts them at once (recorded as ambiguous).

--retries N makes the load a careful client: a rating whose outcome is unknown
(504 "outcome: unknown", or sent and not answered in time) is sent again with
the same request id, up to N times, after --retry-backoff (doubling, jittered),
until an answer says what happened (2xx or 4xx): a 503 after an unknown
attempt is retried too, since the first attempt may have been applied. The
ledger lists every attempt; the audit shows whether any rating was counted
twice. A rating whose first answer is definite, and reads, are never retried.
Client-side metrics are served on the lab's load port while it runs.`,
		Example: `  lab load --scenario smoke
  lab load --scenario steady --variants rpc,stream --rate 500/s --duration 60s --seed 7
  lab load --scenario spike --json > spike.json
  lab load --from ratings.dat --rate 200/s --variants stream
  lab load --scenario steady --retries 3 --retry-backoff 200ms
  lab load --list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.durationSet = cmd.Flags().Changed("duration")
			return runLoad(cmd.Context(), g, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.scenario, "scenario", "steady", "scenario `name` (loadtests/scenarios) or path to a .json/.yaml file")
	fl.StringVar(&f.scenariosDir, "scenarios", filepath.Join("loadtests", "scenarios"), "`dir`ectory searched for scenario names before the built-in copies")
	fl.StringSliceVar(&f.variants, "variants", slices.Clone(variantname.All), "variants to load, comma-separated")
	fl.StringArrayVar(&f.targets, "target", nil, "base URL of a variant, as `variant=URL` (repeatable; default: the lab's webservers)")
	fl.StringVar(&f.rate, "rate", "", "constant arrival `rate` replacing the scenario's schedule, e.g. 500/s or 30/m")
	fl.DurationVar(&f.duration, "duration", 0, "run length replacing the scenario's (a ramp is stretched to it)")
	fl.StringVar(&f.seed, "seed", "", "seed of the request sequence (0..4294967295), replacing the scenario's")
	fl.StringVar(&f.from, "from", "", "replay this ratings `file` as the POST stream (ratings.dat or JSON lines)")
	fl.BoolVar(&f.skipBad, "skip-bad", false, "with --from: skip malformed lines instead of refusing the file")
	fl.BoolVar(&f.asJSON, "json", false, "print the summary as JSON on stdout (progress stays on stderr)")
	fl.BoolVar(&f.force, "force", false, fmt.Sprintf("allow runs beyond %s, %d requests or %d req/s per variant", load.SoftMaxDuration, load.SoftMaxRequests, load.SoftMaxRate))
	fl.StringVar(&f.runID, "run-id", "", "name of the run (default <scenario>-<UTC time>-<random>); request ids derive from it")
	fl.DurationVar(&f.grace, "grace", 5*time.Second, "after Ctrl-C, how long requests in flight may still finish")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "`addr`ess serving client-side metrics while the run lasts (default: the lab's load port; \"off\" to disable)")
	fl.DurationVar(&f.linger, "metrics-linger", 0, "keep serving metrics this long after the run so Prometheus scrapes the final counts")
	fl.BoolVar(&f.quiet, "quiet", false, "no live progress")
	fl.BoolVar(&f.list, "list", false, "list the scenarios and exit")
	fl.IntVar(&f.retries, "retries", 0, fmt.Sprintf("send a rating of unknown outcome (504, no answer) again with the same request id, at most this many times (0..%d)", load.MaxRetries))
	fl.DurationVar(&f.retryBackoff, "retry-backoff", load.DefaultRetryBackoff, fmt.Sprintf("wait before the first retry; doubles each time, jittered, at most %s", load.MaxRetryBackoff))
	fl.BoolVar(&f.failOnThresh, "fail-on-thresholds", false, "exit non-zero when a variant misses the scenario's thresholds")
	return cmd
}

// scenarioDirs are searched in order: the working tree's copies (so edits
// take effect without a rebuild), then the ones built into the binary.
func scenarioDirs(dir string) []fs.FS {
	var dirs []fs.FS
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		dirs = append(dirs, os.DirFS(dir))
	}
	return append(dirs, loadtests.Scenarios())
}

func runLoad(ctx context.Context, g *globals, f *loadFlags) error {
	dirs := scenarioDirs(f.scenariosDir)
	if f.list {
		return listScenarios(g.stdout, dirs)
	}

	// Everything is checked before a single request leaves.
	known := map[string]string{
		"rpc":    "http://" + g.ports().WebserverRPC(),
		"stream": "http://" + g.ports().WebserverStream(),
	}
	var targeted []string
	for _, t := range f.targets {
		name, url, ok := strings.Cut(t, "=")
		if !ok || name == "" || url == "" {
			return fmt.Errorf("--target %q: want variant=URL, e.g. rpc=http://127.0.0.1:7710", t)
		}
		known[name] = strings.TrimSuffix(url, "/")
		targeted = append(targeted, name)
	}
	opts := load.Options{
		Scenario: f.scenario, ScenarioDirs: dirs, Variants: f.variants, Known: known, Targeted: targeted, Builtin: slices.Clone(variantname.All),
		Rate: f.rate, Duration: f.duration, DurationSet: f.durationSet, From: f.from, SkipBad: f.skipBad,
		Force: f.force, RunID: f.runID, Now: time.Now(),
	}
	if f.seed != "" {
		n, err := strconv.ParseUint(f.seed, 10, 32)
		if err != nil {
			return fmt.Errorf("--seed %q: want a number 0..4294967295", f.seed)
		}
		s := uint32(n)
		opts.Seed = &s
	}
	if f.grace <= 0 {
		return fmt.Errorf("--grace %s: must be > 0", f.grace)
	}
	retry := load.RetryPolicy{Max: f.retries, Backoff: f.retryBackoff}
	if err := retry.Validate(); err != nil {
		flag := map[string]string{"max": "--retries", "backoff": "--retry-backoff"}[err.Field]
		return fmt.Errorf("%s: %s", flag, err.Msg)
	}
	plan, err := load.NewPlan(opts)
	if err != nil {
		return err
	}
	if len(plan.Skipped) > 0 {
		fmt.Fprintf(g.stderr, "--skip-bad: skipped %d malformed line(s) of %s, first: %s\n", len(plan.Skipped), f.from, plan.Skipped[0])
	}
	if err := load.CheckReachable(ctx, plan.Targets, 3*time.Second); err != nil {
		return err
	}
	ledgers := g.dir().Ledgers()
	if err := os.MkdirAll(ledgers, 0o755); err != nil {
		return fmt.Errorf("ledger directory: %w", err)
	}
	ledgerPath := filepath.Join(ledgers, plan.RunID+".jsonl")
	if _, err := os.Stat(ledgerPath); err == nil {
		return fmt.Errorf("--run-id %s: a ledger of that run already exists (%s); pick another run id", plan.RunID, ledgerPath)
	}

	reg := prometheus.NewRegistry()
	variants := make([]string, len(plan.Targets))
	for i, t := range plan.Targets {
		variants[i] = t.Variant
	}
	metrics, err := load.NewMetrics(reg, variants)
	if err != nil {
		return err
	}
	stopMetrics, err := serveLoadMetrics(f.metricsListen, g.ports().Load(), reg, g.stderr)
	if err != nil {
		return err
	}

	// The first Ctrl-C (or SIGTERM) stops the run: main cancels ctx, and
	// this channel sees the signal too. The second aborts the requests still
	// in flight instead of waiting out --grace.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	abort := make(chan struct{})
	runDone := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-sigs:
			case <-runDone:
				return
			}
			if n == 1 {
				cancel()
				fmt.Fprintf(g.stderr, "\ninterrupted: no new requests; requests in flight have %s to finish (Ctrl-C again to abort them)\n", f.grace)
				continue
			}
			close(abort)
			fmt.Fprintln(g.stderr, "aborting requests in flight; they are recorded as ambiguous")
			return
		}
	}()

	a := plan.Scenario.Arrival
	scheduled := a.ExpectedRequests()
	source := ""
	if file, ok := plan.Source.(*load.FileSource); ok {
		scheduled = min(scheduled, file.Len()) // the run ends when the file does
		source = fmt.Sprintf(", replaying %d ratings of %s", file.Len(), f.from)
	}
	fmt.Fprintf(g.stderr, "run %s: scenario %s, seed %d, %s%s (%d requests per variant) → %s\n",
		plan.RunID, plan.Scenario.Name, plan.Scenario.Seed, load.DescribeArrival(a), source, scheduled, describeTargets(plan.Targets))
	cfg := load.Config{
		RunID: plan.RunID, Scenario: plan.Scenario, Source: plan.Source, SourceName: plan.SourceName,
		Targets: plan.Targets, LedgerPath: ledgerPath, Metrics: metrics, Grace: f.grace, Abort: abort, Retry: retry,
	}
	if !f.quiet {
		cfg.OnProgress = load.NewProgress(g.stderr, isTerminal(g.stderr), scheduled).Update
	}
	sum, runErr := load.Run(runCtx, cfg)
	close(runDone)
	if sum != nil {
		if f.asJSON {
			if err := printJSON(g.stdout, sum); err != nil {
				return err
			}
		} else if err := sum.WriteTable(g.stdout); err != nil {
			return err
		}
	}
	if f.linger > 0 && runErr == nil {
		select {
		case <-time.After(f.linger):
		case <-ctx.Done():
		}
	}
	stopMetrics()
	switch {
	case runErr != nil:
		return runErr
	case sum.Interrupted:
		return errors.New("load interrupted (the ledger is complete up to the interruption)")
	case f.failOnThresh:
		for _, v := range sum.Variants {
			if !v.Thresholds.OK() {
				return fmt.Errorf("variant %s missed the scenario's thresholds", v.Variant)
			}
		}
	}
	return nil
}

// serveLoadMetrics serves reg on addr ("" = def, "off" = nowhere) for
// Prometheus. A busy port is an error before any load: most likely another
// `lab load` is running, and two runs would mix their numbers.
func serveLoadMetrics(addr, def string, reg *prometheus.Registry, warn io.Writer) (stop func(), err error) {
	if addr == "off" {
		return func() {}, nil
	}
	if addr == "" {
		addr = def
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); host == "" || ip == nil && host != "localhost" || ip != nil && !ip.IsLoopback() {
			fmt.Fprintf(warn, "warning: --metrics-listen %s serves this run's client metrics beyond loopback: anyone who can reach that address reads them (fine inside a container network; on a shared machine prefer 127.0.0.1)\n", addr)
		}
	}
	stop, err = load.ServeMetrics(addr, reg)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w (use --metrics-listen off or another address)", err)
	}
	return stop, nil
}

func describeTargets(ts []load.Target) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.Variant + " " + t.BaseURL
	}
	return strings.Join(parts, ", ")
}

func listScenarios(w io.Writer, dirs []fs.FS) error {
	names, err := load.ListScenarios(dirs...)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSCHEDULE\tREQUESTS\tDESCRIPTION")
	for _, n := range names {
		s, err := load.FindScenario(n, os.ReadFile, dirs...)
		if err != nil {
			fmt.Fprintf(tw, "%s\tINVALID: %v\t\t\n", n, err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", n, load.DescribeArrival(s.Arrival), s.Arrival.ExpectedRequests(), s.Description)
	}
	return tw.Flush()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newBenchLoadCmd is `lab bench load`: the highest rate the load engine
// holds against a trivial handler, and its CPU cost per request.
func newBenchLoadCmd(g *globals) *cobra.Command {
	var (
		target string
		step   time.Duration
		rates  []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Find the highest rate 'lab load' holds within 1% against a trivial handler",
		Long: `Runs constant-rate steps (ratings only, with a ledger, like a real run) at
increasing rates until one is not held: every scheduled request sent and
answered 2xx, achieved rate within 1 % of the target; each step prints how
far the achieved rate was off and this process's CPU per request. Without
--target the trivial handler runs inside this process and shares its CPU, so
the CPU per request includes both sides; with --target (e.g. a 'lab bench
hop' in another process) it is the generator's own.`,
		Example: `  lab bench load
  lab bench load --rates 5000,10000,20000 --step 10s
  lab bench hop --listen 127.0.0.1:10290 &   # a trivial server in its own process
  lab bench load --target http://127.0.0.1:10290 --rates 5000,10000,12000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := load.BenchConfig{Target: target, Step: step}
			for _, r := range rates {
				v, err := load.ParseRate(r)
				if err != nil {
					return fmt.Errorf("--rates: %w", err)
				}
				cfg.Rates = append(cfg.Rates, v)
			}
			if step <= 0 || step > time.Minute {
				return fmt.Errorf("--step %s: must be in (0, 1m]", step)
			}
			targetTroubles := false
			steps, err := load.BenchMaxRate(cmd.Context(), cfg, func(s load.BenchStep) {
				verdict := "held"
				if !s.Held {
					verdict = "NOT held"
				}
				var troubles string
				if s.TargetRefused > 0 || s.TargetAcceptFailures > 0 {
					troubles = fmt.Sprintf(" (the in-process target refused %d connections over its budget; %d accepts failed for want of file descriptors)",
						s.TargetRefused, s.TargetAcceptFailures)
					targetTroubles = true
				}
				fmt.Fprintf(g.stderr, "%8.0f/s: sent %d/%d, achieved %.1f/s (%+.2f%%), errors %d, p99 %.2f ms, cpu %s/request, load %.2f — %s%s\n",
					s.Rate, s.Sent, s.Scheduled, s.Achieved, (s.Achieved/s.Rate-1)*100, s.Errors, s.P99Ms, s.CPUPerRequest, bench.LoadAverage(), verdict, troubles)
			})
			if targetTroubles {
				fmt.Fprintln(g.stderr, "The in-process target shares this process's file descriptors and CPU with the generator: to measure the generator alone, "+
					"run a target in another process ('lab bench hop --listen 127.0.0.1:10290 &', then 'lab bench load --target http://127.0.0.1:10290').")
			}
			if err != nil {
				return err
			}
			if len(steps) == 0 {
				return errors.New("no rate step ran")
			}
			best := 0.0
			var cpu time.Duration
			for _, s := range steps {
				if s.Held {
					best, cpu = s.Rate, s.CPUPerRequest
				}
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(map[string]any{"max_rate_held": best, "cpu_per_request_ns": cpu, "steps": steps})
			}
			switch {
			case best == 0:
				fmt.Fprintf(g.stdout, "lab load held none of the rates tried (the lowest was %.0f req/s)\n", steps[0].Rate)
			case steps[len(steps)-1].Held:
				fmt.Fprintf(g.stdout, "lab load held every rate tried, up to %.0f req/s within 1%% (CPU %s per request there); try higher --rates\n", best, cpu)
			default:
				fmt.Fprintf(g.stdout, "lab load holds %.0f req/s within 1%% (CPU %s per request at that rate)\n", best, cpu)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "target", "", "base `URL` to load instead of the in-process trivial handler")
	cmd.Flags().DurationVar(&step, "step", 5*time.Second, "length of each rate step")
	cmd.Flags().StringSliceVar(&rates, "rates", nil, "rates to try in order (default 1000,2000,5000,10000,15000,20000,30000,40000,50000)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
