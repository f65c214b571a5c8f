package stream

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/registry"
	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// BenchmarkProcessorFormat measures ratings-stream's throughput with the
// log in each format, in one run: the same ratings (same seed) written as
// JSON to one broker and as Avro (Confluent wire format, through an
// embedded registry served over HTTP in this process) to another; each
// iteration consumes both from the beginning with fresh processors, JSON
// then Avro, so that background load on the machine hits both alike.
// RATINGS_BENCH_EVENTS events (default 300000):
//
//	go test ./services/ratings/stream -run '^$' -bench BenchmarkProcessorFormat -benchtime 3x
func BenchmarkProcessorFormat(b *testing.B) {
	n := 300000
	if v, err := strconv.Atoi(os.Getenv("RATINGS_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	formats := []model.Format{model.FormatJSON, model.FormatAvro}
	labs := map[model.Format]*lab{}
	for _, f := range formats {
		l := newLab(b)
		codec := benchCodec(b, f)
		l.encodedMovies(codec, 100)
		l.encodedRatings(codec, n, 100, 42)
		labs[f] = l
	}
	total := map[model.Format]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, f := range formats {
			total[f] += consumeAll(b, labs[f], benchCodec(b, f), n, "bench-"+strconv.Itoa(i))
		}
	}
	for _, f := range formats {
		b.ReportMetric(float64(n)*float64(b.N)/total[f].Seconds(), string(f)+"-events/s")
	}
	b.ReportMetric(total[model.FormatJSON].Seconds()/total[model.FormatAvro].Seconds(), "avro/json")
}

// consumeAll runs a fresh processor over the whole topic and returns how
// long it took to commit all n ratings (start-up and group join included).
func consumeAll(b *testing.B, l *lab, codec *model.Codec, n int, group string) time.Duration {
	p, err := New(Config{Cluster: l.k, DataDir: b.TempDir(), Group: group, Codec: codec, Log: testLog(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
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
	took := time.Since(start)
	cancel()
	<-done
	return took
}

var benchRegistry string

// benchCodec is a codec of format; Avro codecs share one embedded registry.
func benchCodec(b *testing.B, format model.Format) *model.Codec {
	b.Helper()
	if format == model.FormatAvro && benchRegistry == "" {
		srv, closeStore, err := registry.NewServer(b.TempDir(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		b.Cleanup(func() { ts.Close(); closeStore(); benchRegistry = "" })
		benchRegistry = ts.URL
	}
	c, err := (&eventformat.Config{Format: string(format), Registry: benchRegistry}).Codec(nil)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func (l *lab) encodedMovies(codec *model.Codec, n int) {
	l.t.Helper()
	var msgs []kafka.Message
	for id := int64(1); id <= int64(n); id++ {
		v, err := codec.EncodeMovie(context.Background(), model.Movie{ID: id, Title: fmt.Sprintf("Movie %d", id), ReleaseYear: 1990 + int(id%30), Version: 1})
		if err != nil {
			l.t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(strconv.FormatInt(id, 10)), Value: v})
	}
	l.write(model.TopicMovies, msgs)
}

func (l *lab) encodedRatings(codec *model.Codec, n, movies int, seed uint64) {
	l.t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	msgs := make([]kafka.Message, 0, n)
	for i := range n {
		ev := model.RatingEvent{RequestID: fmt.Sprintf("req-%d-%d", seed, i), MovieID: 1 + rng.Int64N(int64(movies)),
			Tenths: 10 + rng.Int64N(91), UserID: rng.Int64N(1000), EventTime: time.Now()}
		v, err := codec.EncodeRating(context.Background(), ev)
		if err != nil {
			l.t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: ev.Key(), Value: v})
	}
	l.write(model.TopicRatings, msgs)
}

func (l *lab) write(topic string, msgs []kafka.Message) {
	w := l.k.Writer(topic, kafkaio.WriterOptions{BatchSize: 5000})
	defer w.Close()
	for len(msgs) > 0 {
		chunk := msgs[:min(len(msgs), 20000)]
		if err := w.Write(servetest.Context(l.t, 60*time.Second), chunk...); err != nil {
			l.t.Fatal(err)
		}
		msgs = msgs[len(chunk):]
	}
}
