package changelog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// The retention floor (floor.go): a restore that starts the request-id
// topic at the floor holds exactly what a restore from its start holds. In
// these tests the request ids are kept for an hour of the log's clock and
// the search's margin is five minutes; times are in minutes.
const (
	floorRetention = time.Hour
	floorMargin    = 5 * time.Minute
)

// search is the search the tests run: every partition is searched, however
// short.
var search = changelog.FloorSearch{Margin: floorMargin, MinOffsets: 0, MaxFetches: 64, Timeout: 10 * time.Second}

// rec is one request-id record to write: the log times of its entries (in
// minutes), in one transaction of its own that commits unless abort.
type rec struct {
	minutes []int64
	abort   bool
}

// at is a record of n entries, all at minute m.
func at(m int64, n int) rec {
	r := rec{}
	for range n {
		r.minutes = append(r.minutes, m)
	}
	return r
}

// floorLab is a broker with a changelog and a request-id topic of one
// partition, and a transactional writer like a changelog partition's.
type floorLab struct {
	topics changelog.Topics
	b      *kafkatest.Broker
	k      *kafkaio.Cluster
	cl     *kgo.Client
	ctx    context.Context
	next   int64 // the next ratings offset an entry is given
	// positioned: the changelog holds the position past every entry.
	positioned bool
}

func newFloorLab(t *testing.T) *floorLab {
	t.Helper()
	topics := changelog.Topics{State: "ratings-stream-changelog", RequestIDs: "ratings-stream-request-ids"}
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: topics.State, Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: topics.RequestIDs, Partitions: 1, Configs: map[string]string{"cleanup.policy": "delete"}}})
	k := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	cl, err := kgo.NewClient(k.FranzOpts(kgo.TransactionalID("floor-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &floorLab{topics: topics, b: b, k: k, cl: cl, ctx: servetest.Context(t, 60*time.Second)}
}

// write appends the records, each in its own transaction, the entries
// numbered on from the last ratings offset.
func (l *floorLab) write(t *testing.T, recs ...rec) {
	t.Helper()
	for _, r := range recs {
		var entries []requestids.Entry
		for _, m := range r.minutes {
			id := fmt.Sprintf("r%d", l.next)
			entries = append(entries, requestids.Entry{ID: requestids.Hash(id), Fingerprint: 1, Time: m * time.Minute.Milliseconds(), Offset: l.next})
			l.next++
		}
		l.txn(t, !r.abort, &kgo.Record{Topic: l.topics.RequestIDs, Key: strconv.AppendInt(nil, entries[0].Offset, 10),
			Value: requestids.AppendEntries(nil, entries)})
	}
}

// minutes writes one record of n entries for each minute in [from, to).
func (l *floorLab) minutes(t *testing.T, from, to int64, n int) {
	t.Helper()
	for m := from; m < to; m++ {
		l.write(t, at(m, n))
	}
}

func (l *floorLab) txn(t *testing.T, commit bool, r *kgo.Record) {
	t.Helper()
	if err := l.cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := l.cl.ProduceSync(l.ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := l.cl.EndTransaction(l.ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

// restore restores partition 0 with the search s and from the start, checks
// that both hold the same state, and returns the searched one.
func (l *floorLab) restore(t *testing.T, s changelog.FloorSearch) changelog.Restored {
	t.Helper()
	// The changelog's position past every entry (Entries holds only
	// entries below it): one record, so Read less one is the request-id
	// records read.
	if l.next > 0 && !l.positioned {
		pos, _ := json.Marshal(map[string]int64{"next_offset": l.next})
		l.txn(t, true, &kgo.Record{Topic: l.topics.State, Key: []byte("position"), Value: pos})
		l.positioned = true
	}
	got, err := changelog.RestoreWarmWith(l.ctx, l.k, l.topics, []int{0}, nil, floorRetention, s)
	if err != nil {
		t.Fatal(err)
	}
	full, err := changelog.RestoreWarmWith(l.ctx, l.k, l.topics, []int{0}, nil, floorRetention, changelog.FloorSearch{Off: true})
	if err != nil {
		t.Fatal(err)
	}
	if f := full.Floors[0]; f.From != f.First {
		t.Fatalf("a restore without the search read from offset %d, the partition starts at %d", f.From, f.First)
	}
	if !got.State[0].Equal(full.State[0]) {
		t.Fatalf("a restore from the floor (offset %d, %+v) holds other request ids than one from the start:\n%v\n%v",
			got.Floors[0].From, got.Floors[0], minutes(got.State[0].Entries()), minutes(full.State[0].Entries()))
	}
	if got.End[0] != full.End[0] || got.RequestIDsEnd[0] != full.RequestIDsEnd[0] {
		t.Fatalf("read to %d/%d, from the start to %d/%d", got.End[0], got.RequestIDsEnd[0], full.End[0], full.RequestIDsEnd[0])
	}
	return got
}

func minutes(es []requestids.Entry) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Time/time.Minute.Milliseconds())
	}
	return out
}

// offsetOf is the request-id topic's offset of the i-th record written (each
// in a transaction of its own: a record and its marker, two offsets).
func offsetOf(i int) int64 { return int64(2 * i) }

// A long history in time order: the restore skips the records whose every
// entry is older than the floor less the margin, and reads the rest.
func TestRestoreStartsAtTheRetentionFloor(t *testing.T) {
	t.Parallel()
	l := newFloorLab(t)
	l.minutes(t, 0, 200, 3) // the floor is minute 139
	got := l.restore(t, search)
	f := got.Floors[0]
	// Records up to minute 133 lie below floor − margin (134); minute 139 is the floor.
	if f.From <= offsetOf(120) || f.From > offsetOf(139) || f.Fallback != "" {
		t.Fatalf("read from offset %d (%+v), want past the record of minute 120 (offset %d) and at most that of minute 139 (offset %d)",
			f.From, f, offsetOf(120), offsetOf(139))
	}
	if f.Fetches > 12 {
		t.Errorf("the search took %d fetches over %d offsets", f.Fetches, offsetOf(200))
	}
	if got.Read[0] > 1+80 {
		t.Errorf("read %d records, want the changelog's and at most the request-id records from minute 120 on", got.Read[0])
	}
}

// Times may go back by up to the margin from one record to a later one.
// Here the record of minute 140 (the floor: needed) is followed by records
// of minute 135, older than the floor: a search that trusted them without
// the margin would skip the needed record (the state would differ).
func TestRecordsOutOfTimeOrderWithinTheMarginAreNotSkippedPast(t *testing.T) {
	t.Parallel()
	l := newFloorLab(t)
	l.minutes(t, 0, 40, 2)
	l.write(t, at(140, 2))
	for range 60 {
		l.write(t, at(135, 2))
	}
	l.write(t, at(200, 1)) // the newest: the floor is 140
	got := l.restore(t, search)
	f := got.Floors[0]
	if f.From > offsetOf(40) || f.Fallback != "" {
		t.Fatalf("read from offset %d (%+v): past the needed record at offset %d", f.From, f, offsetOf(40))
	}
	if f.From < offsetOf(39) {
		t.Errorf("read from offset %d: the 39 records of minutes 0..38 could all be skipped", f.From)
	}
	if !strings.Contains(fmt.Sprint(minutes(got.State[0].Entries())), "140 140 135") {
		t.Fatalf("the entries of minute 140 were not restored: %v", minutes(got.State[0].Entries()))
	}
}

// Every record within the retention: the floor lies before the first
// record and the whole partition is read. The first record, newer than
// the floor by more than the margin, ends the search at once.
func TestAFloorBeforeTheFirstRecordReadsEverything(t *testing.T) {
	t.Parallel()
	l := newFloorLab(t)
	l.minutes(t, 100, 130, 2)
	got := l.restore(t, search)
	if f := got.Floors[0]; f.From != f.First || f.Fallback != "" || f.Fetches != 2 {
		t.Fatalf("read from offset %d (%+v), want the first, after reading the last record and the first", f.From, f)
	}
	if n := len(got.State[0].Entries()); n != 60 {
		t.Fatalf("restored %d entries, want all 60", n)
	}
}

// Every record but the last lies below the floor (the newest is far ahead
// of them): only the last is read.
func TestAFloorAfterEveryRecordButTheLastReadsTheLast(t *testing.T) {
	t.Parallel()
	l := newFloorLab(t)
	l.minutes(t, 0, 50, 2)
	l.write(t, at(1000, 2))
	got := l.restore(t, search)
	if f := got.Floors[0]; f.From <= offsetOf(49) || f.From > offsetOf(50) || f.Fallback != "" {
		t.Fatalf("read from offset %d (%+v), want the last record's (%d)", f.From, f, offsetOf(50))
	}
	if got.Read[0] != 2 { // the position and the last record
		t.Fatalf("read %d records, want 2", got.Read[0])
	}
}

// A request-id partition never written, and one that holds only an
// aborted transaction: nothing to search.
func TestAnEmptyPartitionIsNotSearched(t *testing.T) {
	t.Parallel()
	l := newFloorLab(t)
	got := l.restore(t, search)
	if f := got.Floors[0]; f.From != 0 || f.Fetches != 0 || f.Fallback != "" {
		t.Fatalf("an empty partition: %+v", f)
	}
	l.write(t, rec{minutes: []int64{7}, abort: true})
	got = l.restore(t, search)
	if f := got.Floors[0]; f.From != 0 || f.Fetches > 1 || f.Fallback != "" || got.State[0].RequestIDs() != 0 {
		t.Fatalf("a partition of an aborted transaction: %+v, %d request ids", f, got.State[0].RequestIDs())
	}
}

// Retention deleted the partition's first records (its log start is past
// 0): the search runs over what is left.
func TestAPartitionWhoseStartWasDeletedIsSearchedFromItsStart(t *testing.T) {
	t.Parallel()
	l := newFloorLab(t)
	l.minutes(t, 0, 200, 2)
	deleteBefore(t, l, offsetOf(100))
	got := l.restore(t, search)
	f := got.Floors[0]
	if f.First != offsetOf(100) || f.From <= offsetOf(120) || f.From > offsetOf(139) || f.Fallback != "" {
		t.Fatalf("read from offset %d (%+v), want a start at %d and a floor in (%d, %d]", f.From, f, offsetOf(100), offsetOf(120), offsetOf(139))
	}
}

// deleteBefore deletes the records of the request-id topic below offset
// (DeleteRecords, what retention does to whole segments).
func deleteBefore(t *testing.T, l *floorLab, offset int64) {
	t.Helper()
	cl, err := kgo.NewClient(l.k.FranzOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 5000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = l.topics.RequestIDs
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(l.ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	if lo := resp.Topics[0].Partitions[0].LowWatermark; lo != offset {
		t.Fatalf("the log starts at %d after deleting below %d", lo, offset)
	}
}

// Aborted transactions sit among the records, at the end too (the last
// committed record lies further back than the first window): probes that
// land on them move on to the next committed record, and no aborted entry
// is restored.
func TestAbortedTransactionsAndMarkersInTheRangeAreReadCommitted(t *testing.T) {
	t.Parallel()
	l := newFloorLab(t)
	for m := range int64(200) {
		r := at(m, 2)
		r.abort = m%3 == 1
		l.write(t, r)
	}
	l.write(t, rec{minutes: []int64{150}, abort: true}) // within retention, never committed
	for range 30 {
		l.write(t, rec{minutes: []int64{500}, abort: true})
	}
	got := l.restore(t, search)
	f := got.Floors[0]
	if f.From <= offsetOf(120) || f.From > offsetOf(139) || f.Fallback != "" {
		t.Fatalf("read from offset %d (%+v), want a floor in (%d, %d]", f.From, f, offsetOf(120), offsetOf(139))
	}
	for _, e := range got.State[0].Entries() {
		if e.Offset >= 400 { // entries 400.. were all aborted (two per record of minutes 0..199)
			t.Fatalf("an aborted entry was restored: %+v", e)
		}
	}
}

// Time going back by more than the margin is a doubt: among the records the
// search probed (it reads from the start at once), or in what the restore
// read from the floor (it reads the partition again from the start).
func TestTimeGoingBackBeyondTheMarginReadsFromTheStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write func(l *floorLab, t *testing.T)
		why   string
	}{
		{"probed", func(l *floorLab, t *testing.T) {
			for range 100 {
				l.write(t, at(300, 2))
			}
			l.write(t, at(200, 1)) // 100 minutes back from every record before it
		}, "time goes back by more than the margin between the records"},
		{"in the last record", func(l *floorLab, t *testing.T) {
			l.minutes(t, 0, 200, 2)
			l.write(t, rec{minutes: []int64{199, 180}}) // 19 minutes back
		}, "time goes back by more than the margin within the record"},
		{"past the floor", func(l *floorLab, t *testing.T) {
			l.minutes(t, 0, 200, 2)
			l.write(t, at(185, 1)) // 14 minutes back, past the floor, in no record the search read
			for range 10 {
				l.write(t, at(199, 1))
			}
		}, "time went back by 14m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newFloorLab(t)
			tc.write(l, t)
			f := l.restore(t, search).Floors[0]
			if f.From != f.First || !strings.Contains(f.Fallback, tc.why) {
				t.Fatalf("read from offset %d (%+v), want the start and why: %s", f.From, f, tc.why)
			}
		})
	}
}

// The search is bounded: past its fetches or its time the partition is
// read from the start, saying why.
func TestTheSearchIsBoundedAndFallsBackToTheStart(t *testing.T) {
	t.Parallel()
	l := newFloorLab(t)
	l.minutes(t, 0, 200, 1)
	few := search
	few.MaxFetches = 3
	f := l.restore(t, few).Floors[0]
	if f.From != f.First || f.Fetches != 3 || !strings.Contains(f.Fallback, "fetches") {
		t.Fatalf("with 3 fetches: %+v", f)
	}
	brief := search
	brief.Timeout = time.Nanosecond
	f = l.restore(t, brief).Floors[0]
	if f.From != f.First || !strings.Contains(f.Fallback, "deadline") {
		t.Fatalf("with no time: %+v", f)
	}
	small := search
	small.MinOffsets = offsetOf(200)
	if f = l.restore(t, small).Floors[0]; f.From != f.First || f.Fetches != 0 || f.Fallback != "" {
		t.Fatalf("a partition below MinOffsets: %+v", f)
	}
}
