package load

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ratingslab/lab/lab/connbudget"
	"github.com/ratingslab/lab/services/lib/duration"
)

// BenchStep is one rate tried by BenchMaxRate.
type BenchStep struct {
	Rate      float64 `json:"rate"`
	Scheduled uint64  `json:"scheduled"`
	Sent      uint64  `json:"sent"`
	Achieved  float64 `json:"achieved_rate"`
	Errors    uint64  `json:"errors"`
	P99Ms     float64 `json:"p99_ms"`
	// CPUPerRequest is this process's CPU time (user+system) per request:
	// the generator's overhead, plus the trivial handler's when it runs
	// in-process.
	CPUPerRequest time.Duration `json:"cpu_per_request_ns"`
	Held          bool          `json:"held"`
}

// BenchConfig shapes BenchMaxRate.
type BenchConfig struct {
	// Target is the base URL to load; "" starts a trivial handler in this
	// process on 127.0.0.1 (which then shares the CPU with the generator).
	Target string
	Rates  []float64
	Step   time.Duration
	// Tolerance is how far the achieved rate may be off the target (0.01).
	Tolerance float64
	// MaxP99, when set, is a latency bound a step must also meet to count
	// as held (e.g. "the highest POST rate at p99 < 100 ms").
	MaxP99 time.Duration
}

// DefaultBenchRates are the steps of `lab bench load`.
var DefaultBenchRates = []float64{1000, 2000, 5000, 10000, 15000, 20000, 30000, 40000, 50000}

// BenchMaxRate finds the highest rate the engine holds: for each rate in
// turn it runs a constant-rate step (ratings only, with a ledger, as a real
// run) and checks that every scheduled request was sent, answered 2xx, and
// that the achieved rate is within Tolerance. It stops at the first rate not
// held. onStep, if set, sees each step as it ends.
func BenchMaxRate(ctx context.Context, cfg BenchConfig, onStep func(BenchStep)) ([]BenchStep, error) {
	if cfg.Step <= 0 {
		cfg.Step = 5 * time.Second
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = 0.01
	}
	if len(cfg.Rates) == 0 {
		cfg.Rates = DefaultBenchRates
	}
	target := cfg.Target
	if target == "" {
		url, stop, err := startTrivialAPI()
		if err != nil {
			return nil, err
		}
		defer stop()
		target = url
	}
	dir, err := os.MkdirTemp("", "lab-bench-load")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	var steps []BenchStep
	for i, rate := range cfg.Rates {
		cpu0 := processCPU()
		v, interrupted, err := RunRatingsStep(ctx, fmt.Sprintf("bench%d", i), Target{"bench", target}, rate, cfg.Step,
			filepath.Join(dir, fmt.Sprintf("bench%d.jsonl", i)))
		if err != nil {
			return steps, err
		}
		st := BenchStep{
			Rate: rate, Scheduled: v.Scheduled, Sent: v.Sent, Achieved: v.AchievedRate,
			Errors: v.Completed - v.Outcomes[Acknowledged], P99Ms: v.Latency.P99,
		}
		if v.Sent > 0 {
			st.CPUPerRequest = (processCPU() - cpu0) / time.Duration(v.Sent)
		}
		st.Held = !interrupted && v.Sent == v.Scheduled && st.Errors == 0 &&
			math.Abs(v.AchievedRate/rate-1) <= cfg.Tolerance &&
			(cfg.MaxP99 == 0 || st.P99Ms < float64(cfg.MaxP99)/float64(time.Millisecond))
		steps = append(steps, st)
		if onStep != nil {
			onStep(st)
		}
		if !st.Held || ctx.Err() != nil {
			break
		}
	}
	return steps, nil
}

// RunRatingsStep sends rating POSTs (ratings only, valid movies, a ledger
// at ledgerPath as in a real run) to one target at a constant rate for d:
// one step of a rate search. runID must be new for every step, since the
// request ids derive from it and a repeated id is answered as a repeat.
func RunRatingsStep(ctx context.Context, runID string, target Target, rate float64, d time.Duration, ledgerPath string) (VariantSummary, bool, error) {
	s := defaultScenario()
	s.Name, s.Seed = "bench", 1
	s.Arrival = Arrival{Executor: ExecutorConstant, Rate: rate, Duration: duration.Duration(d)}
	s.Mix = Mix{Rating: 1}
	sum, err := Run(ctx, Config{RunID: runID, Scenario: &s, Targets: []Target{target}, LedgerPath: ledgerPath})
	if err != nil {
		return VariantSummary{}, false, err
	}
	return sum.Variants[0], sum.Interrupted, nil
}

// ProcessCPU is this process's CPU time so far (user+system).
func ProcessCPU() time.Duration { return processCPU() }

// startTrivialAPI answers every request at once, the cheapest server the
// engine can be measured against. It shares this process's descriptors
// with the generator's connections, so it holds at most half of them:
// past what it carries it refuses connections (failed requests, the step
// not held) rather than running out of descriptors.
func startTrivialAPI() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: trivialHandler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(connbudget.NewListener(l, connbudget.Share(2)))
	return "http://" + l.Addr().String(), func() { srv.Close() }, nil
}

func trivialHandler() http.Handler {
	ok := []byte(`{"request_id":""}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
		}
		w.Write(ok)
	})
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
