package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/ratings/stream"
)

// assigned is what one ratings-stream replica owns now (GET /state).
func assigned(t testing.TB, addr string) ([]int, error) {
	st, err := replicaState(t, addr)
	return st.Assigned, err
}

// replicaState is one ratings-stream replica's GET /state.
func replicaState(t testing.TB, addr string) (stream.State, error) {
	t.Helper()
	var st stream.State
	if code, err := labtest.HTTPJSON(http.MethodGet, "http://"+addr+"/state", nil, &st); err != nil || code != http.StatusOK {
		return st, fmt.Errorf("GET %s/state: %d %v", addr, code, err)
	}
	return st, nil
}

// Two ratings-stream replicas share the partitions; one is killed (kill -9)
// in the middle of a stream of ratings, the other takes its partitions over
// and restores them from the changelog (ratings-stream-changelog), reading
// only the tail of ratings; the killed one comes back and the partitions move
// again. Through
// all of it the view and the replicas' stored state hold exactly the
// acknowledged ratings: none lost, none doubled.
func TestStreamReplicasShareThePartitionsAndSurviveAKill(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t, "--no-prometheus", "--replicas", "ratings-stream=2")
	base := "http://" + l.Ports.WebserverStream()
	first, second := l.Ports.RatingsStream(0), l.Ports.RatingsStream(1)
	const victim = "ratings-stream-2"

	shared := func(want ...string) func() error {
		return func() error {
			var all []int
			for _, addr := range want {
				ps, err := assigned(t, addr)
				if err != nil {
					return err
				}
				if len(ps) == 0 {
					return fmt.Errorf("%s owns no partition", addr)
				}
				all = append(all, ps...)
			}
			slices.Sort(all)
			if !slices.Equal(all, []int{0, 1, 2, 3, 4, 5}) {
				return fmt.Errorf("partitions owned: %v", all)
			}
			return nil
		}
	}
	labtest.Eventually(t, 60*time.Second, "both replicas to own partitions", shared(first, second))

	e := newExpected()
	var wg sync.WaitGroup
	const writers, perWriter = 4, 200
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				// 20 movies: every partition gets ratings, so both
				// replicas are counting when one dies.
				postStreamUntilAccepted(t, base, e, int64(40+(i+w)%20), int64(10+(i*7+w)%91), fmt.Sprintf("replica-%d-%d", w, i))
			}
		})
	}
	// Killed mid-stream once it has counted some of every partition it owns
	// and committed a changelog transaction for each, so each of them has a
	// changelog to restore from (under load a replica killed sooner may not
	// have written one yet, and restores from the start; counting alone does
	// not say so, as the changelog is written per interval).
	labtest.Eventually(t, 30*time.Second, "the victim to have counted ratings on each of its partitions and committed their changelog", func() error {
		st, err := replicaState(t, second)
		if err != nil {
			return err
		}
		for _, p := range st.Assigned {
			if st.Offsets[strconv.Itoa(p)] == 0 {
				return fmt.Errorf("partition %d: nothing counted yet (%v)", p, st.Offsets)
			}
		}
		return changelogCommitted(l.Kafka(), st.Assigned)
	})
	l.Action(victim, "kill")
	if p := l.Part(victim); p.PID != 0 {
		t.Fatalf("%s still running after kill: %+v", victim, p)
	}
	wg.Wait()
	labtest.Eventually(t, 60*time.Second, "the survivor to own every partition", shared(first))
	labtest.Eventually(t, 30*time.Second, "the survivor to report restoring the taken-over partitions from the changelog", func() error {
		r := lastRestore(t, first)
		if r == nil || len(r.Partitions) == 0 || len(r.Partitions) == 6 {
			return fmt.Errorf("last restore: %+v", r)
		}
		fromChangelog := 0
		for _, p := range r.Partitions {
			switch r.From[p] {
			case "changelog":
				fromChangelog++
			case "start":
				// Only when the victim died between counting p and its
				// first changelog transaction for p; the exact counts below
				// check the result either way.
			default:
				return fmt.Errorf("partition %d restored from %q", p, r.From[p])
			}
		}
		if fromChangelog == 0 {
			return fmt.Errorf("no taken-over partition restored from the changelog: %+v", r.From)
		}
		return nil
	})
	labtest.Eventually(t, 60*time.Second, "exact counts after one replica was killed mid-stream", func() error { return e.converged(t, base) })
	storeMatches := func() error { return storeHolds(l, e) }
	labtest.Eventually(t, 30*time.Second, "the replicas' stored state to hold exactly the acknowledged ratings", storeMatches)

	// The killed replica comes back: the partitions are shared again; what
	// it takes over it restores from the changelog (its own snapshot is
	// older).
	l.Action(victim, "start")
	labtest.Eventually(t, 60*time.Second, "the partitions to be shared again", shared(first, second))
	for i := range 100 {
		postStreamUntilAccepted(t, base, e, int64(40+i%20), int64(10+i%91), fmt.Sprintf("after-%d", i))
	}
	labtest.Eventually(t, 60*time.Second, "exact counts after the replica rejoined", func() error { return e.converged(t, base) })
	labtest.Eventually(t, 30*time.Second, "exact stored state after the replica rejoined", storeMatches)
}

// storeHolds says whether the stream variant's stored state (every
// replica's database, each partition from its owner) holds exactly the
// acknowledged ratings: none lost, none doubled.
func storeHolds(l *labtest.Lab, e *expected) error {
	st := audit.ReadStore(context.Background(), l.Dir, audit.VariantStream)
	if st.Error != "" {
		return fmt.Errorf("store: %s", st.Error)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	got := map[int64]bool{}
	for _, m := range st.Movies {
		got[m.MovieID] = true
		if m.Count != e.count[m.MovieID] || m.SumTenths != e.tenths[m.MovieID] {
			return fmt.Errorf("stored movie %d: count %d sum %d, acknowledged %d and %d", m.MovieID, m.Count, m.SumTenths, e.count[m.MovieID], e.tenths[m.MovieID])
		}
	}
	for id := range e.count {
		if !got[id] {
			return fmt.Errorf("movie %d acknowledged but not stored", id)
		}
	}
	return nil
}

// changelogCommitted says whether each of the partitions of ratings-stream's
// changelog holds a committed record (its last stable offset is past 0).
func changelogCommitted(broker net.Addr, partitions []int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reqs := make([]kafka.OffsetRequest, 0, len(partitions))
	for _, p := range partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	c := &kafka.Client{Addr: broker}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{model.TopicRatingsChangelog: reqs}, IsolationLevel: kafka.ReadCommitted})
	if err != nil {
		return fmt.Errorf("list offsets of the changelog: %w", err)
	}
	for _, po := range res.Topics[model.TopicRatingsChangelog] {
		if po.Error != nil {
			return fmt.Errorf("changelog partition %d: %w", po.Partition, po.Error)
		}
		if po.LastOffset <= 0 {
			return fmt.Errorf("changelog partition %d: nothing committed yet", po.Partition)
		}
	}
	return nil
}
