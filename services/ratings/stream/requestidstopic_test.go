package stream

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// readAll reads every committed record of a topic.
func (l *lab) readAll(topic string) []kafka.Message {
	l.t.Helper()
	var out []kafka.Message
	err := l.k.ReadCommitted(servetest.Context(l.t, 30*time.Second), topic, kafkaio.AllPartitions(model.RatingsPartitions),
		func(m kafka.Message) error { out = append(out, m); return nil })
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

// entriesIn decodes the request-id entries of a request-id topic's records.
func entriesIn(t *testing.T, msgs []kafka.Message) map[int][]requestids.Entry {
	t.Helper()
	out := map[int][]requestids.Entry{}
	for _, m := range msgs {
		var err error
		if out[m.Partition], err = requestids.DecodeEntries(out[m.Partition], m.Value); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The request ids counted go to the time-retained request-id topic, each
// once (a write appends only what was added since the previous one), and
// none to the compacted changelog. Another instance taking the partitions
// over restores the record from there: repeats of ids counted before the
// hand-over are dropped.
func TestTheRequestIDsGoToTheirOwnTopicOnceAndComeBackAfterATakeOver(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(20)
	g := newLedger()
	evs := l.ratings(g, 2000, 20, 51)

	a := l.start(t.TempDir())
	servetest.WaitFor(t, 30*time.Second, "a's state to match the ledger", func() (bool, string) { return stateMatches(g, a.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to hold the same state", func() (bool, string) { return l.changelogMatches(g) })
	a.stop(t)

	for _, m := range l.readAll(model.TopicRatingsChangelog) {
		if strings.HasPrefix(string(m.Key), "seen/") {
			t.Fatalf("the changelog holds request-id record %s (partition %d)", m.Key, m.Partition)
		}
	}
	entries := entriesIn(t, l.readAll(model.TopicRatingsRequestIDs))
	total := 0
	for part, es := range entries {
		total += len(es)
		for i := 1; i < len(es); i++ {
			if es[i].Offset <= es[i-1].Offset {
				t.Fatalf("partition %d: entry at offset %d written after the one at %d: an entry written twice or out of order", part, es[i].Offset, es[i-1].Offset)
			}
		}
	}
	if total != len(evs) {
		t.Fatalf("the request-id topic holds %d entries, want one per counted rating (%d)", total, len(evs))
	}

	var dups int64
	for i := 0; i < len(evs); i += 100 {
		l.produce(ratingRecord(evs[i]))
		dups++
	}
	b := l.start(t.TempDir()) // another instance: an empty database
	servetest.WaitFor(t, 30*time.Second, "b's state to match the ledger", func() (bool, string) { return stateMatches(g, b.p) })
	servetest.WaitFor(t, 30*time.Second, "b's restore to be reported", func() (bool, string) { return b.p.LastRestore() != nil, "" })
	if r := b.p.LastRestore(); r.From[0] != fromChangelog {
		t.Fatalf("b restored partition 0 from %q, want the changelog", r.From[0])
	}
	if d := b.p.duplicates.Load(); d != dups {
		t.Fatalf("repeats dropped after the hand-over = %d, want %d: the request-id record did not come back", d, dups)
	}
}

// A changelog written before the request-id topic existed keeps its
// request ids in seen/ blocks. An instance of this version restores them,
// so an upgraded lab keeps its dedupe record, and writes no seen/ block.
func TestAnEarlierVersionsSeenBlocksKeepTheirDedupeRecordAfterTheUpgrade(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(20)
	g := newLedger()
	evs := l.ratings(g, 1500, 20, 52)

	// The earlier version: its request ids end up in seen/ blocks of 20
	// offsets in the changelog, written here from what an instance put in
	// a request-id topic of its own; the lab's request-id topic stays empty.
	const earlier = "earlier-request-ids"
	if err := l.broker.CreateTopic(earlier, model.RatingsPartitions, map[string]string{"cleanup.policy": "delete"}); err != nil {
		t.Fatal(err)
	}
	a := l.start(t.TempDir(), func(c *Config) { c.RequestIDs = earlier })
	servetest.WaitFor(t, 30*time.Second, "a's state to match the ledger", func() (bool, string) { return stateMatches(g, a.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to hold the same state", func() (bool, string) { return l.changelogMatches(g) })
	a.stop(t)
	cl, err := kgo.NewClient(l.k.FranzOpts(kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var blocks []*kgo.Record
	for part, es := range entriesIn(t, l.readAll(earlier)) {
		byBlock := map[int64][]requestids.Entry{}
		for _, e := range es {
			byBlock[e.Offset-e.Offset%20] = append(byBlock[e.Offset-e.Offset%20], e)
		}
		for from, block := range byBlock {
			blocks = append(blocks, kafkaio.RecordOf(kafka.Message{Key: []byte("seen/" + strconv.FormatInt(from, 10)),
				Value: requestids.AppendEntries(nil, block)}, model.TopicRatingsChangelog, part))
		}
	}
	if err := cl.ProduceSync(servetest.Context(t, 30*time.Second), blocks...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends, err := l.k.OffsetsCommitted(servetest.Context(t, 10*time.Second), model.TopicRatingsChangelog, kafkaio.AllPartitions(model.RatingsPartitions))
	if err != nil {
		t.Fatal(err)
	}

	var dups int64
	for i := 0; i < len(evs); i += 100 {
		l.produce(ratingRecord(evs[i]))
		dups++
	}
	l.ratings(g, 300, 20, 53)
	b := l.start(t.TempDir()) // this version, an empty database, the lab's topics
	servetest.WaitFor(t, 30*time.Second, "b's state to match the ledger", func() (bool, string) { return stateMatches(g, b.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to match the ledger", func() (bool, string) { return l.changelogMatches(g) })
	if d := b.p.duplicates.Load(); d != dups {
		t.Fatalf("repeats dropped after the upgrade = %d, want %d: the seen/ blocks were not restored", d, dups)
	}
	b.stop(t)
	for _, m := range l.readAll(model.TopicRatingsChangelog) {
		if m.Offset >= ends[m.Partition].End && strings.HasPrefix(string(m.Key), "seen/") && len(m.Value) > 0 {
			t.Fatalf("this version wrote seen/ block %s (partition %d offset %d)", m.Key, m.Partition, m.Offset)
		}
	}
	if n := len(l.readAll(model.TopicRatingsRequestIDs)); n == 0 {
		t.Fatal("the 300 new ratings' request ids were not written to the request-id topic")
	}
}

// A request-id topic that keeps its records for less than the request ids
// are kept would restore a record missing some of them: the processor
// refuses to start, naming both values.
func TestARequestIDTopicKeptShorterThanTheRetentionIsRefused(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	const short = "short-request-ids"
	if err := l.broker.CreateTopic(short, model.RatingsPartitions, map[string]string{"cleanup.policy": "delete", "retention.ms": "600000"}); err != nil {
		t.Fatal(err)
	}
	for _, delivery := range []Delivery{EffectivelyOnce, Transactional} {
		r := l.start(t.TempDir(), func(c *Config) { c.RequestIDs, c.Delivery = short, delivery })
		var err error
		select {
		case err = <-r.done:
			r.done = nil
			r.p.Close()
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the processor started on a request-id topic kept 10 minutes with request ids kept 15", delivery)
		}
		if err == nil || !strings.Contains(err.Error(), "retention.ms=600000 (10m0s)") || !strings.Contains(err.Error(), "--request-id-retention 15m0s") {
			t.Fatalf("%s: start refused with %v, want an error naming retention.ms=600000 (10m0s) and --request-id-retention 15m0s", delivery, err)
		}
	}
}

func TestRetentionCoversTheRequestIDs(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		ids  time.Duration
		want bool
	}{
		{-1, time.Hour, true}, // kept forever
		{1_800_000, 15 * time.Minute, true},
		{900_000, 15 * time.Minute, true},
		{899_999, 15 * time.Minute, false},
	} {
		if err := retentionCovers("t", tc.ms, tc.ids); (err == nil) != tc.want {
			t.Errorf("retention.ms=%d with request ids kept %s: %v, want covered %v", tc.ms, tc.ids, err, tc.want)
		}
	}
}

// A take-over of a log whose early ratings are older than the retention
// (stamped two hours ago, as the e2e rebalance test preloads them) reads
// the request-id topic from its retention floor, not from its start, and
// counts exactly what a restore from the start counts: repeats of ids
// within the retention (10 minutes old and new) are dropped, a repeat of
// an expired id is counted.
func TestATakeOverReadsTheRequestIDsFromTheRetentionFloor(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(20)
	g := newLedger()
	old := l.ratingsAt(g, 1500, 20, 61, time.Now().Add(-2*time.Hour))
	small := func(c *Config) { c.MaxBatch, c.ChangelogInterval = 4, 0 } // many writes: a long request-id topic
	a := l.start(t.TempDir(), small)
	servetest.WaitFor(t, 60*time.Second, "a's state to match the ledger", func() (bool, string) { return stateMatches(g, a.p) })
	recent := l.ratingsAt(g, 100, 20, 62, time.Now().Add(-10*time.Minute)) // within the retention of the newest
	recent = append(recent, l.ratings(g, 100, 20, 63)...)
	servetest.WaitFor(t, 60*time.Second, "a's state to match the ledger", func() (bool, string) { return stateMatches(g, a.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to hold the same state", func() (bool, string) { return l.changelogMatches(g) })
	a.stop(t)

	var dups int64
	for i := 0; i < len(recent); i += 10 {
		l.produce(ratingRecord(recent[i]))
		dups++
	}
	for i := 0; i < len(old); i += 100 {
		l.produce(ratingRecord(old[i])) // expired: counted again, stamped now
		g.add(old[i])
	}
	idsRecords, oldRecords := 0, 0
	for _, m := range l.readAll(model.TopicRatingsRequestIDs) {
		idsRecords++
		es, err := requestids.DecodeEntries(nil, m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if time.UnixMilli(es[len(es)-1].Time).Before(time.Now().Add(-time.Hour)) {
			oldRecords++
		}
	}
	stateRecords := len(l.readAll(model.TopicRatingsChangelog))

	b := l.start(t.TempDir()) // another instance: an empty database
	servetest.WaitFor(t, 60*time.Second, "b's state to match the ledger", func() (bool, string) { return stateMatches(g, b.p) })
	servetest.WaitFor(t, 30*time.Second, "b's restore to be reported", func() (bool, string) { return b.p.LastRestore() != nil, "" })
	r := b.p.LastRestore()
	if r.From[0] != fromChangelog {
		t.Fatalf("b restored partition 0 from %q, want the changelog", r.From[0])
	}
	if d := b.p.duplicates.Load(); d != dups {
		t.Fatalf("repeats dropped after the hand-over = %d, want %d", d, dups)
	}
	if oldRecords < idsRecords/2 {
		t.Fatalf("only %d of %d request-id records are old: the test does not show a floor", oldRecords, idsRecords)
	}
	if read := r.ChangelogRecords - stateRecords; read > idsRecords-oldRecords/2 {
		t.Fatalf("the restore read %d request-id records of %d (%d of them older than the retention): not from the floor", read, idsRecords, oldRecords)
	}
}
