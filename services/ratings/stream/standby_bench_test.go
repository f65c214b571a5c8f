package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/model"
)

// BenchmarkStandbyTakeover measures what a standby replica saves: an
// instance with an empty database takes all six partitions over from the
// changelog another instance wrote, once from scratch (no standby: the whole
// changelog is read) and once from warm standby copies (the copies first
// follow the changelog to its end, untimed, as a standby replica would have
// while the owner ran; then only the tail is read: nothing here). Same data,
// same run, the processor's restore clock (restore.go: from the assignment
// until the state includes every rating that was in the log then). The
// ratings are stamped now, so every request id is within the retention
// and in the changelog: the restore's worst case. Events:
// RATINGS_BENCH_EVENTS (default 300000):
//
//	go test ./services/ratings/stream -run '^$' -bench BenchmarkStandbyTakeover -benchtime 3x
func BenchmarkStandbyTakeover(b *testing.B) {
	n := benchEvents()
	l := newLab(b)
	l.movies(100)
	l.ratings(newLedger(), n, 100, 42)
	if _, err := runUntilCounted(b, Config{Cluster: l.k, DataDir: b.TempDir(), Group: "standby-bench-owner", Restore: RestoreChangelog, Log: testLog(b)}, n); err != nil {
		b.Fatal(err)
	}
	all := kafkaio.AllPartitions(model.RatingsPartitions)
	takeover := func(standby bool) func(b *testing.B) {
		return func(b *testing.B) {
			var seconds, warming float64
			var records, onCopies int
			for i := 0; i < b.N; i++ {
				cfg := Config{Cluster: l.k, DataDir: b.TempDir(), Group: fmt.Sprintf("standby-bench-%v-%d", standby, i), Restore: RestoreChangelog, Log: testLog(b)}
				var prepare []func(*Processor) error
				want := fromChangelog
				if standby {
					cfg.StandbyReplicas, want = 1, fromStandby
					prepare = append(prepare, func(p *Processor) error {
						t0 := time.Now()
						_, epoch := p.standby.take(nil)
						p.standby.follow(context.Background(), epoch, all)
						for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Millisecond) {
							if ok, why := standbyCaughtUp(l, p.standby); ok {
								break
							} else if time.Now().After(deadline) {
								return fmt.Errorf("standby copies not caught up in 5 minutes: %s", why)
							}
						}
						warming += time.Since(t0).Seconds()
						return nil
					})
				}
				r, err := runUntilRestored(b, cfg, prepare...)
				if err != nil {
					b.Fatal(err)
				}
				for _, id := range all {
					if r.From[id] != want {
						b.Fatalf("partition %d restored from %q, want %s", id, r.From[id], want)
					}
				}
				seconds += r.Seconds
				records += r.ChangelogRecords
				onCopies += r.StandbyRecords
			}
			b.ReportMetric(seconds*1000/float64(b.N), "restore-ms")
			b.ReportMetric(float64(records)/float64(b.N), "changelog-records")
			if standby {
				b.ReportMetric(float64(onCopies)/float64(b.N), "records-on-copies")
				b.ReportMetric(warming*1000/float64(b.N), "warming-ms")
			}
		}
	}
	b.Run("from-scratch", takeover(false))
	b.Run("from-standby", takeover(true))
}
