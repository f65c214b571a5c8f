package kafkaio_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/model"
)

// A Fetcher over several partitions hands out every record from each
// partition's own start offset, in offset order per partition, and none
// below it. Run under -race (make test does): a Fetcher whose pumps start
// while it still sets up the next partitions writes its partition table
// while they read it.
func TestFetcherReadsEveryPartitionFromItsStartOffset(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, kafkatest.LabTopics)
	k := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const perPartition = 20
	var msgs []kafka.Message
	for p := range model.RatingsPartitions {
		for i := range perPartition {
			msgs = append(msgs, kafka.Message{Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)})
		}
	}
	w := k.Writer(model.TopicRatings, kafkaio.WriterOptions{Balancer: byPartition{}})
	defer w.Close()
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	// Repeat: the race is between setting up partition n+1 and the pump of
	// partition n delivering, so give it several chances.
	for round := range 5 {
		start := map[int]int64{}
		for p := range model.RatingsPartitions {
			start[p] = int64(p) // partition p from offset p
		}
		f, err := k.NewFetcher(model.TopicRatings, start, kafkaio.FetchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		next := map[int]int64{}
		for p, off := range start {
			next[p] = off
		}
		want := 0
		for p := range model.RatingsPartitions {
			want += perPartition - p
		}
		var buf []kafka.Message
		for got := 0; got < want; {
			buf, err = f.Next(ctx, buf, 1000)
			if err != nil {
				f.Close()
				t.Fatalf("round %d: %d of %d records, then %v", round, got, want, err)
			}
			for _, m := range buf {
				if m.Offset != next[m.Partition] {
					f.Close()
					t.Fatalf("round %d: partition %d gave offset %d, want %d", round, m.Partition, m.Offset, next[m.Partition])
				}
				if v := fmt.Sprintf("%d-%d", m.Partition, m.Offset); string(m.Value) != v {
					t.Errorf("round %d: record %s at partition %d offset %d", round, m.Value, m.Partition, m.Offset)
				}
				next[m.Partition]++
			}
			got += len(buf)
		}
		if err := f.Err(); err != nil {
			t.Errorf("round %d: Err() = %v after a clean read", round, err)
		}
		f.Close()
	}
}

// byPartition sends each message to the partition it names.
type byPartition struct{}

func (byPartition) Balance(m kafka.Message, _ ...int) int { return m.Partition }

// A Fetcher's partition readers open their connections when they start (a
// metadata lookup, then the leader: two each) and no others while they read:
// kafka-go's readers would each dial the leader again, at their first fetch
// and then every minute, to report a lag the lab takes from TrackLag, each
// one more connection through the part's edge proxy.
func TestFetcherOpensNoConnectionsBeyondItsReaders(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "wide", Partitions: 6}})
	f := kafkatest.Forward(t, b.Addr)
	k := kafkatest.Client(t, f.Via(b.Addr), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	w := k.Writer("wide", kafkaio.WriterOptions{Balancer: &kafka.RoundRobin{}})
	defer w.Close()
	var msgs []kafka.Message
	for i := range 60 {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
	}
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	before := f.Accepted()
	start := map[int]int64{}
	for p := range 6 {
		start[p] = kafka.FirstOffset
	}
	fe, err := k.NewFetcher("wide", start, kafkaio.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	var buf []kafka.Message
	for got := 0; got < len(msgs); got += len(buf) {
		if buf, err = fe.Next(ctx, buf, 100); err != nil {
			t.Fatal(err)
		}
	}
	// A lag probe dials right after a reader's first fetch: watch a while.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if opened := f.Accepted() - before; opened > 2*6+1 {
			t.Fatalf("reading 6 partitions opened %d connections, want two per partition reader (and at most one more)", opened)
		}
	}
}
