package prom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// labPorts reserves a test port block (labtest.FreePortBase, so no lab of a
// test running alongside takes it) and listens on its supervisor and load
// ports (the test serves them).
func labPorts(t *testing.T) (layout.Ports, net.Listener, net.Listener) {
	t.Helper()
	ports := layout.Ports{Base: labtest.FreePortBase(t)}
	control, err := net.Listen("tcp", ports.Control())
	if err != nil {
		t.Fatal(err)
	}
	load, err := net.Listen("tcp", ports.Load())
	if err != nil {
		control.Close()
		t.Fatal(err)
	}
	return ports, control, load
}

// serveMetrics serves reg's /metrics on l until the test ends.
func serveMetrics(t *testing.T, l net.Listener, reg *prometheus.Registry) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// startPrometheus runs the installed prometheus with the lab's Args and
// stops it when the test ends; its output goes to the test log on failure.
func startPrometheus(t *testing.T, bin string, dir layout.Dir, ports layout.Ports, configFile string) {
	t.Helper()
	logFile, err := os.Create(dir.Path("prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, Args(configFile, dir, ports)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(dir.Path("prometheus.log"))
			t.Logf("prometheus output:\n%s", out)
		}
	})
}

func nonEmpty(ctx context.Context, base, q string) (Result, error) {
	r, err := Query(ctx, base, q)
	if err != nil {
		return r, err
	}
	if r.Empty() {
		return r, fmt.Errorf("%s: no data yet", q)
	}
	return r, nil
}

func TestRealPrometheusScrapesTheLabWithPartAndVariantLabels(t *testing.T) {
	bin, ok := Find()
	servetest.Need(t, ok, "prometheus (PATH, /usr/bin/prometheus)", InstallHint)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := layout.Dir(t.TempDir())
	ports, controlL, loadL := labPorts(t)

	// The supervisor reports on other parts and faults...
	supervisor := prometheus.NewRegistry()
	partUp := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lab_part_up", Help: "Whether the part's process runs."}, []string{"part"})
	faultActive := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lab_fault_active", Help: "Whether a fault is applied."}, []string{"fault", "target"})
	supervisor.MustRegister(partUp, faultActive)
	partUp.WithLabelValues("webserver-rpc").Set(1)
	faultActive.WithLabelValues("latency", "webserver-rpc->ratings-rpc").Set(1)
	serveMetrics(t, controlL, supervisor)

	// ...the load generator labels what it drives...
	load := prometheus.NewRegistry()
	loadRequests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lab_load_requests_total", Help: "Requests sent."}, []string{"variant", "kind", "outcome"})
	loadDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lab_load_request_duration_seconds", Help: "Request latency.",
		Buckets: []float64{.005, .01, .05, .1, .5, 1}}, []string{"variant", "kind"})
	load.MustRegister(loadRequests, loadDuration)
	loadRequests.WithLabelValues("rpc", "rate", "ok").Add(3)
	loadDuration.WithLabelValues("rpc", "rate").Observe(0.02)
	serveMetrics(t, loadL, load)

	// ...and a service knows nothing of parts or variants.
	service := prometheus.NewRegistry()
	httpRequests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lab_http_requests_total", Help: "HTTP requests served."}, []string{"route", "method", "code"})
	service.MustRegister(httpRequests)
	httpRequests.WithLabelValues("POST /api/ratings", "POST", "201").Inc()
	svc := httptest.NewServer(promhttp.HandlerFor(service, promhttp.HandlerOpts{}))
	defer svc.Close()

	configFile, err := WriteConfig(dir, ports, []Target{{Part: "webserver-rpc", Variant: "rpc", Addr: strings.TrimPrefix(svc.URL, "http://")}})
	if err != nil {
		t.Fatal(err)
	}
	startPrometheus(t, bin, dir, ports, configFile)
	base := URL(ports)

	servetest.Eventually(t, 60*time.Second, "prometheus ready", func() error { return Ready(ctx, base) })

	var r Result
	servetest.Eventually(t, 30*time.Second, "service scraped", func() (err error) {
		r, err = nonEmpty(ctx, base, `lab_http_requests_total{part="webserver-rpc",variant="rpc"}`)
		return err
	})
	if got := r.Series[0].Labels["route"]; got != "POST /api/ratings" {
		t.Errorf("route label = %q", got)
	}

	servetest.Eventually(t, 30*time.Second, "load generator scraped", func() (err error) {
		r, err = nonEmpty(ctx, base, `lab_load_requests_total`)
		return err
	})
	if l := r.Series[0].Labels; l["variant"] != "rpc" || l["part"] != "load" || l["exported_variant"] != "" {
		t.Errorf("load series labels = %v, want the driven variant rpc kept (honor_labels) and part=load", l)
	}

	servetest.Eventually(t, 30*time.Second, "supervisor scraped", func() (err error) {
		r, err = nonEmpty(ctx, base, `lab_part_up`)
		return err
	})
	if l := r.Series[0].Labels; l["part"] != "webserver-rpc" || l["variant"] != "lab" {
		t.Errorf("lab_part_up labels = %v, want part=webserver-rpc (the reported part) and variant=lab", l)
	}
	r, err = nonEmpty(ctx, base, `up{part="supervisor",variant="lab"} == 1`)
	if err != nil {
		t.Errorf("supervisor target not up: %v", err)
	}

	// Classic buckets answer histogram_quantile.
	r, err = nonEmpty(ctx, base, `histogram_quantile(0.99, sum by (le, variant) (lab_load_request_duration_seconds_bucket))`)
	if err != nil {
		t.Errorf("histogram_quantile over classic buckets: %v", err)
	} else if v := r.Series[0].Points[0].Value; v <= 0.01 || v > 0.05 {
		t.Errorf("p99 = %v, want within the (0.01, 0.05] bucket", v)
	}

	// A range query, as a Grafana panel runs it.
	now := time.Now()
	rr, err := QueryRange(ctx, base, `sum by (variant) (lab_load_requests_total)`, now.Add(-time.Minute), now, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Type != "matrix" || rr.Empty() || rr.Series[0].Points[len(rr.Series[0].Points)-1].Value != 3 {
		t.Errorf("range query = %+v, want a matrix ending at 3", rr)
	}

	// Template variables' dropdowns: label values of matching series.
	parts, err := LabelValues(ctx, base, "part", `up{variant=~"rpc|lab"}`, now.Add(-time.Minute), now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(parts, []string{"supervisor", "webserver-rpc"}) {
		t.Errorf("label values of part = %v, want [supervisor webserver-rpc]", parts)
	}

	// The parser of this Prometheus version.
	formatted, err := Parse(ctx, base, `sum by(variant)(rate(lab_load_requests_total{outcome="ok"}[15s]))`)
	if err != nil {
		t.Fatalf("Parse rejected a good query: %v", err)
	}
	if !strings.Contains(formatted, "rate(lab_load_requests_total{outcome=\"ok\"}[15s])") {
		t.Errorf("formatted = %q", formatted)
	}
	for _, bad := range []string{
		`sum by (variant (rate(lab_load_requests_total[15s]))`,
		`rate(lab_load_requests_total[$__rate_interval])`, // an unsubstituted Grafana variable
		`no_such_function(up)`,
	} {
		_, err := Parse(ctx, base, bad)
		if !IsBadQuery(err) {
			t.Errorf("Parse(%q) = %v, want a bad_data error", bad, err)
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Message == "" {
			t.Errorf("Parse(%q): error without message", bad)
		}
	}
	if _, err := Query(ctx, base, `sum(`); !IsBadQuery(err) {
		t.Errorf("Query of a broken query = %v, want a bad_data error", err)
	}
}

func TestClientReportsAnUnreachablePrometheus(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Query(ctx, "http://"+addr, "up")
	if err == nil || IsBadQuery(err) {
		t.Errorf("Query against a closed port = %v, want a transport error", err)
	}
}
