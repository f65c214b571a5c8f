package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/model"
)

// Transactions a crash left open.
//
// A broker killed with a transaction open loses its coordinator's state.
// kfake, loading its data dir, counts such a transaction as aborted (its
// records are listed as aborted, the last stable offset moves past them)
// but writes no abort marker, where Apache Kafka's coordinator completes
// the abort by writing one in every partition of the transaction. Without
// the marker, a read_committed client (franz-go) keeps the producer's
// aborted range open until the next marker of that producer — the commit
// marker of the next owner of the same transactional id — and drops that
// committed transaction with it: a restore from the changelog missed a
// committed batch, and a reader waiting for the partition's end never saw
// it. So a broker started on a data dir finds every transactional range
// that has no marker below the last stable offset and writes the abort
// marker kfake left out, before any producer may start a new transaction
// (InitProducerID answers COORDINATOR_LOAD_IN_PROGRESS meanwhile, as
// Kafka's coordinator does while it loads its state; clients retry).

// transactionalTopics are the topics the lab's parts write in transactions
// (ratings-stream's changelog writers: the changelog and the request-id
// topic; its --delivery=transactional: those, rated-movies and dead
// letters). Only they are scanned: the
// scan reads every record, and ratings, by far the largest topic, is never
// written in a transaction.
var transactionalTopics = []string{model.TopicRatingsChangelog, model.TopicRatingsRequestIDs, model.TopicRatedMovies, model.TopicRatingsDLQ}

// crashedTxn is a transaction with no marker, open when the broker died.
type crashedTxn struct {
	topic     string
	partition int32
	producer  int64
	epoch     int16
	first     int64
}

func (t crashedTxn) String() string {
	return fmt.Sprintf("%s/%d producer %d from offset %d", t.topic, t.partition, t.producer, t.first)
}

// holdTransactions makes InitProducerID answer COORDINATOR_LOAD_IN_PROGRESS
// until the returned release is called.
func holdTransactions(c *kfake.Cluster) (release func()) {
	var released atomic.Bool
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if released.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp, nil, true
	})
	return func() { released.Store(true) }
}

// abortCrashedTransactions writes an abort marker for every transaction of
// the given topics left open by a crash, through the broker at addr.
func abortCrashedTransactions(ctx context.Context, c *kfake.Cluster, addr string, topics []string) ([]crashedTxn, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var found []crashedTxn
	for _, topic := range topics {
		info := c.TopicInfo(topic)
		if info == nil {
			continue
		}
		for _, pi := range c.PartitionInfos(topic) {
			open, err := openTransactions(ctx, cl, topic, info.TopicID, pi)
			if err != nil {
				return found, err
			}
			for _, t := range open {
				if err := writeAbortMarker(ctx, cl, pi.Leader, t); err != nil {
					return found, err
				}
				found = append(found, t)
			}
		}
	}
	return found, nil
}

// openTransactions scans a partition from its start to its high
// watermark and returns the transactions that begin below the last stable
// offset and have no marker (the broker counts them as decided: only a
// crash leaves them so).
func openTransactions(ctx context.Context, cl *kgo.Client, topic string, id [16]byte, pi *kfake.PartitionInfo) ([]crashedTxn, error) {
	open := map[int64]crashedTxn{}
	for at := pi.LogStartOffset; at < pi.HighWatermark; {
		batches, err := fetchRaw(ctx, cl, topic, id, pi, at)
		if err != nil {
			return nil, err
		}
		next := at
		for _, b := range batches {
			if end := b.FirstOffset + int64(b.LastOffsetDelta) + 1; end > next {
				next = end
			}
			if b.FirstOffset < at || b.Attributes&0x10 == 0 { // not transactional
				continue
			}
			if b.Attributes&0x20 != 0 { // a marker ends the producer's transaction
				delete(open, b.ProducerID)
				continue
			}
			if _, ok := open[b.ProducerID]; !ok {
				open[b.ProducerID] = crashedTxn{topic: topic, partition: pi.Partition, producer: b.ProducerID, epoch: b.ProducerEpoch, first: b.FirstOffset}
			}
		}
		if next == at {
			return nil, fmt.Errorf("scan %s/%d for open transactions: no progress at offset %d", topic, pi.Partition, at)
		}
		at = next
	}
	var out []crashedTxn
	for _, t := range open {
		if t.first < pi.LastStableOffset {
			out = append(out, t)
		}
	}
	return out, nil
}

// fetchRaw fetches a partition's record batches from offset at, read
// uncommitted, undecoded beyond their headers.
func fetchRaw(ctx context.Context, cl *kgo.Client, topic string, id [16]byte, pi *kfake.PartitionInfo, at int64) ([]kmsg.RecordBatch, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 16<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = pi.Partition, at, 16<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := cl.Broker(int(pi.Leader)).Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s/%d at %d: %w", topic, pi.Partition, at, err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("fetch %s/%d at %d: unexpected answer (error %d)", topic, pi.Partition, at, resp.ErrorCode)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return nil, fmt.Errorf("fetch %s/%d at %d: %w", topic, pi.Partition, at, err)
	}
	var out []kmsg.RecordBatch
	for in := p.RecordBatches; len(in) >= 17; {
		size := 12 + int(int32(binary.BigEndian.Uint32(in[8:12])))
		if size > len(in) {
			break // a partial batch at the end of the answer
		}
		if in[16] == 2 { // magic 2: record batches (the only kind kfake stores)
			var b kmsg.RecordBatch
			if err := b.ReadFrom(in[:size]); err != nil {
				return nil, fmt.Errorf("fetch %s/%d at %d: %w", topic, pi.Partition, at, err)
			}
			out = append(out, b)
		}
		in = in[size:]
	}
	return out, nil
}

// writeAbortMarker ends t with an abort marker, as the coordinator would.
func writeAbortMarker(ctx context.Context, cl *kgo.Client, leader int32, t crashedTxn) error {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = t.producer, t.epoch, false
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = t.topic, []int32{t.partition}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	kresp, err := cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return fmt.Errorf("abort the transaction a crash left open (%s): %w", t, err)
	}
	for _, rm := range kresp.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return fmt.Errorf("abort the transaction a crash left open (%s): %w", t, err)
				}
			}
		}
	}
	return nil
}
