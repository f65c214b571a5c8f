package dashboards

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ratingslab/lab/lab/machinecpu"
	"github.com/ratingslab/lab/lab/prom"
	"github.com/ratingslab/lab/lab/prom/promtest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// contractLab serves the metric contract of docs/architecture.md (table
// Metrics) the way the lab's parts do, each part on its own /metrics, and
// keeps them moving: enough to run CheckLive against a real Prometheus
// without the whole lab. The lab e2e suite runs CheckLive on the real thing.
type contractLab struct {
	mu      sync.Mutex
	targets []prom.Target
	tick    []func(r *rand.Rand)
	fault   *prometheus.GaugeVec
}

var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func (l *contractLab) part(t *testing.T, name, variant string, honor bool, runtime bool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if runtime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	l.targets = append(l.targets, prom.Target{Part: name, Variant: variant, Addr: strings.TrimPrefix(srv.URL, "http://"), HonorLabels: honor})
	return reg
}

func (l *contractLab) every(f func(r *rand.Rand)) { l.tick = append(l.tick, f) }

func counter(reg *prometheus.Registry, name string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: name}, labels)
	reg.MustRegister(c)
	return c
}

func gauge(reg *prometheus.Registry, name string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name}, labels)
	reg.MustRegister(g)
	return g
}

func histogram(reg *prometheus.Registry, name string, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: name, Buckets: durationBuckets}, labels)
	reg.MustRegister(h)
	return h
}

func (l *contractLab) httpService(reg *prometheus.Registry, routes ...string) {
	requests := counter(reg, "lab_http_requests_total", "route", "method", "code")
	duration := histogram(reg, "lab_http_request_duration_seconds", "route", "method")
	inflight := gauge(reg, "lab_http_inflight_requests")
	gauge(reg, "lab_http_inflight_limit").WithLabelValues().Set(200)
	queued := gauge(reg, "lab_http_queued_requests")
	gauge(reg, "lab_http_queue_limit").WithLabelValues().Set(100)
	rejected := counter(reg, "lab_http_rejected_requests_total", "reason")
	l.every(func(r *rand.Rand) {
		inflight.WithLabelValues().Set(float64(r.IntN(200)))
		queued.WithLabelValues().Set(float64(r.IntN(100)))
		rejected.WithLabelValues([]string{"queue_full", "queue_timeout"}[r.IntN(2)]).Inc()
		for _, route := range routes {
			method, path, _ := strings.Cut(route, " ")
			code := "200"
			if r.IntN(10) == 0 {
				code = "503"
			}
			requests.WithLabelValues(path, method, code).Inc()
			duration.WithLabelValues(path, method).Observe(r.Float64() / 10)
		}
		requests.WithLabelValues("/metrics", "GET", "200").Inc()
	})
}

func (l *contractLab) caller(reg *prometheus.Registry, dependency string) {
	calls := counter(reg, "lab_dependency_calls_total", "dependency", "operation", "result")
	duration := histogram(reg, "lab_dependency_call_duration_seconds", "dependency", "operation")
	state := gauge(reg, "lab_breaker_state", "dependency", "operation")
	gauge(reg, "lab_dependency_pool_connections", "dependency").WithLabelValues(dependency).Set(10)
	inUse := gauge(reg, "lab_dependency_pool_in_use_connections", "dependency")
	waiting := gauge(reg, "lab_dependency_pool_waiting_calls", "dependency")
	l.every(func(r *rand.Rand) {
		for _, op := range []string{"read", "write"} {
			calls.WithLabelValues(dependency, op, []string{"success", "success", "failure", "rejected", "passed_on"}[r.IntN(5)]).Inc()
			duration.WithLabelValues(dependency, op).Observe(r.Float64() / 20)
			state.WithLabelValues(dependency, op).Set(float64(r.IntN(3)))
		}
		inUse.WithLabelValues(dependency).Set(float64(r.IntN(11)))
		waiting.WithLabelValues(dependency).Set(float64(r.IntN(5)))
	})
}

func (l *contractLab) kafkaClient(reg *prometheus.Registry, produces []string, consumes []string) {
	produced := counter(reg, "lab_kafka_produced_messages_total", "topic")
	consumed := counter(reg, "lab_kafka_consumed_messages_total", "topic")
	lag := gauge(reg, "lab_kafka_consumer_lag_messages", "topic", "partition")
	l.every(func(r *rand.Rand) {
		for _, topic := range produces {
			produced.WithLabelValues(topic).Add(float64(1 + r.IntN(5)))
		}
		for _, topic := range consumes {
			consumed.WithLabelValues(topic).Add(float64(1 + r.IntN(5)))
			for p := 0; p < 6; p++ {
				lag.WithLabelValues(topic, fmt.Sprint(p)).Set(float64(r.IntN(50)))
			}
		}
	})
}

func (l *contractLab) view(reg *prometheus.Registry, views ...string) {
	freshness := histogram(reg, "lab_view_freshness_seconds", "view")
	rows := gauge(reg, "lab_view_rows", "view")
	l.every(func(r *rand.Rand) {
		for _, v := range views {
			freshness.WithLabelValues(v).Observe(r.Float64())
			rows.WithLabelValues(v).Set(100)
		}
	})
}

func newContractLab(t *testing.T) *contractLab {
	l := &contractLab{}

	sup := l.part(t, prom.SupervisorPart, prom.VariantLab, true, true)
	sup.MustRegister(machinecpu.NewCollector()) // this machine's own /proc/stat
	partUp := gauge(sup, "lab_part_up", "part")
	l.fault = gauge(sup, "lab_fault_active", "fault", "target")
	for _, p := range []string{"broker", "webserver-rpc", "ratings-rpc", "movies-rpc", "webserver-stream", "ratings-stream", "movies-connect"} {
		partUp.WithLabelValues(p).Set(1)
	}

	load := l.part(t, prom.LoadPart, prom.VariantLoad, true, true)
	loadRequests := counter(load, "lab_load_requests_total", "variant", "kind", "outcome", "expected")
	loadDuration := histogram(load, "lab_load_request_duration_seconds", "variant", "kind")
	l.every(func(r *rand.Rand) {
		for _, v := range []string{variantname.RPC, variantname.Stream} {
			for _, kind := range []string{"rating", "movie", "list"} {
				loadRequests.WithLabelValues(v, kind, "acknowledged", "true").Add(3)
				loadRequests.WithLabelValues(v, kind, []string{"rejected", "failed", "ambiguous"}[r.IntN(3)], "false").Inc()
				loadDuration.WithLabelValues(v, kind).Observe(r.Float64() / 5)
			}
		}
	})

	ws := l.part(t, "webserver-rpc", variantname.RPC, false, true)
	l.httpService(ws, "POST /api/ratings", "GET /api/movies", "GET /api/movies/{id}")
	l.caller(ws, "ratings-rpc")
	rr := l.part(t, "ratings-rpc", variantname.RPC, false, true)
	l.httpService(rr, "POST /ratings", "GET /ratings")
	l.caller(rr, "movies-rpc")
	mr := l.part(t, "movies-rpc", variantname.RPC, false, true)
	l.httpService(mr, "GET /movies/{id}")

	wss := l.part(t, "webserver-stream", variantname.Stream, false, true)
	l.httpService(wss, "POST /api/ratings", "GET /api/movies")
	l.kafkaClient(wss, []string{"ratings"}, []string{"rated-movies", "movies"})
	l.view(wss, "rated-movies", "movies")
	rs := l.part(t, "ratings-stream", variantname.Stream, false, true)
	l.kafkaClient(rs, []string{"rated-movies"}, []string{"ratings", "movies"})
	batch := histogram(rs, "lab_stream_batch_duration_seconds")
	counter(rs, "lab_dlq_messages_total", "reason") // no dead letters: the panel reads zero
	l.every(func(r *rand.Rand) { batch.WithLabelValues().Observe(r.Float64() / 50) })
	restore := histogram(rs, "lab_stream_restore_duration_seconds", "from") // partitions taken over now and then
	l.every(func(r *rand.Rand) { restore.WithLabelValues("changelog").Observe(r.Float64() / 5) })
	standbyLag := gauge(rs, "lab_stream_standby_lag_records") // a standby replica following the changelog
	gauge(rs, "lab_stream_standby_partitions").WithLabelValues().Set(3)
	l.every(func(r *rand.Rand) { standbyLag.WithLabelValues().Set(float64(r.IntN(20))) })
	clRecords, clTxns := counter(rs, "lab_stream_changelog_records_total"), counter(rs, "lab_stream_changelog_transactions_total")
	l.every(func(r *rand.Rand) {
		clTxns.WithLabelValues().Add(6)
		clRecords.WithLabelValues().Add(float64(6 + r.IntN(30)))
	})
	mc := l.part(t, "movies-connect", variantname.Stream, false, true)
	l.kafkaClient(mc, []string{"movies"}, nil)
	for _, reg := range []*prometheus.Registry{wss, rs, mc} {
		l.codec(reg)
	}
	sr := l.part(t, "schema-registry", "lab", false, true)
	decisions := counter(sr, "lab_schema_registry_decisions_total", "decision")
	l.every(func(*rand.Rand) { decisions.WithLabelValues("existing").Inc() })
	return l
}

// codec is a part's event codec metrics (services/lib/eventformat), moving.
func (l *contractLab) codec(reg *prometheus.Registry) {
	records := counter(reg, "lab_event_records_total", "topic", "direction", "schema")
	counter(reg, "lab_event_decode_failures_total", "topic", "reason").WithLabelValues("ratings", "malformed")
	counter(reg, "lab_schema_registry_requests_total", "operation", "result").WithLabelValues("register", "refused")
	l.every(func(r *rand.Rand) {
		records.WithLabelValues("ratings", "produced", "avro:1").Add(float64(1 + r.IntN(5)))
	})
}

// run moves the metrics every 100ms until ctx ends.
func (l *contractLab) run(ctx context.Context) {
	r := rand.New(rand.NewPCG(1, 2))
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		l.mu.Lock()
		for _, f := range l.tick {
			f(r)
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// problems splits CheckLive's error into one line per problem.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	var ps []string
	for i, line := range strings.Split(err.Error(), "\n") {
		if i > 0 && !strings.HasPrefix(line, "    ") {
			ps = append(ps, line)
		}
	}
	return ps
}

func TestCheckLiveAgainstAPrometheusScrapingTheMetricContract(t *testing.T) {
	lab := newContractLab(t)
	config, err := prom.Render(lab.targets)
	if err != nil {
		t.Fatal(err)
	}
	url := promtest.Start(t, config)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go lab.run(ctx)
	variants := []string{variantname.RPC, variantname.Stream}

	// Without a fault injected, exactly the fault queries lack data.
	var last []string
	servetest.EventuallyEvery(t, 60*time.Second, time.Second, "CheckLive to narrow down to the missing fault", func() error {
		last = problems(CheckLive(ctx, url, variants))
		if len(last) == 0 {
			return errors.New("no problems, want the fault queries'")
		}
		for _, p := range last {
			if !strings.Contains(strings.ToLower(p), "fault") {
				return fmt.Errorf("last problems:\n%s", strings.Join(last, "\n"))
			}
		}
		return nil
	})
	for _, want := range []string{`overview.json panel 101 "Active faults"`, `panel 0 "annotation: Faults"`, "required series lab_fault_active"} {
		if !strings.Contains(strings.Join(last, "\n"), want) {
			t.Errorf("problems without a fault lack %q:\n%s", want, strings.Join(last, "\n"))
		}
	}

	// Inject a fault: every query of every dashboard has data.
	lab.mu.Lock()
	lab.fault.WithLabelValues("latency", "webserver-rpc->ratings-rpc").Set(1)
	lab.mu.Unlock()
	servetest.EventuallyEvery(t, 60*time.Second, time.Second, "CheckLive to pass with a fault injected", func() error {
		return CheckLive(ctx, url, variants)
	})
	// Checking one variant only is fine too.
	if err := CheckLive(ctx, url, []string{variantname.RPC}); err != nil {
		t.Errorf("CheckLive(rpc): %v", err)
	}
}

func TestCheckLiveReportsAnUnreachablePrometheus(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := CheckLive(ctx, url, []string{variantname.RPC})
	if err == nil || !strings.Contains(err.Error(), "does not parse") && !strings.Contains(err.Error(), "connect") {
		t.Errorf("CheckLive against nothing = %v, want errors naming the failure", err)
	}
}
