package kafkaio

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// FetchOptions tune a Fetcher; zero values mean the defaults.
type FetchOptions struct {
	// MaxWait bounds a fetch when there is nothing new (default 2s). kafka-go
	// asks the broker to hold the fetch for MaxWait minus up to 1s and gives
	// up on the connection (i/o timeout, reconnect) at MaxWait, so the
	// difference is the round trip it tolerates — a latency fault on the
	// broker edge above it stalls the consumer. It also bounds Close.
	MaxWait time.Duration
	// MaxBytes is the most bytes per fetch response (default 8 MiB).
	MaxBytes int
	// Queue is how many fetched records may wait for Next (default 2048):
	// the most one Next returns while a consumer catches up. The partitions'
	// readers hold up to Queue more between them (readerQueue).
	Queue int
	// ReadCommitted reads committed records only, with franz-go: for topics
	// written in Kafka transactions (committed.go). Next may then return an
	// empty batch, after passing over transaction markers only.
	ReadCommitted bool
}

// Fetcher reads a fixed set of partitions of one topic, each from an offset
// the caller chose, and hands them out in batches. It is for consumers that
// keep their offsets themselves (a kafka-go group Reader cannot seek).
// Records of one partition come out in offset order.
//
// Connection failures (a broker restart, a cut proxy) never stop a Fetcher:
// kafka-go's reader reconnects by itself, backing off up to readBackoffMax
// between attempts, for as long as the Fetcher is open. What the Fetcher adds
// is an honest Err for health checks: a partition is failing from its first
// reported read error until either a record arrives from it again, or the
// broker answers for the partition, the reader has delivered everything the
// partition holds and no error was reported for recoverQuiet (an idle topic
// such as `movies` has no record to prove that reading works again).
type Fetcher struct {
	topic   string
	ch      chan kafka.Message
	readers []*kafka.Reader
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	k       *Cluster

	mu         sync.Mutex
	parts      map[int]*partHealth
	controlEnd map[int]int64 // committed fetchers: offset after the last marker passed (ControlEnd)
}

// partHealth is what the Fetcher knows about reading one partition.
type partHealth struct {
	next   int64     // offset after the last delivered record; the start offset before the first
	err    error     // last read error of the current outage; nil while reading works
	errAt  time.Time // when err was reported
	since  time.Time // when the current outage began
	errs   int       // errors reported in the current outage
	logged time.Time // when the outage was last logged
}

const (
	// readBackoffMin and readBackoffMax bound kafka-go's pause between two
	// attempts to (re)connect a partition reader: it never waits longer, so
	// a reader is back within about readBackoffMax of the broker.
	readBackoffMin = 100 * time.Millisecond
	readBackoffMax = time.Second
	// recoverQuiet is how long a failing partition must go without a new
	// error before a successful probe clears it: longer than a reader's
	// longest pause between two reports of a still-failing connection.
	recoverQuiet = 2 * time.Second
	// probeEvery is how often failing partitions are checked at the broker.
	probeEvery = 500 * time.Millisecond
	// relogEvery bounds how often a continuing outage is logged again.
	relogEvery = 10 * time.Second
)

// NewFetcher starts reading topic: partition p from start[p], an absolute
// offset or kafka.FirstOffset. Close it to stop.
func (k *Cluster) NewFetcher(topic string, start map[int]int64, o FetchOptions) (*Fetcher, error) {
	if o.MaxWait <= 0 {
		o.MaxWait = 2 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 8 << 20
	}
	if o.Queue <= 0 {
		o.Queue = 2048
	}
	if o.ReadCommitted {
		return k.newCommittedFetcher(topic, start, o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fetcher{topic: topic, ch: make(chan kafka.Message, o.Queue), cancel: cancel, k: k,
		parts: make(map[int]*partHealth, len(start))}
	// Every reader is set up, and f.parts complete, before the first pump
	// starts: pumps read f.parts (under f.mu), so filling it while they run
	// would be a concurrent map write.
	partitions := make([]int, 0, len(start))
	for p, off := range start {
		f.parts[p] = &partHealth{next: off}
		partitions = append(partitions, p)
	}
	for _, p := range partitions {
		off := start[p]
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:        k.cfg.Brokers,
			Topic:          topic,
			Partition:      p,
			Dialer:         k.dialer,
			MinBytes:       1,
			MaxBytes:       o.MaxBytes,
			MaxWait:        o.MaxWait,
			QueueCapacity:  readerQueue(o.Queue, len(partitions)),
			ReadBackoffMin: readBackoffMin,
			ReadBackoffMax: readBackoffMax,
			// No lag of kafka-go's own (Reader.Stats): it dials a connection
			// to the leader every minute per reader to ask for the last
			// offset, through the part's edge proxy; TrackLag asks for all
			// partitions on the transport's pooled connections instead.
			ReadLagInterval: -1,
			MaxAttempts:     3,
			ErrorLogger:     kafkaLogger(k.log, slog.LevelWarn, fmt.Sprintf("reader %s/%d", topic, p)),
		})
		if err := r.SetOffset(off); err != nil {
			cancel()
			f.closeReaders()
			r.Close()
			return nil, fmt.Errorf("seek %s/%d to %d: %w", topic, p, off, err)
		}
		f.readers = append(f.readers, r)
	}
	for i, r := range f.readers {
		f.wg.Add(1)
		go f.pump(ctx, partitions[i], r)
	}
	f.wg.Go(func() { f.watch(ctx) })
	return f, nil
}

// readerQueue is how many records each of n partition readers holds ahead
// of the shared queue: the shared queue's size split between them. Together
// they refill the shared queue as soon as a consumer has taken a batch, so
// the next batch is as large as before; each holding a whole Queue (kafka-go
// allocates its queue up front) made six readers at Queue 4096 4.5 MB of a
// ratings-stream's heap, doubled in its collector's goal.
func readerQueue(queue, n int) int {
	return max((queue+n-1)/max(n, 1), 1)
}

// pump moves one partition's records into the shared channel. kafka-go
// retries connection failures itself (with backoff, without end) and reports
// them through FetchMessage; they are logged and remembered for health, and
// the pump carries on until the Fetcher is closed. No error ends it: an EOF
// from a dropped connection is as transient as any other.
func (f *Fetcher) pump(ctx context.Context, partition int, r *kafka.Reader) {
	defer f.wg.Done()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.failed(partition, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond): // FetchMessage backs off too; this only caps a tight loop
			}
			continue
		}
		f.delivered(partition, m.Offset+1)
		select {
		case f.ch <- m:
		case <-ctx.Done():
			return
		}
	}
}

// failed records a read error of partition p and logs it: the first of an
// outage at once, then at most every relogEvery.
func (f *Fetcher) failed(p int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.parts[p]
	now := time.Now()
	if h.err == nil {
		h.since, h.errs = now, 0
	}
	h.err, h.errAt = err, now
	h.errs++
	if h.errs == 1 || now.Sub(h.logged) >= relogEvery {
		h.logged = now
		f.k.log.Warn("kafka read failing; the reader reconnects by itself",
			"topic", f.topic, "partition", p, "failing_for", now.Sub(h.since).Round(time.Millisecond).String(),
			"errors", h.errs, "retry_every_at_most", readBackoffMax.String(), "error", err.Error())
	}
}

// delivered records that partition p produced a record (next is its offset
// + 1): reading works, whatever failed before.
func (f *Fetcher) delivered(p int, next int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.parts[p]
	h.next = next
	if h.err != nil {
		f.recovered(p, h, "records flow again")
	}
}

// recovered clears partition p's outage. Called with f.mu held.
func (f *Fetcher) recovered(p int, h *partHealth, why string) {
	f.k.log.Info("kafka read recovered", "topic", f.topic, "partition", p, "how", why,
		"failed_for", time.Since(h.since).Round(time.Millisecond).String(), "errors", h.errs)
	h.err, h.errs = nil, 0
}

// watch clears failing partitions that have nothing to deliver once the
// broker answers for them again (see Fetcher). It runs until ctx ends.
func (f *Fetcher) watch(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Partitions failing but quiet for recoverQuiet, with the error
		// seen, so that a newer error cancels the clearing.
		seen := map[int]time.Time{}
		f.mu.Lock()
		for p, h := range f.parts {
			if h.err != nil && time.Since(h.errAt) >= recoverQuiet {
				seen[p] = h.errAt
			}
		}
		f.mu.Unlock()
		if len(seen) == 0 {
			continue
		}
		ps := slices.Sorted(maps.Keys(seen))
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		bounds, err := f.k.Offsets(pctx, f.topic, ps)
		cancel()
		if err != nil {
			continue // the broker does not answer yet
		}
		f.mu.Lock()
		for _, p := range ps {
			h, b := f.parts[p], bounds[p]
			if h.err == nil || !h.errAt.Equal(seen[p]) {
				continue
			}
			pending := h.next < b.End
			if h.next < 0 { // nothing delivered yet from the first or last offset
				pending = h.next == kafka.FirstOffset && b.First < b.End
			}
			if !pending {
				f.recovered(p, h, "broker answers and nothing is pending")
			}
		}
		f.mu.Unlock()
	}
}

// Err is the read error of the failing partitions (the lowest-numbered one
// is named), nil while every partition reads normally.
func (f *Fetcher) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var failing []int
	for p, h := range f.parts {
		if h.err != nil {
			failing = append(failing, p)
		}
	}
	if len(failing) == 0 {
		return nil
	}
	slices.Sort(failing)
	h := f.parts[failing[0]]
	more := ""
	if len(failing) > 1 {
		more = fmt.Sprintf(" (and %d more partitions)", len(failing)-1)
	}
	return fmt.Errorf("reading %s partition %d%s, failing for %s: %w",
		f.topic, failing[0], more, time.Since(h.since).Round(100*time.Millisecond), h.err)
}

// Next blocks until at least one record is available (or ctx ends), then
// returns it together with whatever else is already fetched, up to max
// records, appended to buf[:0]. A committed fetcher returns no transaction
// markers, so its batch may be empty (see ControlEnd).
//
// The Fetcher does not export consumer lag: a record's high watermark is the
// one of the fetch that brought it, stale by the time a slow or throttled
// consumer applies it from the queue, and only the consumer knows what it
// applied. Consumers run TrackLag with their applied positions.
func (f *Fetcher) Next(ctx context.Context, buf []kafka.Message, max int) ([]kafka.Message, error) {
	buf = buf[:0]
	select {
	case <-ctx.Done():
		return buf, ctx.Err()
	case m := <-f.ch:
		buf = append(buf, m)
	}
drain:
	for len(buf) < max {
		select {
		case m := <-f.ch:
			buf = append(buf, m)
		default:
			break drain
		}
	}
	return f.dropControl(buf), nil
}

// Close stops every partition reader and waits for them.
func (f *Fetcher) Close() {
	f.cancel()
	f.closeReaders()
	f.wg.Wait()
}

// closeReaders closes all readers at once: each may wait for a fetch in
// flight (up to MaxWait).
func (f *Fetcher) closeReaders() {
	var wg sync.WaitGroup
	for _, r := range f.readers {
		wg.Go(func() { r.Close() })
	}
	wg.Wait()
}
