package eventformat_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/lab/registry"
	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/model"
)

// BenchmarkRegistryLookups measures schema lookups by id through the
// registry client against the embedded registry served over HTTP in this
// process: "cached" is what a consumer pays per record once it has seen an
// id (no request), "uncached" is one GET /schemas/ids/{id} per lookup (what
// the registry itself can answer), and "decode-avro" / "decode-json" are
// whole rating decodes with the id cached:
//
//	go test ./services/lib/eventformat -run '^$' -bench BenchmarkRegistryLookups -benchtime 2s
func BenchmarkRegistryLookups(b *testing.B) {
	srv, closeStore, err := registry.NewServer(b.TempDir(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer func() { ts.Close(); closeStore() }()
	ctx := context.Background()
	cl, err := eventformat.NewClient(ts.URL, eventformat.NewMetrics(nil))
	if err != nil {
		b.Fatal(err)
	}
	text, _ := model.SchemaText(model.TopicRatings, model.ContractV1)
	id, err := cl.Register(ctx, model.Subject(model.TopicRatings), text)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := cl.SchemaByID(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	b.Run("uncached", func(b *testing.B) {
		for b.Loop() {
			if _, err := cl.SR().SchemaByID(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	ev := model.RatingEvent{RequestID: "bench-1", MovieID: 42, Tenths: 75, UserID: 7, EventTime: time.Now()}
	for _, format := range []model.Format{model.FormatAvro, model.FormatJSON} {
		codec, err := (&eventformat.Config{Format: string(format), Registry: ts.URL}).Codec(nil)
		if err != nil {
			b.Fatal(err)
		}
		value, err := codec.EncodeRating(ctx, ev)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("decode-"+string(format), func(b *testing.B) {
			for b.Loop() {
				if _, err := codec.DecodeRating(ctx, value); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decodes/s")
		})
	}
}
