package faults

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/registry/registrytest"
	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/model"
)

// Each poison kind reaches the `ratings` log and is rejected by the event
// decoder for exactly the reason the processor must put in the DLQ header.
func TestPoisonRecordsReachTheLogAndAreRejectedForTheirReason(t *testing.T) {
	b := kafkatest.Start(t, kafkatest.LabTopics)
	registry := registrytest.Embedded(t)
	inj := New(Config{Broker: b.Addr, Registry: registry, Targets: Targets{Topics: []string{model.TopicRatings}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The Avro kinds decode with the lab's Avro codec, whose ratings
	// schema is registered as a producer would.
	avroCodec, err := (&eventformat.Config{Format: "avro", Registry: registry}).Codec(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := avroCodec.Prepare(ctx, model.TopicRatings); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{}
	for _, kind := range poisonKinds {
		f, err := inj.Inject(ctx, Request{Fault: "poison", Target: model.TopicRatings, Params: ParamValues{"kind": kind, "count": "2"}})
		if err != nil {
			t.Fatalf("poison %s: %v", kind, err)
		}
		if f.State != StateDone {
			t.Fatalf("poison is instant, got state %s", f.State)
		}
		want[kind] = f.ID
	}
	if a := inj.Active(); len(a) != 0 {
		t.Fatalf("instant faults listed as active: %+v", a)
	}

	seen := map[string]int{}
	for p := 0; p < model.RatingsPartitions; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr}, Topic: model.TopicRatings, Partition: p, MaxWait: 50 * time.Millisecond})
		conn, err := kafka.DialLeader(ctx, "tcp", b.Addr, model.TopicRatings, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < last; off++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			kind := header(m, "lab-poison")
			ev, err := model.DecodeRatingEvent(m.Value)
			if err == nil {
				err = model.CheckRatingKey(m.Key, ev)
			}
			var ee *model.EventError
			switch kind {
			case "malformed":
				if !errors.As(err, &ee) || ee.Reason != model.ReasonMalformed {
					t.Errorf("malformed poison decoded as %v", err)
				}
			case "rating-range":
				if !errors.As(err, &ee) || ee.Reason != model.ReasonRatingRange {
					t.Errorf("rating-range poison decoded as %v", err)
				}
			case "key-mismatch":
				if !errors.As(err, &ee) || ee.Reason != model.ReasonKeyMismatch {
					t.Errorf("key-mismatch poison decoded as %v", err)
				}
			case "wrong-magic-byte", "unknown-schema-id", "truncated-body":
				// Not JSON; in Avro, each fails for its own reason.
				if !errors.As(err, &ee) || ee.Reason != model.ReasonMalformed {
					t.Errorf("%s poison decoded as JSON: %v", kind, err)
				}
				_, err := avroCodec.DecodeRating(ctx, m.Value)
				if !errors.As(err, &ee) || ee.Reason != kind {
					t.Errorf("%s poison decoded as Avro: %v", kind, err)
				}
			case "unknown-movie": // well-formed: only the join with the catalog rejects it
				if err != nil || ev.MovieID != PoisonMovieID {
					t.Errorf("unknown-movie poison: %+v, %v", ev, err)
				}
			}
			if got := model.RatingPartition(m.Key, model.RatingsPartitions); got != p {
				t.Errorf("poison with key %s on partition %d, a real producer puts it on %d", m.Key, p, got)
			}
			seen[kind]++
		}
		r.Close()
	}
	for _, kind := range poisonKinds {
		if seen[kind] != 2 {
			t.Errorf("%s: found %d poison records in ratings, want 2", kind, seen[kind])
		}
	}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
