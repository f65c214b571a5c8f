package changelog_test

import (
	"fmt"
	"strings"
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

// written is one write's records: the changelog's and the request-id topic's.
type written struct{ state, ids []kafka.Message }

// write takes a batch's records.
func write(b *changelog.Batch) written {
	state, ids := b.Records()
	return written{state, ids}
}

// replay loads records into a fresh partition, as a restore does: the
// changelog first, then the request-id topic.
func replay(t *testing.T, id int, log ...written) *changelog.Partition {
	t.Helper()
	return replayKept(t, changelog.NewPartition(id, retention), log...)
}

func replayKept(t *testing.T, p *changelog.Partition, log ...written) *changelog.Partition {
	t.Helper()
	load := func(r kafka.Message, apply func(key, value []byte) error) {
		t.Helper()
		if r.Partition != p.ID {
			t.Fatalf("record %s is for partition %d, not %d", r.Key, r.Partition, p.ID)
		}
		if err := apply(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range log {
		for _, r := range w.state {
			load(r, p.Load)
		}
	}
	for _, w := range log {
		for _, r := range w.ids {
			load(r, p.LoadRequestIDs)
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
	var log []written
	for _, span := range [][2]int64{{0, 5}, {5, 130}, {130, 131}} {
		b := count(live, span[0], span[1])
		log = append(log, write(b))
		b.Apply()
	}
	b := live.Begin()
	b.Skip(131) // a dead letter: only the position moves
	log = append(log, write(b))
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

// Entries leave the record after the retention (in the log's clock). Each
// write carries only the entries added since the previous one, to the
// request-id topic, never to the compacted changelog; a restore from what
// time retention keeps gives the live state back.
func TestEachWriteAppendsOnlyTheNewEntries(t *testing.T) {
	live := changelog.NewPartition(1, 250*time.Second) // ratings one second apart: 250 kept
	var log []written
	for from := int64(0); from < 1000; from += 50 {
		b := count(live, from, from+50)
		w := write(b)
		log = append(log, w)
		b.Apply()
		for _, r := range w.state {
			if strings.HasPrefix(string(r.Key), "seen/") {
				t.Fatalf("the changelog got request-id record %s", r.Key)
			}
		}
		if len(w.ids) != 1 || string(w.ids[0].Key) != fmt.Sprint(from) || len(w.ids[0].Value) != 50*32 {
			t.Fatalf("batch from %d: request-id records %d (first key %q), want one keyed %d with its 50 entries", from, len(w.ids), w.ids[0].Key, from)
		}
	}
	if seen(live, rating(600)) || !seen(live, rating(800)) || !seen(live, rating(999)) {
		t.Fatalf("retention of 250 s at 999 s: r600 known %v (want false), r800 %v, r999 %v", seen(live, rating(600)), seen(live, rating(800)), seen(live, rating(999)))
	}
	if got := live.RequestIDs(); got < 250 || got > 300 {
		t.Fatalf("the record keeps %d ids, want about 250", got)
	}
	if got := len(live.Entries()); got < 250 || got > 300 {
		t.Fatalf("the state holds %d entries, want about 250: expired ones are dropped", got)
	}
	// Time retention drops old batches whole: what is left restores the
	// same state, and so does the whole log.
	for _, kept := range [][]written{log, log[12:]} {
		if restored := replayKept(t, changelog.NewPartition(1, 250*time.Second), kept...); !restored.Equal(live) {
			t.Fatalf("state restored from the last %d writes differs from the live one", len(kept))
		}
	}
}

// A write carrying many entries (changes held back by failed writes) is
// split into records of a bounded size.
func TestALargeWriteIsSplit(t *testing.T) {
	live := changelog.NewPartition(0, retention)
	b := count(live, 0, 2500)
	w := write(b)
	b.Apply()
	if len(w.ids) != 3 || string(w.ids[1].Key) != "1000" || len(w.ids[2].Value) != 500*32 {
		t.Fatalf("2500 entries in %d request-id records, want 3 (1000, 1000, 500)", len(w.ids))
	}
	if restored := replay(t, 0, w); !restored.Equal(live) || !seen(restored, rating(2499)) {
		t.Fatal("the split write does not restore the state")
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
	for _, tc := range []struct{ key, value string }{
		{"movie/1", string(make([]byte, 32))},
		{"7", "not 32 bytes"},
	} {
		if err := p.LoadRequestIDs([]byte(tc.key), []byte(tc.value)); err == nil {
			t.Errorf("LoadRequestIDs(%q, %q) accepted", tc.key, tc.value)
		}
	}
}

// Restore reads the committed state only: a batch whose transaction aborted
// leaves no trace, the next committed one does.
func TestRestoreSeesCommittedTransactionsOnly(t *testing.T) {
	topics := changelog.Topics{State: "ratings-stream-changelog", RequestIDs: "ratings-stream-request-ids"}
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: topics.State, Partitions: 3, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: topics.RequestIDs, Partitions: 3, Configs: map[string]string{"cleanup.policy": "delete"}}})
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
		state, ids := batch.Records()
		for _, m := range state {
			if err := cl.ProduceSync(ctx, kafkaio.RecordOf(m, topics.State, batch.ID())).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range ids {
			if err := cl.ProduceSync(ctx, kafkaio.RecordOf(m, topics.RequestIDs, batch.ID())).FirstErr(); err != nil {
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
	got, err := changelog.Restore(ctx, k, topics, []int{0, 2}, retention)
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
	var log []written
	for i, span := range [][2]int64{{0, 40}, {40, 90}, {90, 250}, {250, 260}} {
		b := count(live, span[0], span[1])
		b.Records()
		added, forget := b.RequestIDChanges()
		pending.Follow(b.Next(), b.Changed(), added, forget)
		b.Apply()
		if i == 1 {
			continue // this write failed: its changes go with the next one
		}
		log = append(log, write(pending))
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

// A changelog written by an earlier version keeps its request ids in
// seen/ blocks (of 20 or, older still, 100 offsets). They restore as they
// are, so an upgraded lab keeps its dedupe record; no seen/ block is ever
// written again, and each leaves the record, tombstoned, when its last
// entry does.
func TestAnEarlierVersionsSeenBlocksRestoreAndAreTombstonedOnceExpired(t *testing.T) {
	var old []requestids.Entry
	for off := int64(0); off < 100; off++ {
		r := rating(off)
		old = append(old, requestids.Entry{ID: requestids.Hash(r.RequestID), Fingerprint: requestids.Fingerprint(r.MovieID, r.Tenths, r.UserID),
			Time: r.Time.UnixMilli(), Offset: off})
	}
	older := written{state: []kafka.Message{
		{Partition: 2, Key: []byte("seen/0"), Value: requestids.AppendEntries(nil, old[:20])},
		{Partition: 2, Key: []byte("seen/20"), Value: requestids.AppendEntries(nil, old[20:])},
		{Partition: 2, Key: []byte("position"), Value: []byte(`{"next_offset":100}`)},
	}}
	live := replayKept(t, changelog.NewPartition(2, 250*time.Second), older)
	if !seen(live, rating(0)) || !seen(live, rating(99)) {
		t.Fatal("the request ids of the earlier version's blocks were not restored")
	}
	log := []written{older}
	tombstoned := map[string]int64{}
	check := func(at int64) {
		t.Helper()
		restored := changelog.NewPartition(2, 250*time.Second)
		var state []kafka.Message
		for _, w := range log {
			state = append(state, w.state...)
		}
		replayKept(t, restored, written{state: compact([][]kafka.Message{state})})
		for _, w := range log {
			replayKept(t, restored, written{ids: w.ids})
		}
		if !restored.Equal(live) {
			t.Fatalf("at offset %d: the state restored from the compacted log differs from the live one", at)
		}
		for _, off := range []int64{0, 19, 50, 99} {
			kept := off >= at-1-250 // one second per offset, 250 s kept before the newest
			if got := seen(restored, rating(off)); got != kept {
				t.Fatalf("at offset %d, restored: r%d known %v, want %v", at, off, got, kept)
			}
		}
	}
	for from := int64(100); from < 400; from += 30 {
		b := count(live, from, from+30)
		w := write(b)
		log = append(log, w)
		b.Apply()
		for _, r := range w.state {
			if k := string(r.Key); strings.HasPrefix(k, "seen/") {
				if len(r.Value) != 0 {
					t.Fatalf("a seen/ block was written: %s", k)
				}
				tombstoned[k] = from + 30
			}
		}
		check(from + 30)
	}
	// seen/0's last entry (offset 19) left at 270 (19+250+1), seen/20's
	// (offset 99) at 350: each was tombstoned by the batch that moved the
	// floor past it, not before.
	if tombstoned["seen/0"] != 280 || tombstoned["seen/20"] != 370 {
		t.Fatalf("blocks tombstoned at %v, want seen/0 at 280 and seen/20 at 370", tombstoned)
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
