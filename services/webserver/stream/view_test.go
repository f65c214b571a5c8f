package stream

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/model"
)

// viewBackend is a Backend over a real view in dir with no broker: enough to
// drive the rated-movies apply path (applyRated) directly, batch by batch.
func viewBackend(tb testing.TB, dir string) (*Backend, *prometheus.Registry) {
	tb.Helper()
	v, err := openView(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	reg := prometheus.NewRegistry()
	return &Backend{view: v, log: slog.New(slog.DiscardHandler), metrics: newMetrics(reg, nil)}, reg
}

type ratedUpdate struct {
	movie, count, sum int64
	partition         int
	offset            int64
	eventTime         time.Time
}

// record is the rated-movies record of u, as ratings-stream emits it (the
// rated-movies partition and offset do not matter to the view's rows).
func (u ratedUpdate) record(tb testing.TB, at int64) kafka.Message {
	v, err := json.Marshal(model.RatedMovieEvent{
		RatedMovie:    model.NewRatedMovie(model.Movie{ID: u.movie}, model.CountAndSum{Count: u.count, SumTenth: u.sum}),
		LastEventTime: u.eventTime, SourcePartition: u.partition, SourceOffset: u.offset,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return kafka.Message{Topic: model.TopicRatedMovies, Key: []byte(strconv.FormatInt(u.movie, 10)), Value: v, Offset: at}
}

// ratedRow is one row of the view's rated table.
type ratedRow struct {
	Count, Sum, Offset, EventNS int64
	Partition                   int
}

func ratedRows(t *testing.T, b *Backend) map[int64]ratedRow {
	t.Helper()
	rows, err := b.view.db.Query(`SELECT movie_id, count, sum_tenths, source_partition, source_offset, last_event_ns FROM rated`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]ratedRow{}
	for rows.Next() {
		var id int64
		var r ratedRow
		if err := rows.Scan(&id, &r.Count, &r.Sum, &r.Partition, &r.Offset, &r.EventNS); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (b *Backend) applyUpdates(t *testing.T, next *int64, us ...ratedUpdate) {
	t.Helper()
	batch := make([]kafka.Message, len(us))
	for i, u := range us {
		batch[i] = u.record(t, *next)
		*next++
	}
	if err := b.applyRated(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

// permutations calls f with every ordering of us.
func permutations(us []ratedUpdate, f func([]ratedUpdate)) {
	var permute func(k int)
	permute = func(k int) {
		if k == len(us) {
			f(append([]ratedUpdate(nil), us...))
			return
		}
		for i := k; i < len(us); i++ {
			us[k], us[i] = us[i], us[k]
			permute(k + 1)
			us[k], us[i] = us[i], us[k]
		}
	}
	permute(0)
}

// One fetched batch holding several updates of a movie, in any order, leaves
// the view with the update of the highest source offset; stale ones and
// ones already behind the stored row change nothing; freshness is observed
// once per movie that became visible, for the update that did.
func TestABatchLeavesEachMovieWithItsWinningUpdate(t *testing.T) {
	t.Parallel()
	b, reg := viewBackend(t, t.TempDir())
	b.caughtUp.Store(true) // live: freshness is observed
	base := time.Now().Add(-time.Minute)
	update := func(movie, count, offset int64, age time.Duration) ratedUpdate {
		return ratedUpdate{movie: movie, count: count, sum: 10 * count, partition: 3, offset: offset, eventTime: base.Add(-age)}
	}

	var next int64
	orderings := 0
	// Each ordering is its own batch for its own movie: a winner at offset
	// 40, a re-emit of it (same content), and three stale updates.
	permutations([]ratedUpdate{
		update(0, 4, 40, 0), update(0, 4, 40, 0), update(0, 1, 7, 3*time.Second), update(0, 2, 12, 2*time.Second), update(0, 3, 25, time.Second),
	}, func(batch []ratedUpdate) {
		orderings++
		for i := range batch {
			batch[i].movie = int64(orderings)
		}
		b.applyUpdates(t, &next, batch...)
	})
	if orderings != 120 {
		t.Fatalf("%d orderings, want 5! = 120", orderings)
	}
	rows := ratedRows(t, b)
	want := ratedRow{Count: 4, Sum: 40, Partition: 3, Offset: 40, EventNS: base.UnixNano()}
	for movie := int64(1); movie <= int64(orderings); movie++ {
		if rows[movie] != want {
			t.Errorf("movie %d: row %+v, want the update at offset 40 %+v", movie, rows[movie], want)
		}
	}
	if n := histogramCount(t, reg, "lab_view_freshness_seconds"); n != uint64(orderings) {
		t.Errorf("freshness observed %d times, want once per movie (%d): only the winner became visible", n, orderings)
	}

	// A later batch entirely behind the stored row changes nothing and is
	// not observed; one with a newer update applies it.
	b.applyUpdates(t, &next, update(1, 9, 39, 0), update(1, 8, 30, 0), update(1, 9, 40, 0))
	if rows := ratedRows(t, b); rows[1] != want {
		t.Errorf("a stale batch moved movie 1 to %+v", rows[1])
	}
	if n := histogramCount(t, reg, "lab_view_freshness_seconds"); n != uint64(orderings) {
		t.Errorf("a stale batch was observed: %d observations, want %d", n, orderings)
	}
	b.applyUpdates(t, &next, update(1, 5, 39, 0), update(1, 6, 41, 0), update(1, 5, 30, 0))
	if got, want := ratedRows(t, b)[1], (ratedRow{Count: 6, Sum: 60, Partition: 3, Offset: 41, EventNS: base.UnixNano()}); got != want {
		t.Errorf("movie 1 after a newer batch: %+v, want %+v", got, want)
	}

	// Positions are those of every record of the batches, applied or not.
	pos, err := b.view.positions(context.Background(), model.TopicRatedMovies)
	if err != nil {
		t.Fatal(err)
	}
	if pos[0] != next {
		t.Errorf("stored next offset %v, want %d", pos, next)
	}
}

// Freshness is the time from a rating to the count being visible, so only
// an update that changes what the view shows (a movie's count or sum) is
// observed. After a rebalance the new owner counts the same ratings in
// batches that end at other offsets: its update of a movie may show the
// same count and sum under a higher source offset, carrying the event time
// of a rating the view has shown for a while. The row takes the newer
// offset (what comes next is judged against it), and nothing is observed.
func TestAnUpdateThatShowsNothingNewIsStoredButNotObservedAsFreshness(t *testing.T) {
	t.Parallel()
	b, reg := viewBackend(t, t.TempDir())
	b.caughtUp.Store(true)
	ratedAt := time.Now().Add(-30 * time.Second)
	var next int64
	observed := func() uint64 { return histogramCount(t, reg, "lab_view_freshness_seconds") }

	b.applyUpdates(t, &next, ratedUpdate{movie: 7, count: 3, sum: 120, partition: 2, offset: 40, eventTime: ratedAt})
	if n := observed(); n != 1 {
		t.Fatalf("a movie's first count: %d observations, want 1", n)
	}
	// The new owner's update: same count and sum, offset 41.
	b.applyUpdates(t, &next, ratedUpdate{movie: 7, count: 3, sum: 120, partition: 2, offset: 41, eventTime: ratedAt})
	if got, want := ratedRows(t, b)[7], (ratedRow{Count: 3, Sum: 120, Partition: 2, Offset: 41, EventNS: ratedAt.UnixNano()}); got != want {
		t.Errorf("row %+v, want the newer offset stored %+v", got, want)
	}
	if n := observed(); n != 1 {
		t.Errorf("an update showing nothing new was observed: %d observations, want 1", n)
	}
	// Judged against offset 41 now: an update at 41 with another count is stale.
	b.applyUpdates(t, &next, ratedUpdate{movie: 7, count: 4, sum: 150, partition: 2, offset: 41, eventTime: ratedAt})
	if got := ratedRows(t, b)[7]; got.Count != 3 {
		t.Errorf("an update at the stored offset moved the count to %d", got.Count)
	}
	// Another partition with the same content (a batch that switches) moves
	// the row, unobserved; a new count is observed.
	b.applyUpdates(t, &next, ratedUpdate{movie: 7, count: 3, sum: 120, partition: 5, offset: 2, eventTime: ratedAt})
	if got := ratedRows(t, b)[7]; got.Partition != 5 || got.Offset != 2 {
		t.Errorf("row %+v after a switch of partition, want partition 5 offset 2", got)
	}
	b.applyUpdates(t, &next, ratedUpdate{movie: 7, count: 4, sum: 150, partition: 5, offset: 9, eventTime: time.Now()})
	if n := observed(); n != 2 {
		t.Errorf("%d observations after a new count, want 2", n)
	}
}

// Reducing a batch to its winners leaves exactly the rows that upserting
// its updates one at a time leaves — also when a movie's source partition
// changes within the batch (a switch always replaces the row).
func TestBatchedApplyEqualsOneAtATime(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	batched, _ := viewBackend(t, t.TempDir())
	single, _ := viewBackend(t, t.TempDir())
	var nextB, nextS int64
	for round := range 60 {
		batch := make([]ratedUpdate, 2+rng.IntN(8))
		for i := range batch {
			// Few distinct counts and sums: updates that show the same as the
			// row under another offset or partition are common.
			count := rng.Int64N(4)
			batch[i] = ratedUpdate{movie: 1 + rng.Int64N(3), count: count, sum: 10 * count,
				partition: rng.IntN(2), offset: rng.Int64N(20), eventTime: time.Unix(0, rng.Int64N(1e18))}
		}
		batched.applyUpdates(t, &nextB, batch...)
		for _, u := range batch {
			single.applyUpdates(t, &nextS, u)
		}
		got, want := ratedRows(t, batched), ratedRows(t, single)
		for movie, w := range want {
			if got[movie] != w {
				t.Fatalf("round %d, batch %+v: movie %d is %+v batched, %+v one at a time", round, batch, movie, got[movie], w)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d rows batched, %d one at a time", round, len(got), len(want))
		}
	}
}

// BenchmarkViewApply measures the rated-movies apply path (decode, reduce,
// one SQLite transaction) on a rebuild-like stream: batches of 2,000 records
// over 180 movies, each update newer than the last of its movie.
func BenchmarkViewApply(b *testing.B) {
	const batchSize, movies = 2000, 180
	backend, _ := viewBackend(b, b.TempDir())
	ctx := context.Background()
	eventTime := time.Now().Add(-time.Hour)
	var j int64
	nextBatch := func() []kafka.Message {
		batch := make([]kafka.Message, batchSize)
		for i := range batch {
			movie, k := j%movies+1, j/movies+1
			batch[i] = ratedUpdate{movie: movie, count: k, sum: 50 * k,
				partition: model.RatingPartition([]byte(strconv.FormatInt(movie, 10)), model.RatingsPartitions),
				offset:    1_000_000_000 + k, eventTime: eventTime}.record(b, j)
			batch[i].Partition = int(movie % 6)
			j++
		}
		return batch
	}
	var applying time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		batch := nextBatch()
		b.StartTimer()
		start := time.Now()
		if err := backend.applyRated(ctx, batch); err != nil {
			b.Fatal(err)
		}
		applying += time.Since(start)
	}
	b.ReportMetric(float64(j)/applying.Seconds(), "events/s")
}
