package changelog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/requestids"
)

// BenchmarkRestoreRequestIDs restores six partitions whose request-id
// topic holds 300,000 entries (records of 1,000, as a busy processor
// writes them) and then 20 records of 10 entries stamped now: from the
// retention floor (the default search) and from the start. Stamped two
// hours ago, as in the e2e rebalance test's preloaded log, the floor skips
// them; stamped now (a log in real time, the broker's 30 minutes all
// within 15 of the log's clock), nothing can be skipped and the search is
// what it costs.
//
//	go test ./services/lib/kafkaio/changelog -run '^$' -bench BenchmarkRestoreRequestIDs -benchtime 20x
func BenchmarkRestoreRequestIDs(b *testing.B) {
	b.Run("stamped-2h-ago", func(b *testing.B) { benchRestoreRequestIDs(b, 2*time.Hour) })
	b.Run("stamped-now", func(b *testing.B) { benchRestoreRequestIDs(b, 0) })
}

func benchRestoreRequestIDs(b *testing.B, age time.Duration) {
	const partitions, oldPerPartition, recentPerPartition = 6, 50, 20
	topics := changelog.Topics{State: "ratings-stream-changelog", RequestIDs: "ratings-stream-request-ids"}
	br := kafkatest.Start(b, []kafkatest.Topic{{Name: topics.State, Partitions: partitions, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: topics.RequestIDs, Partitions: partitions, Configs: map[string]string{"cleanup.policy": "delete"}}})
	k := kafkatest.Client(b, kafkaio.Config{Brokers: []string{br.Addr}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(k.FranzOpts(kgo.TransactionalID("floor-bench"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	old, now := time.Now().Add(-age).UnixMilli(), time.Now().UnixMilli()
	for p := range int32(partitions) {
		var offset int64
		txn := func(r *kgo.Record) {
			if err := cl.BeginTransaction(); err != nil {
				b.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				b.Fatal(err)
			}
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				b.Fatal(err)
			}
		}
		write := func(n int, at int64) {
			entries := make([]requestids.Entry, n)
			for i := range entries {
				entries[i] = requestids.Entry{ID: requestids.Hash(fmt.Sprintf("p%d-r%d", p, offset)), Fingerprint: 1, Time: at, Offset: offset}
				offset++
			}
			txn(&kgo.Record{Topic: topics.RequestIDs, Partition: p, Key: strconv.AppendInt(nil, entries[0].Offset, 10), Value: requestids.AppendEntries(nil, entries)})
		}
		for range oldPerPartition {
			write(1000, old)
		}
		for range recentPerPartition {
			write(10, now)
		}
		pos, _ := json.Marshal(map[string]int64{"next_offset": offset})
		txn(&kgo.Record{Topic: topics.State, Partition: p, Key: []byte("position"), Value: pos})
	}
	all := []int{0, 1, 2, 3, 4, 5}
	for _, bc := range []struct {
		name   string
		search changelog.FloorSearch
	}{{"floor", changelog.DefaultFloorSearch}, {"start", changelog.FloorSearch{Off: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			records, fetches, ids := 0, 0, 0
			for b.Loop() {
				r, err := changelog.RestoreWarmWith(ctx, k, topics, all, nil, requestids.DefaultRetention, bc.search)
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range all {
					records += r.Read[p]
					fetches += r.Floors[p].Fetches
					ids += r.State[p].RequestIDs()
					if r.Floors[p].Fallback != "" {
						b.Fatalf("partition %d: %s", p, r.Floors[p].Fallback)
					}
				}
			}
			b.ReportMetric(float64(records)/float64(b.N), "records/op")
			b.ReportMetric(float64(fetches)/float64(b.N), "search-fetches/op")
			b.ReportMetric(float64(ids)/float64(b.N), "ids-kept/op")
		})
	}
}
