package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Reading committed records only (FetchOptions.ReadCommitted).
//
// A topic written in Kafka transactions (rated-movies and the processor's
// changelog in --delivery=transactional) holds records of aborted
// transactions and one transaction marker (a control record) per
// transaction and partition. A read_committed consumer must skip both, and
// see nothing of a transaction that is still open. kafka-go asks the broker
// for read_committed but filters nothing (segmentio/kafka-go#1332): it
// would hand out aborted records and the markers as data. Committed
// fetchers therefore read with franz-go, which implements the consumer side
// of transactions; they fill the same queue and keep the same health as
// kafka-go fetchers.
//
// Markers occupy offsets. Next passes over them without returning them;
// ControlEnd tells a consumer tracking positions how far it may advance
// past them, so that "caught up with the end" stays reachable.

// controlHeader marks a transaction marker inside the Fetcher's queue; Next
// never returns such a message.
const controlHeader = "\x00kafkaio-transaction-marker"

// newCommittedFetcher is NewFetcher for FetchOptions.ReadCommitted.
func (k *Cluster) newCommittedFetcher(topic string, start map[int]int64, o FetchOptions) (*Fetcher, error) {
	offsets := make(map[int32]kgo.Offset, len(start))
	f := &Fetcher{topic: topic, ch: make(chan kafka.Message, o.Queue), k: k,
		parts: make(map[int]*partHealth, len(start)), controlEnd: map[int]int64{}}
	for p, off := range start {
		f.parts[p] = &partHealth{next: off}
		switch off {
		case kafka.FirstOffset:
			offsets[int32(p)] = kgo.NewOffset().AtStart()
		case kafka.LastOffset:
			offsets[int32(p)] = kgo.NewOffset().AtEnd()
		default:
			offsets[int32(p)] = kgo.NewOffset().At(off)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl, err := kgo.NewClient(k.FranzOpts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// franz-go retries broken connections without end and without a
		// word in the fetches: its hooks are what makes them visible in Err.
		kgo.KeepRetryableFetchErrors(),
		kgo.WithHooks(fetchHooks{f, ctx}),
		kgo.FetchMaxWait(max(o.MaxWait-time.Second, 250*time.Millisecond)),
		kgo.FetchMaxBytes(int32(o.MaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(o.MaxBytes)),
	)...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("read %s committed: %w", topic, err)
	}
	f.cancel = cancel
	f.wg.Go(func() { f.pumpCommitted(ctx, cl) })
	f.wg.Go(func() { f.watch(ctx) })
	return f, nil
}

// pumpCommitted moves committed records (and markers, flagged) into the
// queue until the Fetcher is closed.
func (f *Fetcher) pumpCommitted(ctx context.Context, cl *kgo.Client) {
	defer cl.Close()
	for {
		fs := cl.PollRecords(ctx, cap(f.ch))
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(_ string, p int32, err error) {
			if _, ok := f.parts[int(p)]; ok {
				f.failed(int(p), err)
			}
		})
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			m := MessageOf(r)
			if r.Attrs.IsControl() {
				m.Headers = []kafka.Header{{Key: controlHeader}}
			}
			f.delivered(m.Partition, m.Offset+1)
			select {
			case f.ch <- m:
			case <-ctx.Done():
				return
			}
		}
	}
}

// fetchHooks report failing fetches and connects of a committed fetcher's
// client as failures of every partition it reads (the client does not say
// which partitions a broken connection served); records flowing again, or
// the Fetcher's probe, clear them as for kafka-go readers.
type fetchHooks struct {
	f   *Fetcher
	ctx context.Context // done once the Fetcher closes: what fails then is the close
}

func (h fetchHooks) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil && h.ctx.Err() == nil {
		h.f.failedAll(fmt.Errorf("connect to broker %s:%d: %w", meta.Host, meta.Port, err))
	}
}

func (h fetchHooks) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	// A fetch franz-go cancels itself (a partition moved, a session
	// reset) is not a failure.
	if err := e2e.Err(); err != nil && key == int16(kmsg.Fetch) && h.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		h.f.failedAll(fmt.Errorf("fetch from broker %s:%d: %w", meta.Host, meta.Port, err))
	}
}

func (f *Fetcher) failedAll(err error) {
	for p := range f.parts {
		f.failed(p, err)
	}
}

// isControl reports whether m is a transaction marker of a committed fetcher.
func isControl(m *kafka.Message) bool {
	return len(m.Headers) == 1 && m.Headers[0].Key == controlHeader
}

// dropControl removes transaction markers from buf, remembering for each
// partition the offset after the last one.
func (f *Fetcher) dropControl(buf []kafka.Message) []kafka.Message {
	if f.controlEnd == nil {
		return buf
	}
	out := buf[:0]
	for i := range buf {
		if isControl(&buf[i]) {
			f.mu.Lock()
			f.controlEnd[buf[i].Partition] = buf[i].Offset + 1
			f.mu.Unlock()
			continue
		}
		out = append(out, buf[i])
	}
	return out
}

// ControlEnd is, for a committed fetcher, the offset after the last
// transaction marker Next has passed over on partition p (-1: none). Once a
// consumer has applied everything Next returned, it has applied partition p
// up to at least ControlEnd(p): records come out in offset order.
func (f *Fetcher) ControlEnd(p int) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if end, ok := f.controlEnd[p]; ok {
		return end
	}
	return -1
}

// MessageOf is a franz-go record as a kafka-go message (the type the lab's
// consumers work with).
func MessageOf(r *kgo.Record) kafka.Message {
	m := kafka.Message{Topic: r.Topic, Partition: int(r.Partition), Offset: r.Offset,
		Key: r.Key, Value: r.Value, Time: r.Timestamp}
	if len(r.Headers) > 0 {
		m.Headers = make([]kafka.Header, len(r.Headers))
		for i, h := range r.Headers {
			m.Headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}

// RecordOf is a kafka-go message as a franz-go record for topic and
// partition (set both: the lab's producers choose partitions themselves).
func RecordOf(m kafka.Message, topic string, partition int) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: int32(partition), Key: m.Key, Value: m.Value, Timestamp: m.Time}
	if len(m.Headers) > 0 {
		r.Headers = make([]kgo.RecordHeader, len(m.Headers))
		for i, h := range m.Headers {
			r.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return r
}
