// Package changelog keeps ratings-stream's state in a compacted Kafka topic,
// the way Kafka Streams backs a state store with a changelog topic. The
// changelog (model.TopicRatingsChangelog) is co-partitioned with `ratings`:
// partition p holds the state built from ratings partition p, so whoever
// owns ratings partition p restores its state by reading changelog
// partition p alone, and a processor's local state is only a cache of it.
//
// Three kinds of record, keyed so that compaction keeps exactly the current
// state (formats: docs/events.md):
//
//	movie/<movie id>  the movie's count and sum, and the source offset they include
//	seen/<offset>     the request ids counted at ratings offsets [offset, offset+BlockSize);
//	                  a tombstone once the block left the dedupe window
//	position          the next ratings offset: every rating below it is in the state
//
// A Partition is the state of one partition; a Batch collects one batch's
// changes against it without touching it (the transaction that writes them
// may abort), turns them into records, and is applied once they are
// committed. Records are written to the partition they belong to (Batch.ID);
// kafka-go writers need a balancer that keeps Message.Partition.
//
// The package is client-neutral (kafka-go message types, as everywhere in
// the lab); Restore reads with kafkaio's committed reader, because
// transactional writers leave aborted records and markers in the topic.
package changelog

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/kafkaio"
)

// BlockSize is how many ratings offsets one seen/ record covers. A batch
// rewrites the (partial) block it ends in, so small blocks keep rewrites
// small; the window is WindowSize/BlockSize records per partition.
const BlockSize = 100

// Key prefixes and the position key.
const (
	prefixMovie = "movie/"
	prefixSeen  = "seen/"
	keyPosition = "position"
)

// Aggregate is one movie's count and sum (the value of a movie/ record).
type Aggregate struct {
	MovieID   int64 `json:"movie_id"`
	Count     int64 `json:"count"`
	SumTenths int64 `json:"sum_tenths"`
	// SourceOffset: every rating of the movie on its partition below this
	// offset is included.
	SourceOffset int64 `json:"source_offset"`
	// LastEvent is the event time of the newest rating included.
	LastEvent time.Time `json:"last_event_time,omitzero"`
}

// block is the value of a seen/ record.
type block struct {
	From       int64    `json:"from_offset"`
	RequestIDs []string `json:"request_ids"`
}

// position is the value of the position record.
type position struct {
	Next int64 `json:"next_offset"`
}

// Partition is the state of one partition.
type Partition struct {
	ID int
	// Next is the next ratings offset to count; -1 when nothing was counted.
	Next   int64
	Movies map[int64]Aggregate

	blocks map[int64][]string // block start → request ids counted in it
	ids    map[string]int32   // request id → how many blocks hold it
}

// NewPartition is the empty state of partition id.
func NewPartition(id int) *Partition {
	return &Partition{ID: id, Next: -1, Movies: map[int64]Aggregate{}, blocks: map[int64][]string{}, ids: map[string]int32{}}
}

// Seen reports whether a rating with this request id was counted in the
// window the partition remembers.
func (p *Partition) Seen(requestID string) bool { return p.ids[requestID] > 0 }

// SeenCount is how many request ids the partition remembers.
func (p *Partition) SeenCount() int { return len(p.ids) }

func (p *Partition) setBlock(from int64, ids []string) {
	for _, id := range p.blocks[from] {
		p.forget(id)
	}
	if ids == nil {
		delete(p.blocks, from)
		return
	}
	p.blocks[from] = ids
	for _, id := range ids {
		p.ids[id]++
	}
}

func (p *Partition) forget(id string) {
	if n := p.ids[id]; n <= 1 {
		delete(p.ids, id)
	} else {
		p.ids[id] = n - 1
	}
}

// Load applies one changelog record of this partition (restore). A nil or
// empty value is a tombstone.
func (p *Partition) Load(key, value []byte) error {
	k := string(key)
	switch {
	case k == keyPosition:
		if len(value) == 0 {
			p.Next = -1
			return nil
		}
		var pos position
		if err := json.Unmarshal(value, &pos); err != nil {
			return fmt.Errorf("changelog record %q: %w", k, err)
		}
		p.Next = pos.Next
	case len(k) > len(prefixMovie) && k[:len(prefixMovie)] == prefixMovie:
		id, err := strconv.ParseInt(k[len(prefixMovie):], 10, 64)
		if err != nil {
			return fmt.Errorf("changelog record %q: bad movie id", k)
		}
		if len(value) == 0 {
			delete(p.Movies, id)
			return nil
		}
		var a Aggregate
		if err := json.Unmarshal(value, &a); err != nil {
			return fmt.Errorf("changelog record %q: %w", k, err)
		}
		p.Movies[id] = a
	case len(k) > len(prefixSeen) && k[:len(prefixSeen)] == prefixSeen:
		from, err := strconv.ParseInt(k[len(prefixSeen):], 10, 64)
		if err != nil {
			return fmt.Errorf("changelog record %q: bad block offset", k)
		}
		if len(value) == 0 {
			p.setBlock(from, nil)
			return nil
		}
		var b block
		if err := json.Unmarshal(value, &b); err != nil {
			return fmt.Errorf("changelog record %q: %w", k, err)
		}
		p.setBlock(from, b.RequestIDs)
	default:
		return fmt.Errorf("changelog record %q: not a ratings-stream changelog key (movie/, seen/, position)", k)
	}
	return nil
}

// Batch is one batch's changes to a Partition, not applied yet.
type Batch struct {
	p      *Partition
	next   int64
	movies map[int64]Aggregate
	blocks map[int64][]string // changed blocks: their whole new content
	added  map[string]bool
}

// Begin starts a batch on p.
func (p *Partition) Begin() *Batch {
	return &Batch{p: p, next: p.Next, movies: map[int64]Aggregate{}, blocks: map[int64][]string{}, added: map[string]bool{}}
}

// ID is the partition the batch belongs to.
func (b *Batch) ID() int { return b.p.ID }

// Next is the next offset to count after the batch.
func (b *Batch) Next() int64 { return b.next }

// Seen reports whether a request id was counted before or in this batch.
func (b *Batch) Seen(requestID string) bool { return b.added[requestID] || b.p.Seen(requestID) }

// Skip records that the rating at offset was handled without counting it
// (a duplicate, a dead letter): the position moves past it.
func (b *Batch) Skip(offset int64) { b.next = max(b.next, offset+1) }

// Count adds the rating at offset to its movie and remembers its request id.
func (b *Batch) Count(offset int64, requestID string, movieID, tenths int64, eventTime time.Time) {
	a, ok := b.movies[movieID]
	if !ok {
		a, ok = b.p.Movies[movieID]
		if !ok {
			a = Aggregate{MovieID: movieID}
		}
	}
	a.Count++
	a.SumTenths += tenths
	if eventTime.After(a.LastEvent) {
		a.LastEvent = eventTime
	}
	b.movies[movieID] = a
	from := offset - offset%BlockSize
	ids, ok := b.blocks[from]
	if !ok {
		ids = slices.Clone(b.p.blocks[from])
	}
	b.blocks[from] = append(ids, requestID)
	b.added[requestID] = true
	b.Skip(offset)
}

// Changed lists the aggregates the batch changed, by movie id, with their
// source offset set to the batch's end.
func (b *Batch) Changed() []Aggregate {
	out := make([]Aggregate, 0, len(b.movies))
	for _, id := range slices.Sorted(maps.Keys(b.movies)) {
		a := b.movies[id]
		a.SourceOffset = b.next
		out = append(out, a)
	}
	return out
}

// expired lists the blocks (the partition's and the batch's) that fall out
// of a dedupe window of window offsets once the batch is applied.
func (b *Batch) expired(window int64) []int64 {
	var out []int64
	for _, m := range []map[int64][]string{b.p.blocks, b.blocks} {
		for from := range m {
			if from+BlockSize <= b.next-window && !slices.Contains(out, from) {
				out = append(out, from)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Records are the changelog records of the batch for a dedupe window of
// window offsets: changed movies, changed blocks, tombstones for blocks
// that left the window, and the position. Write them to partition ID().
func (b *Batch) Records(window int64) []kafka.Message {
	if b.next == b.p.Next && len(b.movies) == 0 {
		return nil
	}
	var out []kafka.Message
	add := func(key string, v any) {
		var value []byte
		if v != nil {
			value, _ = json.Marshal(v) // plain structs: cannot fail
		}
		out = append(out, kafka.Message{Partition: b.p.ID, Key: []byte(key), Value: value})
	}
	for _, a := range b.Changed() {
		add(prefixMovie+strconv.FormatInt(a.MovieID, 10), a)
	}
	expired := b.expired(window)
	for _, from := range slices.Sorted(maps.Keys(b.blocks)) {
		if !slices.Contains(expired, from) {
			add(prefixSeen+strconv.FormatInt(from, 10), block{From: from, RequestIDs: b.blocks[from]})
		}
	}
	for _, from := range expired {
		if _, ok := b.p.blocks[from]; ok {
			add(prefixSeen+strconv.FormatInt(from, 10), nil)
		}
	}
	add(keyPosition, position{Next: b.next})
	return out
}

// Apply makes the batch part of the partition: call it once its records
// (and the consumed offsets) are committed.
func (b *Batch) Apply(window int64) {
	expired := b.expired(window)
	for _, a := range b.Changed() {
		b.p.Movies[a.MovieID] = a
	}
	for from, ids := range b.blocks {
		b.p.setBlock(from, ids)
	}
	for _, from := range expired {
		b.p.setBlock(from, nil)
	}
	b.p.Next = b.next
}

// Restore reads the given partitions of the changelog topic, committed
// records only, from their start to their end as of the call, and returns
// their state (an empty one for a partition never written).
func Restore(ctx context.Context, k *kafkaio.Cluster, topic string, partitions []int) (map[int]*Partition, error) {
	out := make(map[int]*Partition, len(partitions))
	for _, p := range partitions {
		out[p] = NewPartition(p)
	}
	err := k.ReadCommitted(ctx, topic, partitions, func(m kafka.Message) error {
		p := out[m.Partition]
		if p == nil {
			return nil
		}
		if err := p.Load(m.Key, m.Value); err != nil {
			return fmt.Errorf("%s partition %d offset %d: %w", topic, m.Partition, m.Offset, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore from %s: %w", topic, err)
	}
	return out, nil
}

// Equal reports whether two partition states hold the same state (tests,
// rebuild proofs).
func (p *Partition) Equal(o *Partition) bool {
	if p.ID != o.ID || p.Next != o.Next || !maps.EqualFunc(p.Movies, o.Movies, func(a, b Aggregate) bool {
		return a.MovieID == b.MovieID && a.Count == b.Count && a.SumTenths == b.SumTenths &&
			a.SourceOffset == b.SourceOffset && a.LastEvent.Equal(b.LastEvent)
	}) {
		return false
	}
	return maps.EqualFunc(p.blocks, o.blocks, func(a, b []string) bool { return slices.Equal(a, b) })
}
