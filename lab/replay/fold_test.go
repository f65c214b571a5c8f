package replay

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// What the log adds between two positions is counted like ratings-stream
// counts: through its request-id record (services/lib/requestids), started
// from the record stored with the state before, with its retention — a
// repeat once, a request id reused for another rating not at all — and
// nothing that would be dead-lettered.
func TestFoldRatingsCountsLikeTheProcessor(t *testing.T) {
	b := newTestBroker(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	first := rating("r1", 1, 70, base)
	p := first.Partition
	unknown := int64(1000) // a movie outside the table, on movie 1's partition
	for rating("", unknown, 10, base).Partition != p {
		unknown++
	}
	b.produce(model.TopicRatings,
		first,
		rating("r2", 1, 80, base.Add(time.Millisecond)),
		// --- the state before includes everything above
		rating("r1", 1, 70, base.Add(2*time.Millisecond)), // a re-produce of a counted rating
		rating("r3", 1, 100, base.Add(3*time.Millisecond)),
		rating("r3", 1, 100, base.Add(4*time.Millisecond)), // and of a new one
		rating("r4", unknown, 50, base.Add(5*time.Millisecond)),
		kafka.Message{Partition: p, Key: []byte("1"), Value: []byte(`{"movie_id":1}`), Time: base},
		rating("r2", 1, 90, base.Add(6*time.Millisecond)), // r2 reused for another rating
	)
	before := map[int64]Aggregate{1: {MovieID: 1, Partition: p, Count: 2, SumTenths: 150}}
	// What ratings-stream stored with that state: r1 and r2, counted.
	record := requestids.NewPartition(time.Hour, nil)
	record.Count(requestids.Hash("r1"), requestids.Fingerprint(1, 70, 7), 0, base.UnixMilli())
	record.Count(requestids.Hash("r2"), requestids.Fingerprint(1, 80, 7), 1, base.Add(time.Millisecond).UnixMilli())
	ids := map[int][]requestids.Entry{p: record.Entries()}
	known := map[int64]bool{1: true}
	ctx := servetest.Context(t, 10*time.Second)
	got, deltas, err := foldRatings(ctx, b.k, nil, before, map[int]int64{p: 2}, map[int]int64{p: 8}, model.RatingsPartitions, ids, time.Hour, known)
	if err != nil {
		t.Fatal(err)
	}
	if a := got[1]; a.Count != 3 || a.SumTenths != 250 {
		t.Fatalf("movie 1 after the fold: %+v, want count 3 (r1 and r3 once, r2's reuse not), sum 250", a)
	}
	if _, ok := got[unknown]; ok {
		t.Fatal("an unknown movie was counted")
	}
	if d := deltas[1]; d.Count != 1 || d.SumTenths != 100 {
		t.Fatalf("delta of movie 1 = %+v, want +1, +100", d)
	}
	if before[1].Count != 2 || len(ids[p]) != 2 {
		t.Fatal("the fold changed the state or the record it started from")
	}
	// With a retention of 1ms (in the records' timestamps), r1's repeat 2ms
	// after it and r2's reuse 5ms after it are new ratings (r3's repeat,
	// 1ms after it, is still dropped).
	got, _, err = foldRatings(ctx, b.k, nil, before, map[int]int64{p: 2}, map[int]int64{p: 8}, model.RatingsPartitions, ids, time.Millisecond, known)
	if err != nil {
		t.Fatal(err)
	}
	if a := got[1]; a.Count != 5 || a.SumTenths != 410 {
		t.Fatalf("retention 1ms: %+v, want count 5 (r1 again, r3 once, r2's reuse), sum 410", a)
	}
}

// The view keeps, per movie, the update that includes the most of its
// partition; movies come and go with the movies table.
func TestFoldViewKeepsTheNewestAggregate(t *testing.T) {
	b := newTestBroker(t)
	rated := func(movie int64, count, sum, off int64) kafka.Message {
		v, _ := json.Marshal(model.RatedMovieEvent{RatedMovie: model.RatedMovie{MovieID: movie, Count: count, SumTenths: sum}, SourcePartition: 2, SourceOffset: off})
		return kafka.Message{Partition: 2, Key: []byte(strconv.FormatInt(movie, 10)), Value: v}
	}
	b.produce(model.TopicRatedMovies, rated(1, 5, 300, 10), rated(1, 4, 250, 8), rated(2, 1, 70, 3))
	mv, _ := json.Marshal(model.Movie{ID: 2, Title: "Two", ReleaseYear: 2002})
	b.produce(model.TopicMovies,
		kafka.Message{Partition: 0, Key: []byte("2"), Value: mv},
		kafka.Message{Partition: 0, Key: []byte("1"), Value: nil}) // tombstone
	before := map[int64]ViewMovie{1: {MovieID: 1, Title: "One", Listed: true, Rated: true, Count: 3, SumTenths: 200, SrcPart: 2, SrcOffset: 6}}
	got, changed, err := foldView(servetest.Context(t, 10*time.Second), b.k, nil, before,
		map[string]map[int]int64{}, map[string]map[int]int64{model.TopicMovies: {0: 2}, model.TopicRatedMovies: {2: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if m := got[1]; m.Count != 5 || m.SumTenths != 300 || m.Listed {
		t.Fatalf("movie 1 = %+v: want the offset-10 update (5, 300), unlisted by the tombstone", m)
	}
	if m := got[2]; !m.Listed || m.Title != "Two" || m.Count != 1 {
		t.Fatalf("movie 2 = %+v", m)
	}
	if !changed[1] || !changed[2] {
		t.Fatalf("changed = %v", changed)
	}
}

// The checksum table matches movie by movie and names the ones that do not.
func TestChecksumTable(t *testing.T) {
	before := map[int64]Aggregate{1: {Count: 2, SumTenths: 150}, 2: {Count: 1, SumTenths: 10}}
	after := map[int64]Aggregate{1: {Count: 2, SumTenths: 150}, 2: {Count: 1, SumTenths: 20}}
	tb := streamTable(before, before, after, nil)
	if tb.OK() || tb.Mismatches != 1 || tb.Movies != 2 || !tb.Rows[0].Match || tb.Rows[1].Match {
		t.Fatalf("table %+v: want movie 2 alone to differ", tb)
	}
	same := streamTable(before, before, before, nil)
	if !same.OK() || same.ExpectedChecksum != same.AfterChecksum {
		t.Fatalf("equal states: %+v", same)
	}
}
