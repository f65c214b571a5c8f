package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// Queue is how many fetched records may wait per partition (default 2048).
	Queue int
}

// Fetcher reads a fixed set of partitions of one topic, each from an offset
// the caller chose, and hands them out in batches. It is for consumers that
// keep their offsets themselves (a kafka-go group Reader cannot seek).
// Records of one partition come out in offset order.
type Fetcher struct {
	topic   string
	ch      chan kafka.Message
	readers []*kafka.Reader
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	metrics *Metrics

	mu      sync.Mutex
	lastErr error
}

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
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fetcher{topic: topic, ch: make(chan kafka.Message, o.Queue), cancel: cancel, metrics: k.metrics}
	for p, off := range start {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:        k.cfg.Brokers,
			Topic:          topic,
			Partition:      p,
			Dialer:         k.dialer,
			MinBytes:       1,
			MaxBytes:       o.MaxBytes,
			MaxWait:        o.MaxWait,
			QueueCapacity:  o.Queue,
			ReadBackoffMin: 100 * time.Millisecond,
			ReadBackoffMax: time.Second,
			MaxAttempts:    3,
			ErrorLogger:    kafkaLogger(k.log, slog.LevelWarn, fmt.Sprintf("reader %s/%d", topic, p)),
		})
		if err := r.SetOffset(off); err != nil {
			cancel()
			f.closeReaders()
			r.Close()
			return nil, fmt.Errorf("seek %s/%d to %d: %w", topic, p, off, err)
		}
		f.readers = append(f.readers, r)
		f.wg.Add(1)
		go f.pump(ctx, p, r)
	}
	return f, nil
}

// pump moves one partition's records into the shared channel. kafka-go
// retries connection failures itself (with backoff) and reports them through
// FetchMessage; they are remembered for health and the pump carries on.
func (f *Fetcher) pump(ctx context.Context, partition int, r *kafka.Reader) {
	defer f.wg.Done()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			f.setErr(fmt.Errorf("reading %s partition %d: %w", f.topic, partition, err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond): // FetchMessage backs off too; this only caps a tight loop
			}
			continue
		}
		f.setErr(nil)
		select {
		case f.ch <- m:
		case <-ctx.Done():
			return
		}
	}
}

func (f *Fetcher) setErr(err error) {
	f.mu.Lock()
	f.lastErr = err
	f.mu.Unlock()
}

// Err is the last read error, nil once records flow again.
func (f *Fetcher) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// Next blocks until at least one record is available (or ctx ends), then
// returns it together with whatever else is already fetched, up to max
// records, appended to buf[:0]. Consumer lag is updated from the records'
// high watermarks.
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
	f.observeLag(buf)
	return buf, nil
}

// observeLag sets each partition's lag from its newest record in batch.
func (f *Fetcher) observeLag(batch []kafka.Message) {
	var done []int
	for i := len(batch) - 1; i >= 0 && len(done) < len(f.readers); i-- {
		p := batch[i].Partition
		if slices.Contains(done, p) {
			continue
		}
		done = append(done, p)
		f.metrics.SetLag(f.topic, p, batch[i].HighWaterMark-batch[i].Offset-1)
	}
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
