package prom

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestLintAcceptsConventionalLabMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lab_http_requests_total", Help: "HTTP requests served, by route and status code."}, []string{"route", "method", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lab_http_request_duration_seconds", Help: "Time to serve a request.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"route", "method"})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lab_kafka_consumer_lag_messages", Help: "Messages behind the partition's end."}, []string{"topic", "partition"})
	reg.MustRegister(req, dur, lag)
	req.WithLabelValues("GET /api/movies", "GET", "200").Inc()
	dur.WithLabelValues("GET /api/movies", "GET").Observe(0.003)
	for p := 0; p < 6; p++ {
		lag.WithLabelValues("ratings", fmt.Sprint(p)).Set(0)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	problems, err := Lint(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Errorf("problems in conventional metrics: %v", problems)
	}
}

func TestLintFindsConventionAndBoundednessProblems(t *testing.T) {
	exposition := `# HELP lab_ratings Ratings accepted.
# TYPE lab_ratings counter
lab_ratings 3
# TYPE lab_latency_ms gauge
lab_latency_ms 12
# HELP lab_requests_total Requests.
# TYPE lab_requests_total counter
lab_requests_total{request_id="7f3a"} 1
# HELP ratings_processed_total Ratings processed.
# TYPE ratings_processed_total counter
ratings_processed_total 1
# HELP lab_batch_duration_seconds Batch time.
# TYPE lab_batch_duration_seconds histogram
lab_batch_duration_seconds_bucket{le="+Inf"} 1
lab_batch_duration_seconds_sum 0.1
lab_batch_duration_seconds_count 1
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, exposition)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	problems, err := Lint(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.Metric+": "+p.Text)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"lab_ratings: counter metrics should have \"_total\" suffix",
		"lab_latency_ms: no help text",
		"lab_latency_ms: metric names should not contain abbreviated units",
		"lab_requests_total: label \"request_id\" is unbounded",
		"ratings_processed_total: metric outside the lab_ namespace",
		"lab_batch_duration_seconds: histogram without explicit buckets",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem %q in:\n%s", want, all)
		}
	}
}

func TestLintReportsAnEndpointThatIsNotMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"not here"}`, http.StatusNotFound)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Lint(ctx, srv.URL+"/metrics"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Lint of a 404 = %v, want an error naming the status", err)
	}
}
