// Package changelog keeps ratings-stream's state in Kafka, the way Kafka
// Streams backs a state store with a changelog topic. Two topics hold it,
// both co-partitioned with `ratings`: partition p holds the state built
// from ratings partition p, so whoever owns ratings partition p restores
// its state by reading partition p of each, and a processor's local state
// is only a cache of them.
//
// The changelog (model.TopicRatingsChangelog) is compacted: its records are
// keyed so that compaction keeps exactly the current state (formats:
// docs/events.md):
//
//	movie/<movie id>  the movie's count and sum, and the source offset they include
//	position          the next ratings offset: every rating below it is in the state
//	seen/<offset>     written by earlier versions only: request-id entries counted at
//	                  ratings offsets from offset on; read, and tombstoned once they
//	                  all left the record
//
// The request-id record (services/lib/requestids) goes to its own topic
// (model.TopicRatingsRequestIDs), append-only and time-retained
// (cleanup.policy=delete): every entry is live until it expires, so
// compaction would only rewrite it again and again, inside the embedded
// broker's request loop (docs/benchmarks.md). Each write carries the
// entries added since the previous one, keyed by the first offset they
// cover; retention drops whole old batches. A write of a partition puts
// its records in both topics in one Kafka transaction.
//
// A Partition is the state of one partition; a Batch collects one batch's
// changes against it without touching it (the transaction that writes them
// may abort), turns them into records, and is applied once they are
// committed. Records are written to the partition they belong to (Batch.ID);
// kafka-go writers need a balancer that keeps Message.Partition.
//
// The package is client-neutral (kafka-go message types, as everywhere in
// the lab); Restore reads with kafkaio's committed reader, because
// transactional writers leave aborted records and markers in the topics.
package changelog

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/model"
)

// Topics are the two topics of a state: the compacted changelog and the
// time-retained request-id topic.
type Topics struct {
	State      string
	RequestIDs string
}

// LabTopics are the lab group's topics.
var LabTopics = Topics{State: model.TopicRatingsChangelog, RequestIDs: model.TopicRatingsRequestIDs}

// entriesPerRecord bounds the entries of one request-id record (32 KB):
// a write that carries more (changes held back by failed writes) is split,
// so that no record nears the broker's message size limit.
const entriesPerRecord = 1000

// Key prefixes and the position key.
const (
	prefixMovie = "movie/"
	prefixSeen  = "seen/"
	keyPosition = "position"
)

// Aggregate is one movie's count and sum (the value of a movie/ record).
type Aggregate struct {
	MovieID   int64 `json:"movie_id"`
	Count     int64 `json:"count"`
	SumTenths int64 `json:"sum_tenths"`
	// SourceOffset: every rating of the movie on its partition below this
	// offset is included.
	SourceOffset int64 `json:"source_offset"`
	// LastEvent is the event time of the newest rating included.
	LastEvent time.Time `json:"last_event_time,omitzero"`
}

// position is the value of the position record.
type position struct {
	Next int64 `json:"next_offset"`
}

// Partition is the state of one partition: counts, position, and the
// request-id record (services/lib/requestids) the counts were made with.
type Partition struct {
	ID int
	// Next is the next ratings offset to count; -1 when nothing was counted.
	Next   int64
	Movies map[int64]Aggregate

	retention time.Duration
	// seen are the committed seen/ blocks of an earlier version's
	// changelog, by their first offset; logged the committed entries of
	// the request-id topic in offset order, without those expired before
	// its newest (newest: their newest Time).
	seen   map[int64][]requestids.Entry
	logged []requestids.Entry
	newest int64
	// wentBack is the most an entry's time went back below the newest
	// before it, over the entries logged (the retention floor's check).
	wentBack int64
	record   *requestids.Partition // built from both; ahead of them during a batch
}

// NewPartition is the empty state of partition id, whose request ids are
// kept for retention (requestids.DefaultRetention when 0).
func NewPartition(id int, retention time.Duration) *Partition {
	if retention <= 0 {
		retention = requestids.DefaultRetention
	}
	return &Partition{ID: id, Next: -1, Movies: map[int64]Aggregate{}, retention: retention, seen: map[int64][]requestids.Entry{}}
}

// ids is the partition's request-id record, built from the committed
// entries the first time it is needed (after a restore, after an abort).
func (p *Partition) ids() *requestids.Partition {
	if p.record == nil {
		p.record = requestids.NewPartition(p.retention, p.Entries())
		p.record.Changes() // what is stored is not news
	}
	return p.record
}

// RequestIDs is how many request ids the record keeps.
func (p *Partition) RequestIDs() int { return p.ids().Len() }

// Entries are the committed request-id entries below the position, in
// offset order: the seen/ blocks of an earlier version (all below the
// first logged entry), then the logged ones. An entry at or past the
// position is not part of the state yet: a restore may read the request-id
// topic a transaction further than the changelog (a standby copy, always).
func (p *Partition) Entries() []requestids.Entry {
	var all []requestids.Entry
	for _, from := range slices.Sorted(maps.Keys(p.seen)) {
		all = append(all, p.seen[from]...)
	}
	all = append(all, p.logged...)
	return slices.DeleteFunc(all, func(e requestids.Entry) bool { return e.Offset >= p.Next })
}

// log appends committed entries of the request-id topic, and drops those
// that expired before the newest: the same entries are kept however the
// state got them (applied batches, a restore, a standby copy).
func (p *Partition) log(entries []requestids.Entry) {
	p.record = nil // rebuilt when next needed
	for _, e := range entries {
		p.wentBack = max(p.wentBack, p.newest-e.Time)
		p.newest = max(p.newest, e.Time)
	}
	p.logged = append(p.logged, entries...)
	floor := p.newest - p.retention.Milliseconds()
	if i := slices.IndexFunc(p.logged, func(e requestids.Entry) bool { return e.Time >= floor }); i > 0 {
		p.logged = p.logged[i:]
	} else if i < 0 {
		p.logged = p.logged[:0]
	}
}

// TimeWentBack is the most an entry's time went back below the newest
// before it, over the request-id entries the partition loaded or applied:
// more than the floor search's margin puts a floor it started from in
// doubt.
func (p *Partition) TimeWentBack() time.Duration {
	return time.Duration(p.wentBack) * time.Millisecond
}

// forgetLogged drops every entry of the request-id topic the partition
// loaded, to read the topic again from its start.
func (p *Partition) forgetLogged() {
	p.logged, p.newest, p.wentBack, p.record = nil, 0, 0, nil
}

// Load applies one changelog record of this partition (restore). A nil or
// empty value is a tombstone.
func (p *Partition) Load(key, value []byte) error {
	k := string(key)
	p.record = nil // rebuilt from the entries when next needed
	switch {
	case k == keyPosition:
		if len(value) == 0 {
			p.Next = -1
			return nil
		}
		var pos position
		if err := json.Unmarshal(value, &pos); err != nil {
			return fmt.Errorf("changelog record %q: %w", k, err)
		}
		p.Next = pos.Next
	case strings.HasPrefix(k, prefixMovie) && len(k) > len(prefixMovie):
		id, err := strconv.ParseInt(k[len(prefixMovie):], 10, 64)
		if err != nil {
			return fmt.Errorf("changelog record %q: bad movie id", k)
		}
		if len(value) == 0 {
			delete(p.Movies, id)
			return nil
		}
		var a Aggregate
		if err := json.Unmarshal(value, &a); err != nil {
			return fmt.Errorf("changelog record %q: %w", k, err)
		}
		p.Movies[id] = a
	case strings.HasPrefix(k, prefixSeen) && len(k) > len(prefixSeen):
		from, err := strconv.ParseInt(k[len(prefixSeen):], 10, 64)
		if err != nil {
			return fmt.Errorf("changelog record %q: bad block offset", k)
		}
		if len(value) == 0 {
			delete(p.seen, from)
			return nil
		}
		entries, err := requestids.DecodeEntries(nil, value)
		if err != nil {
			return fmt.Errorf("changelog record %q: %w", k, err)
		}
		p.seen[from] = entries
	default:
		return fmt.Errorf("changelog record %q: not a ratings-stream changelog key (movie/, position, seen/)", k)
	}
	return nil
}

// LoadRequestIDs applies one record of the request-id topic of this
// partition (restore): the entries counted from the offset its key names.
func (p *Partition) LoadRequestIDs(key, value []byte) error {
	if _, err := strconv.ParseInt(string(key), 10, 64); err != nil {
		return fmt.Errorf("request-id record %q: the key is not a ratings offset", key)
	}
	entries, err := requestids.DecodeEntries(nil, value)
	if err != nil {
		return fmt.Errorf("request-id record %q: %w", key, err)
	}
	p.log(entries)
	return nil
}

// Batch is one batch's changes to a Partition, not applied yet: the
// counts, position and request-id entries it changes. Only the request-id
// record runs ahead (it decides in offset order); Discard sets it back.
type Batch struct {
	p      *Partition
	next   int64
	movies map[int64]Aggregate
	added  []requestids.Entry
	forget int64 // entries below it left the record (-1: nothing new)
	closed bool  // Records ran: the record's changes are taken
}

// Begin starts a batch on p.
func (p *Partition) Begin() *Batch {
	return &Batch{p: p, next: p.Next, movies: map[int64]Aggregate{}, forget: -1}
}

// ID is the partition the batch belongs to.
func (b *Batch) ID() int { return b.p.ID }

// Next is the next offset to count after the batch.
func (b *Batch) Next() int64 { return b.next }

// Skip records that the rating at offset was handled without counting it
// (a dead letter, a repeat): the position moves past it.
func (b *Batch) Skip(offset int64) { b.next = max(b.next, offset+1) }

// Rating is one valid rating, as the record and the counts need it.
type Rating struct {
	Offset    int64
	Time      time.Time // the record's timestamp: the record's clock
	RequestID string
	MovieID   int64
	Tenths    int64
	UserID    int64
	EventTime time.Time
}

// Count decides about a rating with the request-id record (in offset
// order) and counts it when it is new. A Repeat or Conflict is not counted;
// first says where its request id was counted.
func (b *Batch) Count(r Rating) (verdict requestids.Verdict, first requestids.Entry) {
	b.Skip(r.Offset)
	verdict, first = b.p.ids().Count(requestids.Hash(r.RequestID), requestids.Fingerprint(r.MovieID, r.Tenths, r.UserID),
		r.Offset, r.Time.UnixMilli())
	if verdict != requestids.New {
		return verdict, first
	}
	a, ok := b.movies[r.MovieID]
	if !ok {
		a, ok = b.p.Movies[r.MovieID]
		if !ok {
			a = Aggregate{MovieID: r.MovieID}
		}
	}
	a.Count++
	a.SumTenths += r.Tenths
	if r.EventTime.After(a.LastEvent) {
		a.LastEvent = r.EventTime
	}
	b.movies[r.MovieID] = a
	return verdict, first
}

// Follow adds changes decided and committed elsewhere to the batch: the
// effectively-once processor decides with its own request-id record and
// commits to its own database, then writes the changelog after it. changed
// are the aggregates' new values, added the request-id entries counted,
// forgetBelow the offset below which entries left the record (-1: none),
// next the partition's next offset. A batch whose write failed keeps what it
// holds: Follow the next changes onto it and write it again. Do not mix
// Follow and Count on one batch.
func (b *Batch) Follow(next int64, changed []Aggregate, added []requestids.Entry, forgetBelow int64) {
	b.closed = true // the record is the caller's: Records must not ask the partition's
	b.next = max(b.next, next)
	for _, a := range changed {
		b.movies[a.MovieID] = a
	}
	b.added = append(b.added, added...)
	b.forget = max(b.forget, forgetBelow)
}

// Changed lists the aggregates the batch changed, by movie id, with their
// source offset set to the batch's end.
func (b *Batch) Changed() []Aggregate {
	out := make([]Aggregate, 0, len(b.movies))
	for _, id := range slices.Sorted(maps.Keys(b.movies)) {
		a := b.movies[id]
		a.SourceOffset = b.next
		out = append(out, a)
	}
	return out
}

// expired lists the seen/ blocks of an earlier version whose every entry
// lies below the record's floor once the batch is applied.
func (b *Batch) expired() []int64 {
	if b.forget < 0 {
		return nil
	}
	var out []int64
	for from, entries := range b.p.seen {
		if len(entries) == 0 || entries[len(entries)-1].Offset < b.forget {
			out = append(out, from)
		}
	}
	slices.Sort(out)
	return out
}

// Records are the batch's records: for the changelog (changed movies,
// tombstones of seen/ blocks that left the record, the position) and for
// the request-id topic (the entries it added, in records of at most
// entriesPerRecord, each keyed by its first offset). Write both to
// partition ID() in one transaction. Call it once per batch.
func (b *Batch) Records() (state, requestIDs []kafka.Message) {
	if !b.closed {
		b.added, b.forget = b.p.ids().Changes()
		b.closed = true
	}
	expired := b.expired()
	if b.next == b.p.Next && len(b.movies) == 0 && len(b.added) == 0 && len(expired) == 0 {
		return nil, nil
	}
	add := func(key string, value []byte) {
		state = append(state, kafka.Message{Partition: b.p.ID, Key: []byte(key), Value: value})
	}
	for _, a := range b.Changed() {
		v, _ := json.Marshal(a) // a plain struct: cannot fail
		add(prefixMovie+strconv.FormatInt(a.MovieID, 10), v)
	}
	for _, from := range expired {
		add(prefixSeen+strconv.FormatInt(from, 10), nil)
	}
	v, _ := json.Marshal(position{Next: b.next})
	add(keyPosition, v)
	for chunk := range slices.Chunk(b.added, entriesPerRecord) {
		requestIDs = append(requestIDs, kafka.Message{Partition: b.p.ID, Key: strconv.AppendInt(nil, chunk[0].Offset, 10),
			Value: requestids.AppendEntries(nil, chunk)})
	}
	return state, requestIDs
}

// RequestIDChanges is what the batch changed in the request-id record:
// entries added, and the offset below which entries were forgotten (-1:
// none). Valid after Records.
func (b *Batch) RequestIDChanges() (added []requestids.Entry, forgetBelow int64) {
	return b.added, b.forget
}

// Apply makes the batch part of the partition: call it once its records
// (and the consumed offsets) are committed.
func (b *Batch) Apply() {
	if !b.closed {
		b.Records()
	}
	for _, from := range b.expired() {
		delete(b.p.seen, from)
	}
	for _, a := range b.Changed() {
		b.p.Movies[a.MovieID] = a
	}
	record := b.p.record
	b.p.log(b.added)
	b.p.record = record // it holds the batch already (or is the caller's: Follow)
	b.p.Next = b.next
}

// Discard drops a batch whose transaction did not commit: the request-id
// record, which ran ahead, is rebuilt from the committed entries.
func (b *Batch) Discard() { b.p.record = nil }

// Restore reads the given partitions of both topics, committed records
// only, from their start to their end as of the call, and returns their
// state (an empty one for a partition never written), with request ids
// kept for retention.
func Restore(ctx context.Context, k *kafkaio.Cluster, topics Topics, partitions []int, retention time.Duration) (map[int]*Partition, error) {
	out, _, err := RestoreCounting(ctx, k, topics, partitions, retention)
	return out, err
}

// RestoreCounting is Restore, also saying how many records it read.
func RestoreCounting(ctx context.Context, k *kafkaio.Cluster, topics Topics, partitions []int, retention time.Duration) (map[int]*Partition, int, error) {
	r, err := RestoreWarm(ctx, k, topics, partitions, nil, retention)
	if err != nil {
		return nil, 0, err
	}
	total := 0
	for _, n := range r.Read {
		total += n
	}
	return r.State, total, nil
}

// Warm is a copy of a partition's state already read from the changelog
// up to offset Next and from the request-id topic up to RequestIDsNext (a
// standby replica's): a restore reads only what follows. Compaction keeps
// that correct: a record it removed after Next was overwritten by a newer
// one, also after Next; retention only removes entries that expired. A
// copy may have started the request-id topic at its retention floor
// (RequestIDFloors) rather than its start: what it skipped had expired.
type Warm struct {
	State          *Partition
	Next           int64 // the changelog offset after everything State holds
	RequestIDsNext int64 // the request-id topic's offset after everything State holds
}

// Restored is what RestoreWarm read, per partition.
type Restored struct {
	State map[int]*Partition
	Read  map[int]int   // records read, from both topics
	End   map[int]int64 // the changelog offset it read to: State holds everything committed below it
	// RequestIDsEnd is the request-id topic's offset it read to.
	RequestIDsEnd map[int]int64
	// Floors are where the partitions read from the start of the
	// request-id topic began (the retention floor, floor.go).
	Floors map[int]Floor
}

// RestoreWarm is Restore starting each partition that has a warm copy from
// the copy (which it takes over and updates) at its offsets, the others
// from the start of the changelog and from the retention floor of the
// request-id topic (DefaultFloorSearch). The changelog is read first: an
// entry of a transaction committed between the two reads is past the
// position and not part of the state (Entries).
func RestoreWarm(ctx context.Context, k *kafkaio.Cluster, topics Topics, partitions []int, warm map[int]Warm, retention time.Duration) (Restored, error) {
	return RestoreWarmWith(ctx, k, topics, partitions, warm, retention, DefaultFloorSearch)
}

// RestoreWarmWith is RestoreWarm with the given floor search.
func RestoreWarmWith(ctx context.Context, k *kafkaio.Cluster, topics Topics, partitions []int, warm map[int]Warm, retention time.Duration,
	search FloorSearch) (Restored, error) {
	read := make(map[int]int, len(partitions))
	out := make(map[int]*Partition, len(partitions))
	start := make(map[int]int64, len(partitions))
	idsStart := make(map[int]int64, len(partitions))
	for _, p := range partitions {
		out[p], start[p], idsStart[p] = NewPartition(p, retention), kafka.FirstOffset, kafka.FirstOffset
		if w, ok := warm[p]; ok && w.State != nil {
			out[p], start[p], idsStart[p] = w.State, w.Next, w.RequestIDsNext
		}
	}
	ends, err := readInto(ctx, k, topics.State, start, out, read, (*Partition).Load)
	if err != nil {
		return Restored{}, err
	}
	// Retention may have dropped entries a warm copy had not read yet:
	// they expired, and what is left begins later.
	bounds, err := k.OffsetsCommitted(ctx, topics.RequestIDs, partitions)
	if err != nil {
		return Restored{}, fmt.Errorf("restore from %s: %w", topics.RequestIDs, err)
	}
	cold := map[int]kafkaio.Bounds{}
	for p, from := range idsStart {
		switch {
		case from == kafka.FirstOffset:
			cold[p] = bounds[p]
		case from < bounds[p].First:
			idsStart[p] = bounds[p].First
		}
	}
	floors := requestIDFloors(ctx, k, topics.RequestIDs, cold, retention, search)
	for p, f := range floors {
		if f.From > f.First {
			idsStart[p] = f.From
		}
	}
	idsEnds, err := readInto(ctx, k, topics.RequestIDs, idsStart, out, read, (*Partition).LoadRequestIDs)
	if err != nil {
		return Restored{}, err
	}
	// What the search could not see is checked now: time going back by
	// more than the margin in what was read puts the floor in doubt.
	again := map[int]int64{}
	for p, f := range floors {
		if f.From > f.First && out[p].wentBack > search.Margin.Milliseconds() {
			f.Fallback = fmt.Sprintf("%s: time went back by %s in the records read from offset %d", errDoubt,
				time.Duration(out[p].wentBack)*time.Millisecond, f.From)
			f.From = f.First
			floors[p] = f
			out[p].forgetLogged()
			again[p] = kafka.FirstOffset
		}
	}
	if len(again) > 0 {
		againEnds, err := readInto(ctx, k, topics.RequestIDs, again, out, read, (*Partition).LoadRequestIDs)
		if err != nil {
			return Restored{}, err
		}
		maps.Copy(idsEnds, againEnds)
	}
	return Restored{State: out, Read: read, End: ends, RequestIDsEnd: idsEnds, Floors: floors}, nil
}

// readInto reads topic's partitions committed from start to their end into
// the states (load applies a record), counting the records read.
func readInto(ctx context.Context, k *kafkaio.Cluster, topic string, start map[int]int64, states map[int]*Partition, read map[int]int,
	load func(p *Partition, key, value []byte) error) (ends map[int]int64, err error) {
	ends, err = k.ReadCommittedFrom(ctx, topic, start, func(m kafka.Message) error {
		p := states[m.Partition]
		if p == nil {
			return nil
		}
		read[m.Partition]++
		if err := load(p, m.Key, m.Value); err != nil {
			return fmt.Errorf("%s partition %d offset %d: %w", topic, m.Partition, m.Offset, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore from %s: %w", topic, err)
	}
	return ends, nil
}

// Equal reports whether two partition states hold the same state (tests,
// rebuild proofs).
func (p *Partition) Equal(o *Partition) bool {
	if p.ID != o.ID || p.Next != o.Next || !maps.EqualFunc(p.Movies, o.Movies, func(a, b Aggregate) bool {
		return a.MovieID == b.MovieID && a.Count == b.Count && a.SumTenths == b.SumTenths &&
			a.SourceOffset == b.SourceOffset && a.LastEvent.Equal(b.LastEvent)
	}) {
		return false
	}
	return slices.Equal(p.Entries(), o.Entries())
}
