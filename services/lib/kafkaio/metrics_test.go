package kafkaio_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/ratingslab/lab/services/lib/kafkaio"
)

func TestMetricsArePromlintClean(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := kafkaio.NewMetrics(reg)
	m.Produced("ratings", 1)
	m.Consumed("ratings", 1)
	m.SetLag("ratings", 3, 7)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 3 {
		t.Fatalf("%d metric families, want 3", len(mfs))
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	m.DropLag("ratings", 3)
	if mfs, _ := reg.Gather(); len(mfs) != 2 {
		t.Errorf("a dropped partition's lag is still exported")
	}
}
