package load

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/lib/duration"
)

// BenchmarkGenerator: deriving one request from (seed, seq).
func BenchmarkGenerator(b *testing.B) {
	g, err := NewGenerator(shipped(b, "steady"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		g.Request(uint64(i))
	}
}

// BenchmarkTargeter: what the attacker pays per request before the HTTP
// client: sequence number, request, URL and body.
func BenchmarkTargeter(b *testing.B) {
	g, err := NewGenerator(shipped(b, "steady"))
	if err != nil {
		b.Fatal(err)
	}
	v := &variantRun{target: Target{"rpc", "http://127.0.0.1:7710"}, base: "http://127.0.0.1:7710", runID: "steady-20260102T030405Z-abcd",
		source: g, limit: ^uint64(0), stats: newVariantStats()}
	b.ReportAllocs()
	var tgt vegeta.Target
	for b.Loop() {
		tgt = vegeta.Target{}
		if err := v.targeter(&tgt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResultHandling: classifying a result, tallying it and writing its
// ledger line.
func BenchmarkResultHandling(b *testing.B) {
	g, _ := NewGenerator(shipped(b, "steady"))
	w, err := ledgerForBench(b)
	if err != nil {
		b.Fatal(err)
	}
	v := &variantRun{target: Target{"rpc", ""}, runID: "r", source: g, stats: newVariantStats()}
	res := &vegeta.Result{Method: "POST", Code: 201, Timestamp: time.Now(), Latency: time.Millisecond}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		res.URL = "http://x/api/ratings#" + strconv.Itoa(i)
		v.handle(res, w)
	}
}

// BenchmarkEngine: the whole path — pacer, targeter, HTTP round trip to a
// trivial in-process handler, classification, tally, ledger — for b.N
// requests at 10000/s. Wall time per op is set by the rate; what it measures
// is the process CPU per request (cpu-ns/req, generator plus handler) and
// whether the rate held (achieved-req/s). `lab bench load` finds the
// highest rate held.
func BenchmarkEngine(b *testing.B) {
	const rate = 10000
	srv := httptest.NewServer(trivialHandler())
	defer srv.Close()
	s := defaultScenario()
	s.Name, s.Seed, s.Mix = "bench", 1, Mix{Rating: 1}
	s.Arrival = Arrival{Executor: ExecutorConstant, Rate: rate, Duration: duration.Duration(time.Duration(b.N) * time.Second / rate)}
	if s.Arrival.ExpectedRequests() == 0 {
		s.Arrival.Duration = duration.Duration(time.Second / rate)
	}
	cpu0 := processCPU()
	b.ResetTimer()
	sum, err := Run(context.Background(), Config{RunID: "bench", Scenario: &s, Targets: []Target{{"bench", srv.URL}},
		LedgerPath: filepath.Join(b.TempDir(), "bench.jsonl")})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	v := sum.Variants[0]
	if v.Outcomes[Acknowledged] != v.Scheduled {
		b.Fatalf("not every request succeeded: %+v %+v", v.Outcomes, v.Errors)
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(v.Sent), "cpu-ns/req")
	b.ReportMetric(v.AchievedRate, "achieved-req/s")
}

func ledgerForBench(b *testing.B) (*ledger.Writer, error) {
	return ledger.Create(filepath.Join(b.TempDir(), "bench.jsonl"), ledger.Header{RunID: "r", Variants: []string{"rpc"}})
}
