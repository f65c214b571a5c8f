package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ApplyFunc persists one batch of records together with the positions it
// reaches (next offset per partition: record offset + 1), atomically. An
// error stops the Tailer.
type ApplyFunc func(ctx context.Context, batch []kafka.Message) error

// Tailer keeps a local table in step with every partition of a topic: it
// reads from the positions the table last stored and applies batches. It
// reads without a consumer group (each instance wants all partitions), so
// its positions live with the table, in the same transaction as the rows.
type Tailer struct {
	k          *Cluster
	topic      string
	partitions int
	apply      ApplyFunc
	maxBatch   int
	committed  bool // read committed records only (ReadCommitted)

	mu      sync.Mutex
	pos     map[int]int64 // next offset to apply; kafka.FirstOffset when nothing was read yet
	advance chan struct{} // closed and replaced after every applied batch
	fetcher *Fetcher
}

// NewTailer prepares a tailer over partitions 0..partitions-1 of topic,
// starting at start[p] (missing: the beginning). Run starts it.
func (k *Cluster) NewTailer(topic string, partitions int, start map[int]int64, apply ApplyFunc) *Tailer {
	pos := make(map[int]int64, partitions)
	for p := range partitions {
		pos[p] = kafka.FirstOffset
		if off, ok := start[p]; ok && off >= 0 {
			pos[p] = off
		}
	}
	return &Tailer{k: k, topic: topic, partitions: partitions, apply: apply, maxBatch: 2000, pos: pos, advance: make(chan struct{})}
}

// ReadCommitted makes the tailer see committed records only, for a topic
// written in Kafka transactions: records of aborted transactions never
// reach the table, nor does anything of a transaction still open. Call it
// before Run.
func (t *Tailer) ReadCommitted() *Tailer {
	t.committed = true
	return t
}

// Run applies batches until ctx ends (returns nil) or apply fails.
func (t *Tailer) Run(ctx context.Context) error {
	if err := t.checkGaps(ctx); err != nil {
		return err
	}
	f, err := t.k.NewFetcher(t.topic, t.Position(), FetchOptions{Queue: 1024, ReadCommitted: t.committed})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.fetcher = f
	t.mu.Unlock()
	defer f.Close()
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	go t.k.TrackLag(lagCtx, t.topic, AllPartitions(t.partitions), t.posOf, LagRefresh)
	var buf []kafka.Message
	for {
		buf, err = f.Next(ctx, buf, t.maxBatch)
		if err != nil {
			return nil // ctx ended
		}
		if len(buf) > 0 { // empty: a committed fetcher passed transaction markers only
			if err := t.apply(ctx, buf); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("apply %s batch: %w", t.topic, err)
			}
		}
		t.k.metrics.Consumed(t.topic, len(buf))
		t.mu.Lock()
		for _, m := range buf {
			if m.Offset+1 > t.pos[m.Partition] {
				t.pos[m.Partition] = m.Offset + 1
			}
		}
		if t.committed {
			// Everything before a marker Next passed over is applied by now.
			for p := range t.pos {
				if end := f.ControlEnd(p); end > t.pos[p] {
					t.pos[p] = end
				}
			}
		}
		close(t.advance)
		t.advance = make(chan struct{})
		t.mu.Unlock()
	}
}

// Position is the next offset to apply per partition (kafka.FirstOffset for
// a partition nothing was applied from yet).
func (t *Tailer) Position() map[int]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.pos)
}

// Err is the last read error of a running tailer (nil while records flow).
func (t *Tailer) Err() error {
	t.mu.Lock()
	f := t.fetcher
	t.mu.Unlock()
	if f == nil {
		return nil
	}
	return f.Err()
}

// WaitCaughtUp returns once everything the topic held when it was called has
// been applied, or when ctx ends. Use it so that a table is complete before
// it is trusted (at start, or before declaring a movie unknown).
//
// A partition is caught up when the tailer's position reaches the end the
// call saw, not when a record at end-1 was applied: the offsets below the
// end may hold nothing this tailer is ever given — records of a transaction
// a broker aborted without writing a marker, batches compaction emptied. So
// while it waits, a partition whose position stays put is read once at the
// broker from that position (skipEmpty), and the offsets a reader there
// passes over without being given a record count as applied, as
// kafkaio.ReadCommitted ends a partition on its position.
func (t *Tailer) WaitCaughtUp(ctx context.Context) error {
	offsets := t.k.Offsets
	if t.committed {
		offsets = t.k.OffsetsCommitted // an open transaction is not there yet
	}
	ends, err := offsets(ctx, t.topic, AllPartitions(t.partitions))
	if err != nil {
		return err
	}
	tick := time.NewTicker(stallCheckEvery)
	defer tick.Stop()
	var probe *gapProbe
	defer func() { probe.close() }()
	seen := map[int]int64{} // positions at the last tick
	for {
		t.mu.Lock()
		behind := map[int]int64{}
		for p, b := range ends {
			pos := t.pos[p]
			if pos < 0 {
				pos = b.First // nothing read: empty partitions count as read
			}
			if pos < b.End {
				behind[p] = pos
			}
		}
		advance := t.advance
		t.mu.Unlock()
		if len(behind) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %d partition(s) not caught up: %w", t.topic, len(behind), ctx.Err())
		case <-advance:
		case <-tick.C:
			stalled := map[int]int64{}
			for p, pos := range behind {
				if last, ok := seen[p]; ok && last == pos {
					stalled[p] = pos
				}
				seen[p] = pos
			}
			if len(stalled) > 0 {
				if probe == nil {
					if probe, err = t.newGapProbe(); err != nil {
						continue // no client now: the next tick tries again
					}
				}
				t.skipEmpty(ctx, probe, stalled, ends)
			}
		}
	}
}

// stallCheckEvery is how often WaitCaughtUp looks for partitions whose
// position did not move; one that stays put for a whole period is read at
// the broker.
const stallCheckEvery = 250 * time.Millisecond

// gapProbe reads a stalled partition at the broker, committed records only
// (ReadCommitted's reader). A plain tailer's topic is written without
// transactions, where that is every record.
type gapProbe struct{ cl *kgo.Client }

func (t *Tailer) newGapProbe() (*gapProbe, error) {
	cl, err := kgo.NewClient(t.k.FranzOpts()...)
	if err != nil {
		return nil, err
	}
	return &gapProbe{cl: cl}, nil
}

func (g *gapProbe) close() {
	if g != nil {
		g.cl.Close()
	}
}

// errGiven stops a probe at the first record the tailer will be given.
var errGiven = errors.New("a record the tailer is given")

// skipEmpty moves each stalled partition's position past the offsets that
// hold nothing for the tailer, up to its first record below the end (which
// the fetcher delivers) or to the end. A failed read changes nothing: the
// next tick reads again.
func (t *Tailer) skipEmpty(ctx context.Context, g *gapProbe, stalled map[int]int64, ends map[int]Bounds) {
	r := committedRead{topic: t.topic, cl: g.cl, pos: map[int32]int64{}, end: map[int32]int64{}}
	for p, pos := range stalled {
		if pos < ends[p].First {
			continue // a retention gap: Run refuses it (checkGaps), nothing is skipped
		}
		r.pos[int32(p)], r.end[int32(p)] = pos, ends[p].End
	}
	if len(r.pos) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	id, leaders, err := r.metadata(pctx)
	if err != nil {
		return
	}
	reached := map[int]int64{}
	for leader, parts := range leaders {
		for _, p := range parts { // one at a time: a record given stops the fetch
			first := int64(-1)
			_, err := r.fetch(pctx, leader, id, []int32{p}, func(m kafka.Message) error {
				first = m.Offset
				return errGiven
			})
			switch {
			case first >= 0:
				reached[int(p)] = first // nothing for the tailer before it
			case err != nil:
			default:
				next, open := r.pos[p]
				if !open {
					next = r.end[p] // read to the end without a record
				}
				reached[int(p)] = next
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	moved := false
	for p, next := range reached {
		if next > t.pos[p] {
			t.k.log.Info("skipped offsets that hold no record for this reader", "topic", t.topic, "partition", p, "from", stalled[p], "to", next)
			t.pos[p], moved = next, true
		}
	}
	if moved {
		close(t.advance)
		t.advance = make(chan struct{})
	}
}

func (t *Tailer) posOf(p int) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos[p]
}

// checkGaps refuses to resume a table whose stored positions lie below the
// log start (a retention gap: see RetentionGapError) or past its end (a
// reset log: see LogResetError). A broker that does not
// answer now is no reason not to start: the check is then skipped, logged.
func (t *Tailer) checkGaps(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := t.k.CheckRetentionGaps(cctx, t.topic, t.Position())
	var gap *RetentionGapError
	if errors.As(err, &gap) {
		t.k.log.Error("retention gap: the table cannot resume", "topic", gap.Topic, "partition", gap.Partition,
			"next", gap.Next, "log_start", gap.LogStart, "deleted_unapplied", gap.LogStart-gap.Next)
		return err
	}
	var reset *LogResetError
	if errors.As(err, &reset) {
		t.k.log.Error("log reset: the table cannot resume", "topic", reset.Topic, "partition", reset.Partition,
			"next", reset.Next, "log_end", reset.End)
		return err
	}
	if err != nil && ctx.Err() == nil {
		t.k.log.Warn("could not check for a retention gap; resuming unchecked", "topic", t.topic, "error", err.Error())
	}
	return nil
}
