package stream

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// batchesProcessed is how many batches the processor has committed.
func batchesProcessed(t *testing.T, p *Processor) uint64 {
	t.Helper()
	var m dto.Metric
	if err := p.metrics.batch.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// The consumer-throttle fault: with a throttle of d the processor takes at
// most ThrottledMaxBatch ratings per batch and sleeps d before each, so it
// counts at most about ThrottledMaxBatch/d ratings per second and a backlog
// stays a backlog (lag) instead of being swallowed by ever larger batches.
// Healed, it catches up with full batches and the counts are exact.
func TestThrottleCapsTheBatchSoLagBuildsUnderLoad(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	reg := prometheus.NewRegistry()
	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{l.broker.Addr}}, kafkaio.NewMetrics(reg), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	r := (&lab{t: t, k: k}).start(t.TempDir())
	warm := newLedger()
	l.ratings(warm, 10, 10, 30)
	servetest.WaitFor(t, 30*time.Second, "the processor to count", func() (bool, string) { return stateMatches(warm, r.p) })

	const d = 200 * time.Millisecond
	r.p.SetThrottle(d)
	g := newLedger()
	g.counts = warm.counts
	l.ratings(g, 3000, 10, 31) // arrives at once: far above 100/200ms
	backlog := g.total() - r.p.committed.Load()

	// Time for 500 more ratings once counting resumed: at least 5 batches,
	// so at least 4 whole sleeps between them.
	servetest.WaitFor(t, 10*time.Second, "counting under the throttle", func() (bool, string) {
		return r.p.committed.Load() > 10, fmt.Sprint(r.p.committed.Load())
	})
	c0, b0, t0 := r.p.committed.Load(), batchesProcessed(t, r.p), time.Now()
	servetest.WaitFor(t, 20*time.Second, "500 more ratings counted", func() (bool, string) {
		return r.p.committed.Load() >= c0+500, fmt.Sprint(r.p.committed.Load() - c0)
	})
	elapsed := time.Since(t0)
	c1, b1 := r.p.committed.Load(), batchesProcessed(t, r.p)
	if elapsed < 4*d {
		t.Errorf("500 ratings counted in %s under a %s throttle; at most %d per batch allows no faster than %s", elapsed, d, ThrottledMaxBatch, 4*d)
	}
	if per := float64(c1-c0) / float64(b1-b0); per > ThrottledMaxBatch {
		t.Errorf("%.0f ratings per batch under the throttle, want at most %d", per, ThrottledMaxBatch)
	}
	if lag := g.total() - c1; lag < backlog/2 {
		t.Errorf("lag fell from %d to %d within %s: the throttle does not hold it", backlog, lag, elapsed)
	}
	// The exported lag counts from what is committed, not from what the
	// fetcher has queued ahead of the throttled batches (that would read
	// about 0). It is refreshed every LagRefresh, while the throttled
	// processor keeps counting up to 500/s: a quarter of the backlog is
	// safely below what it must show.
	servetest.WaitFor(t, 3*kafkaio.LagRefresh, "the lag gauge to show the backlog", func() (bool, string) {
		lag := ratingsLag(t, reg)
		return lag >= float64(backlog)/4, fmt.Sprintf("lab_kafka_consumer_lag_messages %v with %d not counted", lag, g.total()-r.p.committed.Load())
	})
	t.Logf("throttled: %d ratings in %d batches over %s; lag %d of %d", c1-c0, b1-b0, elapsed.Round(time.Millisecond), g.total()-c1, backlog)

	r.p.SetThrottle(0)
	healed := time.Now()
	servetest.WaitFor(t, 10*time.Second, "catching up once healed", func() (bool, string) { return stateMatches(g, r.p) })
	t.Logf("caught up %s after healing", time.Since(healed).Round(time.Millisecond))
	servetest.WaitFor(t, 3*kafkaio.LagRefresh, "the lag gauge back to 0", func() (bool, string) {
		lag := ratingsLag(t, reg)
		return lag == 0, fmt.Sprint(lag)
	})
}

// ratingsLag sums lab_kafka_consumer_lag_messages{topic="ratings"}.
func ratingsLag(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "lab_kafka_consumer_lag_messages" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "topic" && lp.GetValue() == "ratings" {
					sum += m.GetGauge().GetValue()
				}
			}
		}
	}
	return sum
}
