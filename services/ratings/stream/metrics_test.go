package stream

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestMetricsArePromlintCleanAndDLQReasonsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.batch.Observe(0.01)
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
	for _, mf := range mfs {
		if mf.GetName() == "lab_dlq_messages_total" && len(mf.GetMetric()) != 6 {
			t.Errorf("lab_dlq_messages_total exports %d reasons before any dead letter, want all 6", len(mf.GetMetric()))
		}
	}
}
