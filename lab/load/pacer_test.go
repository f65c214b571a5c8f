package load

import (
	"math"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/duration"
)

func TestPacerSpacesAConstantRateEvenlyAndStopsAtTheCount(t *testing.T) {
	p := newSchedulePacer(Arrival{Executor: ExecutorConstant, Rate: 100, Duration: duration.Duration(2 * time.Second)})
	if p.total != 200 {
		t.Fatalf("100/s for 2s: want 200 requests, got %d", p.total)
	}
	for _, hits := range []uint64{0, 1, 99, 199} {
		wait, stop := p.Pace(0, hits)
		want := time.Duration(hits+1) * 10 * time.Millisecond
		if stop || absDur(wait-want) > time.Microsecond {
			t.Errorf("hits %d at start: want wait %s, got %s (stop %v)", hits, want, wait, stop)
		}
	}
	if _, stop := p.Pace(5*time.Second, 200); !stop {
		t.Error("the pacer must stop after the schedule's 200 requests")
	}
	// Behind schedule: the next request is due now, not later.
	if wait, stop := p.Pace(time.Second, 10); wait != 0 || stop {
		t.Errorf("behind schedule: want wait 0, got %s", wait)
	}
}

func TestPacerFollowsARampAndItsCumulativeCount(t *testing.T) {
	a := Arrival{Executor: ExecutorRamping, StartRate: 0, Stages: []Stage{
		{Duration: duration.Duration(10 * time.Second), Target: 100},
		{Duration: duration.Duration(5 * time.Second), Target: 100},
		{Duration: duration.Duration(5 * time.Second), Target: 0},
	}}
	p := newSchedulePacer(a)
	if p.total != 500+500+250 {
		t.Fatalf("want 1250 requests, got %d", p.total)
	}
	// Ramp 0→100 over 10s: n requests are due at sqrt(n/5) seconds.
	for _, n := range []float64{1, 20, 125, 500} {
		got := p.dueAt(n).Seconds()
		if want := math.Sqrt(n / 5); math.Abs(got-want) > 1e-6 {
			t.Errorf("request %v due at %.6fs, want %.6fs", n, got, want)
		}
	}
	if got := p.dueAt(750).Seconds(); math.Abs(got-12.5) > 1e-6 {
		t.Errorf("flat stage: request 750 due at %.6fs, want 12.5s", got)
	}
	prev := time.Duration(-1)
	for n := 1.0; n <= float64(p.total); n++ {
		d := p.dueAt(n)
		if d < prev {
			t.Fatalf("due times must not go back: request %v at %s after %s", n, d, prev)
		}
		prev = d
	}
	if prev > a.TotalDuration() {
		t.Errorf("last request due at %s, after the schedule's end %s", prev, a.TotalDuration())
	}
	if r := p.Rate(5 * time.Second); math.Abs(r-50) > 1e-9 {
		t.Errorf("rate halfway up the ramp: want 50/s, got %v", r)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
