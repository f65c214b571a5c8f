package chaos

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/latency"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/sampler"
	"github.com/ratingslab/lab/services/lib/variantname"
)

func TestQuantileInterpolatesLikePrometheus(t *testing.T) {
	inf := math.Inf(1)
	b := buckets{0.1: 50, 0.5: 90, 1: 100, inf: 100}
	for q, want := range map[float64]float64{0.5: 0.1, 0.99: 0.95, 0.25: 0.05} {
		if got, ok := b.quantile(q); !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("q%.2f = %v, want %v", q, got, want)
		}
	}
	// A rank in the +Inf bucket reads as the highest finite bound.
	if got, _ := (buckets{0.1: 1, inf: 10}).quantile(0.99); got != 0.1 {
		t.Errorf("q0.99 in +Inf = %v", got)
	}
	if _, ok := (buckets{}).quantile(0.5); ok {
		t.Error("an empty histogram has no quantile")
	}
	// A restarted part's counters start again from zero.
	if d := delta(buckets{1: 3, inf: 3}, buckets{1: 10, inf: 12}); d[inf] != 3 {
		t.Errorf("delta after a reset = %v", d)
	}
}

// evalPlan is a plan with a fault from +10s to +20s, a 3s window, and a 5s
// recovery: before (2s,10s], during (10s,20s], after (25s, end].
func evalPlan(t *testing.T) *Plan {
	t.Helper()
	src := `title: eval
load: {scenario: smoke, duration: 30s}
steady_state:
  warmup: 2s
  window: 3s
  recovery: 5s
  probes:
    - probe: success_rate
      min: 0.9
      why: tolerances small enough for hand-made samples
    - probe: p99_latency
      max: 200ms
      why: tolerances small enough for hand-made samples
      during: {max: 1s}
    - probe: consumer_lag
      max: 10
      why: tolerances small enough for hand-made samples
      during: skip
    - probe: lost_writes
method:
  - fault: ratings-crash
    at: 10s
    for: 10s
`
	e, err := Parse([]byte(src), "eval.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Validate(e, defaultLab(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// answers is a second of the load generator: n ratings answered in lat,
// failed of them not as expected.
func answers(n, failed int, lat time.Duration) sampler.ClientTick {
	var t sampler.ClientTick
	var rec latency.Recorder
	c := sampler.ClassFigures{Answered: uint64(n), AsExpected: uint64(n - failed), Outcomes: map[load.Outcome]uint64{load.Acknowledged: uint64(n - failed), load.Failed: uint64(failed)}}
	for range n {
		rec.Record(lat)
	}
	c.Latency = rec.Cut()
	t.ByClass[sampler.Writes] = c
	return t
}

// One tick per second for 30 s; fill says how a second went.
func ticks(t0 time.Time, fill func(sec int, tk *tick)) []tick {
	var out []tick
	for sec := 1; sec <= 30; sec++ {
		tk := tick{at: t0.Add(time.Duration(sec) * time.Second), fresh: buckets{}}
		tk.sample = journal.Sample{At: tk.at, Values: map[string]float64{}}
		tk.client = answers(10, 0, 40*time.Millisecond)
		fill(sec, &tk)
		out = append(out, tk)
	}
	return out
}

func TestEvaluatePhases(t *testing.T) {
	p := evalPlan(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newStore(p.Variants, nil)
	// rpc: half the requests fail from +12s to +15s, and answers take
	// 0.5-2s then; otherwise all fine.
	s.ticks[variantname.RPC] = ticks(t0, func(sec int, tk *tick) {
		if sec >= 12 && sec <= 15 {
			tk.client = answers(10, 5, 1980*time.Millisecond)
		}
	})
	// stream: requests hang (none answered, 40 in flight) from +11s to +13s,
	// so only the window (10s, 13s] saw no answer at all;
	// lag is reported throughout and back to 0 at the end.
	s.ticks[variantname.Stream] = ticks(t0, func(sec int, tk *tick) {
		lag := 0.0
		if sec >= 11 && sec <= 22 {
			lag = 500
		}
		tk.sample.Set(journal.SeriesConsumerLag, lag)
		if sec >= 11 && sec <= 13 {
			tk.client = sampler.ClientTick{InFlight: 40}
		}
	})
	rt := runTimes{t0: t0, loadEnd: t0.Add(30 * time.Second), drained: t0.Add(30 * time.Second)}
	audits := []audit.Result{
		{Variant: variantname.RPC, Source: audit.SourceStore, Checked: true, OK: true},
		{Variant: variantname.Stream, Source: audit.SourceStore, Checked: true, Lost: 2},
	}
	phases, verdict := p.evaluate(s, rt, audits)

	get := func(variant, phase, probe string) journal.ProbeResult {
		t.Helper()
		for _, ph := range phases {
			if ph.Variant != variant || ph.Name != phase {
				continue
			}
			for _, pr := range ph.Probes {
				if pr.Name == probe {
					return pr
				}
			}
		}
		t.Fatalf("no %s/%s/%s in %+v", variant, phase, probe, phases)
		return journal.ProbeResult{}
	}
	for _, c := range []struct {
		variant, phase, probe string
		ok                    bool
		observed              string
	}{
		{variantname.RPC, "before", "success_rate", true, "1.0000"},
		{variantname.RPC, "during", "success_rate", false, "worst 0.5000 at +14s; 6 of 10 windows out of tolerance from +12s"},
		{variantname.RPC, "during", "p99_latency", false, "worst 1.98s"}, // the during tolerance is 1s
		{variantname.RPC, "after", "success_rate", true, "1.0000"},
		{variantname.RPC, "after", "lost_writes", true, "0 (store)"},
		{variantname.Stream, "during", "success_rate", false, "worst no answers (40 in flight) at +13s; 1 of 10 windows out of tolerance from +13s"},
		{variantname.Stream, "before", "consumer_lag", true, "0"},
		{variantname.Stream, "after", "consumer_lag (after recovery)", true, "0"},
		{variantname.Stream, "after", "consumer_lag (after drain)", true, "0"},
		{variantname.Stream, "after", "lost_writes", false, "2 (store)"},
	} {
		got := get(c.variant, c.phase, c.probe)
		if got.OK != c.ok || !strings.HasPrefix(got.Observed, c.observed) {
			t.Errorf("%s %s %s = %v %q, want %v %q", c.variant, c.phase, c.probe, got.OK, got.Observed, c.ok, c.observed)
		}
	}
	// consumer_lag is skipped while faults are active, and not checked for rpc.
	for _, ph := range phases {
		for _, pr := range ph.Probes {
			if strings.HasPrefix(pr.Name, "consumer_lag") && (ph.Name == "during" || ph.Variant == variantname.RPC) {
				t.Errorf("consumer_lag checked in %s/%s", ph.Variant, ph.Name)
			}
		}
	}
	if verdict[variantname.RPC] || verdict[variantname.Stream] {
		t.Fatalf("verdict = %v, want both failed", verdict)
	}
}

// With no requests asked at all, a window is no evidence against the
// hypothesis; with requests hanging, it is.
func TestNoRequestsIsNotAStall(t *testing.T) {
	k, _ := lookupProbe("success_rate")
	b := bound{set: true, min: true, v: 0.99}
	if m := k.measureWindow(window{}); !m.acceptable(b) {
		t.Fatalf("no requests: %+v should be acceptable", m)
	}
	if m := k.measureWindow(window{inFlight: 3}); m.acceptable(b) {
		t.Fatalf("hanging requests: %+v should fail", m)
	}
}

// An interrupted run is judged on what it lived through: no "after", no
// audit, and "during" only up to the interruption.
func TestEvaluateInterrupted(t *testing.T) {
	p := evalPlan(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newStore(p.Variants, nil)
	for _, v := range p.Variants {
		s.ticks[v] = ticks(t0, func(int, *tick) {})[:12]
	}
	end := t0.Add(12 * time.Second)
	phases, _ := p.evaluate(s, runTimes{t0: t0, loadEnd: end, drained: end, interrupted: true}, nil)
	got := map[string]bool{}
	for _, ph := range phases {
		got[ph.Variant+"/"+ph.Name] = true
		for _, pr := range ph.Probes {
			if strings.HasPrefix(pr.Name, "lost_writes") {
				t.Errorf("%s/%s: the audit probe is checked without a drain", ph.Variant, ph.Name)
			}
			if ph.Name == "during" && strings.Contains(pr.Observed, "out of tolerance") {
				t.Errorf("%s during: %s", ph.Variant, pr.Observed)
			}
		}
	}
	for _, want := range []string{"rpc/before", "rpc/during", "stream/before", "stream/during"} {
		if !got[want] {
			t.Errorf("phase %s missing from %v", want, got)
		}
	}
	if got["rpc/after"] || got["stream/after"] {
		t.Errorf("an interrupted run has no after phase: %v", got)
	}
}

// A 4xx the generator did not ask for is a failure: the log variant
// refusing a movie the catalog has (its table is behind) fails the
// success rate, while an expected 4xx (an unknown movie) does not.
func TestAnUnexpected422FailsTheSuccessRate(t *testing.T) {
	k, _ := lookupProbe("success_rate")
	b := bound{set: true, min: true, v: 0.99}
	answersWith := func(unexpected uint64) sampler.ClientTick {
		var ct sampler.ClientTick
		ct.ByClass[sampler.Writes] = sampler.ClassFigures{Answered: 100, AsExpected: 100 - unexpected, Unexpected4xx: unexpected,
			Outcomes: map[load.Outcome]uint64{load.Acknowledged: 95 - unexpected, load.Rejected: 5 + unexpected}}
		return ct
	}
	expectedOnly := windowOf([]tick{{at: time.Unix(1, 0), client: answersWith(0)}}, time.Unix(0, 0), time.Unix(2, 0))
	if m := k.measureWindow(expectedOnly); !m.acceptable(b) || m.value != 1 {
		t.Errorf("5 rejections of unknown movies: %+v, want 1.0 (as expected)", m)
	}
	refused := windowOf([]tick{{at: time.Unix(1, 0), client: answersWith(2)}}, time.Unix(0, 0), time.Unix(2, 0))
	if m := k.measureWindow(refused); m.acceptable(b) || m.value != 0.98 || !strings.Contains(m.text, "2 unexpected 4xx") {
		t.Errorf("2 valid ratings answered 422: %+v, want 0.98, failing, and saying why", m)
	}
}

// A 5 s window holds the 5 samples before its end, although each sample
// is cut after its scrape and cuts jitter by milliseconds (here the sample
// 5 s back was cut 4.99 s before the last).
func TestATrailingWindowHoldsWholeSamplesDespiteJitter(t *testing.T) {
	var ticks []tick
	for _, s := range []float64{0, 1.010, 1.995, 2.999, 4.007, 5.0, 5.998} {
		ticks = append(ticks, tick{at: time.Unix(100, 0).Add(time.Duration(s * float64(time.Second)))})
	}
	end := ticks[len(ticks)-1].at
	if w := trailingOf(ticks, end, 5*time.Second); w.ticks != 5 {
		t.Errorf("5 s window ending at the last sample holds %d samples, want 5", w.ticks)
	}
	if w := trailingOf(ticks, ticks[3].at, 3*time.Second); w.ticks != 3 {
		t.Errorf("3 s window holds %d samples, want 3", w.ticks)
	}
}

// dead_letters reads ratings-dlq's count after the drain: enough records
// set aside holds, too few fails, and a broker that could not be read at
// the end is no evidence that they were.
func TestDeadLettersCountsWhatReachedTheDLQAfterTheDrain(t *testing.T) {
	k, ok := lookupProbe("dead_letters")
	if !ok {
		t.Fatal("no dead_letters probe")
	}
	b := bound{set: true, min: true, v: 40}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		last     func(s *journal.Sample)
		ok       bool
		observed string
	}{
		{"all 40 set aside", func(s *journal.Sample) { s.Set(journal.SeriesDLQRecords, 40) }, true, "40"},
		{"some dropped", func(s *journal.Sample) { s.Set(journal.SeriesDLQRecords, 25) }, false, "25"},
		{"broker unreadable at the end", func(s *journal.Sample) { s.SetUnknown(journal.SeriesDLQRecords) }, false, "unknown (the broker could not be read)"},
	} {
		ts := ticks(t0, func(sec int, tk *tick) {
			tk.sample.Set(journal.SeriesDLQRecords, float64(min(sec, 40)))
			if sec == 30 {
				tk.sample = journal.Sample{At: tk.at, Values: map[string]float64{}}
				c.last(&tk.sample)
			}
		})
		m := k.measureFinal(windowOf(ts, t0, t0.Add(time.Minute)), nil)
		if m.acceptable(b) != c.ok || m.text != c.observed {
			t.Errorf("%s: %+v, acceptable %v; want %v %q", c.name, m, m.acceptable(b), c.ok, c.observed)
		}
	}
}
