package faults

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/model"
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
	brokers  []string
	registry string
	topic    string
	id       string
	params   Params
}

// PoisonRecords builds n poison records of a kind (see poisonKinds).
//
// ratingsSchemaID is the registry's id of the ratings schema (0 when
// unknown); truncated-body records use it, so that they fail on their
// body, not on their id.
func PoisonRecords(faultID, kind string, n int, now time.Time, ratingsSchemaID int) []kafka.Message {
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
		case "wrong-magic-byte":
			value = "\x01\x00\x00\x00\x01" + rid // a header, but not magic byte 0
		case "unknown-schema-id":
			value = "\x00\x7f\xff\xff\xfe" + rid // id 2147483646: no registry gave it
		case "truncated-body":
			// A request id of 100 bytes announced (zig-zag 200), 3 given.
			value = string(binary.BigEndian.AppendUint32([]byte{0}, uint32(ratingsSchemaID))) + "\xc8\x01abc"
		}
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(value),
			Headers: []kafka.Header{{Key: "lab-poison", Value: []byte(kind)}}})
	}
	return msgs
}

func (e *poisonEffect) apply(ctx context.Context) error {
	if len(e.brokers) == 0 {
		return fmt.Errorf("no broker address to write poison to")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tr := &kafka.Transport{DialTimeout: 3 * time.Second, ClientID: "lab-fault-injector"}
	defer tr.CloseIdleConnections() // Writer.Close leaves a transport it was given open
	w := &kafka.Writer{
		Addr:         kafka.TCP(e.brokers...),
		Topic:        e.topic,
		Balancer:     &kafka.CRC32Balancer{}, // the partition a real producer would pick for the key
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		MaxAttempts:  3,
		Transport:    tr,
	}
	defer w.Close()
	id := 0
	if e.params["kind"] == "truncated-body" {
		var err error
		if id, err = latestSchemaID(ctx, e.registry, model.Subject(model.TopicRatings)); err != nil {
			return fmt.Errorf("truncated-body needs the ratings schema's id: %w", err)
		}
	}
	msgs := PoisonRecords(e.id, e.params["kind"], int(e.params.Int("count")), time.Now(), id)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d poison records to %s: %w", len(msgs), e.topic, err)
	}
	return nil
}

func (e *poisonEffect) heal(context.Context, bool) error { return nil }

// latestSchemaID asks the registry for the id of subject's latest version.
func latestSchemaID(ctx context.Context, registry, subject string) (int, error) {
	if registry == "" {
		return 0, fmt.Errorf("no schema registry configured")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, registry+"/subjects/"+subject+"/versions/latest", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v struct {
		ID int `json:"id"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s answered %s (is the lab running with --format avro?)", req.URL, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.ID <= 0 {
		return 0, fmt.Errorf("%s: no id in the answer", req.URL)
	}
	return v.ID, nil
}
