package apachekafka

import (
	"context"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/model"
)

// The supervisor probes every cluster node several times a second for the
// life of the lab. A probe must leave nothing running behind it: a kafka-go
// transport left open keeps refreshing the cluster's metadata every second,
// one more each probe (about three minutes after lab up, 1,645 of them in a cluster lab's
// supervisor, half a core and the brokers busy answering them).
func TestNodeReadyLeavesNoMetadataRefreshRunning(t *testing.T) {
	b := kafkatest.Start(t, kafkatest.LabTopics)
	before := refreshers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 10 {
		// kfake is node 0 with one replica per partition: ready, or an
		// answer naming what is missing — either way a full probe.
		_ = NodeReady(ctx, b.Addr, 0, model.Topics)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n := refreshers(t); n > before; n = refreshers(t) {
		if time.Now().After(deadline) {
			t.Fatalf("%d metadata refreshers running after 10 probes, %d before", n, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refreshers counts kafka-go transport pools refreshing metadata.
func refreshers(t *testing.T) int {
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	return strings.Count(b.String(), "kafka-go.(*connPool).discover(")
}
