package bench

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"time"

	"github.com/ratingslab/lab/lab/load"
)

// Target is one variant's public API.
type Target struct {
	Variant string
	URL     string
}

// Generator names the load generator (this process) among the processes
// a step accounts for.
const Generator = "load generator"

// Config is one rate search over every target at once.
type Config struct {
	Phase   string // "variant" or "bare hops": named in every step
	Targets []Target
	// Procs lists the processes whose CPU each step accounts for; it is
	// read at every step (a part restarted between steps has a new pid).
	Procs  func() []Proc
	Search SearchConfig
	// Step is each step's length; Cooldown the pause after it (queues and
	// lag from a step not held drain before the next).
	Step, Cooldown time.Duration
	MaxP99         time.Duration
	MinSuccess     float64 // fraction of scheduled ratings answered as expected, 0.999
	Tolerance      float64 // achieved rate at most this fraction below the target, 0.01
	// KeepLoad keeps a variant whose search ended loaded at its highest
	// rate held while the others search on: "both at once" stays true.
	KeepLoad  bool
	LedgerDir string
	RunID     string // prefix of every step's run id (request ids derive from it)
	OnStep    func(Step)
}

// Step is one variant's share of one step.
type Step struct {
	Phase   string  `json:"phase"`
	N       int     `json:"step"`
	Variant string  `json:"variant"`
	Rate    float64 `json:"rate"`
	// Background marks a variant only kept loaded at its highest rate held
	// while another searched on: not part of its own search.
	Background bool    `json:"background,omitempty"`
	Scheduled  uint64  `json:"scheduled"`
	Sent       uint64  `json:"sent"`
	Acked      uint64  `json:"acknowledged"`
	Success    float64 `json:"success"` // answered as expected / scheduled
	Achieved   float64 `json:"achieved_rate"`
	P99Ms      float64 `json:"p99_ms"`
	P50Ms      float64 `json:"p50_ms"`
	Held       bool    `json:"held"`
	Why        string  `json:"why_not_held,omitempty"`
	LoadAvg    float64 `json:"load_avg_1m"`
	// CPUPerRating is each process's CPU per acknowledged rating of this
	// variant, in µs: this variant's parts, and the shared processes
	// (supervisor with the edge proxies, the load generator) divided by
	// every variant's acknowledged ratings of the step.
	CPUPerRating map[string]float64 `json:"cpu_us_per_rating"`
	// Failures are the requests not answered as expected, by cause as the
	// generator saw them (5xx, timeout, conn_error, ...); Refused what the
	// variant's own parts counted while the step ran, by part and reason
	// ("webserver-rpc: bulkhead queue_full"): together, why a step failed.
	Failures map[string]uint64 `json:"failures,omitempty"`
	Refused  map[string]uint64 `json:"refused_by_parts,omitempty"`
	// Calls are the variant's parts' calls to their dependencies.
	Calls []EdgeCalls `json:"calls,omitempty"`
}

// Result is one variant's search.
type Result struct {
	Phase   string  `json:"phase"`
	Variant string  `json:"variant"`
	MaxRate float64 `json:"max_rate"`
	// Bounded is false when every step held: MaxRate is then only a lower
	// bound (raise --max-steps or --start).
	Bounded bool   `json:"bounded"`
	AtMax   *Step  `json:"at_max,omitempty"`
	Steps   []Step `json:"steps"`
}

// Run searches every target's highest rate at once and returns one Result
// per target, in order. On ctx's end it returns what it has with ctx's error.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Step <= 0 || cfg.MaxP99 <= 0 || cfg.MinSuccess <= 0 || cfg.MinSuccess > 1 {
		return nil, fmt.Errorf("bench: step, max p99 and min success (0, 1] are required")
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = 0.01
	}
	searches := make([]*Search, len(cfg.Targets))
	results := make([]Result, len(cfg.Targets))
	for i, t := range cfg.Targets {
		searches[i] = NewSearch(cfg.Search)
		results[i] = Result{Phase: cfg.Phase, Variant: t.Variant}
	}
	for n := 1; ; n++ {
		rates := make([]float64, len(cfg.Targets))
		background := make([]bool, len(cfg.Targets))
		searching := false
		for i, s := range searches {
			if r, ok := s.Next(); ok {
				rates[i], searching = r, true
			} else if cfg.KeepLoad && s.Best() > 0 {
				rates[i], background[i] = s.Best(), true
			}
		}
		if !searching {
			break
		}
		steps, err := runStep(ctx, cfg, n, rates)
		if err != nil {
			return finish(results, searches), err
		}
		for i := range steps {
			if rates[i] == 0 {
				continue
			}
			st := steps[i]
			st.Background = background[i]
			if !st.Background {
				searches[i].Record(st.Rate, st.Held)
			}
			results[i].Steps = append(results[i].Steps, st)
			if cfg.OnStep != nil {
				cfg.OnStep(st)
			}
		}
		if err := Sleep(ctx, cfg.Cooldown); err != nil {
			return finish(results, searches), err
		}
	}
	return finish(results, searches), nil
}

func finish(results []Result, searches []*Search) []Result {
	for i, s := range searches {
		results[i].MaxRate, results[i].Bounded = s.Best(), s.Bounded()
		for j := len(results[i].Steps) - 1; j >= 0; j-- {
			st := results[i].Steps[j]
			if st.Held && !st.Background && st.Rate == s.Best() {
				results[i].AtMax = &st
				break
			}
		}
	}
	return results
}

// runStep loads every target with a non-zero rate at once for cfg.Step.
func runStep(ctx context.Context, cfg Config, n int, rates []float64) ([]Step, error) {
	var procs []Proc
	if cfg.Procs != nil {
		procs = cfg.Procs()
	}
	counters0 := readParts(ctx, procs)
	cpu0, gen0 := snapshotCPU(procs), load.ProcessCPU()
	sums := make([]load.VariantSummary, len(rates))
	interrupted := make([]bool, len(rates))
	errs := make([]error, len(rates))
	var wg sync.WaitGroup
	for i, t := range cfg.Targets {
		if rates[i] == 0 {
			continue
		}
		wg.Go(func() {
			runID := fmt.Sprintf("%s-%s-%d", cfg.RunID, t.Variant, n)
			ledger := ""
			if cfg.LedgerDir != "" {
				ledger = filepath.Join(cfg.LedgerDir, runID+".jsonl")
			}
			sums[i], interrupted[i], errs[i] = load.RunRatingsStep(ctx, runID, load.Target{Variant: t.Variant, BaseURL: t.URL}, rates[i], cfg.Step, ledger)
		})
	}
	wg.Wait()
	used := snapshotCPU(procs).since(cpu0)
	used[Generator] = load.ProcessCPU() - gen0
	loadAvg := LoadAverage()
	counters1 := readParts(ctx, procs)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var allAcked uint64
	for i := range sums {
		allAcked += sums[i].Outcomes[load.Acknowledged]
	}
	steps := make([]Step, len(rates))
	for i, t := range cfg.Targets {
		if rates[i] == 0 {
			continue
		}
		v := sums[i]
		st := Step{
			Phase: cfg.Phase, N: n, Variant: t.Variant, Rate: rates[i],
			Scheduled: v.Scheduled, Sent: v.Sent, Acked: v.Outcomes[load.Acknowledged],
			Achieved: v.AchievedRate, P99Ms: v.Latency.P99, P50Ms: v.Latency.P50, LoadAvg: loadAvg,
			CPUPerRating: map[string]float64{},
		}
		if v.Scheduled > 0 {
			st.Success = v.SuccessRate * float64(v.Completed) / float64(v.Scheduled)
		}
		st.Held, st.Why = judge(cfg, st, interrupted[i])
		for cause, n := range v.Errors {
			if n > 0 { // every rating here is valid: a 4xx is a failure too
				if st.Failures == nil {
					st.Failures = map[string]uint64{}
				}
				st.Failures[string(cause)] = n
			}
		}
		st.Refused = refusedDuring(counters0, counters1, procs, t.Variant)
		st.Calls = callsDuring(counters0, counters1, procs, t.Variant)
		perRating := func(d time.Duration, acked uint64) float64 {
			if acked == 0 {
				return math.NaN()
			}
			return math.Round(float64(d.Microseconds())/float64(acked)*10) / 10
		}
		for _, p := range procs {
			d, ok := used[p.Name]
			switch {
			case !ok:
			case p.Variant == t.Variant:
				st.CPUPerRating[p.Name] = perRating(d, st.Acked)
			case p.Variant == "":
				st.CPUPerRating[p.Name] = perRating(d, allAcked)
			}
		}
		st.CPUPerRating[Generator] = perRating(used[Generator], allAcked)
		for k, v := range st.CPUPerRating {
			if math.IsNaN(v) {
				delete(st.CPUPerRating, k) // nothing acknowledged: no per-rating figure
			}
		}
		steps[i] = st
	}
	return steps, ctx.Err()
}

// judge says whether a step held and, when not, why (every reason).
func judge(cfg Config, st Step, interrupted bool) (bool, string) {
	var why []string
	if interrupted {
		why = append(why, "interrupted")
	}
	if st.Sent < st.Scheduled {
		why = append(why, fmt.Sprintf("the generator sent %d of %d", st.Sent, st.Scheduled))
	}
	if st.Success < cfg.MinSuccess {
		why = append(why, fmt.Sprintf("success %.2f%% < %.2f%%", st.Success*100, cfg.MinSuccess*100))
	}
	if st.P99Ms >= float64(cfg.MaxP99)/float64(time.Millisecond) {
		why = append(why, fmt.Sprintf("p99 %.1f ms ≥ %v", st.P99Ms, cfg.MaxP99))
	}
	// Falling behind the schedule is the generator's (or the machine's)
	// limit showing; running ahead is a catch-up burst after a stall, and
	// shows in the p99. With few requests a millisecond at either end
	// moves the measured rate, so the bound is at least 2 requests' worth.
	if tol := math.Max(cfg.Tolerance, 2/float64(max(st.Scheduled, 1))); st.Achieved < st.Rate*(1-tol) {
		why = append(why, fmt.Sprintf("achieved %.1f/s, more than %.1f%% behind", st.Achieved, tol*100))
	}
	if len(why) == 0 {
		return true, ""
	}
	s := why[0]
	for _, w := range why[1:] {
		s += "; " + w
	}
	return false, s
}

// Sleep waits d or until ctx ends (its error then).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
