package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/supervisor"
)

// TestRPCResilience runs the RPC experiments of [K] at a shortened length
// on one real lab and checks that each mechanism occurs — never a tuned
// outcome: with breakers off the connection pool reaches its limit and
// reads that need nothing from movies-rpc stall behind it; with breakers
// on ratings-rpc's breaker opens and webserver-rpc's do not (the passed-on
// 503s are not counted); with retries on movies-rpc receives more calls
// per second than the load sends.
func TestRPCResilience(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t)
	t.Run("cascade: breakers off then on, switched at runtime", func(t *testing.T) { cascade(t, l) })
	t.Run("retry storm: retries multiply the calls at movies-rpc", func(t *testing.T) { retryStorm(t, l) })
}

const shortCascade = `title: short cascade
description: movies slow above the timeout; breakers off then on
variants: [rpc]
resilience:
  - breakers: off
  - breakers: on
load: {scenario: steady, rate: 50, duration: 26s}
steady_state:
  warmup: 3s
  recovery: 5s
  probes:
    - {probe: read_success_rate, min: 0.99}
    - {probe: lost_writes}
    - {probe: audit}
method:
  - {fault: movies-latency, at: 5s, for: 12s, params: {latency: 2s}}
drain: 5s
`

func cascade(t *testing.T, l *labtest.Lab) {
	journals := runResilienceExperiment(t, l, shortCascade, 2)
	off, on := journals[0], journals[1]
	if off.Settings["breakers"] != "off" || on.Settings["breakers"] != "on" {
		t.Fatalf("journal settings %v then %v, want breakers off then on", off.Settings, on.Settings)
	}

	// Breakers off: webserver-rpc's pool to ratings-rpc (shared by reads and
	// writes) reaches its limit, and the reads — answered from ratings-rpc's
	// store, no movies-rpc needed — stall behind the waiting ratings.
	pool := journal.EdgeSeries(journal.SeriesPoolUtilisation, "webserver-rpc", "ratings-rpc")
	if peak := maxDuringFault(off, "rpc", pool); peak < 1 {
		t.Errorf("breakers off: %s peaked at %.2f during the fault, want 1 (the pool at its limit)", pool, peak)
	}
	before, _ := off.FindClient("rpc", journal.WindowBefore)
	during, _ := off.FindClient("rpc", journal.WindowDuring)
	b50, d50 := before.Reads.Latency.P50, during.Reads.Latency.P50
	if b50 == nil || d50 == nil || d50.D() < 5*b50.D() {
		t.Fatalf("breakers off: reads' median %v before, %v during the fault; want the reads stalled (at least 5× slower) behind the full pool", b50, d50)
	}
	onDuring, _ := on.FindClient("rpc", journal.WindowDuring)
	t.Logf("reads during the fault: breakers off median %v, success %.3f; breakers on median %v, success %.3f (before: median %v)",
		d50.D(), deref(during.Reads.SuccessRatio), onDuring.Reads.Latency.P50, deref(onDuring.Reads.SuccessRatio), b50.D())

	// Breakers on: ratings-rpc's breaker to movies-rpc opens; its 503s are
	// passed on, so webserver-rpc's breakers to ratings-rpc stay closed.
	if peak := maxDuringFault(on, "rpc", journal.BreakerSeries("ratings-rpc", "movies-rpc reads")); peak != journal.BreakerOpen {
		t.Errorf("breakers on: ratings-rpc's breaker to movies-rpc peaked at %v, want open (2)", peak)
	}
	for _, op := range []string{"reads", "writes"} {
		s := journal.BreakerSeries("webserver-rpc", "ratings-rpc "+op)
		if peak := maxDuringFault(on, "rpc", s); peak >= journal.BreakerOpen {
			t.Errorf("breakers on: %s reached %v; the passed-on 503s must not open it", s, peak)
		}
	}

	// The lab's own setting is back, and lab.json says so.
	st, err := supervisor.ReadState(l.Dir)
	if err != nil || !st.Options.Breakers {
		t.Errorf("after the runs: lab.json breakers %v (%v), want on again", st.Options.Breakers, err)
	}
	if out := l.MustRun("status"); !strings.Contains(out, "ratings-rpc -> movies-rpc: breakers on (reads closed") {
		t.Errorf("lab status after the runs:\n%s", out)
	}
}

const shortRetryStorm = `title: short retry storm
description: movies-rpc fails half its requests; the RPC callers retry 3 times
variants: [rpc]
resilience:
  - {breakers: off, retries: 3}
load: {scenario: steady, rate: 50, duration: 26s}
steady_state:
  warmup: 3s
  recovery: 5s
  probes:
    - {probe: success_rate, min: 0.99}
    - {probe: lost_writes}
    - {probe: audit}
method:
  - {fault: movies-errors, at: 5s, for: 12s}
drain: 5s
`

func retryStorm(t *testing.T, l *labtest.Lab) {
	j := runResilienceExperiment(t, l, shortRetryStorm, 1)[0]
	if j.Settings["retries"] != "3" {
		t.Fatalf("journal settings %v, want retries 3", j.Settings)
	}
	atMovies := sumDuringFault(j, "rpc", journal.PartSeries(journal.SeriesPartRPS, "movies-rpc"))
	load := sumDuringFault(j, "rpc", journal.SeriesClientRPS)
	edge := sumDuringFault(j, "rpc", journal.EdgeSeries(journal.SeriesEdgeCallsRPS, "ratings-rpc", "movies-rpc"))
	if load == 0 || atMovies <= load {
		t.Errorf("retries on: movies-rpc served %.0f calls while the load sent %.0f requests during the fault; want more (retries multiply the calls at the failing dependency)", atMovies, load)
	}
	if edge < atMovies*0.9 {
		t.Errorf("ratings-rpc's attempts on its edge to movies-rpc (%.0f) should account for what movies-rpc served (%.0f)", edge, atMovies)
	}
	t.Logf("during the fault: load %.0f requests, ratings-rpc → movies-rpc %.0f attempts, movies-rpc served %.0f (%.2f× the load)", load, edge, atMovies, atMovies/load)
}

// runResilienceExperiment runs an experiment file with `resilience`
// settings and returns its journals, one per setting, in order.
func runResilienceExperiment(t *testing.T, l *labtest.Lab, yaml string, runs int) []journal.Journal {
	t.Helper()
	file := filepath.Join(t.TempDir(), "exp.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := l.Run("chaos", "run", file, "--quiet") // a hypothesis may fail: that is not what this test checks
	ms := regexp.MustCompile(`Journal: (\S+)`).FindAllStringSubmatch(out, -1)
	if len(ms) != runs {
		t.Fatalf("lab chaos run: %d journals, want %d:\n%s", len(ms), runs, out)
	}
	if runs == 2 && !strings.Contains(out, "Comparison (") {
		t.Errorf("no comparison report in the output:\n%s", out)
	}
	var js []journal.Journal
	for _, m := range ms {
		j, err := journal.Read(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if j.Error != "" {
			t.Fatalf("run %s: %s", m[1], j.Error)
		}
		js = append(js, j)
	}
	return js
}

// faultWindow is the first fault's injection and heal in j.
func faultWindow(j journal.Journal) (from, to time.Time) {
	for _, f := range j.Faults {
		if from.IsZero() || f.InjectedAt.Before(from) {
			from = f.InjectedAt
		}
		if f.HealedAt.After(to) {
			to = f.HealedAt
		}
	}
	return from, to
}

func duringFault(j journal.Journal, variant, series string, fold func(v float64)) {
	from, to := faultWindow(j)
	for _, s := range j.Samples {
		if s.Variant != variant || s.At.Before(from) || s.At.After(to) {
			continue
		}
		if v, ok := s.Get(series); ok {
			fold(v)
		}
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

func maxDuringFault(j journal.Journal, variant, series string) float64 {
	peak := -1e9
	duringFault(j, variant, series, func(v float64) { peak = max(peak, v) })
	return peak
}

func sumDuringFault(j journal.Journal, variant, series string) float64 {
	var sum float64
	duringFault(j, variant, series, func(v float64) { sum += v })
	return sum
}
