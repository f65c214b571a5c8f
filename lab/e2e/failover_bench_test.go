package e2e

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/model"
)

// BenchmarkLeaderFailover measures a real cluster's leader failover as the
// lab's producers see it (LAB_E2E_KAFKA=cluster only).
//
// A probe producer configured like webserver-stream (kafka-go, acks=all,
// 5 attempts, 50–500 ms backoff, 2 s per write) writes one rating every
// 20 ms to `ratings` partition 0. FAILOVER_KILLS times (default 5) the
// broker leading that partition is killed (`lab chaos inject kill_leader
// --partition 0`); the unavailability window is from the kill to the
// first write acknowledged after it. The broker is then started again and
// the next kill waits until all three nodes are back in the ISR.
//
//	LAB_E2E_KAFKA=cluster go test ./lab/e2e -run '^$' -bench BenchmarkLeaderFailover -benchtime 1x -timeout 20m
//
// Metrics: window-p50-ms, window-max-ms, failed-writes (per kill, mean),
// retries (kafka-go's, per kill, mean).
func BenchmarkLeaderFailover(b *testing.B) {
	labtest.SkipUnlessE2E(b)
	if !labtest.OnCluster() {
		b.Skip("needs the real cluster: LAB_E2E_KAFKA=cluster")
	}
	kills := benchEnv("FAILOVER_KILLS", 5)
	l := labtest.Start(b, "--no-prometheus")

	// A key that lands on partition 0, so the probe writes where the kill hits.
	var key []byte
	for m := int64(1); m <= 180; m++ {
		if k := []byte(strconv.FormatInt(m, 10)); model.RatingPartition(k, model.RatingsPartitions) == 0 {
			key = k
			break
		}
	}
	w := &kafka.Writer{Addr: l.Kafka(), Topic: model.TopicRatings, Balancer: &kafka.CRC32Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, MaxAttempts: 5,
		WriteBackoffMin: 50 * time.Millisecond, WriteBackoffMax: 500 * time.Millisecond}
	defer w.Close()

	type write struct {
		sent, done time.Time
		ok         bool
	}
	var mu sync.Mutex
	var writes []write
	var retries int64
	ctx, stop := context.WithCancel(context.Background())
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for i := 0; ctx.Err() == nil; i++ {
			movie, _ := strconv.ParseInt(string(key), 10, 64)
			ev := model.RatingEvent{RequestID: fmt.Sprintf("failover-%d", i), MovieID: movie, Tenths: 70, UserID: 1, EventTime: time.Now().UTC()}
			v, _ := ev.MarshalJSON()
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			sent := time.Now()
			err := w.WriteMessages(wctx, kafka.Message{Key: key, Value: v})
			cancel()
			mu.Lock()
			writes = append(writes, write{sent, time.Now(), err == nil})
			retries += w.Stats().Retries
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { stop(); <-probeDone }()

	idRe := regexp.MustCompile(`f-\d+`)
	hitRe := regexp.MustCompile(`broker-\d+`)
	var windows []time.Duration
	var failedTotal, retriesTotal int64
	b.ResetTimer()
	for range b.N {
		for k := 0; k < kills; k++ {
			for _, n := range []string{"broker-1", "broker-2", "broker-3"} {
				l.WaitPart(n, supervisor.HealthOK, 2*time.Minute)
			}
			mu.Lock()
			from, r0 := len(writes), retries
			mu.Unlock()
			out := l.MustRun("chaos", "inject", "kill_leader", "--target", model.TopicRatings, "--partition", "0")
			killed := time.Now()
			var window time.Duration
			labtest.Eventually(b, 90*time.Second, "a write acknowledged after the kill", func() error {
				mu.Lock()
				defer mu.Unlock()
				for _, wr := range writes[from:] {
					if wr.ok && wr.done.After(killed) {
						window = wr.done.Sub(killed)
						return nil
					}
				}
				return fmt.Errorf("none yet")
			})
			mu.Lock()
			var failed int64
			for _, wr := range writes[from:] {
				if !wr.ok {
					failed++
				}
			}
			failedTotal += failed
			retriesTotal += retries - r0
			mu.Unlock()
			windows = append(windows, window)
			b.Logf("kill %d: %s; unavailable for %v, %d writes failed, %d retries", k+1, hitRe.FindString(out), window.Round(time.Millisecond), failed, retries-r0)
			l.MustRun("chaos", "heal", idRe.FindString(out))
		}
	}
	b.StopTimer()
	sort.Slice(windows, func(i, j int) bool { return windows[i] < windows[j] })
	b.ReportMetric(float64(windows[len(windows)/2].Milliseconds()), "window-p50-ms")
	b.ReportMetric(float64(windows[len(windows)-1].Milliseconds()), "window-max-ms")
	b.ReportMetric(float64(failedTotal)/float64(len(windows)), "failed-writes/kill")
	b.ReportMetric(float64(retriesTotal)/float64(len(windows)), "retries/kill")
}
