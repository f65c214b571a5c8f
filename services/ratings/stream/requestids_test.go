package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// A rating produced again long after the first — more than any count-based
// window apart (60 000 ratings of the same partition in between), with a
// restart in between — is still counted once: the counted request ids are
// stored with the state, kept by time in the log's clock.
func TestARepeatFarApartAndAcrossARestartIsCountedOnce(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(1)
	g := newLedger()
	first := model.RatingEvent{RequestID: "retried-1", MovieID: 1, Tenths: 80, UserID: 3, EventTime: time.Now()}
	l.produce(ratingRecord(first))
	g.add(first)
	var between []kafka.Message
	for i := range 60_000 {
		ev := model.RatingEvent{RequestID: fmt.Sprint("between-", i), MovieID: 1, Tenths: 10 + int64(i%91), EventTime: time.Now()}
		between = append(between, ratingRecord(ev))
		g.add(ev)
	}
	w := l.k.Writer(model.TopicRatings, kafkaio.WriterOptions{BatchSize: 5000})
	if err := w.Write(servetest.Context(t, 60*time.Second), between...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	dir := t.TempDir()
	r := l.start(dir)
	servetest.WaitFor(t, 60*time.Second, "the first ratings counted", func() (bool, string) { return stateMatches(g, r.p) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// The producer retries the first rating (a lost acknowledgement, or a
	// client retrying a 504 through the webserver): a new record, same id
	// and payload, a new event time.
	again := first
	again.EventTime = time.Now()
	l.produce(ratingRecord(again))
	last := model.RatingEvent{RequestID: "last", MovieID: 1, Tenths: 50, EventTime: time.Now()}
	l.produce(ratingRecord(last))
	g.add(last)

	r = l.start(dir)
	servetest.WaitFor(t, 30*time.Second, "the repeat dropped and the last rating counted", func() (bool, string) { return stateMatches(g, r.p) })
	if d := r.p.duplicates.Load(); d != 1 {
		t.Errorf("duplicates skipped after the restart = %d, want 1", d)
	}
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match", func() (bool, string) { return l.viewMatches(g) })
}

// A request id reused for another rating (by hand, with kcat: the webserver
// answers 409) is not counted and goes to the DLQ as request-id-conflict,
// naming where the first use was counted.
func TestARequestIDReusedForAnotherRatingIsDeadLettered(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(3)
	g := newLedger()
	first := model.RatingEvent{RequestID: "reused", MovieID: 2, Tenths: 70, EventTime: time.Now()}
	other := model.RatingEvent{RequestID: "reused", MovieID: 2, Tenths: 90, EventTime: time.Now()} // same movie, so the same partition
	after := model.RatingEvent{RequestID: "after", MovieID: 2, Tenths: 40, EventTime: time.Now()}
	l.produce(ratingRecord(first), ratingRecord(other), ratingRecord(after))
	g.add(first)
	g.add(after)

	r := l.start(t.TempDir())
	servetest.WaitFor(t, 30*time.Second, "the first use and the rating after counted", func() (bool, string) { return stateMatches(g, r.p) })
	var dead []kafka.Message
	servetest.WaitFor(t, 10*time.Second, "the dead letter", func() (bool, string) {
		var err error
		dead, err = l.dlq()
		return err == nil && len(dead) == 1, fmt.Sprintf("%d dead letters, err %v", len(dead), err)
	})
	if got := header(dead[0], hdrReason); got != model.ReasonRequestIDConflict {
		t.Errorf("dlq-reason %q, want %q", got, model.ReasonRequestIDConflict)
	}
	if msg := header(dead[0], hdrError); msg != `request_id: "reused" was counted for another rating at offset 0 of this partition; a request id names one rating` {
		t.Errorf("dlq-error %q does not name the first use", msg)
	}
	if d := r.p.duplicates.Load(); d != 0 {
		t.Errorf("duplicates skipped = %d, want 0: a conflict is not a repeat", d)
	}
}

// The retention is in the log's clock (record timestamps): a repeat
// stamped further than --request-id-retention after the first is counted
// again (the documented limit), one within it is not — the same whether
// the records are read live or from the beginning.
func TestARepeatBeyondTheRetentionIsCountedAgain(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(1)
	g := newLedger()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	at := func(ev model.RatingEvent, ts time.Time) kafka.Message {
		m := ratingRecord(ev)
		m.Time = ts
		return m
	}
	a := model.RatingEvent{RequestID: "a", MovieID: 1, Tenths: 60, EventTime: t0}
	b := model.RatingEvent{RequestID: "b", MovieID: 1, Tenths: 70, EventTime: t0}
	l.produce(
		at(a, t0),
		at(b, t0.Add(9*time.Second)),
		at(a, t0.Add(10*time.Second)),         // within 10s of the first a: dropped
		at(a, t0.Add(10001*time.Millisecond)), // 10.001s after it: counted again
		at(b, t0.Add(19*time.Second)),         // within 10s of b: dropped
	)
	g.add(a)
	g.add(b)
	g.add(a)

	r := l.start(t.TempDir(), func(c *Config) { c.RequestIDRetention = 10 * time.Second })
	servetest.WaitFor(t, 30*time.Second, "a counted twice, b once", func() (bool, string) { return stateMatches(g, r.p) })
	if d := r.p.duplicates.Load(); d != 2 {
		t.Errorf("duplicates skipped = %d, want 2", d)
	}
}

// Ratings are counted in the order of the log also when one of them waits
// for the movies table: a rating of a movie added a moment ago (unknown at
// first sight) and, right after it, the same request id on a known movie of
// the same partition are decided as a rebuild reading the log decides them —
// the first counted, the second dead-lettered as request-id-conflict — not
// in the order the processor happened to look at them.
func TestARatingWaitingForItsMovieIsCountedInLogOrder(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(3)
	part := model.RatingPartition([]byte("2"), model.RatingsPartitions)
	added := int64(100) // a movie not in the table yet, on movie 2's partition
	for model.RatingPartition(strconv.AppendInt(nil, added, 10), model.RatingsPartitions) != part {
		added++
	}
	var hooked atomic.Bool
	r := l.startWith(t.TempDir(), func(p *Processor, _ context.CancelFunc) {
		p.testHookBeforeCatchUp = func() {
			// The movie arrives while the batch waits for the table.
			if hooked.CompareAndSwap(false, true) {
				v, _ := json.Marshal(model.Movie{ID: added, Title: "Just added", ReleaseYear: 2026, Version: 1})
				w := l.k.Writer(model.TopicMovies, kafkaio.WriterOptions{})
				defer w.Close()
				if err := w.Write(servetest.Context(t, 10*time.Second), kafka.Message{Key: strconv.AppendInt(nil, added, 10), Value: v}); err != nil {
					t.Error(err)
				}
			}
		}
	})
	servetest.WaitFor(t, 20*time.Second, "the processor to run", func() (bool, string) {
		err := r.p.Ready(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	first := model.RatingEvent{RequestID: "order-1", MovieID: added, Tenths: 70, EventTime: time.Now()}
	second := model.RatingEvent{RequestID: "order-1", MovieID: 2, Tenths: 80, EventTime: time.Now()}
	l.produce(ratingRecord(first), ratingRecord(second))
	g := newLedger()
	g.add(first)
	servetest.WaitFor(t, 30*time.Second, "the first rating counted, the reuse not", func() (bool, string) { return stateMatches(g, r.p) })
	if !hooked.Load() {
		t.Fatal("the movie was known at first sight; the test did not exercise the wait")
	}
	dead, err := l.dlq()
	if err != nil || len(dead) != 1 || header(dead[0], hdrReason) != model.ReasonRequestIDConflict {
		t.Fatalf("dead letters %v (%v), want the second rating as %s", dead, err, model.ReasonRequestIDConflict)
	}
}
