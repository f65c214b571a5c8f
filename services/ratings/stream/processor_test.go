package stream

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

func TestRatingsAreCountedExactlyAndEmittedToRatedMovies(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(20)
	g := newLedger()
	evs := l.ratings(g, 3000, 20, 1)
	// The same request produced again (a retried produce): not counted twice.
	l.produce(ratingRecord(evs[0]), ratingRecord(evs[1500]), ratingRecord(evs[2999]))

	r := l.start(t.TempDir())
	servetest.WaitFor(t, 30*time.Second, "committed state to match the ledger", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match the ledger", func() (bool, string) { return l.viewMatches(g) })
	if d := r.p.duplicates.Load(); d != 3 {
		t.Errorf("duplicates skipped = %d, want 3", d)
	}

	v, _ := l.view()
	m := v[7]
	if m.Title != "Movie 7" || m.ReleaseYear != 1997 {
		t.Errorf("rated-movies joins the movies table: got title %q year %d", m.Title, m.ReleaseYear)
	}
	if want := float64(g.counts[7].SumTenth) / 10 / float64(g.counts[7].Count); m.Average != want {
		t.Errorf("average = %v, want %v", m.Average, want)
	}
	if m.LastEventTime.IsZero() {
		t.Error("rated-movies carries last_event_time for freshness")
	}
}

func TestCancelMidBatchAndReopenNeitherLosesNorDuplicates(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	l.ratings(g, 4000, 10, 2)
	dir := t.TempDir()

	// Small, throttled batches so that each cancel lands mid-stream, then
	// reopen from the same directory, several times.
	for round := range 4 {
		r := l.start(dir, func(c *Config) { c.MaxBatch = 97 })
		r.p.SetThrottle(5 * time.Millisecond)
		servetest.WaitFor(t, 30*time.Second, "progress", func() (bool, string) {
			_, n, err := committedTotal(r.p)
			return err == nil && n > int64(round+1)*500 || n == g.total(), fmt.Sprintf("%d counted", n)
		})
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		if round == 1 {
			l.ratings(g, 1000, 10, 3) // more arrive while it is down
		}
	}
	r := l.start(dir)
	servetest.WaitFor(t, 30*time.Second, "state to match the ledger after restarts", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match the ledger", func() (bool, string) { return l.viewMatches(g) })
}

// A crash after the last batch's transaction committed but before its
// rated-movies went out: nothing is left to consume, so only the restart's
// re-emit from the database can bring rated-movies up to date.
func TestCrashBetweenCommitAndEmitIsRepairedByReemit(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(5)
	g := newLedger()
	l.ratings(g, 500, 5, 4)
	dir := t.TempDir()

	var crashed atomic.Bool
	r := l.startWith(dir, crashAfterCommit(&crashed, func(p *Processor) bool { _, n, _ := committedTotal(p); return n == g.total() }), func(c *Config) { c.MaxBatch = 50 })
	servetest.WaitFor(t, 30*time.Second, "the crash", func() (bool, string) { return crashed.Load(), "" })
	r.stop(t)
	if ok, _ := l.viewMatches(g); ok {
		t.Fatal("rated-movies already up to date before the restart; the crash came too late to test the re-emit")
	}

	r = l.start(dir)
	servetest.WaitFor(t, 30*time.Second, "state to match", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match", func() (bool, string) { return l.viewMatches(g) })
}

func TestPoisonEventsGoToTheDLQWithTheReasonAndProcessingContinues(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(5)
	g := newLedger()
	l.ratings(g, 100, 5, 5)

	valid := model.RatingEvent{RequestID: "ok-1", MovieID: 3, Tenths: 75, EventTime: time.Now()}
	good := ratingRecord(valid)
	onPartition := func(key string, value string) kafka.Message {
		return kafka.Message{Key: []byte(key), Value: []byte(value)}
	}
	poison := []struct {
		msg    kafka.Message
		reason string
	}{
		{onPartition("3", "\xff\xfe not json"), model.ReasonMalformed},
		{onPartition("3", `{"request_id":"p1","movie_id":"3","rating":7,"event_time":"2026-01-01T00:00:00Z"}`), model.ReasonInvalidField},
		{onPartition("3", `{"request_id":"p2","movie_id":3,"rating":11,"event_time":"2026-01-01T00:00:00Z"}`), model.ReasonRatingRange},
		{onPartition("3", `{"request_id":"p3","movie_id":3,"rating":7.25,"event_time":"2026-01-01T00:00:00Z"}`), model.ReasonRatingRange},
		{onPartition("999", `{"request_id":"p4","movie_id":999,"rating":7,"event_time":"2026-01-01T00:00:00Z"}`), model.ReasonUnknownMovie},
		{onPartition("4", `{"request_id":"p5","movie_id":3,"rating":7,"event_time":"2026-01-01T00:00:00Z"}`), model.ReasonKeyMismatch},
		{onPartition("3", `{"request_id":"p6","movie_id":3,"rating":7}`), model.ReasonInvalidField},
	}
	var msgs []kafka.Message
	for _, p := range poison {
		msgs = append(msgs, p.msg)
	}
	l.produce(msgs...)
	// A record on a partition its key does not map to (a producer with
	// another partitioner): the partition owns the movie's aggregate.
	wrong := (model.RatingPartition([]byte("3"), model.RatingsPartitions) + 1) % model.RatingsPartitions
	w := l.k.Writer(model.TopicRatings, kafkaio.WriterOptions{Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return wrong })})
	if err := w.Write(servetest.Context(t, 10*time.Second), good); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// And processing continues behind them.
	after := model.RatingEvent{RequestID: "after-poison", MovieID: 3, Tenths: 100, EventTime: time.Now()}
	l.produce(ratingRecord(after))
	g.add(after)

	r := l.start(t.TempDir())
	servetest.WaitFor(t, 30*time.Second, "valid ratings counted", func() (bool, string) { return stateMatches(g, r.p) })

	var dead []kafka.Message
	servetest.WaitFor(t, 10*time.Second, "dead letters", func() (bool, string) {
		var err error
		dead, err = l.dlq()
		return err == nil && len(dead) == len(poison)+1, fmt.Sprintf("%d dead letters, err %v", len(dead), err)
	})
	reasons := map[string]int{}
	for _, d := range dead {
		reason := header(d, hdrReason)
		reasons[reason]++
		if header(d, hdrError) == "" || header(d, hdrTopic) != model.TopicRatings || header(d, hdrOffset) == "" {
			t.Errorf("dead letter lacks its origin or error: %v", d.Headers)
		}
	}
	want := map[string]int{model.ReasonWrongPartition: 1}
	for _, p := range poison {
		want[p.reason]++
	}
	for reason, n := range want {
		if reasons[reason] != n {
			t.Errorf("dead letters with reason %s: %d, want %d (all: %v)", reason, reasons[reason], n, reasons)
		}
	}
	for _, d := range dead {
		if string(d.Value) == "\xff\xfe not json" {
			if !strings.Contains(header(d, hdrError), "JSON object") {
				t.Errorf("error header should say what was wrong: %q", header(d, hdrError))
			}
		}
	}
}

// A movie added moments before its first rating: the processor's movies
// table may not have it yet; it catches up before calling the movie unknown.
func TestARatingForAMovieJustAddedIsNotDeadLettered(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(3)
	r := l.start(t.TempDir())
	servetest.WaitFor(t, 20*time.Second, "the processor to run", func() (bool, string) {
		err := r.p.Ready(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	g := newLedger()
	l.movies(40) // movies 4..40 are new
	ev := model.RatingEvent{RequestID: "new-movie", MovieID: 40, Tenths: 90, EventTime: time.Now()}
	l.produce(ratingRecord(ev))
	g.add(ev)
	servetest.WaitFor(t, 20*time.Second, "the rating counted", func() (bool, string) { return stateMatches(g, r.p) })
	if dead, _ := l.dlq(); len(dead) != 0 {
		t.Errorf("%d dead letters, want none", len(dead))
	}
}

func TestTwoInstancesShareThePartitionsAndTheViewStaysExact(t *testing.T) {
	t.Parallel()
	for _, d := range []Delivery{EffectivelyOnce, Transactional} {
		t.Run(string(d), func(t *testing.T) { t.Parallel(); twoInstances(t, d) })
	}
}

func twoInstances(t *testing.T, delivery Delivery) {
	l := newLab(t)
	l.movies(30)
	g := newLedger()
	l.ratings(g, 2000, 30, 6)
	instance := func(id string) *running {
		return l.start(t.TempDir(), func(c *Config) { c.Delivery, c.TransactionalID = delivery, "ratings-stream-"+id })
	}

	a := instance("a")
	servetest.WaitFor(t, 30*time.Second, "instance a to own all partitions", func() (bool, string) {
		return len(a.p.Assigned()) == model.RatingsPartitions, fmt.Sprint(a.p.Assigned())
	})
	b := instance("b")
	servetest.WaitFor(t, 30*time.Second, "the partitions to be shared", func() (bool, string) {
		pa, pb := a.p.Assigned(), b.p.Assigned()
		return len(pa) > 0 && len(pb) > 0 && len(pa)+len(pb) == model.RatingsPartitions, fmt.Sprintf("a %v b %v", pa, pb)
	})
	l.ratings(g, 2000, 30, 7)
	servetest.WaitFor(t, 60*time.Second, "rated-movies to match with two instances", func() (bool, string) { return l.viewMatches(g) })

	// One instance stops; the other takes its partitions over.
	a.stop(t)
	servetest.WaitFor(t, 30*time.Second, "b to own all partitions", func() (bool, string) {
		return len(b.p.Assigned()) == model.RatingsPartitions, fmt.Sprint(b.p.Assigned())
	})
	l.ratings(g, 1000, 30, 8)
	servetest.WaitFor(t, 60*time.Second, "rated-movies to match after the hand-over", func() (bool, string) { return l.viewMatches(g) })
	// Both modes keep the changelog (effectively-once writes it after
	// each database commit).
	servetest.WaitFor(t, 30*time.Second, "the changelog to match", func() (bool, string) { return l.changelogMatches(g) })
	if err := b.p.Ready(context.Background()); err != nil {
		t.Errorf("b unhealthy after the hand-over: %v", err)
	}
}

// At-least-once mode shows what the effectively-once mode prevents: a crash
// after the state was applied and before the group offsets were committed
// counts that batch again.
func TestAtLeastOnceCountsABatchTwiceAfterACrashBeforeTheOffsetCommit(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(5)
	g := newLedger()
	l.ratings(g, 300, 5, 9)
	dir := t.TempDir()

	var crashed atomic.Bool
	firstBatchCounted := make(chan int64, 1)
	r := l.startWith(dir, func(p *Processor, crash context.CancelFunc) {
		p.testHookAfterCommit = func() bool {
			if crashed.CompareAndSwap(false, true) {
				_, n, _ := committedTotal(p)
				firstBatchCounted <- n
				crash()
				return true
			}
			return false
		}
	}, func(c *Config) { c.MaxBatch = 100; c.Delivery = AtLeastOnce })
	var firstBatch int64
	select {
	case firstBatch = <-firstBatchCounted:
	case <-time.After(30 * time.Second):
		t.Fatal("no batch was committed within 30s")
	}
	r.stop(t)

	r = l.start(dir, func(c *Config) { c.Delivery = AtLeastOnce })
	servetest.WaitFor(t, 30*time.Second, "all offsets consumed", func() (bool, string) {
		_, n, _ := committedTotal(r.p)
		return n >= g.total(), fmt.Sprintf("%d of %d", n, g.total())
	})
	servetest.WaitFor(t, 10*time.Second, "the first batch to be counted twice", func() (bool, string) {
		_, n, _ := committedTotal(r.p)
		return n == g.total()+firstBatch, fmt.Sprintf("counted %d, produced %d, first batch %d", n, g.total(), firstBatch)
	})
}

func TestADataDirectoryOfTheOtherModeIsRefused(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	dir := t.TempDir()
	r := l.start(dir, func(c *Config) { c.Delivery = AtLeastOnce })
	servetest.WaitFor(t, 20*time.Second, "running", func() (bool, string) { return r.p.Ready(context.Background()) == nil, "" })
	r.stop(t)
	r = l.start(dir)
	select {
	case err := <-r.done:
		r.done = nil
		r.p.Close()
		if err == nil || !strings.Contains(err.Error(), "at-least-once") {
			t.Fatalf("want a refusal naming the mode, got %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("processor started on a data directory of the other mode")
	}
}

func TestMissingTopicsAreReportedInHealthNotAHang(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: model.TopicRatings, Partitions: 6}})
	k := newClient(t, b.Addr)
	p, err := New(Config{Cluster: k, DataDir: t.TempDir(), TopicWait: kafkaio.TopicWait{Timeout: 700 * time.Millisecond, Interval: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run hangs on missing topics")
	}
	if runErr == nil || !strings.Contains(runErr.Error(), model.TopicMovies) {
		t.Errorf("Run error should name the missing topic: %v", runErr)
	}
	err = p.Ready(context.Background())
	if err == nil || !strings.Contains(err.Error(), model.TopicMovies) {
		t.Errorf("health should say which topic is missing: %v", err)
	}
}

func TestStateEndpoint(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(3)
	g := newLedger()
	l.ratings(g, 50, 3, 10)
	r := l.start(t.TempDir())
	servetest.WaitFor(t, 20*time.Second, "state", func() (bool, string) { return stateMatches(g, r.p) })
	srv := httptest.NewServer(r.p.Handler())
	defer srv.Close()

	res, err := http.Get(srv.URL + "/state/2")
	if err != nil {
		t.Fatal(err)
	}
	var row stateRow
	decodeJSON(t, res, &row)
	if res.StatusCode != 200 || row.Count != g.counts[2].Count || row.SumTenths != g.counts[2].SumTenth {
		t.Errorf("GET /state/2 = %d %+v, want %+v", res.StatusCode, row, g.counts[2])
	}
	for path, code := range map[string]int{"/state/abc": 400, "/state/77": 404, "/state": 200} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != code {
			t.Errorf("GET %s = %d, want %d", path, res.StatusCode, code)
		}
	}
}
