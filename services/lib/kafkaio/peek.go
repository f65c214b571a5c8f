package kafkaio

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CommittedPeeker reads a few committed records of a topic at chosen
// offsets, one client for all of them: a search over a partition's offsets
// (changelog's request-id floor) costs a probe (a metadata request, for
// the leader, and a fetch) per offset instead of a read of the whole
// partition. Records and offsets are as ReadCommitted sees them: aborted
// records and transaction markers are passed over.
type CommittedPeeker struct {
	topic string
	cl    *kgo.Client
}

// NewCommittedPeeker opens a peeker on topic; Close it.
func (k *Cluster) NewCommittedPeeker(topic string) (*CommittedPeeker, error) {
	cl, err := kgo.NewClient(k.FranzOpts()...)
	if err != nil {
		return nil, fmt.Errorf("peek %s committed: %w", topic, err)
	}
	return &CommittedPeeker{topic: topic, cl: cl}, nil
}

// Close closes the peeker's client.
func (c *CommittedPeeker) Close() { c.cl.Close() }

// errPeeked stops a read once it has the record it was after.
var errPeeked = errors.New("peeked")

// First returns the first committed record of partition p at or after
// offset from and below end, and false when there is none. It fetches one
// batch at a time (the broker's smallest answer), so a probe costs one
// fetch (and the metadata request that finds the leader) unless aborted
// records or markers lie at from. A from below the partition's start reads
// from its start.
func (c *CommittedPeeker) First(ctx context.Context, p int, from, end int64) (kafka.Message, bool, error) {
	var found kafka.Message
	ok := false
	err := c.read(ctx, p, from, end, 1, func(m kafka.Message) error {
		found, ok = m, true
		return errPeeked
	})
	if err != nil && !errors.Is(err, errPeeked) {
		return kafka.Message{}, false, err
	}
	return found, ok, nil
}

// Range hands fn the committed records of partition p in [from, end), in
// offset order.
func (c *CommittedPeeker) Range(ctx context.Context, p int, from, end int64, fn func(kafka.Message) error) error {
	return c.read(ctx, p, from, end, wholePartitionBytes, fn)
}

func (c *CommittedPeeker) read(ctx context.Context, p int, from, end int64, partBytes int32, fn func(kafka.Message) error) error {
	if from >= end {
		return nil
	}
	r := committedRead{topic: c.topic, cl: c.cl, pos: map[int32]int64{int32(p): from}, end: map[int32]int64{int32(p): end}, partBytes: partBytes}
	return r.run(ctx, fn)
}
