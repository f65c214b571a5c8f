package serve

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ratingslab/lab/services/lib/metricname"
)

// DurationBuckets are the latency buckets (seconds) of every lab histogram
// about a request or call: 8 per doubling from 1 ms to 32.8 s (121
// bounds), so a quantile interpolated inside a bucket (histogram_quantile,
// dashboards) is within 9.05 % of the exact value wherever it falls — the
// old 1-2.5-5 buckets reported bucket edges (a 323 ms p99 read as 498 ms).
// Experiments and reports do not interpolate at all: their percentiles come
// from the load generator's per-request latencies (docs/architecture.md).
var DurationBuckets = DoublingBuckets(0.001, 32.768, 8)

// DoublingBuckets are histogram bounds from lo to hi (seconds), perDoubling
// of them per doubling, rounded to six significant digits so their `le`
// labels stay readable.
func DoublingBuckets(lo, hi float64, perDoubling int) []float64 {
	var out []float64
	for k := 0; ; k++ {
		b := lo * math.Pow(2, float64(k)/float64(perDoubling))
		if b > hi*(1+1e-9) {
			return out
		}
		mag := math.Pow(10, 5-math.Floor(math.Log10(b)))
		out = append(out, math.Round(b*mag)/mag)
	}
}

// redMetrics are the server-side Rate, Errors and Duration of every route.
type redMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newREDMetrics(reg prometheus.Registerer) *redMetrics {
	m := &redMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.HTTPRequestsTotal,
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricname.HTTPRequestDurationSeconds,
			Help:    "Time to serve an HTTP request, by route pattern and method.",
			Buckets: DurationBuckets,
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// middleware must wrap the outermost ServeMux: ServeMux sets r.Pattern on the
// request it is given, so after next returns r.Pattern holds the most specific
// pattern that matched (inner muxes overwrite outer ones). Handlers in between
// must not replace r (r.WithContext), or the label falls back to the outer pattern.
func (m *redMetrics) middleware(next http.Handler) http.Handler {
	return m.wrap(next, true)
}

// countingMiddleware is middleware without the duration histogram, for the
// admin listener: its routes (/metrics scraped every second, /healthz probed
// every 500 ms, /admin/, /debug/pprof/) are the lab looking at the part, and
// no dashboard, report or sampler reads their latency (the dashboards leave
// them out). With 122 buckets per route and method, their histograms were
// half of every series Prometheus held in an idle lab (~1,950 of 3,650),
// and its head block, the lab's largest growing memory, grows per series.
// Their requests stay counted.
func (m *redMetrics) countingMiddleware(next http.Handler) http.Handler {
	return m.wrap(next, false)
}

func (m *redMetrics) wrap(next http.Handler, timed bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			code := rec.status
			if code == 0 {
				code = http.StatusOK
				if p := recover(); p != nil {
					code = http.StatusInternalServerError
					defer panic(p)
				}
			}
			route, method := RouteLabel(r.Pattern), methodLabel(r.Method)
			m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
			if timed {
				m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// RouteLabel turns a ServeMux pattern ("GET /api/movies/{id}") into the
// route label ("/api/movies/{id}"): the method has its own label, and the
// pattern never holds ids, so the label set stays bounded.
func RouteLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:] // drop a host
	}
	return pattern
}

// methodLabel keeps the method label bounded against made-up methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (Flush, deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// MetricsHandler serves reg's metrics in the text format, uncompressed even
// when the scraper offers gzip. Prometheus scrapes every part over loopback
// once a second: gzip saved nothing there, cost CPU on every scrape and kept
// a deflate compressor (~1 MiB, its tables rewritten by every scrape) in
// each process's heap. errLog (nil: the default) gets the handler's own
// errors.
func MetricsHandler(reg *prometheus.Registry, errLog promhttp.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:           reg, // counts its own scrape errors
		ErrorLog:           errLog,
		DisableCompression: true,
	})
}
