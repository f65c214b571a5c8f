package changelog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ratingslab/lab/services/changelog"
	"github.com/ratingslab/lab/services/kafkaio"
	"github.com/ratingslab/lab/services/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/servetest"
)

// replay loads records into a fresh partition, as a restore does.
func replay(t *testing.T, id int, recs ...[]kafka.Message) *changelog.Partition {
	t.Helper()
	p := changelog.NewPartition(id)
	for _, rs := range recs {
		for _, r := range rs {
			if r.Partition != id {
				t.Fatalf("record %s is for partition %d, not %d", r.Key, r.Partition, id)
			}
			if err := p.Load(r.Key, r.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p
}

// count adds ratings at offsets [from, to) of partition p, each with request
// id "r<offset>", for movie offset%3+1, rating 7.0.
func count(p *changelog.Partition, from, to int64) *changelog.Batch {
	b := p.Begin()
	for off := from; off < to; off++ {
		b.Count(off, fmt.Sprintf("r%d", off), off%3+1, 70, time.Unix(off, 0).UTC())
	}
	return b
}

func TestRecordsRestoreExactlyTheAppliedState(t *testing.T) {
	const window = 1000
	live := changelog.NewPartition(4)
	var log [][]kafka.Message
	for _, span := range [][2]int64{{0, 5}, {5, 130}, {130, 131}} {
		b := count(live, span[0], span[1])
		log = append(log, b.Records(window))
		b.Apply(window)
	}
	b := live.Begin()
	b.Skip(131) // a dead letter: only the position moves
	log = append(log, b.Records(window))
	b.Apply(window)

	restored := replay(t, 4, log...)
	if !restored.Equal(live) {
		t.Fatalf("restored state differs:\nrestored %+v\nlive     %+v", restored, live)
	}
	if restored.Next != 132 {
		t.Fatalf("next %d, want 132", restored.Next)
	}
	var n int64
	for _, a := range restored.Movies {
		n += a.Count
		if a.SourceOffset != 131 && a.SourceOffset != 130 && a.SourceOffset != 5 {
			t.Errorf("movie %d source offset %d: not the end of a batch that counted it", a.MovieID, a.SourceOffset)
		}
	}
	if n != 131 {
		t.Fatalf("counted %d ratings, want 131", n)
	}
	if !restored.Seen("r0") || !restored.Seen("r130") || restored.Seen("r131") {
		t.Fatalf("restored request ids wrong: r0 %v r130 %v r131 (a dead letter) %v", restored.Seen("r0"), restored.Seen("r130"), restored.Seen("r131"))
	}
}

func TestABatchIsInvisibleUntilApplied(t *testing.T) {
	p := changelog.NewPartition(0)
	b := count(p, 0, 10)
	if !b.Seen("r3") {
		t.Fatal("the batch does not see its own request ids")
	}
	if p.Seen("r3") || len(p.Movies) != 0 || p.Next != -1 {
		t.Fatal("an unapplied batch changed the partition (an aborted transaction would leak)")
	}
}

func TestBlocksLeavingTheWindowAreTombstoned(t *testing.T) {
	const window = 250
	live := changelog.NewPartition(1)
	var log [][]kafka.Message
	for from := int64(0); from < 1000; from += 50 {
		b := count(live, from, from+50)
		log = append(log, b.Records(window))
		b.Apply(window)
	}
	if live.Seen("r600") || !live.Seen("r700") || !live.Seen("r999") {
		t.Fatalf("window of %d ending at 1000: r600 seen %v (want false), r700 %v, r999 %v", window, live.Seen("r600"), live.Seen("r700"), live.Seen("r999"))
	}
	if got := live.SeenCount(); got != 300 { // blocks 700, 800, 900
		t.Fatalf("remembers %d ids, want 300 (three blocks of 100)", got)
	}
	// Compaction keeps the last record per key: replaying only those gives
	// the same state, so tombstones really remove the old blocks.
	last := map[string]kafka.Message{}
	var order []string
	for _, rs := range log {
		for _, r := range rs {
			if _, ok := last[string(r.Key)]; !ok {
				order = append(order, string(r.Key))
			}
			last[string(r.Key)] = r
		}
	}
	var compacted []kafka.Message
	for _, k := range order {
		compacted = append(compacted, last[k])
	}
	if restored := replay(t, 1, compacted); !restored.Equal(live) {
		t.Fatalf("state restored from the compacted log differs from the live one")
	}
}

func TestLoadRejectsRecordsOfAnotherTopic(t *testing.T) {
	p := changelog.NewPartition(0)
	for _, tc := range []struct{ key, value string }{
		{"42", `{"movie_id":42}`},
		{"movie/x", `{}`},
		{"movie/1", `not json`},
		{"seen/abc", `{}`},
	} {
		if err := p.Load([]byte(tc.key), []byte(tc.value)); err == nil {
			t.Errorf("Load(%q, %q) accepted", tc.key, tc.value)
		}
	}
}

// Restore reads the committed state only: a batch whose transaction aborted
// leaves no trace, the next committed one does.
func TestRestoreSeesCommittedTransactionsOnly(t *testing.T) {
	const topic, window = "ratings-stream-changelog", 1000
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: topic, Partitions: 3, Configs: map[string]string{"cleanup.policy": "compact"}}})
	k := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	ctx := servetest.Context(t, 30*time.Second)
	cl, err := kgo.NewClient(k.FranzOpts(kgo.TransactionalID("changelog-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	live := changelog.NewPartition(2)
	for i, commit := range []bool{true, false, true} {
		batch := count(live, int64(i*10), int64(i*10+10))
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, m := range batch.Records(window) {
			if err := cl.ProduceSync(ctx, kafkaio.RecordOf(m, topic, batch.ID())).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			batch.Apply(window)
		}
	}
	got, err := changelog.Restore(ctx, k, topic, []int{0, 2})
	if err != nil {
		t.Fatal(err)
	}
	if !got[2].Equal(live) {
		t.Fatalf("restored partition 2 differs from what was committed:\n%+v\n%+v", got[2], live)
	}
	if got[2].Seen("r15") {
		t.Fatal("a request id of the aborted transaction was restored")
	}
	if got[0].Next != -1 || len(got[0].Movies) != 0 {
		t.Fatalf("partition 0 was never written, restored %+v", got[0])
	}
}
