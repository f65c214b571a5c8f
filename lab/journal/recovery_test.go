package journal

import (
	"fmt"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/duration"
)

// scripted builds one sample per second for 90 s from a function of the
// second, with cumulative counters kept consistent with the rates.
func scripted(variant string, at func(sec int) (success, p99, lag, gap float64)) []Sample {
	var out []Sample
	var requests, errs float64
	for sec := 1; sec <= 90; sec++ {
		success, p99, lag, gap := at(sec)
		requests += 100
		errs += 100 * (1 - success)
		s := Sample{At: t0.Add(time.Duration(sec) * time.Second), Variant: variant}
		s.Set(SeriesClientRPS, 100)
		s.Set(SeriesClientSuccessRatio, success)
		s.Set(SeriesClientErrorRPS, 100*(1-success))
		s.Set(SeriesClientRequestsTotal, requests)
		s.Set(SeriesClientErrorsTotal, errs)
		s.Set(SeriesClientP99, p99)
		if lag >= 0 {
			s.Set(SeriesConsumerLag, lag)
		}
		s.Set(SeriesViewGap, gap)
		out = append(out, s)
	}
	return out
}

func TestComputeRecoveryMeasuresDetectionAndEachRecoveryFromTheHeal(t *testing.T) {
	// Fault from second 40 to 60.
	rpc := scripted("rpc", func(sec int) (float64, float64, float64, float64) {
		switch {
		case sec < 42: // baseline (the first errors show 2 s after injection)
			return 1, 0.020, -1, 3
		case sec <= 60:
			return 0.5, 2.0, -1, 200
		case sec == 61: // one good second, then bad again: not a recovery
			return 1, 2.0, -1, 200
		case sec == 62:
			return 0.8, 2.0, -1, 150
		case sec < 65: // success back from 63
			return 1, 2.0, -1, 100
		case sec < 72: // p99 back from 65
			return 1, 0.021, -1, 50
		default: // view caught up from 72
			return 1, 0.021, -1, 2
		}
	})
	stream := scripted("stream", func(sec int) (float64, float64, float64, float64) {
		switch {
		case sec <= 40:
			return 1, 0.004, 10, 30
		case sec <= 60: // the broker is away: no errors, lag piles up
			return 1, 0.004, 5000, 2000
		case sec < 70:
			return 1, 0.004, 800, 900
		default: // lag back from 70, the view from 70 too
			return 1, 0.004, 8, 20
		}
	})
	j := Journal{
		Version: CurrentVersion, Kind: KindExperiment, Variants: []string{"rpc", "stream"},
		Started: t0, Ended: t0.Add(90 * time.Second),
		Faults:  []FaultEvent{{ID: "partition", Fault: "blackhole", InjectedAt: t0.Add(40 * time.Second), HealedAt: t0.Add(60 * time.Second)}},
		Samples: append(rpc, stream...),
	}
	rs := ComputeRecovery(j)
	if len(rs) != 2 {
		t.Fatalf("want a recovery per variant, got %d", len(rs))
	}
	r, s := rs[0], rs[1]
	sec := func(d *duration.Duration) string {
		if d == nil {
			return "never"
		}
		return d.String()
	}
	for _, c := range []struct {
		what      string
		got, want string
	}{
		{"rpc detect", sec(r.TimeToDetect), "2s"},
		{"rpc success", sec(r.SuccessRecovered), "3s"},
		{"rpc p99", sec(r.P99Recovered), "5s"},
		{"rpc lag", sec(r.LagRecovered), "never"},
		{"rpc view", sec(r.ViewConverged), "12s"},
		{"stream detect", sec(s.TimeToDetect), "never"},
		{"stream success", sec(s.SuccessRecovered), "never"},
		{"stream lag", sec(s.LagRecovered), "10s"},
		{"stream view", sec(s.ViewConverged), "10s"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.what, c.got, c.want)
		}
	}
	// rpc failed half its requests from second 42 to 60: 19 s × 50.
	if r.FailedDuringFault != 950 {
		t.Errorf("rpc failed during fault = %d, want 950", r.FailedDuringFault)
	}
	// ...and 20 more (second 62) until success was back at 63; the run's budget
	// is 1 % of 9000 requests = 90.
	if got, want := r.ErrorBudgetBurned, 970.0/90; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("rpc budget burned = %v, want %v", got, want)
	}
	if r.BaselineSuccessRatio != 1 || r.BaselineP99Seconds != 0.020 || r.BaselineViewGap != 3 {
		t.Errorf("rpc baselines = %v %v %v", r.BaselineSuccessRatio, r.BaselineP99Seconds, r.BaselineViewGap)
	}
	if s.FailedDuringFault != 0 || s.ErrorBudgetBurned != 0 || s.BaselineLag != 10 {
		t.Errorf("stream: failed %d budget %v baseline lag %v", s.FailedDuringFault, s.ErrorBudgetBurned, s.BaselineLag)
	}
	// What the fault moved: every signal of rpc but lag (it has none);
	// in stream lag and view, never success or p99 — those are untouched,
	// with no recovery time to show.
	if fmt.Sprint(r.Touched) != "[success p99 view]" || fmt.Sprint(s.Touched) != "[lag view]" {
		t.Errorf("touched: rpc %v stream %v, want [success p99 view] and [lag view]", r.Touched, s.Touched)
	}
}

func TestComputeRecoveryOnlyForTheFaultsVariantAndOnlyWhenInjected(t *testing.T) {
	j := Journal{
		Version: CurrentVersion, Kind: KindExperiment, Variants: []string{"rpc", "stream"},
		Started: t0, Ended: t0.Add(90 * time.Second),
		Faults: []FaultEvent{
			{ID: "kill", Variant: "stream", InjectedAt: t0.Add(10 * time.Second)}, // never healed
			{ID: "failed", Variant: "rpc", Error: "proxy refused"},                // never injected
		},
	}
	rs := ComputeRecovery(j)
	if len(rs) != 1 || rs[0].Variant != "stream" || rs[0].FaultID != "kill" {
		t.Fatalf("got %+v", rs)
	}
	if rs[0].SuccessRecovered != nil || rs[0].Note == "" {
		t.Errorf("a fault never healed has no recovery and says why: %+v", rs[0])
	}
}

// A fault that moves nothing leaves every signal untouched: no detection and
// no recovery times — not "recovered in 1 s" because the first sample after
// the heal was fine. A lag nobody could read while the broker was away
// counts as moved.
func TestAnUntouchedVariantHasNoRecoveryTimes(t *testing.T) {
	calm := scripted("stream", func(sec int) (float64, float64, float64, float64) { return 1, 0.004, 2, 5 })
	for i := range calm {
		if sec := i + 1; sec > 40 && sec <= 50 {
			delete(calm[i].Values, SeriesConsumerLag)
			calm[i].SetUnknown(SeriesConsumerLag)
		}
	}
	j := Journal{Version: CurrentVersion, Kind: KindExperiment, Variants: []string{"stream"}, Started: t0, Ended: t0.Add(90 * time.Second),
		Faults: []FaultEvent{{ID: "m1", InjectedAt: t0.Add(40 * time.Second), HealedAt: t0.Add(50 * time.Second)}}, Samples: calm}
	r := ComputeRecovery(j)[0]
	if fmt.Sprint(r.Touched) != "[lag]" || r.TimeToDetect != nil || r.SuccessRecovered != nil || r.P99Recovered != nil || r.ViewConverged != nil {
		t.Errorf("only the unreadable lag was moved: %+v", r)
	}
	if r.LagRecovered == nil || r.LagRecovered.D() != time.Second {
		t.Errorf("lag back %v after the heal, want 1s (known and in band from the first sample after it)", r.LagRecovered)
	}
}

// A slow second long after the heal is not the fault's doing, and the
// ordinary noise of per-second p99s before the fault sets the band: a
// variant the fault did not move stays untouched.
func TestNoiseIsNotAnEffectOfTheFault(t *testing.T) {
	noisy := scripted("stream", func(sec int) (float64, float64, float64, float64) {
		p99 := 0.010
		if sec%4 == 0 {
			p99 = 0.030 // the usual spikes of a busy machine
		}
		if sec == 75 || sec == 76 {
			p99 = 0.500 // two slow seconds 25 s after the heal
		}
		return 1, p99, -1, 0
	})
	j := Journal{Version: CurrentVersion, Kind: KindExperiment, Variants: []string{"stream"}, Started: t0, Ended: t0.Add(90 * time.Second),
		Faults: []FaultEvent{{ID: "m1", InjectedAt: t0.Add(40 * time.Second), HealedAt: t0.Add(50 * time.Second)}}, Samples: noisy}
	r := ComputeRecovery(j)[0]
	if len(r.Touched) != 0 || r.P99Recovered != nil {
		t.Errorf("touched %v, p99 back %v: neither the usual spikes nor a slow stretch 25 s after the heal are the fault's", r.Touched, r.P99Recovered)
	}
}
