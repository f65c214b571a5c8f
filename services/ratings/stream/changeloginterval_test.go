package stream

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// databaseOffsets reads the positions a stopped instance's database holds.
func (l *lab) databaseOffsets(dir string) map[int]int64 {
	l.t.Helper()
	p, err := New(Config{Cluster: l.k, DataDir: dir})
	if err != nil {
		l.t.Fatal(err)
	}
	defer p.Close()
	db, err := p.store.ratingOffsets(context.Background())
	if err != nil {
		l.t.Fatal(err)
	}
	return db
}

// With a changelog interval, the batches committed in between go to the
// changelog as one transaction per partition: with an interval longer than
// the test, each partition is written once (its first batch), the rest
// waits — and a stop writes what is pending, so the changelog ends exact.
func TestChangelogIntervalCoalescesBatchesAndAStopWritesWhatIsPending(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	l.ratings(g, 1500, 10, 61)
	dir := t.TempDir()

	r := l.start(dir, func(c *Config) { c.MaxBatch = 20; c.ChangelogInterval = time.Hour })
	servetest.WaitFor(t, 30*time.Second, "the state to match the ledger", func() (bool, string) { return stateMatches(g, r.p) })
	batches := r.p.batchSeq
	if txns := metricValue(t, r.p.metrics.changelogTxns); txns > model.RatingsPartitions || batches <= model.RatingsPartitions {
		t.Fatalf("%d batches made %.0f changelog transactions, want at most one per partition (%d) within the interval", batches, txns, model.RatingsPartitions)
	}
	if ok, _ := l.changelogMatches(g); ok {
		t.Fatal("the changelog already holds every rating while its interval has not passed")
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if ok, why := l.changelogMatches(g); !ok {
		t.Fatalf("after a stop: %s", why)
	}
	db := l.databaseOffsets(dir)
	for part, pos := range l.changelogPositions() {
		if pos == -1 && db[part] == 0 {
			continue // a partition that got no rating: nothing to write
		}
		if pos != db[part] {
			t.Errorf("partition %d: the changelog's position is %d after a stop, the database's %d", part, pos, db[part])
		}
	}
}

// Changes committed after a partition's last changelog write, with no batch
// coming after them, are written once the interval has passed — the
// instance keeps running — and no partition is written more often than the
// interval allows.
func TestChangelogPendingChangesAreWrittenOnceTheIntervalPasses(t *testing.T) {
	t.Parallel()
	const interval = 300 * time.Millisecond
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	l.ratings(g, 1500, 10, 62)

	started := time.Now()
	r := l.start(t.TempDir(), func(c *Config) { c.MaxBatch = 5; c.ChangelogInterval = interval })
	servetest.WaitFor(t, 30*time.Second, "the state to match the ledger", func() (bool, string) { return stateMatches(g, r.p) })
	// A few more ratings right after: their partitions were written less
	// than an interval ago, so these wait for the interval, not a batch.
	l.ratings(g, 30, 10, 63)
	servetest.WaitFor(t, 30*time.Second, "the changelog to match the ledger, the instance running", func() (bool, string) { return l.changelogMatches(g) })
	elapsed := time.Since(started)

	txns := metricValue(t, r.p.metrics.changelogTxns)
	most := float64(model.RatingsPartitions) * (float64(elapsed/interval) + 2)
	t.Logf("%d batches, %.0f changelog transactions in %s (at most %.0f allowed)", r.p.batchSeq, txns, elapsed.Round(time.Millisecond), most)
	if txns > most {
		t.Errorf("%.0f changelog transactions in %s: more than one per partition per %s", txns, elapsed, interval)
	}
}

// Killed with changes pending for the changelog (up to an interval of
// them): another instance restores the older positions and reads the rest
// of the log — exact, repeats still dropped.
func TestChangelogBehindByAnIntervalRestoresExactly(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	evs := l.ratings(g, 2000, 10, 64)

	var crashed atomic.Bool
	r := l.startWith(t.TempDir(), crashAfterCommit(&crashed, committedMoreThan(1000)), func(c *Config) { c.MaxBatch = 50; c.ChangelogInterval = time.Hour })
	servetest.WaitFor(t, 30*time.Second, "the crash with changes pending", func() (bool, string) { return crashed.Load(), "" })
	r.stop(t)
	var dups int64
	for i := 0; i < len(evs); i += 200 {
		l.produce(ratingRecord(evs[i]))
		dups++
	}

	other := l.start(t.TempDir())
	servetest.WaitFor(t, 30*time.Second, "the other instance's state to match", func() (bool, string) { return stateMatches(g, other.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match", func() (bool, string) { return l.viewMatches(g) })
	servetest.WaitFor(t, 30*time.Second, "the restore to be reported", func() (bool, string) { return other.p.LastRestore() != nil, "" })
	if replayed := other.p.LastRestore().RatingsReplayed; replayed <= dups {
		t.Errorf("ratings replayed after the restore = %d: the changelog was not behind (the test crashed with nothing pending)", replayed)
	}
	if d := other.p.duplicates.Load(); d != dups {
		t.Errorf("repeats dropped = %d, want %d", d, dups)
	}
}
