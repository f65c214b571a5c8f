package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// changelogPositions reads the changelog's position per partition.
func (l *lab) changelogPositions() map[int]int64 {
	l.t.Helper()
	parts, err := changelog.Restore(servetest.Context(l.t, 30*time.Second), l.k, changelog.LabTopics,
		kafkaio.AllPartitions(model.RatingsPartitions), requestids.DefaultRetention)
	if err != nil {
		l.t.Fatal(err)
	}
	out := map[int]int64{}
	for id, p := range parts {
		out[id] = p.Next
	}
	return out
}

// An effectively-once instance that takes partitions over restores their
// state from the changelog and reads only the ratings after its position —
// counts exact, and the request ids counted before the hand-over still
// recognised as repeats.
func TestEffectivelyOnceTakeOverRestoresFromTheChangelog(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(20)
	g := newLedger()
	evs := l.ratings(g, 3000, 20, 31)

	a := l.start(t.TempDir())
	servetest.WaitFor(t, 30*time.Second, "a's state to match the ledger", func() (bool, string) { return stateMatches(g, a.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to hold the same state", func() (bool, string) { return l.changelogMatches(g) })
	if r := a.p.LastRestore(); r == nil || len(r.Partitions) != model.RatingsPartitions || r.From[0] != fromStart {
		t.Fatalf("a's first restore = %+v, want all partitions from the start of the log", r)
	}
	a.stop(t)

	// While nobody runs: repeats of counted request ids, and new ratings.
	var dups int64
	for i := 0; i < len(evs); i += 150 {
		l.produce(ratingRecord(evs[i]))
		dups++
	}
	l.ratings(g, 200, 20, 32)

	b := l.start(t.TempDir()) // another instance: an empty database
	servetest.WaitFor(t, 30*time.Second, "b's state to match the ledger", func() (bool, string) { return stateMatches(g, b.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match the ledger", func() (bool, string) { return l.viewMatches(g) })
	servetest.WaitFor(t, 30*time.Second, "b's restore to be reported", func() (bool, string) { return b.p.LastRestore() != nil, "" })
	r := b.p.LastRestore()
	for _, id := range kafkaio.AllPartitions(model.RatingsPartitions) {
		if r.From[id] != fromChangelog {
			t.Errorf("partition %d restored from %q, want changelog", id, r.From[id])
		}
	}
	if want := dups + 200; r.RatingsReplayed != want {
		t.Errorf("ratings replayed after the restore = %d, want the %d written after a stopped (not the whole log)", r.RatingsReplayed, want)
	}
	if r.ChangelogRecords == 0 {
		t.Error("no changelog records read")
	}
	if d := b.p.duplicates.Load(); d != dups {
		t.Errorf("repeats dropped after the hand-over = %d, want %d: the request-id record did not come back", d, dups)
	}
	servetest.WaitFor(t, 30*time.Second, "the changelog to match the ledger", func() (bool, string) { return l.changelogMatches(g) })
}

// Killed between the database commit and the changelog write: the
// changelog is behind (never ahead, never half-written). The same instance
// restarted is ahead of it and catches it up; another instance restores the
// older position and reads the rest of the log — exact either way.
func TestEffectivelyOnceCrashBetweenTheTwoCommitsIsExact(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	l.ratings(g, 2000, 10, 33)
	dir := t.TempDir()

	var crashed atomic.Bool
	r := l.startWith(dir, crashAfterCommit(&crashed, committedMoreThan(500)), func(c *Config) { c.MaxBatch = 100 })
	servetest.WaitFor(t, 30*time.Second, "the crash between the commits", func() (bool, string) { return crashed.Load(), "" })
	r.stop(t)
	db := l.databaseOffsets(dir)
	behind := 0
	for part, pos := range l.changelogPositions() {
		if pos > db[part] {
			t.Fatalf("partition %d: the changelog is at %d, ahead of the database's %d", part, pos, db[part])
		}
		if pos < db[part] {
			behind++
		}
	}
	if behind == 0 {
		t.Fatal("the crash left no partition's changelog behind its database: the test crashed nowhere")
	}

	// Another instance first: it restores the older positions.
	other := l.start(t.TempDir())
	servetest.WaitFor(t, 30*time.Second, "the other instance's state to match", func() (bool, string) { return stateMatches(g, other.p) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match", func() (bool, string) { return l.viewMatches(g) })
	other.stop(t)

	// Then the crashed one again: its database is behind now, the
	// changelog ahead; more ratings arrive.
	l.ratings(g, 300, 10, 34)
	r = l.start(dir)
	servetest.WaitFor(t, 30*time.Second, "the restarted instance's state to match", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to match", func() (bool, string) { return l.changelogMatches(g) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match", func() (bool, string) { return l.viewMatches(g) })
}

// The database ahead of the changelog (a crash between the commits) and
// the same instance restarted: it keeps its own state and writes what the
// changelog misses at once.
func TestEffectivelyOnceDatabaseAheadCatchesTheChangelogUp(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	l.ratings(g, 1500, 10, 35)
	dir := t.TempDir()
	var crashed atomic.Bool
	r := l.startWith(dir, crashAfterCommit(&crashed, committedMoreThan(400)), func(c *Config) { c.MaxBatch = 100 })
	servetest.WaitFor(t, 30*time.Second, "the crash between the commits", func() (bool, string) { return crashed.Load(), "" })
	r.stop(t)
	r = l.start(dir)
	servetest.WaitFor(t, 30*time.Second, "state to match", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to match", func() (bool, string) { return l.changelogMatches(g) })
	servetest.WaitFor(t, 30*time.Second, "the restore to be reported", func() (bool, string) { return r.p.LastRestore() != nil, "" })
	if from := r.p.LastRestore().From; !slices.Contains(mapValues(from), fromLocal) {
		t.Errorf("restore from %v: want the database (local) for the partitions it was ahead on", from)
	}
}

func mapValues(m map[int]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Killed inside the changelog transaction: nothing of it is visible, and
// the next owner (which initialises the partition's transactional id,
// aborting the open transaction) restores exactly.
func TestEffectivelyOnceCrashMidChangelogTransactionLeavesNoTrace(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	l.ratings(g, 1500, 10, 36)

	var crashed atomic.Bool
	r := l.startWith(t.TempDir(), func(p *Processor, crash context.CancelFunc) {
		p.testHookBeforeEnd = func() bool {
			if _, n, _ := committedTotal(p); n > 500 && crashed.CompareAndSwap(false, true) {
				crash()
				return true
			}
			return false
		}
	}, func(c *Config) { c.MaxBatch = 100 })
	servetest.WaitFor(t, 30*time.Second, "the crash mid-transaction", func() (bool, string) { return crashed.Load(), "" })
	r.stop(t)

	l.ratings(g, 300, 10, 37)
	b := l.start(t.TempDir())
	servetest.WaitFor(t, 40*time.Second, "the next owner's state to match", func() (bool, string) { return stateMatches(g, b.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to match", func() (bool, string) { return l.changelogMatches(g) })
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match", func() (bool, string) { return l.viewMatches(g) })
}

// A previous owner that wakes up after the partition was taken over cannot
// write its older state over the new owner's: initialising the partition's
// transactional id fenced it.
func TestAPreviousOwnerOfAChangelogPartitionIsFenced(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	open := func() (*Processor, map[int]*changelogPart) {
		p, err := New(Config{Cluster: l.k, DataDir: t.TempDir(), Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		parts, err := p.openChangelogParts(servetest.Context(t, 30*time.Second), []int{2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeChangelogParts(parts) })
		for _, c := range parts {
			c.state = changelog.NewPartition(c.id, 0)
			c.pending = c.state.Begin()
		}
		return p, parts
	}
	old, oldParts := open()
	oldParts[2].pending.Follow(10, []changelog.Aggregate{{MovieID: 3, Count: 1, SumTenths: 50, SourceOffset: 10}}, nil, -1)
	if err := old.writeChangelog(servetest.Context(t, 20*time.Second), oldParts, []int{2}); err != nil {
		t.Fatalf("the first owner's write: %v", err)
	}
	_, newParts := open() // the partition taken over
	oldParts[2].pending.Follow(20, []changelog.Aggregate{{MovieID: 3, Count: 2, SumTenths: 90, SourceOffset: 20}}, nil, -1)
	err := old.writeChangelog(servetest.Context(t, 20*time.Second), oldParts, []int{2})
	if !errors.Is(err, errFenced) {
		t.Fatalf("the previous owner's write after the take-over: %v, want fenced", err)
	}
	if pos := l.changelogPositions()[2]; pos != 10 {
		t.Errorf("changelog position = %d, want 10 (the fenced write left nothing)", pos)
	}
	_ = newParts
}

// --restore=log writes no changelog and replays a taken-over partition.
func TestRestoreLogWritesNoChangelog(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(5)
	g := newLedger()
	l.ratings(g, 500, 5, 38)
	r := l.start(t.TempDir(), func(c *Config) { c.Restore = RestoreLog })
	servetest.WaitFor(t, 30*time.Second, "state to match", func() (bool, string) { return stateMatches(g, r.p) })
	for part, pos := range l.changelogPositions() {
		if pos != -1 {
			t.Errorf("partition %d: changelog position %d, want none written", part, pos)
		}
	}
	if _, err := ParseRestore("disk"); err == nil || fmt.Sprint(err) != `--restore "disk": want changelog or log` {
		t.Errorf("ParseRestore(disk) = %v", err)
	}
}
