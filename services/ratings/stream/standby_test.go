package stream

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

func TestStandbyPlacementPutsNCopiesOfEachPartitionAfterItsOwner(t *testing.T) {
	t.Parallel()
	two := map[string][]int{"m-a": {0, 1, 2}, "m-b": {3, 4, 5}}
	for member, want := range map[string][]int{"m-a": {3, 4, 5}, "m-b": {0, 1, 2}} {
		if got, ok := standbyPlacement(two, member, 6, 1); !ok || !slices.Equal(got, want) {
			t.Errorf("two members, N=1: %s keeps %v (ok %v), want the other's partitions %v", member, got, ok, want)
		}
	}
	three := map[string][]int{"a": {0, 1}, "b": {2, 3}, "c": {4, 5}}
	for _, n := range []int{1, 2, 5} {
		copies := map[int]int{}
		for member, owned := range three {
			got, ok := standbyPlacement(three, member, 6, n)
			if !ok {
				t.Fatalf("three members: placement not ok")
			}
			for _, p := range got {
				if slices.Contains(owned, p) {
					t.Errorf("N=%d: %s keeps a standby of its own partition %d", n, member, p)
				}
				copies[p]++
			}
		}
		want := min(n, 2) // never more copies than other members
		for p := range 6 {
			if copies[p] != want {
				t.Errorf("three members, N=%d: partition %d has %d standbys, want %d", n, p, copies[p], want)
			}
		}
	}
	if _, ok := standbyPlacement(two, "m-c", 6, 1); ok {
		t.Error("a member the description does not name got a placement")
	}
	if _, ok := standbyPlacement(map[string][]int{"a": {0, 1}, "b": {2}}, "a", 6, 1); ok {
		t.Error("a description with unowned partitions (a rebalance in progress) gave a placement")
	}
	if _, ok := standbyPlacement(map[string][]int{"a": {0, 1, 2}, "b": {2, 3, 4, 5}}, "a", 6, 1); ok {
		t.Error("a description with a partition owned twice gave a placement")
	}
}

func TestStandbyReplicasNeedTheChangelog(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	for _, c := range []Config{
		{StandbyReplicas: -1},
		{StandbyReplicas: 1, Restore: RestoreLog},
		{StandbyReplicas: 1, Delivery: Transactional},
		{StandbyReplicas: 1, Delivery: AtLeastOnce},
	} {
		c.Cluster, c.DataDir = l.k, t.TempDir()
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted standby replicas without the effectively-once changelog", c)
		}
	}
}

// A warm copy kept by following the changelog, then left behind while the
// owner goes on: the restore from it reads only what was written since (a
// small tail of the partition's changelog) and ends with exactly the state
// a restore from the changelog's start ends with — counts, position, and
// request-id record.
func TestARestoreFromAStandbyReadsOnlyTheTailAndEqualsOneFromScratch(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(50)
	g := newLedger()
	l.ratings(g, 20000, 50, 41)
	owner := l.start(t.TempDir(), func(c *Config) { c.MaxBatch = 200 }) // small batches: a long changelog
	servetest.WaitFor(t, 60*time.Second, "the owner's state to match the ledger", func() (bool, string) { return stateMatches(g, owner.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to match the ledger", func() (bool, string) { return l.changelogMatches(g) })

	p := standbysOfAll(t, l)
	all := kafkaio.AllPartitions(model.RatingsPartitions)
	if n := metricValue(t, p.metrics.standbyRecords); n == 0 {
		t.Fatal("lab_stream_standby_records_total is 0 after the copies caught up")
	}
	p.standby.halt() // the copies stop here; the owner goes on
	l.ratings(g, 1000, 50, 42)
	servetest.WaitFor(t, 60*time.Second, "the changelog to include the newer ratings", func() (bool, string) { return l.changelogMatches(g) })
	owner.stop(t) // nobody writes the changelog now: both restores see the same end

	warm, _ := p.standby.take(all)
	if len(warm) != len(all) {
		t.Fatalf("%d warm copies handed over, want %d", len(warm), len(all))
	}
	ctx := servetest.Context(t, 30*time.Second)
	w, err := changelog.RestoreWarm(ctx, l.k, changelog.LabTopics, all, warm, requestids.DefaultRetention)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := changelog.RestoreWarm(ctx, l.k, changelog.LabTopics, all, nil, requestids.DefaultRetention)
	if err != nil {
		t.Fatal(err)
	}
	var tail, whole int
	for _, id := range all {
		fromWarm, fromScratch := w.State, sc.State
		if w.End[id] != sc.End[id] {
			t.Errorf("partition %d: the restores read to %d and %d", id, w.End[id], sc.End[id])
		}
		if !fromWarm[id].Equal(fromScratch[id]) {
			t.Errorf("partition %d: the state restored from the standby copy differs from the one restored from scratch (next %d vs %d, %d vs %d movies, %d vs %d request ids)",
				id, fromWarm[id].Next, fromScratch[id].Next, len(fromWarm[id].Movies), len(fromScratch[id].Movies), fromWarm[id].RequestIDs(), fromScratch[id].RequestIDs())
		}
		tail += w.Read[id]
		whole += sc.Read[id]
	}
	t.Logf("changelog records read: %d on top of the standby copies, %d from scratch", tail, whole)
	if tail == 0 {
		t.Error("nothing read on top of the copies: the test did not leave them behind")
	}
	if tail*5 > whole {
		t.Errorf("the restore from standby copies read %d changelog records, not a small tail of the %d a restore from scratch reads", tail, whole)
	}
}

// A standby copy of a log whose early ratings are older than the retention
// starts the request-id topic at its retention floor, not its start, and a
// restore from the copy holds exactly the state a restore from the start
// of both topics holds.
func TestAStandbyCopyStartsTheRequestIDsAtTheRetentionFloor(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(20)
	g := newLedger()
	l.ratingsAt(g, 1500, 20, 71, time.Now().Add(-2*time.Hour))
	l.ratings(g, 200, 20, 72)
	owner := l.start(t.TempDir(), func(c *Config) { c.MaxBatch, c.ChangelogInterval = 4, 0 }) // many writes: a long request-id topic
	servetest.WaitFor(t, 60*time.Second, "the owner's state to match the ledger", func() (bool, string) { return stateMatches(g, owner.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to match the ledger", func() (bool, string) { return l.changelogMatches(g) })
	owner.stop(t)

	p := standbysOfAll(t, l)
	all := kafkaio.AllPartitions(model.RatingsPartitions)
	ctx := servetest.Context(t, 30*time.Second)
	bounds, err := l.k.OffsetsCommitted(ctx, model.TopicRatingsRequestIDs, all)
	if err != nil {
		t.Fatal(err)
	}
	p.standby.mu.Lock()
	for _, id := range all {
		// A partition of fewer offsets is read whole (MinOffsets).
		if long := bounds[id].End-bounds[id].First > changelog.DefaultFloorSearch.MinOffsets; long != p.standby.floored[id] {
			t.Errorf("partition %d (%d offsets): copy started at its retention floor %v, want %v", id, bounds[id].End-bounds[id].First, p.standby.floored[id], long)
		}
	}
	p.standby.mu.Unlock()
	warm, _ := p.standby.take(all)
	w, err := changelog.RestoreWarm(ctx, l.k, changelog.LabTopics, all, warm, requestids.DefaultRetention)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := changelog.RestoreWarmWith(ctx, l.k, changelog.LabTopics, all, nil, requestids.DefaultRetention, changelog.FloorSearch{Off: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range all {
		if !w.State[id].Equal(sc.State[id]) {
			t.Errorf("partition %d: the state restored from the standby copy differs from the one restored from the start (%d vs %d request ids)",
				id, w.State[id].RequestIDs(), sc.State[id].RequestIDs())
		}
	}
}

// standbysOfAll is another instance keeping standby copies of every
// partition (a processor that never runs a generation: only its standby
// reader works), once the copies reached the end of both topics.
func standbysOfAll(t *testing.T, l *lab) *Processor {
	t.Helper()
	p, err := New(Config{Cluster: l.k, DataDir: t.TempDir(), StandbyReplicas: 1, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.standby.halt(); p.Close() })
	_, epoch := p.standby.take(nil)
	p.standby.follow(context.Background(), epoch, kafkaio.AllPartitions(model.RatingsPartitions))
	servetest.WaitFor(t, 30*time.Second, "the standby copies to reach both topics' end", func() (bool, string) {
		return standbyCaughtUp(l, p.standby)
	})
	return p
}

// standbyCaughtUp says whether every copy is at the committed end of its
// partitions of the changelog and the request-id topic.
func standbyCaughtUp(l *lab, s *standbys) (bool, string) {
	ctx := servetest.Context(l.t, 10*time.Second)
	all := kafkaio.AllPartitions(model.RatingsPartitions)
	bounds, err := l.k.OffsetsCommitted(ctx, model.TopicRatingsChangelog, all)
	if err != nil {
		return false, err.Error()
	}
	idsBounds, err := l.k.OffsetsCommitted(ctx, model.TopicRatingsRequestIDs, all)
	if err != nil {
		return false, err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.copies {
		if c.Next < bounds[id].End {
			return false, fmt.Sprintf("copy of partition %d at changelog offset %d of %d", id, c.Next, bounds[id].End)
		}
		if c.RequestIDsNext < idsBounds[id].End {
			return false, fmt.Sprintf("copy of partition %d at request-id offset %d of %d", id, c.RequestIDsNext, idsBounds[id].End)
		}
	}
	return true, ""
}

// Two instances with one standby replica each: each keeps a copy of the
// other's partitions. When one stops, the survivor takes its partitions
// over from the copies — reported as restored from standby, reading only
// the changelog written since — and its own partitions from the state it
// kept when its generation ended; the counts stay exact.
func TestTheSurvivorTakesPartitionsOverFromItsStandbyCopies(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(30)
	g := newLedger()
	l.ratings(g, 6000, 30, 43)
	standby1 := func(c *Config) { c.StandbyReplicas = 1; c.MaxBatch = 200 }
	a := l.start(t.TempDir(), standby1)
	b := l.start(t.TempDir(), standby1)
	servetest.WaitFor(t, 60*time.Second, "both to own partitions and keep copies of the other's", func() (bool, string) {
		pa, pb := a.p.Assigned(), b.p.Assigned()
		if len(pa) == 0 || len(pb) == 0 || len(pa)+len(pb) != model.RatingsPartitions {
			return false, fmt.Sprintf("assigned %v and %v", pa, pb)
		}
		for _, c := range []struct {
			p     *Processor
			other []int
		}{{a.p, pb}, {b.p, pa}} {
			c.p.standby.mu.Lock()
			kept := make([]int, 0, len(c.p.standby.copies))
			for id := range c.p.standby.copies {
				kept = append(kept, id)
			}
			c.p.standby.mu.Unlock()
			slices.Sort(kept)
			if !slices.Equal(kept, c.other) {
				return false, fmt.Sprintf("standby copies of %v, want the other's %v", kept, c.other)
			}
		}
		return true, ""
	})
	servetest.WaitFor(t, 60*time.Second, "the counts to match the ledger", func() (bool, string) { return l.changelogMatches(g) })
	servetest.WaitFor(t, 30*time.Second, "b's copies to reach the changelog's end", func() (bool, string) { return standbyCaughtUp(l, b.p.standby) })
	servetest.WaitFor(t, 10*time.Second, "b's standby lag gauge to say 0", func() (bool, string) {
		lag := metricValue(t, b.p.metrics.standbyLag)
		return lag == 0, fmt.Sprint(lag)
	})
	taken := a.p.Assigned()
	// b's copies stop following here, so the take-over has a tail to read:
	// what a writes for the ratings below.
	b.p.standby.halt()
	l.ratings(g, 500, 30, 44)
	servetest.WaitFor(t, 60*time.Second, "a to write the newer ratings to the changelog", func() (bool, string) { return l.changelogMatches(g) })
	a.stop(t)

	servetest.WaitFor(t, 60*time.Second, "b to own every partition", func() (bool, string) {
		return len(b.p.Assigned()) == model.RatingsPartitions, fmt.Sprint(b.p.Assigned())
	})
	servetest.WaitFor(t, 60*time.Second, "b's state to match the ledger", func() (bool, string) { return stateMatches(g, b.p) })
	servetest.WaitFor(t, 30*time.Second, "b's restore to be reported", func() (bool, string) {
		r := b.p.LastRestore()
		return r != nil && slices.Equal(r.Partitions, taken), fmt.Sprintf("%+v", r)
	})
	r := b.p.LastRestore()
	for _, id := range taken {
		if r.From[id] != fromStandby {
			t.Errorf("partition %d taken over from %q, want standby", id, r.From[id])
		}
	}
	whole := 0
	sc, err := changelog.RestoreWarm(servetest.Context(t, 30*time.Second), l.k, changelog.LabTopics, taken, nil, requestids.DefaultRetention)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range taken {
		whole += sc.Read[id]
	}
	t.Logf("take-over of %v: %d changelog records on top of standby copies, %d records in those partitions' changelog", taken, r.StandbyRecords, whole)
	if r.StandbyRecords == 0 {
		t.Error("the take-over read nothing on top of the copies left behind")
	}
	if r.StandbyRecords*5 > whole {
		t.Errorf("the take-over read %d changelog records on top of the copies, not a small tail of the %d in the taken partitions' changelog", r.StandbyRecords, whole)
	}
	if n := metricValue(t, b.p.metrics.restoreStart.WithLabelValues(startStandby)); int(n) != r.StandbyRecords {
		t.Errorf("lab_stream_restore_changelog_records_total{start=standby} = %v, want the restore's %d", n, r.StandbyRecords)
	}
	if r.ChangelogRecords != r.StandbyRecords {
		t.Errorf("the take-over read %d changelog records, %d of them on top of warm copies: b's own partitions were read from scratch, not kept warm", r.ChangelogRecords, r.StandbyRecords)
	}
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match the ledger", func() (bool, string) { return l.viewMatches(g) })

	// b's own copies, kept from its writers when its generation ended, are
	// the changelog's state at its end: what a restore from scratch gives.
	b.stop(t)
	all := kafkaio.AllPartitions(model.RatingsPartitions)
	sc, err = changelog.RestoreWarm(servetest.Context(t, 30*time.Second), l.k, changelog.LabTopics, all, nil, requestids.DefaultRetention)
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := b.p.standby.take(all)
	if len(kept) != len(all) {
		t.Fatalf("copies of %d partitions kept when b's generation ended, want %d", len(kept), len(all))
	}
	w, err := changelog.RestoreWarm(servetest.Context(t, 30*time.Second), l.k, changelog.LabTopics, all, kept, requestids.DefaultRetention)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range all {
		// The copy's position is after its last record: at most the
		// commit marker lies between it and the end.
		if w.Read[id] != 0 || !w.State[id].Equal(sc.State[id]) {
			t.Errorf("partition %d: a restore from the copy kept at offset %d read %d records and ended equal to one from scratch: %v", id, kept[id].Next, w.Read[id], w.State[id].Equal(sc.State[id]))
		}
	}
}

// metricValue reads a counter's or a gauge's value.
func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}
