package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/ratingslab/lab/services/lib/kafkaio"
)

// Dial returns a Kafka client for the replay tools. Tools are operators, not
// parts: they reach the broker directly rather than through an edge proxy,
// so a fault injected on a part's edge does not stop the tool that repairs
// it.
func Dial(brokers []string, log *slog.Logger) (*kafkaio.Cluster, error) {
	return kafkaio.NewCluster(kafkaio.Config{Brokers: brokers, ClientID: "lab-replay", DialTimeout: 3 * time.Second}, nil, log)
}

// ErrNoTopic means a topic does not exist on the broker.
var ErrNoTopic = errors.New("topic does not exist")

// partitionCount asks the broker how many partitions topic has. A missing
// topic is ErrNoTopic (wrapped with its name), not a wait: tools answer at
// once.
func partitionCount(ctx context.Context, k *kafkaio.Cluster, topic string) (int, error) {
	md, err := k.Client().Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("broker %v unreachable (is the lab up?): %w", k.Config().Brokers, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) || (t.Error == nil && len(t.Partitions) == 0) {
			break
		}
		if t.Error != nil {
			return 0, fmt.Errorf("topic %s: %w", topic, t.Error)
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("topic %s: %w", topic, ErrNoTopic)
}

// offsetsAt returns, per partition, the first offset whose record timestamp
// is at or after t; a partition without such a record answers its end (the
// broker's ListOffsets by time, as kafka-consumer-groups --to-datetime uses).
func offsetsAt(ctx context.Context, k *kafkaio.Cluster, topic string, partitions []int, t time.Time, bounds map[int]kafkaio.Bounds) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, 0, len(partitions))
	for _, p := range partitions {
		reqs = append(reqs, kafka.TimeOffsetOf(p, t))
	}
	res, err := k.Client().ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s at %s: %w", topic, t.Format(time.RFC3339Nano), err)
	}
	out := make(map[int]int64, len(partitions))
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d at %s: %w", topic, po.Partition, t.Format(time.RFC3339Nano), po.Error)
		}
		// kafka-go files the answer under Offsets when a record was found;
		// "none" comes back as offset -1 (which it reads as LastOffset).
		found := false
		for off := range po.Offsets {
			if off >= 0 {
				out[po.Partition] = off
				found = true
			}
		}
		if !found {
			out[po.Partition] = bounds[po.Partition].End
		}
	}
	for _, p := range partitions {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("offsets of %s at %s: no answer for partition %d", topic, t.Format(time.RFC3339Nano), p)
		}
	}
	return out, nil
}

// Record is one Kafka record as the tools move it around. A nil Key or
// Value is a null (a tombstone, for a value); an empty one is empty.
type Record struct {
	Partition int
	Offset    int64
	Time      time.Time
	Key       []byte
	Value     []byte
	Headers   []kafka.Header
}

// scanRange calls fn for every record of topic/partition with from <=
// offset < to, in offset order. Offsets missing from the range (compacted
// away) are skipped: a fetch that returns nothing at or after the position
// means nothing is left below the high watermark.
func scanRange(ctx context.Context, k *kafkaio.Cluster, topic string, partition int, from, to int64, fn func(Record) error) error {
	outOfRange := 0
	for off := from; off < to; {
		res, err := k.Client().Fetch(ctx, &kafka.FetchRequest{
			Topic: topic, Partition: partition, Offset: off,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond,
		})
		if err != nil {
			return fmt.Errorf("read %s/%d at offset %d: %w", topic, partition, off, err)
		}
		if errors.Is(res.Error, kafka.OffsetOutOfRange) && outOfRange < 50 {
			// Retention moved the log's start past off, or the broker is
			// rewriting a compacted segment under it (the embedded broker
			// answers "out of range" for a moment then): start from the
			// log's start if off fell below it, else ask again.
			outOfRange++
			bounds, berr := k.Offsets(ctx, topic, []int{partition})
			if berr != nil {
				return berr
			}
			switch b := bounds[partition]; {
			case off < b.First:
				off = b.First
			case off >= b.End:
				return nil
			default:
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
			continue
		}
		if res.Error != nil {
			return fmt.Errorf("read %s/%d at offset %d: %w", topic, partition, off, res.Error)
		}
		n, err := drain(res.Records, off, to, func(r Record) error {
			r.Partition = partition
			off = r.Offset + 1
			return fn(r)
		})
		if err != nil {
			return err
		}
		if n == 0 {
			// The broker holds a fetch until a byte at or after off exists
			// (or MaxWait): nothing came, so nothing is left in [off, to)
			// below the high watermark — the rest was compacted away.
			return ctx.Err()
		}
	}
	return nil
}

// drain reads a fetch response's records in [from, to) into fn and returns
// how many it passed on.
func drain(rr kafka.RecordReader, from, to int64, fn func(Record) error) (int, error) {
	if rr == nil {
		return 0, nil
	}
	n := 0
	for {
		rec, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("decode records: %w", err)
		}
		if rec.Offset < from {
			continue // a batch starting before the requested offset
		}
		if rec.Offset >= to {
			return n, nil
		}
		key, err := protocol.ReadAll(rec.Key)
		if err != nil {
			return n, fmt.Errorf("record %d key: %w", rec.Offset, err)
		}
		value, err := protocol.ReadAll(rec.Value)
		if err != nil {
			return n, fmt.Errorf("record %d value: %w", rec.Offset, err)
		}
		var headers []kafka.Header
		for _, h := range rec.Headers {
			headers = append(headers, kafka.Header(h))
		}
		if err := fn(Record{Offset: rec.Offset, Time: rec.Time, Key: key, Value: value, Headers: headers}); err != nil {
			return n, err
		}
		n++
	}
}

// partitionBalancer sends every message to the partition it names. kafka-go's
// Writer ignores Message.Partition unless the balancer honours it; import
// and mirroring must keep each record on its partition.
type partitionBalancer struct{}

func (partitionBalancer) Balance(msg kafka.Message, partitions ...int) int {
	// The partition was checked against the topic before writing; a
	// partition the writer does not know yet (stale metadata) still goes
	// where the record says, and the broker answers for it.
	return msg.Partition
}

// allPartitions lists 0..n-1.
func allPartitions(n int) []int { return kafkaio.AllPartitions(n) }

// sortedKeys returns a map's int keys in order.
func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
