package stream

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/model"
)

// BenchmarkProcessor measures ratings-stream throughput — events per second
// from `ratings` to committed state (decode, join, dedupe, aggregate, one
// SQLite transaction per batch, emit rated-movies; transactional: one Kafka
// transaction per batch with rated-movies, the changelog and the offsets) —
// next to the raw rate at which a kafka-go group reader consumes the same
// topic from the same in-process broker. Targets: processor ≥ 0.5 × raw and ≥ 100k events/s.
//
// Each iteration consumes the whole topic from the beginning (fresh data
// directory, fresh group), including start-up and group join. The event
// count is RATINGS_BENCH_EVENTS (default 300000):
//
//	go test ./services/ratings/stream -run '^$' -bench BenchmarkProcessor -benchtime 1x
func BenchmarkProcessor(b *testing.B) {
	n := benchEvents()
	l := newLab(b)
	// The transactional runs' changelogs exist before any client caches
	// metadata (a topic created later is not seen for a metadata refresh).
	const maxIterations = 8
	for i := range maxIterations {
		for _, d := range []Delivery{EffectivelyOnce, Transactional} {
			topics := benchTopicsOf(d, i)
			if err := l.broker.CreateTopic(topics.State, model.RatingsPartitions, map[string]string{"cleanup.policy": "compact"}); err != nil {
				b.Fatal(err)
			}
			if err := l.broker.CreateTopic(topics.RequestIDs, model.RatingsPartitions, map[string]string{"cleanup.policy": "delete"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	l.movies(100)
	l.ratings(newLedger(), n, 100, 42)

	// Effectively-once (the default) and transactional delivery, in the same
	// run: each iteration its own group (and, transactional, its own
	// changelog topic).
	processor := func(delivery Delivery, restore string) func(b *testing.B) {
		return func(b *testing.B) {
			var total, steady time.Duration
			var steadyEvents int64
			var txns, batches float64
			for i := 0; i < b.N; i++ {
				group := "bench-" + string(delivery) + "-" + restore + "-" + strconv.Itoa(i)
				cfg := Config{Cluster: l.k, DataDir: b.TempDir(), Group: group, Delivery: delivery, Restore: restore, Log: testLog(b)}
				if i >= maxIterations {
					b.Fatalf("more than %d iterations: use -benchtime 1x", maxIterations)
				}
				topics := benchTopicsOf(delivery, i)
				cfg.Changelog, cfg.RequestIDs = topics.State, topics.RequestIDs
				reg := prometheus.NewRegistry()
				cfg.Registerer = reg
				r, err := runUntilCounted(b, cfg, n)
				if err != nil {
					b.Fatal(err)
				}
				total += r.total
				steady += r.steady
				steadyEvents += r.steadyEvents
				txns += counterValue(reg, "lab_stream_transactions_total", "committed")
				batches += histogramCount(reg, metricname.StreamBatchDurationSeconds)
			}
			b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
			b.ReportMetric(float64(steadyEvents)/steady.Seconds(), "events/s-after-first-commit")
			if txns > 0 {
				b.ReportMetric(float64(n)*float64(b.N)/txns, "events/txn")
			}
			// How many records one batch took on average: what the fetch
			// queues let the consumer take at once while it catches up.
			if batches > 0 {
				b.ReportMetric(float64(n)*float64(b.N)/batches, "events/batch")
			}
		}
	}
	b.Run("processor", processor(EffectivelyOnce, RestoreChangelog))
	b.Run("processor-no-changelog", processor(EffectivelyOnce, RestoreLog))
	b.Run("processor-transactional", processor(Transactional, ""))

	// Taking every partition over with an empty database, effectively-once:
	// from the changelog the "processor" run above left (the restore reads
	// it, then the ratings after its position: none here), against
	// --restore=log, which replays the partitions from offset 0. The same
	// clock for both (restore.go): from assignment until the state includes
	// everything that was in the log at the assignment.
	takeover := func(restore string) func(b *testing.B) {
		return func(b *testing.B) {
			var seconds float64
			var clRecords int
			for i := 0; i < b.N; i++ {
				cfg := Config{Cluster: l.k, DataDir: b.TempDir(), Group: "bench-" + string(EffectivelyOnce) + "-" + RestoreChangelog + "-0",
					Changelog: benchTopicsOf(EffectivelyOnce, 0).State, RequestIDs: benchTopicsOf(EffectivelyOnce, 0).RequestIDs, Restore: restore, Log: testLog(b)}
				if restore == RestoreLog {
					cfg.Group = "bench-takeover-replay-" + strconv.Itoa(i)
				}
				r, err := runUntilRestored(b, cfg)
				if err != nil {
					b.Fatal(err)
				}
				seconds += r.Seconds
				clRecords += r.ChangelogRecords
				if restore == RestoreChangelog && r.From[0] != fromChangelog || restore == RestoreLog && r.From[0] != fromStart {
					b.Fatalf("restored from %v", r.From)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/seconds, "events/s")
			b.ReportMetric(seconds*1000/float64(b.N), "restore-ms")
			b.ReportMetric(float64(clRecords)/float64(b.N), "changelog-records")
		}
	}
	b.Run("takeover-changelog", takeover(RestoreChangelog))
	b.Run("takeover-replay-from-0", takeover(RestoreLog))

	// What a transactional instance reads when partitions are assigned to
	// it: the whole changelog the run above left (not compacted yet: the
	// worst case), committed records only.
	b.Run("restore-changelog", func(b *testing.B) {
		var total time.Duration
		var records int64
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			var n int64
			err := l.k.ReadCommitted(ctx, benchTopicsOf(Transactional, 0).State, kafkaio.AllPartitions(model.RatingsPartitions), func(kafka.Message) error { n++; return nil })
			start := time.Now()
			if err == nil {
				_, err = changelog.Restore(ctx, l.k, benchTopicsOf(Transactional, 0), kafkaio.AllPartitions(model.RatingsPartitions), requestids.DefaultRetention)
			}
			total += time.Since(start)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			records += n
		}
		b.ReportMetric(float64(records)/float64(b.N), "changelog-records")
		b.ReportMetric(total.Seconds()*1000/float64(b.N), "restore-ms")
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

// benchEvents is RATINGS_BENCH_EVENTS, default 300000: how many ratings a
// benchmark's log holds.
func benchEvents() int {
	if v, err := strconv.Atoi(os.Getenv("RATINGS_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	return 300000
}

func benchTopicsOf(d Delivery, i int) changelog.Topics {
	prefix := "bench-" + string(d) + "-" + strconv.Itoa(i)
	return changelog.Topics{State: prefix + "-changelog", RequestIDs: prefix + "-request-ids"}
}

// runUntilRestored runs a processor with cfg until it reports the restore
// of the partitions it was assigned; prepare runs before it starts.
func runUntilRestored(b *testing.B, cfg Config, prepare ...func(*Processor) error) (Restore, error) {
	p, err := New(cfg)
	if err != nil {
		return Restore{}, err
	}
	defer p.Close()
	for _, f := range prepare {
		if err := f(p); err != nil {
			return Restore{}, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if r := p.LastRestore(); r != nil && len(r.Partitions) == model.RatingsPartitions {
			return *r, nil
		}
		if time.Now().After(deadline) {
			return Restore{}, fmt.Errorf("no restore of every partition reported in 10 minutes (last: %+v)", p.LastRestore())
		}
		time.Sleep(time.Millisecond)
	}
}

// counted is how long a processor took to count n ratings: in total
// (start-up, group join and restore included) and from its first commit on.
type counted struct {
	total, steady time.Duration
	steadyEvents  int64
}

// runUntilCounted runs a processor with cfg until it committed n ratings.
func runUntilCounted(b *testing.B, cfg Config, n int) (counted, error) {
	p, err := New(cfg)
	if err != nil {
		return counted{}, err
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Minute)
	var first time.Time
	var firstN int64
	for c := p.committed.Load(); c < int64(n); c = p.committed.Load() {
		if time.Now().After(deadline) {
			return counted{}, fmt.Errorf("processed %d of %d events in 10 minutes", c, n)
		}
		if first.IsZero() && c > 0 {
			first, firstN = time.Now(), c
		}
		time.Sleep(time.Millisecond)
	}
	end := time.Now()
	if first.IsZero() {
		first = end // everything in one batch
	}
	return counted{total: end.Sub(start), steady: end.Sub(first), steadyEvents: int64(n) - firstN}, nil
}

// counterValue reads one labelled counter from a registry (0 when absent).
// histogramCount is the sample count of the histogram name (all label sets).
func histogramCount(reg *prometheus.Registry, name string) float64 {
	fams, _ := reg.Gather()
	var n float64
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				n += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return n
}

func counterValue(reg *prometheus.Registry, name, label string) float64 {
	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
