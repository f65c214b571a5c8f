package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/ratings/stream"
)

// preloadRatings writes n valid ratings of movies 1..100 straight into
// `ratings` (the broker's own address, no edge), as a log that has been
// running a while: stamped two hours ago, longer than the request-id
// retention (15 min), so that, as in any log with more history than that,
// their request ids leave the record once newer ratings arrive — the state
// a restore reads is the counts and the last 15 minutes' ids, not the whole
// history. It waits until the lab's processors counted them.
func preloadRatings(t *testing.T, l *labtest.Lab, n int) {
	t.Helper()
	writeRatings(t, l, n, "preload-", time.Now().Add(-2*time.Hour))
}

// writeRatings writes n valid ratings of movies 1..100 (movie 1+i%100,
// tenths 10+i%91, request id prefix+i) stamped then straight into
// `ratings`, and waits until the lab's processors counted them.
func writeRatings(t testing.TB, l *labtest.Lab, n int, prefix string, then time.Time) {
	t.Helper()
	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{l.Ports.Broker()}, DialTimeout: 2 * time.Second}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	w := k.Writer(model.TopicRatings, kafkaio.WriterOptions{BatchSize: 5000})
	defer w.Close()
	var before int64
	if st := audit.ReadStore(context.Background(), l.Dir, audit.VariantStream); st.Error == "" {
		for _, m := range st.Movies {
			before += m.Count
		}
	}
	msgs := make([]kafka.Message, 0, 5000)
	for i := range n {
		ev := model.RatingEvent{RequestID: prefix + strconv.Itoa(i), MovieID: int64(1 + i%100), Tenths: int64(10 + i%91), EventTime: then}
		v, _ := ev.MarshalJSON()
		msgs = append(msgs, kafka.Message{Key: ev.Key(), Value: v, Time: then})
		if len(msgs) == cap(msgs) || i == n-1 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := w.Write(ctx, msgs...)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	labtest.Eventually(t, 3*time.Minute, "the written ratings to be counted", func() error {
		st := audit.ReadStore(context.Background(), l.Dir, audit.VariantStream)
		if st.Error != "" {
			return fmt.Errorf("store: %s", st.Error)
		}
		var total int64
		for _, m := range st.Movies {
			total += m.Count
		}
		if total < before+int64(n) {
			return fmt.Errorf("%d of %d counted", total-before, n)
		}
		return nil
	})
}

// lastRestore reads a replica's latest restore (GET /state).
func lastRestore(t testing.TB, addr string) *stream.Restore {
	t.Helper()
	st, err := replicaState(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	return st.LastRestore
}

// The rebalance experiment, shortened, on a lab with two ratings-stream
// replicas and a log of 300 000 older ratings: when one replica is killed and
// later paused past the session timeout, the survivor takes its partitions
// over by restoring them from the changelog and reading only the tail —
// in well under the time a replay of those partitions from offset 0 takes
// on the same log and machine — and the audit is exact.
func TestRebalanceRestoresFromTheChangelog(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t, "--no-prometheus", "--replicas", "ratings-stream=2")
	const preload = 300000
	preloadRatings(t, l, preload)
	survivor := l.Ports.RatingsStream(0)

	runLogExperiment(t, l, "rebalance", shortened(t, "rebalance", 0.6))

	// The survivor took partitions over twice (kill, pause), each time from
	// the changelog.
	if n := metric(t, l.Ports.AdminRatingsStream(0), "lab_stream_restore_duration_seconds", map[string]string{"from": "changelog"}); n < 2 {
		t.Errorf("the survivor restored from the changelog %v times, want at least 2 (the kill and the pause)", n)
	}
	r := lastRestore(t, survivor)
	if r == nil || len(r.Partitions) == 0 {
		t.Fatalf("the survivor reports no restore: %+v", r)
	}
	for _, p := range r.Partitions {
		if r.From[p] != "changelog" {
			t.Errorf("partition %d taken over from %q, want the changelog", p, r.From[p])
		}
	}
	if r.RatingsReplayed*10 > preload {
		t.Errorf("the survivor read %d ratings after restoring, more than a tenth of the log: not a tail", r.RatingsReplayed)
	}

	// The same log replayed from offset 0 by the same code, with no
	// changelog (--restore=log), in a group of its own.
	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{l.Ports.Broker()}, DialTimeout: 2 * time.Second}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	p, err := stream.New(stream.Config{Cluster: k, DataDir: t.TempDir(), Group: "e2e-replay-from-0", Restore: stream.RestoreLog,
		TopicWait: kafkaio.TopicWait{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done; p.Close() }()
	var replay *stream.Restore
	labtest.Eventually(t, 3*time.Minute, "the replay from offset 0 to catch up", func() error {
		if replay = p.LastRestore(); replay == nil {
			return fmt.Errorf("replaying")
		}
		return nil
	})
	// Per partition: the survivor restored len(r.Partitions) of six.
	share := replay.Seconds * float64(len(r.Partitions)) / float64(model.RatingsPartitions)
	t.Logf("survivor: %d partitions from the changelog in %.3fs (%d changelog records, %d ratings of tail); replay from 0: 6 partitions, %d ratings in %.3fs (%.3fs for %d partitions' share)",
		len(r.Partitions), r.Seconds, r.ChangelogRecords, r.RatingsReplayed, replay.RatingsReplayed, replay.Seconds, share, len(r.Partitions))
	// The times are logged, not asserted: on a loaded machine a timed
	// comparison of two sub-second reads flips (CI, 2026-12-07: 0.334 s
	// against a 0.635 s share, the bound half of it). What a restore costs
	// against a replay is benchmarked (docs/benchmarks.md, "Taking
	// partitions over"); the test holds the tail bound above.
}
