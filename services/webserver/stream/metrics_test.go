package stream

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestMetricsArePromlintClean(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.freshness.WithLabelValues("rated-movies").Observe(0.05)
	m.rows.WithLabelValues("movies").Set(3)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
