package sampler

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ratingslab/lab/lab/journal"
)

// loadMetrics are the load generator's client metrics (lab/load/metrics.go).
type loadMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newLoadMetrics() *loadMetrics {
	m := &loadMetrics{
		reg:      prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lab_load_requests_total"}, []string{"variant", "kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lab_load_request_duration_seconds",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}, []string{"variant", "kind"}),
	}
	m.reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *loadMetrics) answer(variant, kind, outcome string, n int, latency time.Duration) {
	for range n {
		m.requests.WithLabelValues(variant, kind, outcome).Inc()
		m.duration.WithLabelValues(variant, kind).Observe(latency.Seconds())
	}
}

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

func TestDeriverTurnsTwoScrapesIntoPerVariantSeries(t *testing.T) {
	load := newLoadMetrics()
	web := newPartMetrics()
	proc := newPartMetrics()
	// The public view of the stream variant: a real HTTP server answering
	// GET /api/movies like the webserver does.
	viewCount := int64(100)
	api := http.NewServeMux()
	api.HandleFunc("GET /api/movies", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"total": 2, "movies": []map[string]any{
			{"movie_id": 1, "count": viewCount - 40, "sum_tenths": 10},
			{"movie_id": 2, "count": 40, "sum_tenths": 10},
		}})
	})
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()

	targets := []Target{
		{Part: "load", URL: serve(t, load.reg)},
		{Part: "webserver-rpc", Variant: "rpc", URL: serve(t, web.reg)},
		{Part: "ratings-stream", Variant: "stream", URL: serve(t, proc.reg)},
		{Part: "ratings-rpc", Variant: "rpc", URL: "http://127.0.0.1:1/metrics"}, // down
	}
	s := &Sampler{Targets: targets, Views: []View{{Variant: "stream", BaseURL: apiSrv.URL}}, Every: time.Second}
	d := NewDeriver([]string{"rpc", "stream"}, targets)
	ctx := context.Background()

	// Tick 1: state before the interval.
	web.http.WithLabelValues("POST /api/ratings", "POST", "201").Add(1000)
	proc.lag.WithLabelValues("ratings", "0").Set(3)
	sc := s.ScrapeOnce(ctx)
	start := sc.At
	first := d.Next(sc)
	if _, ok := first[0].Get(journal.SeriesClientRPS); ok {
		t.Errorf("no rate can come from a single scrape: %v", first[0].Values)
	}
	if v, _ := first[1].Get(journal.SeriesViewCount); v != 100 {
		t.Errorf("view count = %v, want 100", v)
	}

	// The second: rpc answers 90 acknowledged in 10 ms and 10 failed
	// after 2 s; 5 rejections (4xx) that count on neither side.
	load.answer("rpc", "rating", "acknowledged", 90, 10*time.Millisecond)
	load.answer("rpc", "rating", "failed", 10, 2*time.Second)
	load.answer("rpc", "movie", "rejected", 5, time.Millisecond)
	load.answer("stream", "rating", "acknowledged", 50, 3*time.Millisecond)
	web.http.WithLabelValues("POST /api/ratings", "POST", "201").Add(90)
	web.http.WithLabelValues("POST /api/ratings", "POST", "503").Add(10)
	web.breaker.WithLabelValues("ratings").Set(2)
	web.transitions.WithLabelValues("ratings", "closed", "open").Inc()
	proc.lag.WithLabelValues("ratings", "0").Set(40)
	proc.lag.WithLabelValues("ratings", "1").Set(2)
	for range 97 {
		proc.freshness.WithLabelValues("rated-movies").Observe(0.05)
	}
	for range 3 {
		proc.freshness.WithLabelValues("rated-movies").Observe(5)
	}
	viewCount = 130 // 30 of the 50 acknowledged are visible

	sc = s.ScrapeOnce(ctx)
	sc.At = start.Add(time.Second) // make the interval exactly one second
	got := d.Next(sc)
	rpc, stream := got[0], got[1]
	if rpc.Variant != "rpc" || stream.Variant != "stream" {
		t.Fatalf("variant order: %s, %s", rpc.Variant, stream.Variant)
	}
	want := map[string]float64{
		journal.SeriesClientRPS:           105,
		journal.SeriesClientErrorRPS:      10,
		journal.SeriesClientSuccessRatio:  0.9,
		journal.SeriesClientRequestsTotal: 105,
		journal.SeriesClientErrorsTotal:   10,
		journal.SeriesClientAckedRatings:  90,
		journal.SeriesServerRPS:           100,
		journal.SeriesServerErrorRatio:    0.1,
		journal.SeriesBreakerState:        2,
		journal.SeriesBreakerTransitions:  1,
		journal.SeriesScrapeErrors:        1,
	}
	for name, w := range want {
		if v, ok := rpc.Get(name); !ok || !near(v, w) {
			t.Errorf("rpc %s = %v (present %v), want %v", name, v, ok, w)
		}
	}
	// p50 falls in the 5..10 ms bucket; p99 in the 1..2.5 s bucket.
	if p, _ := rpc.Get(journal.SeriesClientP50); p <= 0.005 || p > 0.010 {
		t.Errorf("rpc p50 = %v, want within (5ms, 10ms]", p)
	}
	if p, _ := rpc.Get(journal.SeriesClientP99); p <= 1 || p > 2.5 {
		t.Errorf("rpc p99 = %v, want within (1s, 2.5s]", p)
	}
	if _, ok := rpc.Get(journal.SeriesConsumerLag); ok {
		t.Error("rpc has no consumer")
	}
	for name, w := range map[string]float64{
		journal.SeriesClientRPS:          50,
		journal.SeriesClientSuccessRatio: 1,
		journal.SeriesConsumerLag:        42,
		journal.SeriesViewCount:          130,
		journal.SeriesViewGap:            20, // 50 acknowledged, 30 visible
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
	d.Next(scrape(0, 500))
	if v, _ := d.Next(scrape(1, 600))[0].Get(journal.SeriesServerRPS); v != 100 {
		t.Errorf("rps = %v, want 100", v)
	}
	// The part was killed and restarted: its counter starts again.
	if v, _ := d.Next(scrape(2, 30))[0].Get(journal.SeriesServerRPS); v != 30 {
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
	load := newLoadMetrics()
	s := &Sampler{Targets: []Target{{Part: "load", Gatherer: load.reg}}, Every: 20 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	err := s.Run(ctx, func(sc Scrape) {
		if _, ok := sc.Families["load"]; !ok {
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

func TestDeriverCallsLagUnknownWhileAConsumerCannotBeRead(t *testing.T) {
	targets := []Target{{Part: "ratings-stream", Variant: "stream"}, {Part: "webserver-stream", Variant: "stream"}}
	d := NewDeriver([]string{"stream"}, targets)
	families := func(lag float64) Families {
		m := newPartMetrics()
		m.lag.WithLabelValues("ratings", "0").Set(lag)
		fams, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		f := Families{}
		for _, mf := range fams {
			f[mf.GetName()] = mf
		}
		return f
	}
	at := time.Unix(1000, 0)
	both := Scrape{At: at, Families: map[string]Families{"ratings-stream": families(40), "webserver-stream": families(2)}}
	if v, ok := d.Next(both)[0].Get(journal.SeriesConsumerLag); !ok || v != 42 {
		t.Errorf("lag = %v (present %v), want 42", v, ok)
	}
	// The processor is killed: the webserver's lag alone would read as
	// "no lag" while the backlog grows.
	killed := Scrape{At: at.Add(time.Second), Families: map[string]Families{"webserver-stream": families(2)},
		Errors: map[string]string{"ratings-stream": "connection refused"}}
	smp := d.Next(killed)[0]
	if v, ok := smp.Get(journal.SeriesConsumerLag); ok {
		t.Errorf("lag = %v while the processor is down, want absent", v)
	}
	if v, _ := smp.Get(journal.SeriesScrapeErrors); v != 1 {
		t.Errorf("scrape errors = %v, want 1", v)
	}
}
