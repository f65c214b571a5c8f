package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/services/ratings/stream"
)

// BenchmarkStandbyTakeoverInALab measures, on the same data, a take-over
// after a kill with and without standby replicas: a lab with two
// ratings-stream replicas (`lab up --replicas ratings-stream=2`, then with
// `--standby-replicas 1`) is given STANDBY_BENCH_HISTORY ratings (default
// 300,000) stamped two hours ago, as a log with history, and
// STANDBY_BENCH_RECENT (default 2,000) stamped now, which push the old
// request ids out of the record; then ratings-stream-2 is killed (kill -9)
// and the survivor's restore of the partitions it takes over is read from
// GET /state: the processor's restore clock (from the assignment until the
// state includes the whole log), the changelog records read in all (its own
// partitions' too) and on top of standby copies. A fresh lab per variant.
//
//	go test ./lab/e2e -run '^$' -bench BenchmarkStandbyTakeoverInALab -benchtime 1x -timeout 20m
func BenchmarkStandbyTakeoverInALab(b *testing.B) {
	labtest.SkipUnlessE2E(b)
	history, recent := benchEnv("STANDBY_BENCH_HISTORY", 300000), benchEnv("STANDBY_BENCH_RECENT", 2000)
	for _, standby := range []int{0, 1} {
		b.Run("standby-replicas-"+strconv.Itoa(standby), func(b *testing.B) {
			var seconds float64
			var records, onCopies int
			for range b.N {
				r := standbyTakeover(b, standby, history, recent)
				seconds += r.Seconds
				records += r.ChangelogRecords
				onCopies += r.StandbyRecords
			}
			b.ReportMetric(seconds*1000/float64(b.N), "restore-ms")
			b.ReportMetric(float64(records)/float64(b.N), "changelog-records")
			b.ReportMetric(float64(onCopies)/float64(b.N), "records-on-copies")
		})
	}
}

// standbyTakeover is one kill and take-over on a fresh lab; it returns the
// survivor's restore.
func standbyTakeover(b *testing.B, standby, history, recent int) *stream.Restore {
	l := labtest.Start(b, "--no-prometheus", "--replicas", "ratings-stream=2", "--standby-replicas", strconv.Itoa(standby))
	defer l.Run("down")
	survivor, victimAddr := l.Ports.RatingsStream(0), l.Ports.RatingsStream(1)
	writeRatings(b, l, history, "history-", time.Now().Add(-2*time.Hour))
	writeRatings(b, l, recent, "recent-", time.Now())
	var taken []int
	labtest.Eventually(b, 60*time.Second, "both replicas to own partitions (and keep copies of the other's)", func() error {
		var err error
		if taken, err = assigned(b, victimAddr); err != nil || len(taken) == 0 {
			return fmt.Errorf("ratings-stream-2 owns %v (%v)", taken, err)
		}
		if standby == 0 {
			return nil
		}
		kept, err := standbyOf(b, survivor)
		if err != nil || !slices.Equal(kept, taken) {
			return fmt.Errorf("the survivor keeps copies of %v, ratings-stream-2 owns %v (%v)", kept, taken, err)
		}
		if lag := metric(b, l.Ports.AdminRatingsStream(0), "lab_stream_standby_lag_records", nil); lag != 0 {
			return fmt.Errorf("the survivor's copies are %v changelog records behind", lag)
		}
		return nil
	})
	l.Action("ratings-stream-2", "kill")
	var r *stream.Restore
	labtest.Eventually(b, 2*time.Minute, "the survivor to report the take-over", func() error {
		if r = lastRestore(b, survivor); r == nil || !slices.Equal(r.Partitions, taken) {
			return fmt.Errorf("last restore %+v, want partitions %v", r, taken)
		}
		return nil
	})
	b.Logf("standby replicas %d: partitions %v from %v in %.3fs, %d changelog records (%d on top of standby copies), %d ratings of tail",
		standby, r.Partitions, r.From, r.Seconds, r.ChangelogRecords, r.StandbyRecords, r.RatingsReplayed)
	return r
}
