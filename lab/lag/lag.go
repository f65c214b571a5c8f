// Package lag measures a consumer's lag from outside the consumer: the log
// end offsets the broker reports, read over a direct connection to the
// broker (never through a fault proxy), minus the position the consumer has
// durably recorded, read by the lab itself — per partition. A consumer's own
// gauge keeps its last value while the consumer is paused or cut off; this
// measurement does not. When either side cannot be read the lag is unknown,
// and says why: never a stale number.
//
// The durable position is a small interface, so that each way of recording
// it plugs in: ratings-stream's SQLite stores (StoreFiles, effectively-once),
// committed group offsets (GroupOffsets: at-least-once, transactional),
// replicas (several store files; the most advanced position per partition).
package lag

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/positions"
)

// Positions is where a consumer durably is: per partition, the next offset
// its recorded state includes. A partition absent from the result has no
// recorded position (the consumer starts it from the log's first offset).
type Positions interface {
	Positions(ctx context.Context) (map[int]int64, error)
	// Describe names the source for people ("ratings-stream's stores").
	Describe() string
}

// EndOffsets is the broker's side: the bounds of a topic's partitions
// (kafkaio.Cluster.Offsets on a direct connection).
type EndOffsets interface {
	Offsets(ctx context.Context, topic string, partitions []int) (map[int]kafkaio.Bounds, error)
}

// Meter measures one consumer's lag on one topic.
type Meter struct {
	Broker     EndOffsets
	Topic      string
	Partitions int
	Position   Positions
}

// Lag is one measurement.
type Lag struct {
	// Total is the sum over partitions; meaningful only when Err is nil.
	Total int64
	// ByPartition is each partition's lag: end − max(position, first).
	ByPartition map[int]int64
	// Err says why the lag is unknown (either side unreadable).
	Err error
}

// Known reports whether the lag could be measured.
func (l Lag) Known() bool { return l.Err == nil }

// Measure reads both sides now; ctx bounds both reads.
func (m *Meter) Measure(ctx context.Context) Lag {
	bounds, err := m.Broker.Offsets(ctx, m.Topic, kafkaio.AllPartitions(m.Partitions))
	if err != nil {
		return Lag{Err: fmt.Errorf("broker end offsets: %w", err)}
	}
	pos, err := m.Position.Positions(ctx)
	if err != nil {
		return Lag{Err: fmt.Errorf("%s: %w", m.Position.Describe(), err)}
	}
	return Compute(bounds, pos)
}

// Compute is the lag of every partition of bounds given the positions.
func Compute(bounds map[int]kafkaio.Bounds, pos map[int]int64) Lag {
	l := Lag{ByPartition: make(map[int]int64, len(bounds))}
	for p, b := range bounds {
		next := b.First
		if n, ok := pos[p]; ok && n > next {
			next = n
		}
		l.ByPartition[p] = max(b.End-next, 0)
		l.Total += l.ByPartition[p]
	}
	return l
}

// StoreFiles are a consumer's SQLite stores (one per replica), read-only
// through services/lib/kafkaio/positions, which owns the offsets table. Per partition
// the most advanced position wins: after a rebalance a replica keeps the
// stale position of a partition it no longer owns.
type StoreFiles struct {
	Name  string          // "ratings-stream"
	Topic string          // the consumed topic
	Paths func() []string // the store files that exist now
}

// Positions implements Positions.
func (s StoreFiles) Positions(ctx context.Context) (map[int]int64, error) {
	paths := s.Paths()
	if len(paths) == 0 {
		return nil, errors.New("no store file")
	}
	out := map[int]int64{}
	for _, path := range paths {
		pos, err := positions.ReadFile(ctx, path, s.Topic)
		if err != nil {
			return nil, err
		}
		for p, n := range pos {
			if n > out[p] {
				out[p] = n
			}
		}
	}
	return out, nil
}

// Describe implements Positions.
func (s StoreFiles) Describe() string { return s.Name + "'s stored offsets" }

// GroupOffsets are a consumer group's committed offsets, the durable
// position of consumers whose offsets live in the broker (at-least-once,
// transactional).
type GroupOffsets struct {
	Client     *kafka.Client // direct to the broker
	Group      string
	Topic      string
	Partitions int
}

// Positions implements Positions.
func (g GroupOffsets) Positions(ctx context.Context) (map[int]int64, error) {
	res, err := g.Client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: g.Group, Topics: map[string][]int{g.Topic: kafkaio.AllPartitions(g.Partitions)}})
	if err != nil {
		return nil, err
	}
	if errors.Is(res.Error, kafka.GroupIdNotFound) {
		return map[int]int64{}, nil // never committed: no recorded position
	}
	if res.Error != nil {
		return nil, res.Error
	}
	out := map[int]int64{}
	for _, p := range res.Topics[g.Topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Partition, p.Error)
		}
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// Describe implements Positions.
func (g GroupOffsets) Describe() string { return "group " + g.Group + "'s committed offsets" }

// Describe says how a meter measures, for the journal.
func (m *Meter) Describe() string {
	return fmt.Sprintf("%s end offsets from the broker (direct) − %s, per partition of %d", m.Topic, m.Position.Describe(), m.Partitions)
}

// FormatPartitions writes per-partition lags for people: "0:3 1:0 ...".
func FormatPartitions(byPartition map[int]int64) string {
	ps := make([]int, 0, len(byPartition))
	for p := range byPartition {
		ps = append(ps, p)
	}
	sort.Ints(ps)
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d", p, byPartition[p])
	}
	return b.String()
}
