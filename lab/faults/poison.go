package faults

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// PoisonMovieID is a movie id no catalog has: an unknown-movie poison record
// rates it. (The load generator's unknown ids never reach the log: the
// webserver rejects them.)
const PoisonMovieID = 999999

// poisonEffect writes records to a topic that no correct producer would
// write, the way a foreign or buggy producer does: straight to the broker.
// The webserver cannot be used for this, because it validates what it
// produces. Poison records carry request ids "poison-<fault id>-<n>" and a
// "lab-poison" header naming their kind.
type poisonEffect struct {
	broker string
	topic  string
	id     string
	params Params
}

// PoisonRecords builds n poison records of a kind (see poisonKinds).
func PoisonRecords(faultID, kind string, n int, now time.Time) []kafka.Message {
	msgs := make([]kafka.Message, 0, n)
	for i := range n {
		movie := int64(i%100 + 1) // spread over partitions
		rid := fmt.Sprintf("poison-%s-%d", faultID, i+1)
		key := strconv.FormatInt(movie, 10)
		var value string
		event := func(movie int64, rating string) string {
			return fmt.Sprintf(`{"request_id":%q,"movie_id":%d,"rating":%s,"user_id":1,"event_time":%q}`,
				rid, movie, rating, now.UTC().Format(time.RFC3339Nano))
		}
		switch kind {
		case "malformed":
			value = "rating " + rid + ": seven out of ten" // not JSON at all
		case "rating-range":
			value = event(movie, "42")
		case "unknown-movie":
			key = strconv.Itoa(PoisonMovieID)
			value = event(PoisonMovieID, "7")
		case "key-mismatch":
			value = event(movie+1, "7") // key says movie, value says movie+1
		}
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(value),
			Headers: []kafka.Header{{Key: "lab-poison", Value: []byte(kind)}}})
	}
	return msgs
}

func (e *poisonEffect) apply(ctx context.Context) error {
	if e.broker == "" {
		return fmt.Errorf("no broker address to write poison to")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	w := &kafka.Writer{
		Addr:         kafka.TCP(e.broker),
		Topic:        e.topic,
		Balancer:     &kafka.CRC32Balancer{}, // the partition a real producer would pick for the key
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		MaxAttempts:  3,
		Transport:    &kafka.Transport{DialTimeout: 3 * time.Second, ClientID: "lab-fault-injector"},
	}
	defer w.Close()
	msgs := PoisonRecords(e.id, e.params["kind"], int(e.params.Int("count")), time.Now())
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d poison records to %s: %w", len(msgs), e.topic, err)
	}
	return nil
}

func (e *poisonEffect) heal(context.Context, bool) error { return nil }
