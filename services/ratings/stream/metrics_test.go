package stream

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

func TestMetricsArePromlintCleanAndDLQReasonsStartAtZero(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.batch.Observe(0.01)
	servetest.LintLabMetrics(t, reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "lab_dlq_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && m.GetCounter().GetValue() == 0 {
					exported[l.GetValue()] = true
				}
			}
		}
	}
	for _, r := range model.DLQReasons {
		if !exported[r] {
			t.Errorf("lab_dlq_messages_total{reason=%q} is not exported at 0 before any dead letter", r)
		}
	}
	if len(exported) != len(model.DLQReasons) {
		t.Errorf("lab_dlq_messages_total exports reasons %v, want exactly %v", exported, model.DLQReasons)
	}
}

func TestCoalescedEmissionsKeepTheNewestRecordPerMovie(t *testing.T) {
	t.Parallel()
	rec := func(key, value string) kafka.Message { return kafka.Message{Key: []byte(key), Value: []byte(value)} }
	got := newestPerKey([]emitJob{
		{msgs: []kafka.Message{rec("1", "a1"), rec("2", "a2")}},
		{msgs: []kafka.Message{rec("3", "b3"), rec("1", "b1")}},
		{msgs: []kafka.Message{rec("2", "c2")}},
	})
	var pairs []string
	for _, m := range got {
		pairs = append(pairs, string(m.Key)+"="+string(m.Value))
	}
	if want := "3=b3 1=b1 2=c2"; strings.Join(pairs, " ") != want {
		t.Errorf("coalesced %v, want %s", pairs, want)
	}
}
