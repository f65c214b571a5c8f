package replay

import (
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// testBroker is a real Kafka broker (kfake) with the lab's topics and a
// replay client to it.
type testBroker struct {
	t      testing.TB
	broker *kafkatest.Broker
	k      *kafkaio.Cluster
}

func newTestBroker(t testing.TB) *testBroker {
	t.Helper()
	b := kafkatest.Start(t, kafkatest.LabTopics, kfake.GroupMinSessionTimeout(time.Second))
	k, err := Dial([]string{b.Addr}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return &testBroker{t: t, broker: b, k: k}
}

func testLog() *slog.Logger {
	if os.Getenv("REPLAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// produce writes msgs to topic on the partitions they name.
func (b *testBroker) produce(topic string, msgs ...kafka.Message) {
	b.t.Helper()
	w := b.k.Writer(topic, kafkaio.WriterOptions{Balancer: partitionBalancer{}})
	defer w.Close()
	if err := w.Write(servetest.Context(b.t, 30*time.Second), msgs...); err != nil {
		b.t.Fatal(err)
	}
}

// rating is a valid ratings record for movie at time t, on its partition.
func rating(requestID string, movie, tenths int64, t time.Time) kafka.Message {
	ev := model.RatingEvent{RequestID: requestID, MovieID: movie, Tenths: tenths, UserID: 7, EventTime: t}
	v, _ := ev.MarshalJSON()
	key := ev.Key()
	return kafka.Message{Partition: model.RatingPartition(key, model.RatingsPartitions), Key: key, Value: v, Time: t}
}

// ratings writes n ratings of movies 1..movies, one a millisecond from start.
func (b *testBroker) ratings(prefix string, n int, movies int64, start time.Time) []kafka.Message {
	b.t.Helper()
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		movie := int64(i)%movies + 1
		msgs = append(msgs, rating(prefix+strconv.Itoa(i), movie, 10+int64(i%91), start.Add(time.Duration(i)*time.Millisecond)))
	}
	b.produce(model.TopicRatings, msgs...)
	return msgs
}
