package stream

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/servetest"
)

func TestMetricsArePromlintClean(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	requests, err := openRequestLog(t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer requests.Close()
	m := newMetrics(reg, requests)
	m.freshness.WithLabelValues("rated-movies").Observe(0.05)
	m.rows.WithLabelValues("movies").Set(3)
	servetest.LintLabMetrics(t, reg)
}
