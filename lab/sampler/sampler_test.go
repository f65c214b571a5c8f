package sampler

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/lag"
	"github.com/ratingslab/lab/lab/latency"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/machinecpu"
)

// partMetrics are a service's metrics (docs/architecture.md).
type partMetrics struct {
	reg         *prometheus.Registry
	http        *prometheus.CounterVec
	breaker     *prometheus.GaugeVec
	lag         *prometheus.GaugeVec
	freshness   *prometheus.HistogramVec
	transitions *prometheus.CounterVec
}

func newPartMetrics() *partMetrics {
	m := &partMetrics{
		reg:         prometheus.NewRegistry(),
		http:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lab_http_requests_total"}, []string{"route", "method", "code"}),
		breaker:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lab_breaker_state"}, []string{"dependency"}),
		lag:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lab_kafka_consumer_lag_messages"}, []string{"topic", "partition"}),
		freshness:   prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lab_view_freshness_seconds", Buckets: []float64{0.1, 1, 10}}, []string{"view"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lab_breaker_transitions_total"}, []string{"dependency", "from", "to"}),
	}
	m.reg.MustRegister(m.http, m.breaker, m.lag, m.freshness, m.transitions)
	return m
}

func serve(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// answer feeds n answers to the meter.
func answer(m *ClientMeter, variant string, kind load.Kind, movie int64, o, expected load.Outcome, n int, lat time.Duration) {
	for range n {
		m.Sent(variant, 0)
		m.Answered(load.Answer{Variant: variant, Kind: kind, MovieID: movie, Outcome: o, Expected: expected, Latency: lat})
	}
}

func TestDeriverTurnsTwoScrapesIntoPerVariantSeries(t *testing.T) {
	web := newPartMetrics()
	proc := newPartMetrics()
	// The public view of the stream variant: a real HTTP server answering
	// GET /api/movies like the webserver does.
	movie1, movie2 := int64(60), int64(40)
	api := http.NewServeMux()
	api.HandleFunc("GET /api/movies", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"total": 2, "movies": []map[string]any{
			{"movie_id": 1, "count": movie1, "sum_tenths": 10},
			{"movie_id": 2, "count": movie2, "sum_tenths": 10},
		}})
	})
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()

	targets := []Target{
		{Part: "webserver-rpc", Variant: "rpc", URL: serve(t, web.reg)},
		{Part: "ratings-stream", Variant: "stream", URL: serve(t, proc.reg)},
		{Part: "ratings-rpc", Variant: "rpc", URL: "http://127.0.0.1:1/metrics"}, // down
	}
	s := &Sampler{Targets: targets, Views: []View{{Variant: "stream", BaseURL: apiSrv.URL}}, Every: time.Second}
	d := NewDeriver([]string{"rpc", "stream"}, targets)
	meter := NewClientMeter([]string{"rpc", "stream"})
	ctx := context.Background()

	// Tick 1: state before the interval.
	web.http.WithLabelValues("POST /api/ratings", "POST", "201").Add(1000)
	sc := s.ScrapeOnce(ctx)
	start := sc.At
	first := d.Next(sc, meter.Cut(sc.At))
	if _, ok := first[0].Get(journal.SeriesClientRPS); ok {
		t.Errorf("no rate can come from a single scrape: %v", first[0].Values)
	}
	if v, _ := first[1].Get(journal.SeriesViewCount); v != 100 {
		t.Errorf("view count = %v, want 100", v)
	}

	// The second: rpc answers 90 ratings acknowledged in 10 ms and 10
	// failed after 2 s; 5 reads of an unknown movie rejected as expected,
	// and 5 valid reads rejected (an unexpected 4xx: a failure). stream
	// acknowledges 50 ratings of movie 1; 30 become visible, and movie 2
	// grows by 4 that nobody was told were accepted.
	answer(meter, "rpc", load.KindRating, 1, load.Acknowledged, load.Acknowledged, 90, 10*time.Millisecond)
	answer(meter, "rpc", load.KindRating, 1, load.Failed, load.Acknowledged, 10, 2*time.Second)
	answer(meter, "rpc", load.KindMovie, 900001, load.Rejected, load.Rejected, 5, time.Millisecond)
	answer(meter, "rpc", load.KindMovie, 3, load.Rejected, load.Acknowledged, 5, time.Millisecond)
	answer(meter, "stream", load.KindRating, 1, load.Acknowledged, load.Acknowledged, 50, 3*time.Millisecond)
	meter.Sent("stream", 0) // one still in flight
	web.http.WithLabelValues("POST /api/ratings", "POST", "201").Add(90)
	web.http.WithLabelValues("POST /api/ratings", "POST", "503").Add(10)
	web.breaker.WithLabelValues("ratings-rpc").Set(2)
	web.breaker.WithLabelValues("movies-rpc").Set(-1)
	web.transitions.WithLabelValues("ratings-rpc", "closed", "open").Inc()
	for range 97 {
		proc.freshness.WithLabelValues("rated-movies").Observe(0.05)
	}
	for range 3 {
		proc.freshness.WithLabelValues("rated-movies").Observe(5)
	}
	movie1 += 30
	movie2 += 4

	sc = s.ScrapeOnce(ctx)
	sc.At = start.Add(time.Second) // make the interval exactly one second
	got := d.Next(sc, meter.Cut(sc.At))
	rpc, stream := got[0], got[1]
	if rpc.Variant != "rpc" || stream.Variant != "stream" {
		t.Fatalf("variant order: %s, %s", rpc.Variant, stream.Variant)
	}
	want := map[string]float64{
		journal.SeriesClientRPS:                               110,
		journal.SeriesClientErrorRPS:                          15,
		journal.SeriesClientSuccessRatio:                      95.0 / 110,
		journal.SeriesClientReadSuccess:                       0.5, // 5 rejected as expected, 5 not
		journal.SeriesClientWriteSuccess:                      0.9,
		journal.SeriesClientRequestsTotal:                     110,
		journal.SeriesClientErrorsTotal:                       15,
		journal.SeriesClientAckedRatings:                      90,
		journal.SeriesClientInFlight:                          0,
		journal.SeriesServerRPS:                               100,
		journal.SeriesServerErrorRatio:                        0.1,
		journal.SeriesBreakerState:                            2,
		journal.BreakerSeries("webserver-rpc", "ratings-rpc"): 2,
		journal.BreakerSeries("webserver-rpc", "movies-rpc"):  -1,
		journal.SeriesBreakerTransitions:                      1,
		journal.SeriesScrapeErrors:                            1,
	}
	for name, w := range want {
		if v, ok := rpc.Get(name); !ok || !near(v, w) {
			t.Errorf("rpc %s = %v (present %v), want %v", name, v, ok, w)
		}
	}
	// Percentiles of the answers themselves, not of bucket edges: 100 of
	// the 110 took 1 to 10 ms, the 10 failures 2 s (p99 is the 109th).
	if p, _ := rpc.Get(journal.SeriesClientP50); math.Abs(p-0.010) > 0.010*latency.ErrorBound {
		t.Errorf("rpc p50 = %v, want 10ms", p)
	}
	if p, _ := rpc.Get(journal.SeriesClientP99); math.Abs(p-2) > 2*latency.ErrorBound {
		t.Errorf("rpc p99 = %v, want 2s", p)
	}
	if _, ok := rpc.Get(journal.SeriesConsumerLag); ok || rpc.IsUnknown(journal.SeriesConsumerLag) {
		t.Error("rpc has no consumer: its lag is absent, not unknown")
	}
	for name, w := range map[string]float64{
		journal.SeriesClientRPS:          50,
		journal.SeriesClientSuccessRatio: 1,
		journal.SeriesClientInFlight:     1,
		journal.SeriesViewCount:          134,
		journal.SeriesViewGap:            20, // 50 acknowledged, 30 visible
		journal.SeriesViewUnacknowledged: 4,  // visible, never acknowledged: not netted against the 20
		journal.SeriesScrapeErrors:       0,
	} {
		if v, ok := stream.Get(name); !ok || !near(v, w) {
			t.Errorf("stream %s = %v (present %v), want %v", name, v, ok, w)
		}
	}
	if p, _ := stream.Get(journal.SeriesFreshnessP99); p <= 1 || p > 10 {
		t.Errorf("stream freshness p99 = %v, want within (1s, 10s]", p)
	}
	if _, ok := stream.Get(journal.SeriesBreakerState); ok {
		t.Error("stream has no breaker")
	}
}

// Lag and dead letters come from outside the processes; when a side cannot
// be read the sample says unknown (null), never a stale number.
func TestDeriverSaysUnknownWhenTheLogCannotBeRead(t *testing.T) {
	d := NewDeriver([]string{"stream"}, nil)
	at := time.Unix(1000, 0)
	read := Scrape{At: at, Lags: map[string]lag.Lag{"stream": {Total: 42}}, DLQ: map[string]DLQRead{"stream": {End: 7}}}
	smp := d.Next(read, nil)[0]
	if v, ok := smp.Get(journal.SeriesConsumerLag); !ok || v != 42 {
		t.Errorf("lag = %v (present %v), want 42", v, ok)
	}
	if v, ok := smp.Get(journal.SeriesDLQRecords); !ok || v != 0 {
		t.Errorf("dlq = %v, want 0 (counted from the first read)", v)
	}
	down := Scrape{At: at.Add(time.Second), Lags: map[string]lag.Lag{"stream": {Err: errors.New("broker end offsets: connection refused")}},
		DLQ: map[string]DLQRead{"stream": {Err: "connection refused"}}}
	smp = d.Next(down, nil)[0]
	if _, ok := smp.Get(journal.SeriesConsumerLag); ok || !smp.IsUnknown(journal.SeriesConsumerLag) || !smp.IsUnknown(journal.SeriesDLQRecords) {
		t.Errorf("with the broker down lag and DLQ must be unknown: %+v", smp)
	}
	back := Scrape{At: at.Add(2 * time.Second), Lags: map[string]lag.Lag{"stream": {Total: 900}}, DLQ: map[string]DLQRead{"stream": {End: 27}}}
	smp = d.Next(back, nil)[0]
	if v, _ := smp.Get(journal.SeriesDLQRecords); v != 20 {
		t.Errorf("dlq = %v, want 20 since the first read", v)
	}
}

// The machine's CPU is one figure for the whole lab: every variant's
// sample carries the share busy since the previous scrape that read it; a
// scrape that could not read it leaves a gap, not a stale value.
func TestDeriverGivesEveryVariantTheMachinesBusyShare(t *testing.T) {
	d := NewDeriver([]string{"rpc", "stream"}, nil)
	at := time.Unix(1000, 0)
	scrape := func(sec int, busy, total uint64) Scrape {
		return Scrape{At: at.Add(time.Duration(sec) * time.Second), Machine: &machinecpu.Times{ByMode: [len(machinecpu.Modes)]uint64{0: busy, 3: total - busy}}} // user busy, the rest idle
	}
	for _, smp := range d.Next(scrape(0, 1000, 4000), nil) {
		if _, ok := smp.Get(journal.SeriesMachineCPUBusy); ok {
			t.Errorf("%s: a busy share from the first reading", smp.Variant)
		}
	}
	for _, smp := range d.Next(scrape(1, 1150, 4200), nil) {
		if v, ok := smp.Get(journal.SeriesMachineCPUBusy); !ok || v != 0.75 {
			t.Errorf("%s: busy %v (present %v), want 0.75", smp.Variant, v, ok)
		}
	}
	for _, smp := range d.Next(Scrape{At: at.Add(2 * time.Second)}, nil) {
		if _, ok := smp.Get(journal.SeriesMachineCPUBusy); ok {
			t.Errorf("%s: a busy share from a scrape without the machine's times", smp.Variant)
		}
	}
	if v, _ := d.Next(scrape(3, 1350, 4600), nil)[1].Get(journal.SeriesMachineCPUBusy); v != 0.5 {
		t.Errorf("busy %v after a gap, want 0.5 since the last reading", v)
	}
}

func TestDeriverTreatsACounterDropAsARestart(t *testing.T) {
	d := NewDeriver([]string{"rpc"}, []Target{{Part: "webserver-rpc", Variant: "rpc"}})
	at := time.Unix(1000, 0)
	scrape := func(sec int, n float64) Scrape {
		m := newPartMetrics()
		m.http.WithLabelValues("GET /api/movies", "GET", "200").Add(n)
		fams, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		f := Families{}
		for _, mf := range fams {
			f[mf.GetName()] = mf
		}
		return Scrape{At: at.Add(time.Duration(sec) * time.Second), Families: map[string]Families{"webserver-rpc": f}}
	}
	d.Next(scrape(0, 500), nil)
	if v, _ := d.Next(scrape(1, 600), nil)[0].Get(journal.SeriesServerRPS); v != 100 {
		t.Errorf("rps = %v, want 100", v)
	}
	// The part was killed and restarted: its counter starts again.
	if v, _ := d.Next(scrape(2, 30), nil)[0].Get(journal.SeriesServerRPS); v != 30 {
		t.Errorf("rps after restart = %v, want 30", v)
	}
}

func TestQuantileInterpolatesLikePromQL(t *testing.T) {
	b := map[float64]float64{0.1: 50, 0.2: 100, math.Inf(1): 100}
	if q, _ := quantile(0.5, b); !near(q, 0.1) {
		t.Errorf("p50 = %v, want 0.1", q)
	}
	if q, _ := quantile(0.75, b); !near(q, 0.15) {
		t.Errorf("p75 = %v, want 0.15", q)
	}
	if q, _ := quantile(0.99, map[float64]float64{1: 0, 2: 0, math.Inf(1): 10}); q != 2 {
		t.Errorf("all in +Inf: p99 = %v, want the highest finite bound 2", q)
	}
	if _, ok := quantile(0.99, map[float64]float64{1: 0, math.Inf(1): 0}); ok {
		t.Error("no observations: want no quantile")
	}
}

func TestRunScrapesEverySecondUntilCancelled(t *testing.T) {
	part := newPartMetrics()
	s := &Sampler{Targets: []Target{{Part: "in-process", Gatherer: part.reg}}, Every: 20 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	err := s.Run(ctx, func(sc Scrape) {
		if _, ok := sc.Families["in-process"]; !ok {
			t.Errorf("in-process gatherer not read: %v", sc.Errors)
		}
		n++
		if n == 3 {
			cancel()
		}
	})
	if n != 3 || err == nil {
		t.Errorf("ran %d ticks, err %v", n, err)
	}
}

// A scrape cut short by the end of the run is not a sample: its errors come
// from the stop, not from the lab (they used to end every run with a view
// that "could not be read").
func TestRunDropsTheScrapeCutShortByTheStop(t *testing.T) {
	reading := make(chan struct{}, 1)
	view := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case reading <- struct{}{}:
		default:
		}
		<-r.Context().Done() // answers only when the scrape gives up
	}))
	defer view.Close()
	s := &Sampler{Views: []View{{Variant: "stream", BaseURL: view.URL}}, Every: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-reading; cancel() }()
	var got []Scrape
	s.Run(ctx, func(sc Scrape) { got = append(got, sc) })
	for _, sc := range got {
		if strings.Contains(sc.Views["stream"].Err, "context canceled") {
			t.Fatalf("a scrape cut short by the stop was recorded: %+v", sc.Views)
		}
	}
}

// ratingsStreamScrapes makes a scrape of reg as ratings-stream's /metrics,
// sec seconds after a fixed start.
func ratingsStreamScrapes(t *testing.T, reg *prometheus.Registry) func(sec int) Scrape {
	at := time.Unix(1000, 0)
	return func(sec int) Scrape {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		f := Families{}
		for _, mf := range fams {
			f[mf.GetName()] = mf
		}
		return Scrape{At: at.Add(time.Duration(sec) * time.Second), Families: map[string]Families{"ratings-stream": f}}
	}
}

// A take-over shows as restore_seconds: the mean time of the partitions
// restored since the previous scrape (exact: the histogram's sum and count),
// held until the next take-over.
func TestDeriverHoldsTheLatestRestoreTime(t *testing.T) {
	d := NewDeriver([]string{"stream"}, []Target{{Part: "ratings-stream", Variant: "stream"}})
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lab_stream_restore_duration_seconds", Help: "-"}, []string{"from"})
	reg.MustRegister(h)
	scrape := ratingsStreamScrapes(t, reg)
	h.WithLabelValues("start").Observe(9) // before sampling began: not this run's
	d.Next(scrape(0), nil)
	if _, ok := d.Next(scrape(1), nil)[0].Get(journal.SeriesRestoreSeconds); ok {
		t.Error("restore_seconds before any take-over")
	}
	h.WithLabelValues("changelog").Observe(0.2)
	h.WithLabelValues("changelog").Observe(0.4)
	for sec := 2; sec <= 3; sec++ {
		if v, _ := d.Next(scrape(sec), nil)[0].Get(journal.SeriesRestoreSeconds); !near(v, 0.3) {
			t.Errorf("second %d: restore_seconds = %v, want 0.3 (the mean of the two, held)", sec, v)
		}
	}
}

// Changelog records read by restores add up since sampling began, split by
// where the reading started: on top of warm (standby) copies, or from
// scratch.
func TestDeriverCountsRestoreRecordsByStart(t *testing.T) {
	d := NewDeriver([]string{"stream"}, []Target{{Part: "ratings-stream", Variant: "stream"}})
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lab_stream_restore_changelog_records_total", Help: "-"}, []string{"start"})
	reg.MustRegister(c)
	scrape := ratingsStreamScrapes(t, reg)
	c.WithLabelValues("scratch").Add(500) // before sampling began: not this run's
	c.WithLabelValues("standby")
	d.Next(scrape(0), nil)
	c.WithLabelValues("scratch").Add(30)
	c.WithLabelValues("standby").Add(4)
	d.Next(scrape(1), nil)
	c.WithLabelValues("standby").Add(2)
	smp := d.Next(scrape(2), nil)[0]
	for series, want := range map[string]float64{journal.SeriesRestoreRecordsWarm: 6, journal.SeriesRestoreRecordsScratch: 30} {
		if v, ok := smp.Get(series); !ok || v != want {
			t.Errorf("%s = %v (%v), want %v", series, v, ok, want)
		}
	}
}
