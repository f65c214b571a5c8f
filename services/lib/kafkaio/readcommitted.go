package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ReadCommitted reads the given partitions of topic from their first offset
// to their last stable offset as of the call, committed records only, and
// calls fn for each record, in offset order per partition. It is for
// restoring a table from a compacted topic; ctx bounds it, and an error
// when ctx ends names each partition's position and the end it waited for.
//
// A partition is read when the reader's position reaches the end, not when
// a record or marker at end-1 shows up: the offsets below the end may hold
// nothing a committed reader is given — the records of a transaction the
// broker aborted when it restarted after a crash (the embedded broker
// writes no marker for it), or records and markers compaction removed.
// Kafka Streams' restore ends the same way (position against end offset).
// The position comes from franz-go's own decoding of each fetched
// partition (kgo.ProcessFetchPartition), which moves past aborted batches
// and markers.
func (k *Cluster) ReadCommitted(ctx context.Context, topic string, partitions []int, fn func(kafka.Message) error) error {
	start := make(map[int]int64, len(partitions))
	for _, p := range partitions {
		start[p] = kafka.FirstOffset
	}
	_, err := k.ReadCommittedFrom(ctx, topic, start, fn)
	return err
}

// ReadCommittedFrom is ReadCommitted starting partition p at offset
// start[p] (kafka.FirstOffset: its first offset) instead of the first: the
// tail of a topic a reader has read up to start before (a standby copy of
// a table). A start below the partition's first offset, or beyond its
// end, is an error: the tail alone cannot complete that copy. ends are the
// offsets it read each partition to: everything committed below them was
// handed to fn.
func (k *Cluster) ReadCommittedFrom(ctx context.Context, topic string, start map[int]int64, fn func(kafka.Message) error) (ends map[int]int64, _ error) {
	partitions := slices.Sorted(maps.Keys(start))
	bounds, err := k.OffsetsCommitted(ctx, topic, partitions)
	if err != nil {
		return nil, err
	}
	ends = make(map[int]int64, len(bounds))
	r := committedRead{topic: topic, pos: map[int32]int64{}, end: map[int32]int64{}, partBytes: wholePartitionBytes}
	for p, b := range bounds {
		from := start[p]
		switch {
		case from == kafka.FirstOffset:
			from = b.First
		case from < b.First:
			return nil, fmt.Errorf("read %s partition %d committed from offset %d: the partition starts at %d now", topic, p, from, b.First)
		case from > b.End:
			return nil, fmt.Errorf("read %s partition %d committed from offset %d: the partition ends at %d (the log was reset)", topic, p, from, b.End)
		}
		ends[p] = max(b.End, from)
		if b.End > from {
			r.pos[int32(p)], r.end[int32(p)] = from, b.End
		}
	}
	if len(r.pos) == 0 {
		return ends, nil
	}
	if r.cl, err = kgo.NewClient(k.FranzOpts()...); err != nil {
		return nil, fmt.Errorf("read %s committed: %w", topic, err)
	}
	defer r.cl.Close()
	if err := r.run(ctx, fn); err != nil {
		return nil, err
	}
	return ends, nil
}

// wholePartitionBytes is a fetch's bytes per partition when reading a
// range through (ReadCommittedFrom, CommittedPeeker.Range).
const wholePartitionBytes = 4 << 20

// committedRead is one ReadCommitted call: a position per partition still
// below its end.
type committedRead struct {
	topic     string
	cl        *kgo.Client
	pos, end  map[int32]int64
	partBytes int32 // a fetch's bytes per partition (the broker returns at least one batch)
	last      error // the latest retried failure, for the error when ctx ends
}

// readRetryPause paces a round that made no progress because of an error
// (a moved leader, a broker restarting).
const readRetryPause = 250 * time.Millisecond

func (r *committedRead) run(ctx context.Context, fn func(kafka.Message) error) error {
	for len(r.pos) > 0 {
		if err := ctx.Err(); err != nil {
			return r.unfinished(context.Cause(ctx))
		}
		id, leaders, err := r.metadata(ctx)
		if err != nil {
			r.last = err
			r.pause(ctx)
			continue
		}
		progressed := false
		for leader, parts := range leaders {
			moved, err := r.fetch(ctx, leader, id, parts, fn)
			if err != nil {
				var retry retriable
				if !errors.As(err, &retry) {
					return err
				}
				r.last = err
			}
			progressed = progressed || moved
		}
		if !progressed {
			r.pause(ctx)
		}
	}
	return nil
}

func (r *committedRead) pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(readRetryPause):
	}
}

// unfinished is the error of a read that ctx ended: what it waited for.
func (r *committedRead) unfinished(cause error) error {
	var waits []string
	for _, p := range slices.Sorted(maps.Keys(r.pos)) {
		waits = append(waits, fmt.Sprintf("partition %d at offset %d of %d", p, r.pos[p], r.end[p]))
	}
	err := fmt.Errorf("read %s committed: not finished (%v): %w", r.topic, waits, cause)
	if r.last != nil {
		err = fmt.Errorf("%w (last error: %v)", err, r.last)
	}
	return err
}

// retriable marks an error the next round may get past.
type retriable struct{ error }

func (e retriable) Unwrap() error { return e.error }

// metadata finds the topic's id and the leader of each unfinished
// partition.
func (r *committedRead) metadata(ctx context.Context) ([16]byte, map[int32][]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(r.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return [16]byte{}, nil, fmt.Errorf("metadata of %s: %w", r.topic, err)
	}
	if len(resp.Topics) != 1 {
		return [16]byte{}, nil, fmt.Errorf("metadata of %s: %d topics in the answer", r.topic, len(resp.Topics))
	}
	t := resp.Topics[0]
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		return [16]byte{}, nil, fmt.Errorf("metadata of %s: %w", r.topic, err)
	}
	leaders := map[int32][]int32{}
	for _, p := range t.Partitions {
		if _, ok := r.pos[p.Partition]; ok && p.Leader >= 0 {
			leaders[p.Leader] = append(leaders[p.Leader], p.Partition)
		}
	}
	return t.TopicID, leaders, nil
}

// fetch reads once from one leader the given partitions at their
// positions, hands fn the committed records below each end, and advances
// the positions. moved says whether any position advanced.
func (r *committedRead) fetch(ctx context.Context, leader int32, id [16]byte, parts []int32, fn func(kafka.Message) error) (moved bool, err error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = 32 << 20
	req.IsolationLevel = 1 // read_committed: the answer lists the aborted transactions
	req.SessionEpoch = -1  // no fetch session: each fetch names its partitions
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = r.topic, id
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, r.pos[p], r.partBytes
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	kresp, err := r.cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return false, retriable{fmt.Errorf("fetch %s from broker %d: %w", r.topic, leader, err)}
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return false, retriable{fmt.Errorf("fetch %s from broker %d: %w", r.topic, leader, err)}
	}
	var soft error
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic != r.topic && t.TopicID != id {
			continue
		}
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			p := rp.Partition
			at, ok := r.pos[p]
			if !ok {
				continue
			}
			if perr := kerr.ErrorForCode(rp.ErrorCode); perr != nil {
				if errors.Is(perr, kerr.OffsetOutOfRange) && rp.LogStartOffset > at {
					// Compaction or retention removed the start: what
					// is left begins later.
					r.pos[p], moved = rp.LogStartOffset, true
					continue
				}
				if !kerr.IsRetriable(perr) && !errors.Is(perr, kerr.OffsetOutOfRange) {
					return moved, fmt.Errorf("fetch %s partition %d at offset %d: %w", r.topic, p, at, perr)
				}
				soft = retriable{fmt.Errorf("fetch %s partition %d at offset %d: %w", r.topic, p, at, perr)}
				continue
			}
			fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				Offset: at, IsolationLevel: kgo.ReadCommitted(), Topic: r.topic, Partition: p,
			}, rp, kgo.DefaultDecompressor(), nil)
			if fp.Err != nil {
				return moved, fmt.Errorf("fetch %s partition %d at offset %d: %w", r.topic, p, at, fp.Err)
			}
			end := r.end[p]
			for _, rec := range fp.Records {
				if rec.Offset >= end {
					break // written after the call
				}
				if err := fn(MessageOf(rec)); err != nil {
					return moved, err
				}
			}
			if next > at {
				moved = true
				r.pos[p] = next
			}
			if next >= end {
				delete(r.pos, p)
			}
		}
	}
	return moved, soft
}
