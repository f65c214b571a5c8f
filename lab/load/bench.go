package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
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
	// The in-process target's troubles in this step (zero with --target):
	// connections it refused over its budget, and accepts that failed (out
	// of file descriptors: the generator's uncapped connections hold them).
	TargetRefused        int64 `json:"target_refused,omitempty"`
	TargetAcceptFailures int64 `json:"target_accept_failures,omitempty"`
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
	var local *trivialAPI
	if target == "" {
		var err error
		if local, err = startTrivialAPI(); err != nil {
			return nil, err
		}
		defer local.stop()
		target = local.url
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
		if local != nil {
			st.TargetRefused, st.TargetAcceptFailures = local.budget.TakeRefused(), local.acceptFailures.Swap(0)
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

// trivialAPI is the in-process target of BenchMaxRate.
type trivialAPI struct {
	url            string
	srv            *http.Server
	budget         *connbudget.Listener
	acceptFailures atomic.Int64
}

// startTrivialAPI answers every request at once, the cheapest server the
// engine can be measured against. It shares this process's descriptors
// with the generator's connections, so it holds at most half of them:
// past what it carries it refuses connections (failed requests, the step
// not held) rather than running out of descriptors. When the generator's
// connections take the rest, accepting fails anyway: those failures are
// counted for the step's line, not logged one by one.
func startTrivialAPI() (*trivialAPI, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &trivialAPI{url: "http://" + l.Addr().String(), budget: connbudget.NewListener(l, connbudget.Share(2))}
	t.srv = &http.Server{Handler: trivialHandler(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(acceptFailureCounter{&t.acceptFailures, os.Stderr}, "", 0)}
	go t.srv.Serve(t.budget)
	return t, nil
}

func (t *trivialAPI) stop() { t.srv.Close() }

// acceptFailureCounter counts net/http's "Accept error" lines and passes
// any other server error line on to other.
type acceptFailureCounter struct {
	n     *atomic.Int64
	other io.Writer
}

func (c acceptFailureCounter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("http: Accept error")) {
		c.n.Add(1)
		return len(p), nil
	}
	return c.other.Write(p)
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
