package changelog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/requestids"
)

// Where a restore starts reading the request-id topic (the retention floor).
//
// A restore keeps the request-id entries within the retention of the
// newest one it read (Partition.log): F = newest − retention, and every
// entry before the first one at or above F is dropped. The topic keeps its
// records for 30 minutes of the broker's clock, so a restore from the start
// may read many records only to drop them (all of them when the log's clock
// is far behind the broker's, as in a log stamped in the past). A restore
// can start instead at any offset s such that every entry of the records
// before s is below F: it then holds exactly the entries a read from the
// start holds (the entries it skipped were all dropped, and the newest
// entry lies at or after s).
//
// The search for s: read the last committed record (L, the newest time in
// it, is at most the restore's newest, so L − retention ≤ F), then search
// the partition's offsets for the last record whose entries are all older
// than L − retention − Margin, a probe per offset tried; start after it.
// The first record is probed first: when it is newer than that by the
// margin, no record is older (below), and the search ends there.
//
// What guarantees that no entry within retention is skipped: the topic's
// times go back, from one offset to a later one, by at most Margin. Then
// when every entry of a record r is below F − Margin, every entry before r
// is below F. Why they go back little or not at all: every entry's time is
// its rating's timestamp raised to the newest one counted before it
// (requestids.Partition.Count), and a new owner starts from the restored
// entries, whose newest it keeps; so times only go back where a record
// starts empty over older entries — after every entry of it expired, i.e.
// after a rating newer than them by more than the retention — and then by
// at most the amount the ratings partition's own timestamps go back less
// the retention. Margin covers a ratings partition whose timestamps go back
// by up to retention + Margin (20 minutes with the defaults; the lab's
// producers stamp the current time). What the search sees is checked: the
// records it read (times within a record, and between the records it
// probed) and, after the restore, every entry it read from s on; time going
// back by more than Margin anywhere makes the restore read the partition
// from the start again.

// FloorSearch bounds the search for the retention floor.
type FloorSearch struct {
	// Margin is how far the topic's times may go back from one offset to
	// a later one without an entry within retention being skipped.
	Margin time.Duration
	// MinOffsets: a partition spanning fewer offsets is read whole (a few
	// fetches read it; the search would cost as many).
	MinOffsets int64
	// MaxFetches bounds the fetches of one partition's search; Timeout
	// bounds the search of all partitions. Past either, the partition is
	// read from its start.
	MaxFetches int
	Timeout    time.Duration
	// Off reads every partition from its start (to compare with).
	Off bool
}

// DefaultFloorSearch is the search restores use.
var DefaultFloorSearch = FloorSearch{Margin: 5 * time.Minute, MinOffsets: 64, MaxFetches: 64, Timeout: 5 * time.Second}

// Floor is where a restore read one partition of the request-id topic from.
type Floor struct {
	From    int64 // the offset read from
	First   int64 // the partition's first offset: From − First offsets were skipped
	Fetches int   // fetches the search made
	// Fallback says why the partition was read from its start after a
	// search began ("" when the search decided, or none was needed).
	Fallback string
}

// lastWindow is how many offsets before the end the search first reads to
// find the last committed record (a write is a record or two and a marker).
const lastWindow = 16

// RequestIDFloors is where a copy of the given partitions that has read
// nothing of the request-id topic yet may start reading it (a standby
// replica's): their retention floors as of now. The floor only rises as
// the topic grows, so the copy stays exact as it follows the topic; what it
// then reads must still be checked against the margin (TimeWentBack).
func RequestIDFloors(ctx context.Context, k *kafkaio.Cluster, topic string, partitions []int, retention time.Duration, s FloorSearch) (map[int]Floor, error) {
	bounds, err := k.OffsetsCommitted(ctx, topic, partitions)
	if err != nil {
		return nil, fmt.Errorf("retention floors of %s: %w", topic, err)
	}
	return requestIDFloors(ctx, k, topic, bounds, retention, s), nil
}

// requestIDFloors finds, for each partition, the offset a restore of the
// request-id topic starts reading from: the retention floor, or the
// partition's first offset when the search is not worth it or in doubt.
// A retention of 0 is the default, as NewPartition keeps the entries.
func requestIDFloors(ctx context.Context, k *kafkaio.Cluster, topic string, bounds map[int]kafkaio.Bounds, retention time.Duration, s FloorSearch) map[int]Floor {
	if retention <= 0 {
		retention = requestids.DefaultRetention
	}
	out := make(map[int]Floor, len(bounds))
	var search []int
	for p, b := range bounds {
		out[p] = Floor{From: b.First, First: b.First}
		if !s.Off && b.End-b.First > s.MinOffsets {
			search = append(search, p)
		}
	}
	if len(search) == 0 {
		return out
	}
	pk, err := k.NewCommittedPeeker(topic)
	if err != nil {
		for _, p := range search {
			out[p] = Floor{From: bounds[p].First, First: bounds[p].First, Fallback: err.Error()}
		}
		return out
	}
	defer pk.Close()
	sctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range search {
		wg.Go(func() {
			f := floorSearch{pk: pk, p: p, b: bounds[p], margin: s.Margin.Milliseconds(), maxFetches: s.MaxFetches}
			from, err := f.run(sctx, retention.Milliseconds())
			fl := Floor{From: from, First: bounds[p].First, Fetches: f.fetches}
			switch {
			case errors.Is(err, errNoRecord):
				fl.From = bounds[p].First
			case err != nil:
				fl.From, fl.Fallback = bounds[p].First, err.Error()
			}
			mu.Lock()
			out[p] = fl
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// floorSearch is the search of one partition.
type floorSearch struct {
	pk         *kafkaio.CommittedPeeker
	p          int
	b          kafkaio.Bounds
	margin     int64 // milliseconds
	maxFetches int
	fetches    int
	seen       []span // the records read, to check the times against the margin
}

// span is what the search needs of one record: its offset and the oldest
// and newest time of its entries.
type span struct {
	offset         int64
	oldest, newest int64
}

// errDoubt is a search that found a reason not to trust a floor.
var errDoubt = errors.New("read from the start")

// errNoRecord is a partition without a committed record: nothing to skip.
var errNoRecord = errors.New("no committed record")

func (f *floorSearch) run(ctx context.Context, retention int64) (int64, error) {
	last, err := f.last(ctx)
	if err != nil {
		return 0, err
	}
	target := last.newest - retention - f.margin // a record whose entries are all below it can be skipped, and all before it
	lo, hi := f.b.First, last.offset             // reading from lo is exact; no record at or after hi was found skippable
	// The first record first: when it is newer than the target by the
	// margin, no later one is older than the target (a log in real time,
	// whose broker-retained records are all within retention): nothing to
	// skip, after two fetches.
	if lo < hi {
		r, err := f.probe(ctx, lo)
		if err != nil {
			return 0, err
		}
		switch {
		case r.newest >= target+f.margin:
			return lo, nil
		case r.newest < target:
			lo = r.offset + 1
		}
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		r, err := f.probe(ctx, mid)
		if err != nil {
			return 0, err
		}
		if r.newest < target {
			lo = r.offset + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// probe reads the first committed record at or after offset (there is
// one: the last record lies past every offset probed).
func (f *floorSearch) probe(ctx context.Context, offset int64) (span, error) {
	if f.fetches >= f.maxFetches {
		return span{}, fmt.Errorf("%w: the search took %d fetches", errDoubt, f.fetches)
	}
	m, ok, err := f.pk.First(ctx, f.p, offset, f.b.End)
	f.fetches++
	if err != nil {
		return span{}, fmt.Errorf("%w: %w", errDoubt, err)
	}
	if !ok {
		return span{}, fmt.Errorf("%w: no committed record at or after offset %d", errDoubt, offset)
	}
	return f.note(m)
}

// last reads the partition's last committed record (widening the window
// before the end while it holds none: aborted transactions, markers).
func (f *floorSearch) last(ctx context.Context) (span, error) {
	for w := int64(lastWindow); ; w *= 4 {
		if f.fetches >= f.maxFetches {
			return span{}, fmt.Errorf("%w: no committed record found in %d fetches", errDoubt, f.fetches)
		}
		from := max(f.b.First, f.b.End-w)
		var lastMsg kafka.Message
		ok := false
		err := f.pk.Range(ctx, f.p, from, f.b.End, func(m kafka.Message) error {
			lastMsg, ok = m, true
			return nil
		})
		f.fetches++
		if err != nil {
			return span{}, fmt.Errorf("%w: %w", errDoubt, err)
		}
		if ok {
			return f.note(lastMsg)
		}
		if from == f.b.First {
			return span{}, errNoRecord
		}
	}
}

// note decodes a record the search read and checks its times, and those of
// every record read before, against the margin.
func (f *floorSearch) note(m kafka.Message) (span, error) {
	entries, err := requestids.DecodeEntries(nil, m.Value)
	if err != nil {
		return span{}, fmt.Errorf("%w: offset %d: %w", errDoubt, m.Offset, err)
	}
	if len(entries) == 0 {
		return span{}, fmt.Errorf("%w: the record at offset %d holds no entry", errDoubt, m.Offset)
	}
	r := span{offset: m.Offset, oldest: entries[0].Time, newest: entries[0].Time}
	high := entries[0].Time
	for _, e := range entries[1:] {
		if e.Time < high-f.margin {
			return span{}, fmt.Errorf("%w: time goes back by more than the margin within the record at offset %d", errDoubt, m.Offset)
		}
		high = max(high, e.Time)
		r.oldest, r.newest = min(r.oldest, e.Time), max(r.newest, e.Time)
	}
	for _, o := range f.seen {
		if o.offset < r.offset && r.oldest < o.newest-f.margin || r.offset < o.offset && o.oldest < r.newest-f.margin {
			return span{}, fmt.Errorf("%w: time goes back by more than the margin between the records at offsets %d and %d",
				errDoubt, min(o.offset, r.offset), max(o.offset, r.offset))
		}
	}
	f.seen = append(f.seen, r)
	return r, nil
}
