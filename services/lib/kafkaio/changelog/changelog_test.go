package changelog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// retention is how long the tests keep request ids (in the records' clock).
const retention = time.Hour

// replay loads records into a fresh partition, as a restore does.
func replay(t *testing.T, id int, recs ...[]kafka.Message) *changelog.Partition {
	t.Helper()
	p := changelog.NewPartition(id, retention)
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

// rating is the rating at offset off in the tests: request id "r<offset>",
// movie off%3+1, rating 7.0, one second of the log's clock per offset.
func rating(off int64) changelog.Rating {
	at := time.Unix(1_700_000_000+off, 0).UTC()
	return changelog.Rating{Offset: off, Time: at, RequestID: fmt.Sprintf("r%d", off), MovieID: off%3 + 1, Tenths: 70, UserID: 1, EventTime: at}
}

// count adds the ratings at offsets [from, to) of partition p.
func count(p *changelog.Partition, from, to int64) *changelog.Batch {
	b := p.Begin()
	for off := from; off < to; off++ {
		b.Count(rating(off))
	}
	return b
}

// seen reports whether the partition's record knows a rating's request id
// (as a repeat, asked in a batch that is then discarded).
func seen(p *changelog.Partition, r changelog.Rating) bool {
	b := p.Begin()
	defer b.Discard()
	v, _ := b.Count(r)
	return v == requestids.Repeat
}

func TestRecordsRestoreExactlyTheAppliedState(t *testing.T) {
	live := changelog.NewPartition(4, retention)
	var log [][]kafka.Message
	for _, span := range [][2]int64{{0, 5}, {5, 130}, {130, 131}} {
		b := count(live, span[0], span[1])
		log = append(log, b.Records())
		b.Apply()
	}
	b := live.Begin()
	b.Skip(131) // a dead letter: only the position moves
	log = append(log, b.Records())
	b.Apply()

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
	if !seen(restored, rating(0)) || !seen(restored, rating(130)) || seen(restored, rating(131)) {
		t.Fatalf("restored request ids wrong: r0 %v r130 %v r131 (a dead letter) %v", seen(restored, rating(0)), seen(restored, rating(130)), seen(restored, rating(131)))
	}
	// The same request id for another rating is a conflict, also after the restore.
	other := rating(7)
	other.Tenths = 30
	if v, first := restored.Begin().Count(other); v != requestids.Conflict || first.Offset != 7 {
		t.Fatalf("r7 with another payload: %v (first at %d), want a conflict with offset 7", v, first.Offset)
	}
}

func TestADiscardedBatchLeavesNoTrace(t *testing.T) {
	p := changelog.NewPartition(0, retention)
	b := count(p, 0, 10)
	if v, _ := b.Count(rating(3)); v != requestids.Repeat {
		t.Fatal("the batch does not see its own request ids")
	}
	if len(p.Movies) != 0 || p.Next != -1 || len(p.Entries()) != 0 {
		t.Fatal("an unapplied batch changed the partition's state")
	}
	b.Discard()
	if seen(p, rating(3)) {
		t.Fatal("a discarded batch's request id is still known (an aborted transaction would leak)")
	}
}

// Entries leave the record after the retention (in the log's clock); whole
// blocks of them are tombstoned, and the compacted log restores the record.
func TestBlocksLeavingTheRecordAreTombstoned(t *testing.T) {
	live := changelog.NewPartition(1, 250*time.Second) // ratings one second apart: 250 kept
	var log [][]kafka.Message
	for from := int64(0); from < 1000; from += 50 {
		b := count(live, from, from+50)
		log = append(log, b.Records())
		b.Apply()
	}
	if seen(live, rating(600)) || !seen(live, rating(800)) || !seen(live, rating(999)) {
		t.Fatalf("retention of 250 s at 999 s: r600 known %v (want false), r800 %v, r999 %v", seen(live, rating(600)), seen(live, rating(800)), seen(live, rating(999)))
	}
	if got := live.RequestIDs(); got < 250 || got > 300 {
		t.Fatalf("the record keeps %d ids, want about 250", got)
	}
	var tombstones int
	for _, rs := range log {
		for _, r := range rs {
			if len(r.Value) == 0 {
				tombstones++
			}
		}
	}
	if tombstones < 6 {
		t.Fatalf("%d blocks tombstoned, want the ones wholly out of the record (at least 6)", tombstones)
	}
	// Compaction keeps the last record per key: replaying only those gives
	// the same state, so tombstones really remove the old blocks.
	restored := changelog.NewPartition(1, 250*time.Second)
	for _, r := range compact(log) {
		if err := restored.Load(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	if !restored.Equal(live) {
		t.Fatalf("state restored from the compacted log differs from the live one")
	}
}

func TestLoadRejectsRecordsOfAnotherTopic(t *testing.T) {
	p := changelog.NewPartition(0, retention)
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
	const topic = "ratings-stream-changelog"
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: topic, Partitions: 3, Configs: map[string]string{"cleanup.policy": "compact"}}})
	k := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	ctx := servetest.Context(t, 30*time.Second)
	cl, err := kgo.NewClient(k.FranzOpts(kgo.TransactionalID("changelog-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	live := changelog.NewPartition(2, retention)
	for i, commit := range []bool{true, false, true} {
		batch := count(live, int64(i*10), int64(i*10+10))
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, m := range batch.Records() {
			if err := cl.ProduceSync(ctx, kafkaio.RecordOf(m, topic, batch.ID())).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			batch.Apply()
		} else {
			batch.Discard()
		}
	}
	got, err := changelog.Restore(ctx, k, topic, []int{0, 2}, retention)
	if err != nil {
		t.Fatal(err)
	}
	if !got[2].Equal(live) {
		t.Fatalf("restored partition 2 differs from what was committed:\n%+v\n%+v", got[2], live)
	}
	if seen(got[2], rating(15)) {
		t.Fatal("a request id of the aborted transaction was restored")
	}
	if got[0].Next != -1 || len(got[0].Movies) != 0 {
		t.Fatalf("partition 0 was never written, restored %+v", got[0])
	}
}

// An effectively-once processor decides with its own record and follows
// its decisions into the changelog: the records restore the same state as
// counting them here, also when a write failed and the next batch's
// changes were followed onto the unwritten batch.
func TestFollowedChangesRestoreTheCountedState(t *testing.T) {
	live := changelog.NewPartition(1, retention)     // decides, as the processor's own record does
	follower := changelog.NewPartition(1, retention) // what the changelog holds
	pending := follower.Begin()
	var log [][]kafka.Message
	for i, span := range [][2]int64{{0, 40}, {40, 90}, {90, 250}, {250, 260}} {
		b := count(live, span[0], span[1])
		b.Records()
		added, forget := b.RequestIDChanges()
		pending.Follow(b.Next(), b.Changed(), added, forget)
		b.Apply()
		if i == 1 {
			continue // this write failed: its changes go with the next one
		}
		log = append(log, pending.Records())
		pending.Apply()
		pending = follower.Begin()
	}
	restored := replay(t, 1, log...)
	if !restored.Equal(live) {
		t.Fatalf("restored state differs:\nrestored %+v\nlive     %+v", restored, live)
	}
	if !seen(restored, rating(45)) || !seen(restored, rating(259)) || seen(restored, rating(260)) {
		t.Fatal("request ids of the followed batches did not come back")
	}
}

// A changelog written with another block size (an older lab's 100-offset
// blocks) restores as it is, and its blocks leave the record when their
// last entry does: not when a range of today's size lies below the floor.
func TestBlocksOfAnotherSizeStayUntilTheirLastEntryLeaves(t *testing.T) {
	var old []requestids.Entry
	for off := int64(0); off < 100; off++ {
		r := rating(off)
		old = append(old, requestids.Entry{ID: requestids.Hash(r.RequestID), Fingerprint: requestids.Fingerprint(r.MovieID, r.Tenths, r.UserID),
			Time: r.Time.UnixMilli(), Offset: off})
	}
	older := []kafka.Message{
		{Partition: 2, Key: []byte("seen/0"), Value: requestids.AppendEntries(nil, old)},
		{Partition: 2, Key: []byte("position"), Value: []byte(`{"next_offset":100}`)},
	}
	live := changelog.NewPartition(2, 250*time.Second)
	log := [][]kafka.Message{older}
	for _, r := range older {
		if err := live.Load(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	check := func(at int64) {
		t.Helper()
		restored := changelog.NewPartition(2, 250*time.Second)
		for _, r := range compact(log) {
			if err := restored.Load(r.Key, r.Value); err != nil {
				t.Fatal(err)
			}
		}
		if !restored.Equal(live) {
			t.Fatalf("at offset %d: the state restored from the compacted log differs from the live one", at)
		}
		for _, off := range []int64{0, 50, 99} {
			kept := off >= at-1-250 // one second per offset, 250 s kept before the newest
			if got := seen(restored, rating(off)); got != kept {
				t.Fatalf("at offset %d, restored: r%d known %v, want %v", at, off, got, kept)
			}
		}
	}
	for from := int64(100); from < 400; from += 30 {
		b := count(live, from, from+30)
		log = append(log, b.Records())
		b.Apply()
		check(from + 30)
	}
}

// compact keeps the last record of each key, in first-written order, as
// log compaction does.
func compact(log [][]kafka.Message) []kafka.Message {
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
	out := make([]kafka.Message, 0, len(order))
	for _, k := range order {
		out = append(out, last[k])
	}
	return out
}
