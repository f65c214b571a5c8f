package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrOutcomeUnknown marks a produce whose records may or may not be in the
// log: the request was (or may have been) sent and no answer came, or the
// broker said it appended without the acknowledgements asked for. A write
// behind it is answered "outcome unknown" (docs/api.md), never "failed".
var ErrOutcomeUnknown = errors.New("outcome unknown")

// OnceProducer produces single records to one topic so that every caller
// learns one of three things before its deadline, and nothing happens to
// its record afterwards but what is already on the wire:
//
//   - nil: the broker acknowledged it (acks=all);
//   - an error matching ErrOutcomeUnknown: it was handed to a produce
//     request that got no answer (timeout, connection lost) or an
//     "appended, not replicated" answer — it may be in the log;
//   - any other error: it is certainly not in the log — the broker
//     refused it with an error code, or its deadline passed before it was
//     sent.
//
// Why not kafka-go's Writer: a WriteMessages whose context ends leaves its
// batch queued behind the partition's earlier batches and retries it in the
// background, so a record answered "failed" could land many seconds later
// (docs/events.md). Here each partition has at most one produce request in
// flight, carrying every record waiting for it (batching under load, no
// linger when idle); a request's deadline is the earliest of its records'
// deadlines, and a record is never put in a second request once one may
// have reached the broker. The window in which a record answered "unknown"
// can still land is the time its one request spends in transit.
//
// kafka-go's Transport (routing, metadata, connections) carries the
// requests. A failed dial is certain (nothing was sent); any other
// transport error cannot say whether the request left, so it is "unknown".
// (A dead broker refuses the dial, and so does the lab's edge proxy in
// front of it while it is down: a broker outage is "failed".)
type OnceProducer struct {
	topic   string
	client  *kafka.Client
	metrics *Metrics
	parts   []*onceQueue
	opts    OnceOptions
	stop    chan struct{}
	wg      sync.WaitGroup
}

// OnceOptions tune a OnceProducer; zero values mean the defaults.
type OnceOptions struct {
	// MaxBatch bounds the records of one produce request (default 1000).
	MaxBatch int
	// Attempts bounds the produce requests of one batch after definite,
	// retriable refusals such as "not leader" (default 3, at least 1). A
	// batch that may have reached the broker is never sent again.
	Attempts int
	// Backoff is the first wait before such a retry (default 50ms, doubling).
	Backoff time.Duration
	// Timeout caps a request when its callers set no deadline (default 10s).
	Timeout time.Duration
}

// OnceProducer returns a producer for topic with its partitions partitions
// (CRC32 of the key chooses one, like Writer). Close stops it.
func (k *Cluster) OnceProducer(topic string, partitions int, o OnceOptions) *OnceProducer {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1000
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 50 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	p := &OnceProducer{topic: topic, client: &kafka.Client{Addr: kafka.TCP(k.cfg.Brokers...), Transport: k.transport},
		metrics: k.metrics, opts: o, stop: make(chan struct{})}
	for i := range max(partitions, 1) {
		q := &onceQueue{partition: i, wake: make(chan struct{}, 1)}
		p.parts = append(p.parts, q)
		p.wg.Go(func() { p.run(q) })
	}
	return p
}

// onceQueue holds one partition's records waiting for its next request.
type onceQueue struct {
	partition int
	mu        sync.Mutex
	waiting   []*onceRecord
	closed    bool
	wake      chan struct{}
}

type onceRecord struct {
	ctx        context.Context
	key, value []byte
	at         time.Time
	result     chan error // buffered: the sender never blocks on a caller gone
	taken      bool       // in a batch (guarded by the queue's mu)
}

// Produce sends one record and waits for its outcome (see OnceProducer);
// ctx's deadline bounds the wait and the record's time to be sent.
func (p *OnceProducer) Produce(ctx context.Context, key, value []byte) error {
	part := (&kafka.CRC32Balancer{}).Balance(kafka.Message{Key: key}, p.partitionIDs()...)
	q := p.parts[part]
	r := &onceRecord{ctx: ctx, key: key, value: value, at: time.Now(), result: make(chan error, 1)}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("produce to %s: not sent: producer closed", p.topic)
	}
	q.waiting = append(q.waiting, r)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-r.result:
		return err
	case <-ctx.Done():
	}
	// Still waiting for a request: withdraw it, certainly not sent. Once
	// taken, its request's deadline is at most ours: wait for the answer.
	q.mu.Lock()
	taken := r.taken
	if !taken {
		q.waiting = slices.DeleteFunc(q.waiting, func(w *onceRecord) bool { return w == r })
	}
	q.mu.Unlock()
	if !taken {
		return fmt.Errorf("produce to %s: not sent: %w", p.topic, ctx.Err())
	}
	return <-r.result
}

func (p *OnceProducer) partitionIDs() []int {
	ids := make([]int, len(p.parts))
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// Topic is the topic this producer writes to.
func (p *OnceProducer) Topic() string { return p.topic }

// Close stops the partition loops: a request in flight finishes and is
// answered; records still waiting are answered "not sent".
func (p *OnceProducer) Close() {
	close(p.stop)
	p.wg.Wait()
	for _, q := range p.parts {
		q.mu.Lock()
		q.closed = true
		for _, r := range q.waiting {
			r.taken = true
			r.result <- fmt.Errorf("produce to %s: not sent: producer closed", p.topic)
		}
		q.waiting = nil
		q.mu.Unlock()
	}
}

// run sends one partition's records, one request at a time.
func (p *OnceProducer) run(q *onceQueue) {
	for {
		select {
		case <-p.stop:
			return
		case <-q.wake:
		}
		for {
			batch := p.take(q)
			if len(batch) == 0 {
				break
			}
			p.send(q.partition, batch)
		}
	}
}

// take removes up to MaxBatch waiting records; a record whose caller's
// deadline passed before it was sent is answered "not sent" here.
func (p *OnceProducer) take(q *onceQueue) []*onceRecord {
	q.mu.Lock()
	defer q.mu.Unlock()
	var batch []*onceRecord
	n := 0
	for _, r := range q.waiting {
		if len(batch) == p.opts.MaxBatch {
			q.waiting[n] = r
			n++
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.result <- fmt.Errorf("produce to %s: not sent: %w", p.topic, err)
			continue
		}
		r.taken = true
		batch = append(batch, r)
	}
	clear(q.waiting[n:])
	q.waiting = q.waiting[:n]
	return batch
}

// send produces one batch and answers each of its callers.
func (p *OnceProducer) send(partition int, batch []*onceRecord) {
	deadline := time.Now().Add(p.opts.Timeout)
	for _, r := range batch {
		if d, ok := r.ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := p.produce(ctx, partition, batch)
	if err == nil {
		p.metrics.produced.WithLabelValues(p.topic).Add(float64(len(batch)))
	} else {
		p.metrics.produceErrors.WithLabelValues(p.topic, ErrorName(err)).Add(float64(len(batch)))
	}
	for _, r := range batch {
		r.result <- err
	}
}

// produce makes the batch's produce requests: again only after a definite,
// retriable refusal, while the deadline allows.
func (p *OnceProducer) produce(ctx context.Context, partition int, batch []*onceRecord) error {
	wait := p.opts.Backoff
	for attempt := 1; ; attempt++ {
		// kafka.Bytes are readers: every request needs its own.
		recs := make([]kafka.Record, len(batch))
		for i, r := range batch {
			recs[i] = kafka.Record{Time: r.at, Key: kafka.NewBytes(r.key), Value: kafka.NewBytes(r.value)}
		}
		res, err := p.client.Produce(ctx, &kafka.ProduceRequest{
			Topic: p.topic, Partition: partition, RequiredAcks: kafka.RequireAll,
			Records: kafka.NewRecordReader(recs...),
		})
		if err == nil && res != nil {
			err = res.Error
		}
		if err == nil {
			return nil
		}
		var code kafka.Error
		switch {
		case errors.Is(err, errNotConnected):
			return fmt.Errorf("produce to %s[%d]: not sent: %w", p.topic, partition, err)
		case !errors.As(err, &code):
			return fmt.Errorf("produce to %s[%d]: %w: no answer: %w", p.topic, partition, ErrOutcomeUnknown, err)
		case maybeAppended(code):
			return fmt.Errorf("produce to %s[%d]: %w: %w", p.topic, partition, ErrOutcomeUnknown, err)
		case !code.Temporary() || attempt >= p.opts.Attempts:
			return fmt.Errorf("produce to %s[%d]: refused: %w", p.topic, partition, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("produce to %s[%d]: refused: %w (no time left to retry)", p.topic, partition, err)
		case <-time.After(wait):
		}
		p.metrics.produceRetries.WithLabelValues(p.topic).Inc()
		wait *= 2
	}
}

// maybeAppended reports a broker answer that does not rule the records out:
// the leader may have appended them before the error.
func maybeAppended(code kafka.Error) bool {
	switch code {
	case kafka.RequestTimedOut, kafka.NotEnoughReplicasAfterAppend, kafka.NetworkException, kafka.KafkaStorageError:
		return true
	}
	return false
}

// IsOutcomeUnknown reports whether a produce error leaves the records'
// fate open.
func IsOutcomeUnknown(err error) bool { return errors.Is(err, ErrOutcomeUnknown) }
