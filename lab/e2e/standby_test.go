package e2e

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/ratings/stream"
)

// standbyOf is the partitions a replica keeps standby copies of (GET /state).
func standbyOf(t testing.TB, addr string) ([]int, error) {
	st, err := replicaState(t, addr)
	return st.Standby, err
}

// Two ratings-stream replicas with one standby replica each (lab up
// --standby-replicas 1): each keeps a warm copy of the other's partitions.
// One is killed (kill -9) in the middle of a stream of ratings; the
// survivor takes its partitions over from its copies — reported as
// restored from standby, reading only the changelog written since the
// copies' positions, a small part of those partitions' changelog — and the
// stored state holds exactly the acknowledged ratings: none lost, none
// doubled.
func TestAStandbyReplicaTakesTheKilledReplicasPartitionsOverWarm(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t, "--no-prometheus", "--replicas", "ratings-stream=2", "--standby-replicas", "1")
	base := "http://" + l.Ports.WebserverStream()
	survivor, victimAddr := l.Ports.RatingsStream(0), l.Ports.RatingsStream(1)
	const victim = "ratings-stream-2"

	// A log with history: the changelog holds what a from-scratch restore
	// would read. preloadRatings' ratings are acknowledged by construction.
	e := newExpected()
	const preload = 30000
	preloadRatings(t, l, preload)
	for i := range preload {
		e.add(int64(1+i%100), int64(10+i%91)) // preloadRatings' movies and ratings
	}

	var taken []int
	labtest.Eventually(t, 60*time.Second, "each replica to keep warm copies of the other's partitions", func() error {
		mine, err := assigned(t, survivor)
		if err != nil {
			return err
		}
		if taken, err = assigned(t, victimAddr); err != nil {
			return err
		}
		kept, err := standbyOf(t, survivor)
		if err != nil {
			return err
		}
		theirs, err := standbyOf(t, victimAddr)
		if err != nil {
			return err
		}
		if len(taken) == 0 || !slices.Equal(kept, taken) || !slices.Equal(theirs, mine) {
			return fmt.Errorf("owned %v and %v, standby copies %v and %v", mine, taken, kept, theirs)
		}
		if lag := metric(t, l.Ports.AdminRatingsStream(0), "lab_stream_standby_lag_records", nil); lag != 0 {
			return fmt.Errorf("the survivor's copies are %v changelog records behind", lag)
		}
		return nil
	})
	if n := metric(t, l.Ports.AdminRatingsStream(0), "lab_stream_standby_records_total", nil); n == 0 {
		t.Fatal("the survivor applied no changelog record to its standby copies")
	}

	var wg sync.WaitGroup
	const writers, perWriter = 4, 150
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if w == 0 && i == perWriter/3 {
					l.Action(victim, "kill")
				}
				postStreamUntilAccepted(t, base, e, int64(40+(i+w)%20), int64(10+(i*7+w)%91), fmt.Sprintf("standby-%d-%d", w, i))
			}
		})
	}
	wg.Wait()
	if p := l.Part(victim); p.PID != 0 {
		t.Fatalf("%s still running after kill: %+v", victim, p)
	}
	var r *stream.Restore
	labtest.Eventually(t, 60*time.Second, "the survivor to report taking the killed replica's partitions over from its standby copies", func() error {
		r = lastRestore(t, survivor)
		if r == nil || !slices.Equal(r.Partitions, taken) {
			return fmt.Errorf("last restore %+v, want partitions %v", r, taken)
		}
		for _, p := range taken {
			if r.From[p] != "standby" {
				return fmt.Errorf("partition %d restored from %q, want standby", p, r.From[p])
			}
		}
		return nil
	})
	labtest.Eventually(t, 60*time.Second, "exact counts in the view after the kill", func() error { return e.converged(t, base) })
	labtest.Eventually(t, 30*time.Second, "the stored state to hold exactly the acknowledged ratings", func() error { return storeHolds(l, e) })

	// What a restore of the same partitions from the changelog's start
	// reads now (the changelog only grew since the take-over).
	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{l.Ports.Broker()}, DialTimeout: 2 * time.Second}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	sc, err := changelog.RestoreWarm(t.Context(), k, changelog.LabTopics, taken, nil, requestids.DefaultRetention)
	if err != nil {
		t.Fatal(err)
	}
	whole := 0
	for _, p := range taken {
		whole += sc.Read[p]
	}
	t.Logf("take-over of %v in %.3fs: %d changelog records on top of the standby copies (%d in all, with the survivor's own partitions), %d ratings of tail; a restore of those partitions from scratch reads %d changelog records",
		taken, r.Seconds, r.StandbyRecords, r.ChangelogRecords, r.RatingsReplayed, whole)
	if r.StandbyRecords*5 > whole {
		t.Errorf("the take-over read %d changelog records on top of the copies: not a small tail of the %d a restore from scratch reads", r.StandbyRecords, whole)
	}
	if n := metric(t, l.Ports.AdminRatingsStream(0), "lab_stream_restore_changelog_records_total", map[string]string{"start": "standby"}); int(n) < r.StandbyRecords {
		t.Errorf("lab_stream_restore_changelog_records_total{start=standby} = %v, below the restore's %d", n, r.StandbyRecords)
	}
}
