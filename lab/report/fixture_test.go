package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/services/lib/duration"
)

var update = flag.Bool("update", false, "rewrite the journal fixtures in testdata")

// The fixtures are journals of a 90 s experiment shaped like what the chaos
// runner records: 100 requests/s to each variant, a 20 s blackhole from
// +30 s on the edge each variant's ratings role depends on (webserver-rpc →
// ratings-rpc; ratings-stream → broker), then recovery. They are generated
// here, from a small model of each variant, so that they stay realistic and
// can be regenerated when the journal format changes:
//
//	go test ./lab/report -run TestFixturesAreCurrent -update
var fixtures = map[string]bool{
	"journal.json":              true,  // breakers on
	"journal-breakers-off.json": false, // the naked cascade
}

var fixtureStart = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

const (
	faultFrom = 30 // seconds after start
	faultTo   = 50
	runLength = 90
)

func fixtureJournal(breakers bool) journal.Journal {
	rng := rand.New(rand.NewPCG(7, 11))
	noise := func(scale float64) float64 { return (rng.Float64() - 0.5) * scale }
	onOff := map[bool]string{true: "on", false: "off"}[breakers]
	j := journal.Journal{
		Version:    journal.CurrentVersion,
		Kind:       journal.KindExperiment,
		Title:      "Ratings cut off for 20 s (breakers " + onOff + ")",
		Definition: json.RawMessage(`{"title":"ratings cut off","load":{"scenario":"steady","rate":100},"faults":[{"at":"30s","for":"20s","fault":"blackhole","targets":{"rpc":"webserver-rpc->ratings-rpc","stream":"ratings-stream->broker"}}]}`),
		Seed:       20260314,
		Variants:   []string{"rpc", "stream"},
		Settings:   map[string]string{"breakers": onOff, "delivery": "effectively-once", "scenario": "steady"},
		SLO:        0.99,
		Started:    fixtureStart,
		Ended:      fixtureStart.Add(runLength * time.Second),
		Ledger:     ".lab/ledgers/fixture.jsonl",
	}
	at := func(sec float64) time.Time { return fixtureStart.Add(time.Duration(sec * float64(time.Second))) }
	j.Faults = []journal.FaultEvent{
		{ID: "cut-rpc", Fault: "blackhole", Variant: "rpc", Targets: []string{"webserver-rpc->ratings-rpc"},
			PlannedAt: duration.Duration(faultFrom * time.Second), PlannedFor: duration.Duration((faultTo - faultFrom) * time.Second),
			InjectedAt: at(faultFrom + 0.012), HealedAt: at(faultTo + 0.009)},
		{ID: "cut-stream", Fault: "blackhole", Variant: "stream", Targets: []string{"ratings-stream->broker"},
			PlannedAt: duration.Duration(faultFrom * time.Second), PlannedFor: duration.Duration((faultTo - faultFrom) * time.Second),
			InjectedAt: at(faultFrom + 0.014), HealedAt: at(faultTo + 0.011)},
	}

	// RPC: timeouts (2 s) until the breaker opens after ~3 s, then fast
	// 503s; without breakers every rating waits for its timeout. After the
	// heal the breaker half-opens and closes.
	var reqs, errs, acked float64
	for sec := 1; sec <= runLength; sec++ {
		s := journal.Sample{At: at(float64(sec) + 0.003), Variant: "rpc"}
		during := sec > faultFrom && sec <= faultTo
		rps := 100 + noise(6)
		success := 1.0
		p50, p99 := 0.0042+noise(0.0008), 0.011+noise(0.002)
		breaker := 0.0
		switch {
		case during && breakers && sec <= faultFrom+3:
			success, p50, p99 = 0.45, 2.0, 2.0
			breaker = map[bool]float64{true: 0, false: 2}[sec <= faultFrom+2]
		case during && breakers:
			success, p50, p99, breaker = 0.4+noise(0.04), 0.0009, 0.0021, 2
			if sec%5 == 0 {
				breaker = 1 // half-open probe, fails, opens again
			}
		case during:
			success, p50, p99 = 0.38+noise(0.04), 2.0, 2.0
			rps = 45 + noise(5) // answers trail the timeouts
		case sec > faultTo && sec <= faultTo+2 && breakers:
			success, breaker = 0.7, 1
		case sec > faultTo && sec <= faultTo+4 && !breakers:
			success, p99 = 0.8, 1.6
		}
		reqs += rps
		errs += rps * (1 - success)
		acked += rps * success * 0.6 // 60 % of the mix are ratings
		s.Set(journal.SeriesClientRPS, rps)
		s.Set(journal.SeriesClientSuccessRatio, success)
		s.Set(journal.SeriesClientErrorRPS, rps*(1-success))
		s.Set(journal.SeriesClientRequestsTotal, math.Round(reqs))
		s.Set(journal.SeriesClientErrorsTotal, math.Round(errs))
		s.Set(journal.SeriesClientAckedRatings, math.Round(acked))
		s.Set(journal.SeriesClientP50, p50)
		s.Set(journal.SeriesClientP99, p99)
		s.Set(journal.SeriesClientReadSuccess, success)
		s.Set(journal.SeriesClientWriteSuccess, success)
		inFlight := 0.4
		if during && (!breakers || sec <= faultFrom+3) {
			inFlight = 2 * rps // every request waits its 2 s timeout
		}
		s.Set(journal.SeriesClientInFlight, math.Round(inFlight))
		s.Set(journal.SeriesServerRPS, rps+noise(2))
		s.Set(journal.SeriesServerErrorRatio, 1-success)
		if !breakers {
			breaker = journal.BreakerDisabled
		}
		s.Set(journal.SeriesBreakerState, breaker)
		s.Set(journal.BreakerSeries("webserver-rpc", "ratings-rpc"), breaker)
		s.Set(journal.BreakerSeries("ratings-rpc", "movies-rpc"), map[bool]float64{true: journal.BreakerClosed, false: journal.BreakerDisabled}[breakers])
		unacked := 0.0
		if during && sec <= faultFrom+3 {
			unacked = 2 // timed-out ratings (504) that ratings-rpc applied anyway
		}
		s.Set(journal.SeriesViewGap, 0)
		s.Set(journal.SeriesViewUnacknowledged, unacked)
		s.Set(journal.SeriesViewCount, 1200+math.Round(acked))
		s.Set(journal.SeriesPartsDown, 0)
		s.Set(journal.SeriesScrapeErrors, 0)
		s.Set(journal.SeriesMachineCPUBusy, machineBusy(sec))
		j.Samples = append(j.Samples, s)
	}

	// Stream: the webserver keeps accepting (the broker is fine); the
	// processor is cut off, so lag and the view gap grow, then drain.
	reqs, errs, acked = 0, 0, 0
	lag := 0.0
	for sec := 1; sec <= runLength; sec++ {
		s := journal.Sample{At: at(float64(sec) + 0.004), Variant: "stream"}
		during := sec > faultFrom && sec <= faultTo
		rps := 100 + noise(6)
		ratings := rps * 0.6
		switch {
		case during:
			lag += ratings
		case lag > 0:
			lag = math.Max(0, lag-400) // catching up at ~460 ratings/s
		}
		reqs += rps
		acked += ratings
		fresh := 0.09 + noise(0.02)
		if during || lag > 0 {
			fresh = 1 + float64(min(sec, faultTo)-faultFrom) + lag/460
		}
		s.Set(journal.SeriesClientRPS, rps)
		s.Set(journal.SeriesClientSuccessRatio, 1)
		s.Set(journal.SeriesClientErrorRPS, 0)
		s.Set(journal.SeriesClientRequestsTotal, math.Round(reqs))
		s.Set(journal.SeriesClientErrorsTotal, math.Round(errs))
		s.Set(journal.SeriesClientAckedRatings, math.Round(acked))
		s.Set(journal.SeriesClientReadSuccess, 1)
		s.Set(journal.SeriesClientWriteSuccess, 1)
		s.Set(journal.SeriesClientInFlight, 0)
		s.Set(journal.SeriesClientP50, 0.0031+noise(0.0006))
		s.Set(journal.SeriesClientP99, 0.0085+noise(0.002))
		s.Set(journal.SeriesServerRPS, rps+noise(2))
		s.Set(journal.SeriesServerErrorRatio, 0)
		s.Set(journal.SeriesConsumerLag, math.Round(lag+3+noise(4)))
		s.Set(journal.SeriesFreshnessP99, fresh)
		s.Set(journal.SeriesViewGap, math.Round(lag+2))
		s.Set(journal.SeriesViewUnacknowledged, 0)
		s.Set(journal.SeriesViewCount, 1200+math.Round(acked-lag))
		s.Set(journal.SeriesDLQRecords, 0)
		s.Set(journal.SeriesPartsDown, 0)
		s.Set(journal.SeriesScrapeErrors, 0)
		s.Set(journal.SeriesMachineCPUBusy, machineBusy(sec))
		j.Samples = append(j.Samples, s)
	}
	j.SortSamples()

	probe := func(name, tol, obs string, ok bool) journal.ProbeResult {
		return journal.ProbeResult{Name: name, Tolerance: tol, Observed: obs, OK: ok}
	}
	rpcDuringOK := false
	j.Phases = []journal.PhaseResult{
		{Name: journal.PhaseBefore, Variant: "rpc", At: at(faultFrom - 1), OK: true, Probes: []journal.ProbeResult{
			probe("success_rate", "success_rate >= 0.99", "1.0000", true), probe("p99_latency", "p99_latency <= 500ms", "11ms", true)}},
		{Name: journal.PhaseBefore, Variant: "stream", At: at(faultFrom - 1), OK: true, Probes: []journal.ProbeResult{
			probe("success_rate", "success_rate >= 0.99", "1.0000", true), probe("p99_latency", "p99_latency <= 500ms", "8.5ms", true),
			probe("consumer_lag", "consumer_lag <= 500", "7", true)}},
		{Name: journal.PhaseDuring, Variant: "rpc", At: at(faultTo - 1), OK: rpcDuringOK, Probes: []journal.ProbeResult{
			probe("success_rate", "success_rate >= 0.99 over every 5s window", "worst 0.3800 at +41s; 20 of 20 windows out of tolerance from +31s", false),
			probe("p99_latency", "p99_latency <= 500ms over every 5s window", map[bool]string{true: "worst 2s", false: "worst 2s at +31s; 20 of 20 windows out of tolerance from +31s"}[breakers], false)}},
		{Name: journal.PhaseDuring, Variant: "stream", At: at(faultTo - 1), OK: true, Probes: []journal.ProbeResult{
			probe("success_rate", "success_rate >= 0.99 over every 5s window", "worst 1.0000", true), probe("p99_latency", "p99_latency <= 500ms over every 5s window", "worst 8.7ms", true)}},
		{Name: journal.PhaseAfter, Variant: "rpc", At: at(runLength), OK: false, Probes: []journal.ProbeResult{
			probe("success_rate", "success_rate >= 0.99", "1.0000", true), probe("p99_latency", "p99_latency <= 500ms", "12ms", true),
			probe("lost_writes", "lost_writes <= 0", "0 (api), 0 (store)", true), probe("duplicates", "duplicates <= 0", "0 (api), 0 (store)", true),
			probe("phantoms", "phantoms <= 0", map[bool]string{true: "2 (api), 2 (store)", false: "0 (api), 0 (store)"}[breakers], !breakers),
			probe("ambiguous", "ambiguous reported", map[bool]string{true: "84: 61 applied, 23 not (api), 84: 61 applied, 23 not (store)", false: "1390: 1022 applied, 368 not (api), 1390: 1022 applied, 368 not (store)"}[breakers], true)}},
		{Name: journal.PhaseAfter, Variant: "stream", At: at(runLength), OK: true, Probes: []journal.ProbeResult{
			probe("success_rate", "success_rate >= 0.99", "1.0000", true), probe("p99_latency", "p99_latency <= 500ms", "8.1ms", true),
			probe("consumer_lag (after recovery)", "consumer_lag <= 500", "5", true), probe("consumer_lag (after drain)", "consumer_lag <= 500", "0", true),
			probe("lost_writes", "lost_writes <= 0", "0 (api), 0 (store)", true), probe("duplicates", "duplicates <= 0", "0 (api), 0 (store)", true),
			probe("phantoms", "phantoms <= 0", "0 (api), 0 (store)", true), probe("ambiguous", "ambiguous reported", "0: 0 applied, 0 not (api), 0: 0 applied, 0 not (store)", true)}},
	}
	j.Client = fixtureClient(j)

	baseMovies := []audit.MovieState{{MovieID: 1, Count: 700, SumTenths: 51000}, {MovieID: 2, Count: 500, SumTenths: 39000}}
	for _, v := range j.Variants {
		for _, src := range []string{audit.SourceAPI, audit.SourceStore} {
			j.Baseline = append(j.Baseline, audit.Snapshot{Variant: v, Source: src, At: fixtureStart, Movies: baseMovies})
		}
	}
	rpcAPI := audit.Result{Variant: "rpc", Source: audit.SourceAPI, Checked: true,
		Acknowledged: 4710, Rejected: 52, Failed: 610, Ambiguous: 84, Phantoms: 2, AmbiguousApplied: 61, AmbiguousNotApplied: 23,
		Movies: []audit.MovieFinding{{MovieID: 17, MinCount: 41, MaxCount: 43, Count: 44, MinSumTenths: 3210, MaxSumTenths: 3390, SumTenths: 3300, Phantoms: 1,
			Explanation: "count 44 (ledger allows 41..43), sum 330: at least 1 rating(s) the client saw fail applied"},
			{MovieID: 93, MinCount: 22, MaxCount: 22, Count: 23, MinSumTenths: 1720, MaxSumTenths: 1720, SumTenths: 1720, Phantoms: 1,
				Explanation: "count 23 (ledger allows 22..22), sum 172: at least 1 rating(s) the client saw fail applied"}}}
	rpcStore := rpcAPI
	rpcStore.Source = audit.SourceStore
	rpcStore.Requests = &audit.RequestCheck{Phantoms: 2, AmbiguousApplied: 61, AmbiguousNotApplied: 23, PhantomIDs: []string{"r-0001412-rpc", "r-0001977-rpc"}}
	if !breakers {
		rpcAPI.Ambiguous, rpcAPI.AmbiguousApplied, rpcAPI.AmbiguousNotApplied, rpcAPI.Phantoms, rpcAPI.Movies = 1390, 1022, 368, 0, nil
		rpcStore = rpcAPI
		rpcStore.Source = audit.SourceStore
		rpcStore.Requests = &audit.RequestCheck{AmbiguousApplied: 1022, AmbiguousNotApplied: 368}
	}
	rpcAPI.OK, rpcStore.OK = rpcAPI.Phantoms == 0, rpcStore.Phantoms == 0
	stream := audit.Result{Variant: "stream", Source: audit.SourceAPI, Checked: true, Acknowledged: 5420, Rejected: 55, OK: true}
	streamStore := stream
	streamStore.Source = audit.SourceStore
	j.Audit = []audit.Result{rpcAPI, rpcStore, stream, streamStore}
	j.Recovery = journal.ComputeRecovery(j)
	j.Verdict = map[string]bool{"rpc": false, "stream": true}
	return j
}

// fixtureClient summarizes the samples into the journal's client windows
// the way the runner would from the per-request feed (here from the
// per-second figures: answers rps-weighted, p99 the worst second's).
func fixtureClient(j journal.Journal) []journal.ClientWindow {
	var out []journal.ClientWindow
	for _, v := range j.Variants {
		for _, w := range []struct {
			name     string
			from, to float64
		}{{journal.WindowRun, 0, runLength}, {journal.WindowBefore, 5, faultFrom}, {journal.WindowDuring, faultFrom, faultTo}, {journal.WindowAfter, faultTo + 10, runLength}} {
			var answered, ok float64
			var p50, p99 float64
			for _, s := range j.Samples {
				sec := s.At.Sub(j.Started).Seconds()
				if s.Variant != v || sec <= w.from || sec > w.to {
					continue
				}
				answered += s.Values[journal.SeriesClientRPS]
				ok += s.Values[journal.SeriesClientRPS] * s.Values[journal.SeriesClientSuccessRatio]
				p50 = math.Max(p50, s.Values[journal.SeriesClientP50])
				p99 = math.Max(p99, s.Values[journal.SeriesClientP99])
			}
			ratio := ok / answered
			d := func(sec float64) *duration.Duration {
				return duration.Ptr(time.Duration(sec * float64(time.Second)).Round(time.Microsecond))
			}
			f := journal.ClientFigures{Answered: uint64(answered), AsExpected: uint64(ok), SuccessRatio: &ratio,
				Outcomes: map[string]uint64{"acknowledged": uint64(ok), "failed": uint64(answered) - uint64(ok)},
				Latency:  journal.LatencyFigures{P50: d(p50), P90: d(p99 * 0.8), P99: d(p99), P999: d(p99 * 1.05), Max: d(p99 * 1.1)}}
			out = append(out, journal.ClientWindow{Variant: v, Window: w.name, From: j.Started.Add(time.Duration(w.from) * time.Second),
				To: j.Started.Add(time.Duration(w.to) * time.Second), All: f, Writes: f})
		}
	}
	return out
}

func TestFixturesAreCurrent(t *testing.T) {
	for name, breakers := range fixtures {
		path := filepath.Join("testdata", name)
		j := fixtureJournal(breakers)
		if *update {
			if err := journal.Write(path, j); err != nil {
				t.Fatal(err)
			}
			continue
		}
		tmp := filepath.Join(t.TempDir(), name)
		if err := journal.Write(tmp, j); err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(tmp)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (regenerate with -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what the fixture model produces; regenerate with: go test ./lab/report -run TestFixturesAreCurrent -update", path)
		}
	}
}

// machineBusy is the fixture machine's busy share at second sec: both
// variants sample the same machine, busier while the fault is active.
func machineBusy(sec int) float64 {
	if sec >= faultFrom && sec < faultTo {
		return 0.62
	}
	return 0.41
}
