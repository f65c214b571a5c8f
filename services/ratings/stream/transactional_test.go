package stream

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

func transactional(c *Config) { c.Delivery = Transactional }

// changelogMatches restores the whole changelog and compares it with the
// ledger: the changelog alone must hold the exact state.
func (l *lab) changelogMatches(g *ledger) (bool, string) {
	ctx := servetest.Context(l.t, 30*time.Second)
	parts, err := changelog.Restore(ctx, l.k, changelog.LabTopics, kafkaio.AllPartitions(model.RatingsPartitions), requestids.DefaultRetention)
	if err != nil {
		return false, err.Error()
	}
	got := map[int64]model.CountAndSum{}
	for _, p := range parts {
		for id, a := range p.Movies {
			got[id] = model.CountAndSum{Count: a.Count, SumTenth: a.SumTenths}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, want := range g.counts {
		if got[id] != want {
			return false, fmt.Sprintf("changelog: movie %d has %+v, want %+v", id, got[id], want)
		}
	}
	return len(got) == len(g.counts), fmt.Sprintf("changelog has %d movies, ledger %d", len(got), len(g.counts))
}

func TestTransactionalCountsExactlyAndWritesEverythingInTransactions(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(20)
	g := newLedger()
	evs := l.ratings(g, 3000, 20, 21)
	// A retried produce: the same request id again is not counted twice.
	l.produce(ratingRecord(evs[0]), ratingRecord(evs[1500]), ratingRecord(evs[2999]))
	poison := ratingRecord(model.RatingEvent{RequestID: "poison-1", MovieID: 3, Tenths: 420, EventTime: time.Now()})
	poison.Value = []byte(`{"request_id":"poison-1","movie_id":3,"rating":42,"event_time":"2026-01-02T03:04:05Z"}`)
	l.produce(poison)

	r := l.start(t.TempDir(), transactional)
	servetest.WaitFor(t, 30*time.Second, "the cached state to match the ledger", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies (committed) to match the ledger", func() (bool, string) { return l.viewMatches(g) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to hold the same state", func() (bool, string) { return l.changelogMatches(g) })
	if d := r.p.duplicates.Load(); d != 3 {
		t.Errorf("duplicates skipped = %d, want 3", d)
	}
	dead, err := l.dlq()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || header(dead[0], hdrReason) != model.ReasonRatingRange {
		t.Fatalf("dead letters: %d (reason %q), want the one rating-range poison", len(dead), func() string {
			if len(dead) > 0 {
				return header(dead[0], hdrReason)
			}
			return ""
		}())
	}
	// The group's offsets commit with the transactions: tools see them.
	ctx := servetest.Context(t, 10*time.Second)
	res, err := l.k.Client().OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: r.p.cfg.Group,
		Topics: map[string][]int{model.TopicRatings: kafkaio.AllPartitions(model.RatingsPartitions)}})
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, po := range res.Topics[model.TopicRatings] {
		committed += po.CommittedOffset
	}
	if want := int64(3000 + 3 + 1); committed != want {
		t.Errorf("group offsets sum to %d, want %d (every ratings record)", committed, want)
	}
}

// A crash in the middle of a transaction (records produced, not committed)
// leaves nothing: the transaction is aborted when the instance comes back
// under the same transactional id, and the batch is counted once.
func TestTransactionalCrashMidTransactionLeavesNoTrace(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	l.ratings(g, 1000, 10, 22)
	dir := t.TempDir()

	var crashed atomic.Bool
	r := l.startWith(dir, func(p *Processor, crash context.CancelFunc) {
		p.testHookBeforeEnd = func() bool {
			if _, n, _ := committedTotal(p); n > 300 && crashed.CompareAndSwap(false, true) {
				crash()
				return true
			}
			return false
		}
	}, transactional, func(c *Config) { c.MaxBatch = 100 })
	servetest.WaitFor(t, 30*time.Second, "the crash mid-transaction", func() (bool, string) { return crashed.Load(), "" })
	cached, _, err := committedTotal(r.p) // nothing is written after the crash
	if err != nil {
		t.Fatal(err)
	}
	r.stop(t)
	// What the crashed transaction produced is invisible: the changelog
	// holds exactly the batches committed before it (the cache's state).
	parts, err := changelog.Restore(servetest.Context(t, 10*time.Second), l.k, changelog.LabTopics, kafkaio.AllPartitions(model.RatingsPartitions), requestids.DefaultRetention)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		for id, a := range p.Movies {
			if got := (model.CountAndSum{Count: a.Count, SumTenth: a.SumTenths}); got != cached[id] {
				t.Fatalf("movie %d: the changelog has %+v, the committed batches %+v: the open transaction leaked", id, got, cached[id])
			}
		}
	}

	l.ratings(g, 500, 10, 23) // more arrive while it is down
	r = l.start(dir, transactional)
	servetest.WaitFor(t, 30*time.Second, "state to match the ledger", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match the ledger", func() (bool, string) { return l.viewMatches(g) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to match the ledger", func() (bool, string) { return l.changelogMatches(g) })
}

// The local database is only a cache: a crash after a commit, before the
// database was written, and then the database lost altogether, is repaired
// from the changelog — counts exact, and the request ids seen before the
// crash still recognised.
func TestTransactionalStateAndSeenRequestIDsComeBackFromTheChangelog(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	evs := l.ratings(g, 1000, 10, 24)

	var crashed atomic.Bool
	r := l.startWith(t.TempDir(), crashAfterCommit(&crashed, func(*Processor) bool { return true }), transactional) // the first commit
	servetest.WaitFor(t, 30*time.Second, "the crash after the first commit", func() (bool, string) { return crashed.Load(), "" })
	r.stop(t)

	// The same request ids again, as a retried produce would write them.
	var dups []int
	for i := 0; i < len(evs); i += 100 {
		l.produce(ratingRecord(evs[i]))
		dups = append(dups, i)
	}
	l.ratings(g, 200, 10, 25)
	r = l.start(t.TempDir(), transactional) // a new, empty data directory
	servetest.WaitFor(t, 30*time.Second, "state restored and exact", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies exact", func() (bool, string) { return l.viewMatches(g) })
	if d := r.p.duplicates.Load(); d != int64(len(dups)) {
		t.Errorf("duplicates skipped after the restore = %d, want %d", d, len(dups))
	}
}

// A transaction commits all of its records or none. A record can fail on
// its own while the others are written: here the broker refuses the
// rated-movies records of one produce request (INVALID_RECORD); on the
// cluster, a partition whose leader could not be reached while a broker was
// down failed before it was sent. franz-go's End commits whatever reached
// the broker, so the transaction must be ended with an abort then: once it
// committed the offsets, the changelog and the cached state without the
// rated-movies records, and webserver-stream's view stayed one rating short
// of the store for good (docs/events.md).
func TestTransactionalRecordRefusedAbortsTheTransaction(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	l.ratings(g, 500, 10, 26)
	refusal := l.broker.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: model.TopicRatedMovies, Err: kerr.InvalidRecord})

	r := l.start(t.TempDir(), transactional)
	servetest.WaitFor(t, 30*time.Second, "the broker to refuse rated-movies records", func() (bool, string) { return refusal.Hits() == 1, "" })
	servetest.WaitFor(t, 30*time.Second, "the cached state to match the ledger", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies (committed) to match the ledger", func() (bool, string) { return l.viewMatches(g) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to hold the same state", func() (bool, string) { return l.changelogMatches(g) })
}
