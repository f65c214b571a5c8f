package stream

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/model"
)

// BenchmarkProcessor measures ratings-stream throughput — events per second
// from `ratings` to committed state (decode, join, dedupe, aggregate, one
// SQLite transaction per batch, emit rated-movies) — next to the raw rate at
// which a kafka-go group reader consumes the same topic from the same
// in-process broker. Targets: processor ≥ 0.5 × raw and ≥ 100k events/s.
//
// Each iteration consumes the whole topic from the beginning (fresh data
// directory, fresh group), including start-up and group join. The event
// count is RATINGS_BENCH_EVENTS (default 300000):
//
//	go test ./services/ratings/stream -run '^$' -bench BenchmarkProcessor -benchtime 1x
func BenchmarkProcessor(b *testing.B) {
	n := 300000
	if v, err := strconv.Atoi(os.Getenv("RATINGS_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	l := newLab(b)
	l.movies(100)
	l.ratings(newLedger(), n, 100, 42)

	b.Run("processor", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			p, err := New(Config{Cluster: l.k, DataDir: b.TempDir(), Group: "bench-" + strconv.Itoa(i), Log: testLog(b)})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- p.Run(ctx) }()
			deadline := time.Now().Add(10 * time.Minute)
			for p.committed.Load() < int64(n) {
				if time.Now().After(deadline) {
					b.Fatalf("processed %d of %d events in 10 minutes", p.committed.Load(), n)
				}
				time.Sleep(5 * time.Millisecond)
			}
			total += time.Since(start)
			cancel()
			<-done
			p.Close()
		}
		b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
	})

	b.Run("raw-group-consume", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers: l.k.Config().Brokers, Dialer: l.k.Dialer(), GroupID: "raw-bench-" + strconv.Itoa(i),
				Topic: model.TopicRatings, MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond,
				QueueCapacity: 4096, StartOffset: kafka.FirstOffset,
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			start := time.Now()
			for got := 0; got < n; got++ {
				if _, err := r.FetchMessage(ctx); err != nil {
					b.Fatalf("after %d of %d records: %v", got, n, err)
				}
			}
			total += time.Since(start)
			cancel()
			r.Close()
		}
		b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
	})
}
