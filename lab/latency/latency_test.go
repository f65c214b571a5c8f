package latency

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// Every quantile of every distribution is within ErrorBound of the exact
// nearest-rank order statistic, and merging per-second counts gives the
// same figures as recording the whole window at once.
func TestQuantilesAreWithinTheBoundOfTheExactOrderStatistic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"uniform 1-50ms":     func() time.Duration { return time.Millisecond + time.Duration(rng.Int64N(int64(49*time.Millisecond))) },
		"lognormal ~3ms":     func() time.Duration { return time.Duration(math.Exp(rng.NormFloat64()*0.8) * 3e6) },
		"bimodal 1ms/2s":     func() time.Duration { return pick(rng, 0.97, time.Millisecond, 2*time.Second) },
		"sub-microsecond":    func() time.Duration { return time.Duration(rng.Int64N(900)) },
		"timeouts at 10s":    func() time.Duration { return pick(rng, 0.5, 10*time.Second, 3*time.Millisecond) },
		"one value repeated": func() time.Duration { return 322600 * time.Microsecond },
	}
	for name, draw := range dists {
		var whole, perSecond Recorder
		var seconds []Counts
		var all []time.Duration
		for s := range 20 {
			for range 50 + s*7 {
				d := draw()
				all = append(all, d)
				whole.Record(d)
				perSecond.Record(d)
			}
			seconds = append(seconds, perSecond.Cut())
		}
		merged := MergeAll(seconds...)
		for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
			exact := Exact(append([]time.Duration(nil), all...), q)
			got := merged.Quantile(q)
			if got != whole.Quantile(q) {
				t.Errorf("%s q%v: merged %v, recorded at once %v", name, q, got, whole.Quantile(q))
			}
			if rel := math.Abs(float64(got-exact)) / math.Max(float64(exact), 1); rel > ErrorBound {
				t.Errorf("%s q%v: %v, exact %v: off by %.4f%% > %.4f%%", name, q, got, exact, rel*100, ErrorBound*100)
			}
		}
		if merged.N() != uint64(len(all)) || merged.Max() != Exact(all, 1) || merged.Min() != Exact(all, 0) {
			t.Errorf("%s: n %d max %v min %v, want %d %v %v", name, merged.N(), merged.Max(), merged.Min(), len(all), Exact(all, 1), Exact(all, 0))
		}
	}
}

func pick(rng *rand.Rand, p float64, a, b time.Duration) time.Duration {
	if rng.Float64() < p {
		return a
	}
	return b
}

func TestNearestRank(t *testing.T) {
	// 100 values 1..100 ms: p99 is the 99th, p50 the 50th, p100 the max.
	var r Recorder
	var all []time.Duration
	for i := 1; i <= 100; i++ {
		r.Record(time.Duration(i) * time.Millisecond)
		all = append(all, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond, 0.001: time.Millisecond} {
		if got := Exact(all, q); got != want {
			t.Errorf("Exact q%v = %v, want %v", q, got, want)
		}
		if got := r.Quantile(q); math.Abs(float64(got-want)) > float64(want)*ErrorBound {
			t.Errorf("Quantile q%v = %v, want %v ± %.2f%%", q, got, want, ErrorBound*100)
		}
	}
	var empty Counts
	if empty.Quantile(0.99) != 0 || Exact(nil, 0.5) != 0 || (&Recorder{}).Quantile(0.5) != 0 {
		t.Error("empty sets have quantile 0")
	}
}

func TestCutResetsButKeepsWorking(t *testing.T) {
	var r Recorder
	r.Record(time.Second)
	first := r.Cut()
	r.Record(time.Millisecond)
	second := r.Cut()
	if first.N() != 1 || first.Max() != time.Second || second.N() != 1 || second.Max() != time.Millisecond || r.N() != 0 {
		t.Errorf("first %d/%v second %d/%v now %d", first.N(), first.Max(), second.N(), second.Max(), r.N())
	}
}

func BenchmarkRecord(b *testing.B) {
	var r Recorder
	d := 3 * time.Millisecond
	for i := 0; b.Loop(); i++ {
		r.Record(d + time.Duration(i&1023)*time.Microsecond)
	}
}
