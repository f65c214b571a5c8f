package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/requestids"
)

// Effectively-once with a changelog (--restore=changelog, the default).
//
// The database stays the truth of the instance that owns a partition: a
// batch is committed there first, as before. Right after, the batch's
// changes (services/lib/kafkaio/changelog records: changed aggregates and the
// position to the changelog partition, the request ids it counted to the
// request-id topic's) go out in one Kafka transaction. So the changelog is a consistent copy of the state at some
// position at or behind the database's, and an instance that takes a
// partition over restores its state from the changelog and reads only the
// tail of `ratings` after that position, instead of replaying the partition
// from its own old snapshot or from offset 0 (Kafka Streams' restore).
//
// Each partition has its own transactional id (<changelog>-<partition>),
// the way Kafka Streams' first exactly-once design gave each task its own
// producer: whoever takes the partition over initialises that id before it
// restores, which aborts a transaction the previous owner left open and
// fences it — a paused previous owner that wakes up cannot write its older
// state over the new owner's. Only a generation that was assigned the
// partition initialises the id; a write that fails ends the generation
// (the group rebalances and the next owner initialises it again), so an
// instance never fences the owner the group chose.
//
// Restore takes whichever is further ahead: the changelog, or the
// instance's own database (a replica that got its partition back, or a
// changelog behind because the owner died between its two commits). Both
// are the state of a prefix of the log, decided the same way (request ids
// in the log's clock), so the one further ahead is simply newer. When the
// database is ahead, what the changelog misses is written at once.

// Restore modes (--restore).
const (
	// RestoreChangelog writes the changelog and restores taken-over
	// partitions from it.
	RestoreChangelog = "changelog"
	// RestoreLog writes no changelog: a taken-over partition resumes from
	// the instance's own snapshot of it, or replays it from the start of
	// the log (the behaviour kept to compare with).
	RestoreLog = "log"
)

// ParseRestore reads a --restore value.
func ParseRestore(s string) (string, error) {
	switch s {
	case RestoreChangelog, RestoreLog:
		return s, nil
	case "":
		return RestoreChangelog, nil
	}
	return "", fmt.Errorf("--restore %q: want %s or %s", s, RestoreChangelog, RestoreLog)
}

// changelogPart writes one owned partition's changes to the changelog.
type changelogPart struct {
	id    int
	cl    *kgo.Client          // transactional id <changelog>-<partition>
	state *changelog.Partition // what the changelog holds, committed
	// next is the changelog offset after everything state holds: the end
	// the restore read to, then after each committed write the offset after
	// its last record (the commit marker is skipped by a committed reader);
	// idsNext the same in the request-id topic.
	next, idsNext int64
	pending       *changelog.Batch // committed to the database, not to the changelog yet
	// dirty: pending holds changes not written yet; lastWrite is when the
	// latest write was tried (Config.ChangelogInterval spaces them).
	dirty     bool
	lastWrite time.Time
	// broken: a transaction could not be ended (its outcome is unknown, the
	// client may still be in it). Nothing more is written with this client;
	// the next generation opens a new one, which aborts it.
	broken error
}

// changelogTxnID is the transactional id of one changelog partition's
// writer: the same for every instance, so that a new owner fences the old.
func changelogTxnID(topic string, partition int) string {
	return topic + "-" + strconv.Itoa(partition)
}

// openChangelogParts opens and initialises (fences) the writers of the
// given partitions, concurrently.
func (p *Processor) openChangelogParts(ctx context.Context, ids []int) (map[int]*changelogPart, error) {
	out := make(map[int]*changelogPart, len(ids))
	var mu sync.Mutex
	var errs error
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			cl, err := kgo.NewClient(p.k.FranzOpts(
				kgo.TransactionalID(changelogTxnID(p.cfg.Changelog, id)),
				kgo.TransactionTimeout(txnTimeout),
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.RecordDeliveryTimeout(changelogWriteTimeout),
			)...)
			if err == nil {
				ictx, cancel := context.WithTimeout(ctx, 2*txnTimeout)
				_, _, err = cl.ProducerID(ictx) // InitProducerID: aborts and fences the previous owner's
				cancel()
				if err != nil {
					cl.Close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = errors.Join(errs, fmt.Errorf("changelog writer of partition %d (InitProducerID of transactional id %s): %w", id, changelogTxnID(p.cfg.Changelog, id), err))
				return
			}
			out[id] = &changelogPart{id: id, cl: cl}
		})
	}
	wg.Wait()
	if errs != nil {
		closeChangelogParts(out)
		return nil, errs
	}
	return out, nil
}

func closeChangelogParts(parts map[int]*changelogPart) {
	for _, c := range parts {
		c.cl.Close()
	}
}

// changelogRestoreTimeout bounds a generation's restore (fencing the
// writers, reading the changelog, storing what it adopts). A restore that
// runs into it ends the generation with an error naming what it waited for
// (the writers' InitProducerID, or each partition's read position and the
// end it waited for), and the next generation starts afresh. Far above a
// real restore (300k records: under 3 s here).
const changelogRestoreTimeout = 30 * time.Second

// restoreBounded is restoreChangelog bounded by changelogRestoreTimeout,
// with health saying so. While it runs, health shows the previous
// attempt's failure, if any: a restore that keeps failing says why in
// `lab status`, not only "restoring".
func (p *Processor) restoreBounded(gctx context.Context, ids []int, warm map[int]changelog.Warm) (map[int]*changelogPart, restoredSet, error) {
	var prev error
	if e := p.restoreFailed.Load(); e != nil {
		prev = fmt.Errorf("the previous attempt failed: %w", *e)
	}
	p.health.setDetail(phaseRestoring, fmt.Sprintf("%v from %s and %s", ids, p.cfg.Changelog, p.cfg.RequestIDs), prev)
	rctx, cancel := context.WithTimeout(gctx, changelogRestoreTimeout)
	defer cancel()
	parts, rs, err := p.restoreChangelog(rctx, ids, warm)
	if err != nil {
		err = fmt.Errorf("restore partitions %v from %s and %s (bounded by %s): %w", ids, p.cfg.Changelog, p.cfg.RequestIDs, changelogRestoreTimeout, err)
		p.restoreFailed.Store(&err)
		return nil, restoredSet{}, err
	}
	p.restoreFailed.Store(nil)
	return parts, rs, nil
}

// restoredSet is what a changelog restore did: the partitions whose state
// came from the changelog (adopted), those of them that started from a
// standby copy (warm), and the changelog records read per partition.
type restoredSet struct {
	adopted, warm []int
	read          map[int]int
}

func (r restoredSet) total() int {
	n := 0
	for _, c := range r.read {
		n += c
	}
	return n
}

// warmRecords is the records read on top of standby copies.
func (r restoredSet) warmRecords() int {
	n := 0
	for _, id := range r.warm {
		n += r.read[id]
	}
	return n
}

// changelogWriteTimeout bounds one write of a partition's changes.
const changelogWriteTimeout = 10 * time.Second

// errFenced is a write refused because another instance initialised the
// partition's transactional id: it owns the partition now.
var errFenced = errors.New("fenced by a newer owner of the partition")

// write puts the partition's pending changes in the changelog and the
// request-id topic in one transaction. A refused produce aborts the transaction and keeps the
// changes pending (nil error: the next batch writes them along); a fenced
// writer or a transaction whose end failed is an error that ends the
// generation.
func (c *changelogPart) write(ctx context.Context, topics changelog.Topics, beforeEnd func() bool) (written int, err error) {
	if c.broken != nil {
		return 0, c.broken
	}
	c.lastWrite = time.Now()
	state, ids := c.pending.Records()
	if len(state)+len(ids) == 0 {
		c.pending.Apply()
		c.pending, c.dirty = c.state.Begin(), false
		return 0, nil
	}
	recs := make([]*kgo.Record, 0, len(state)+len(ids))
	for _, m := range state {
		recs = append(recs, kafkaio.RecordOf(m, topics.State, c.id))
	}
	for _, m := range ids {
		recs = append(recs, kafkaio.RecordOf(m, topics.RequestIDs, c.id))
	}
	if err := c.cl.BeginTransaction(); err != nil {
		c.broken = fenced(fmt.Errorf("begin changelog transaction of partition %d: %w", c.id, err))
		return 0, c.broken
	}
	wctx, cancel := context.WithTimeout(ctx, changelogWriteTimeout)
	defer cancel()
	results := c.cl.ProduceSync(wctx, recs...)
	perr := results.FirstErr()
	if beforeEnd != nil && beforeEnd() {
		c.broken = errSimulatedCrash
		return 0, errSimulatedCrash
	}
	end := kgo.TryCommit
	if perr != nil {
		end = kgo.TryAbort
		if aerr := c.cl.AbortBufferedRecords(wctx); aerr != nil {
			c.broken = fenced(fmt.Errorf("changelog partition %d: %w (aborting: %v)", c.id, perr, aerr))
			return 0, c.broken
		}
	}
	if err := c.cl.EndTransaction(wctx, end); err != nil {
		c.broken = fenced(fmt.Errorf("end changelog transaction of partition %d: %w", c.id, err))
		return 0, c.broken
	}
	if perr != nil {
		return 0, keptPending{fmt.Errorf("changelog partition %d: %w; kept to be written with the next batch", c.id, perr)}
	}
	c.pending.Apply()
	c.pending, c.dirty = c.state.Begin(), false
	for _, r := range results {
		if r.Record.Topic == topics.State {
			c.next = max(c.next, r.Record.Offset+1)
		} else {
			c.idsNext = max(c.idsNext, r.Record.Offset+1)
		}
	}
	return len(recs), nil
}

// keptPending is a write that was refused and aborted: the changes stay
// pending and go with the next write.
type keptPending struct{ error }

func (k keptPending) Unwrap() error { return k.error }

// fenced marks errors that mean another instance owns the partition.
func fenced(err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		return fmt.Errorf("%w: %w", errFenced, err)
	}
	return err
}

// restoreChangelog makes the database's state of the assigned partitions
// at least as new as the changelog's, and returns the partitions' writers
// with what the changelog misses pending. A partition with a warm copy (a
// standby replica's) is read from the copy's position on. The set says
// which partitions' state came from the changelog, which of them started
// warm, and the changelog records read.
func (p *Processor) restoreChangelog(ctx context.Context, ids []int, warm map[int]changelog.Warm) (parts map[int]*changelogPart, rs restoredSet, err error) {
	t0 := time.Now()
	parts, err = p.openChangelogParts(ctx, ids)
	if err != nil {
		return nil, rs, err
	}
	p.log.Debug("changelog writers initialised", "took", time.Since(t0).String())
	defer func() {
		if err != nil {
			closeChangelogParts(parts)
		}
	}()
	// The writers were initialised first: whatever a previous owner left
	// open is aborted, so the committed end is final for the restore.
	res, err := changelog.RestoreWarm(ctx, p.k, p.topics(), ids, warm, p.cfg.RequestIDRetention)
	if err != nil {
		return nil, rs, err
	}
	restored := res.State
	rs.read = res.Read
	p.logFloors(res.Floors)
	p.log.Debug("changelog read", "records", rs.total(), "warm", len(warm), "took", time.Since(t0).String())
	local, aggs, err := p.store.snapshot(ctx, ids)
	if err != nil {
		return nil, rs, fmt.Errorf("load state: %w", err)
	}
	for _, id := range ids {
		st, c := restored[id], parts[id]
		c.state, c.next, c.idsNext = st, res.End[id], res.RequestIDsEnd[id]
		c.pending = st.Begin()
		next, ok := local[id]
		if !ok {
			next = -1
		}
		if st.Next > next {
			rs.adopted = append(rs.adopted, id)
			if _, ok := warm[id]; ok {
				rs.warm = append(rs.warm, id)
			}
			continue
		}
		if next < 0 {
			continue // nothing anywhere yet
		}
		// The database is ahead: write what the changelog misses.
		var changed []changelog.Aggregate
		for _, a := range aggs {
			if a.Partition == id && a.SourceOffset > st.Next {
				changed = append(changed, changelog.Aggregate{MovieID: a.MovieID, Count: a.Count, SumTenths: a.SumTenths,
					SourceOffset: a.SourceOffset, LastEvent: a.LastEvent})
			}
		}
		entries, err := p.store.loadRequestIDs(ctx, id)
		if err != nil {
			return nil, rs, fmt.Errorf("load state: %w", err)
		}
		var added []requestids.Entry
		for _, e := range entries {
			if e.Offset >= st.Next {
				added = append(added, e)
			}
		}
		c.pending.Follow(next, changed, added, -1)
		c.dirty = true
	}
	if len(rs.adopted) > 0 {
		sub := make(map[int]*changelog.Partition, len(rs.adopted))
		for _, id := range rs.adopted {
			sub[id] = restored[id]
		}
		if err := p.store.adoptPartitions(ctx, sub); err != nil {
			return nil, rs, fmt.Errorf("store the restored state: %w", err)
		}
		p.log.Debug("restored state stored", "took", time.Since(t0).String())
	}
	return parts, rs, nil
}

// logFloors says where a restore read each partition of the request-id
// topic from: the retention floor, or its start and why.
func (p *Processor) logFloors(floors map[int]changelog.Floor) {
	for _, id := range slices.Sorted(maps.Keys(floors)) {
		f := floors[id]
		if f.Fallback != "" {
			p.log.Info("request ids restored from the start of their topic", "partition", id, "topic", p.cfg.RequestIDs,
				"from", f.From, "why", f.Fallback)
			continue
		}
		p.log.Debug("request ids restored from the retention floor", "partition", id, "topic", p.cfg.RequestIDs,
			"from", f.From, "skipped_offsets", f.From-f.First, "fetches", f.Fetches)
	}
}

// writeChangelog writes the pending changes of the given partitions, one
// transaction per partition, concurrently. A fenced writer or a failed
// transaction end is returned (the generation ends); a refused produce is
// noted in health and retried with the next batch.
func (p *Processor) writeChangelog(ctx context.Context, parts map[int]*changelogPart, ids []int) error {
	var mu sync.Mutex
	var hard, soft error
	var wg sync.WaitGroup
	for _, id := range ids {
		c := parts[id]
		if c == nil || c.broken != nil && errors.Is(c.broken, errSimulatedCrash) {
			continue
		}
		wg.Go(func() {
			n, err := c.write(ctx, p.topics(), p.testHookBeforeEnd)
			mu.Lock()
			defer mu.Unlock()
			var kept keptPending
			switch {
			case err == nil && n > 0:
				p.metrics.changelogWritten.Add(float64(n))
				p.metrics.changelogTxns.Inc()
			case errors.As(err, &kept):
				soft = errors.Join(soft, err)
			default:
				hard = errors.Join(hard, err)
			}
		})
	}
	wg.Wait()
	if soft != nil {
		p.health.note(soft)
	}
	return hard
}

// followChangelog adds a committed batch to the partitions' pending
// changes and writes those whose interval has passed.
func (p *Processor) followChangelog(ctx context.Context, cl map[int]*changelogPart, touched []*aggregate, next map[int]int64, ids map[int]idChanges) error {
	changed := map[int][]changelog.Aggregate{}
	for _, a := range touched {
		changed[a.Partition] = append(changed[a.Partition], changelog.Aggregate{MovieID: a.MovieID, Count: a.Count,
			SumTenths: a.SumTenths, SourceOffset: a.SourceOffset, LastEvent: a.LastEvent})
	}
	for part, n := range next {
		if c := cl[part]; c != nil {
			c.pending.Follow(n, changed[part], ids[part].added, ids[part].forgetBelow)
			c.dirty = true
		}
	}
	return p.writeDueChangelog(ctx, cl)
}

// writeDueChangelog writes the partitions whose changes are pending and
// whose interval since their last write has passed.
func (p *Processor) writeDueChangelog(ctx context.Context, cl map[int]*changelogPart) error {
	now := time.Now()
	var due []int
	for _, id := range slices.Sorted(maps.Keys(cl)) {
		if c := cl[id]; c.dirty && !now.Before(c.lastWrite.Add(p.cfg.ChangelogInterval)) {
			due = append(due, id)
		}
	}
	return p.writeChangelog(ctx, cl, due)
}

// nextChangelogWrite is when the earliest pending changes fall due, and
// false when nothing waits for a write (or every batch writes its own:
// interval 0, where a refused write goes along with the next batch).
func (p *Processor) nextChangelogWrite(cl map[int]*changelogPart) (time.Time, bool) {
	var at time.Time
	if p.cfg.ChangelogInterval <= 0 {
		return at, false
	}
	for _, c := range cl {
		if c.dirty && c.broken == nil {
			if due := c.lastWrite.Add(p.cfg.ChangelogInterval); at.IsZero() || due.Before(at) {
				at = due
			}
		}
	}
	return at, !at.IsZero()
}

// noteRestore records the taken-over partitions that caught up.
func (p *Processor) noteRestore(clock *restoreClock, states map[int]*partState) {
	now := time.Now()
	for part, took := range clock.reached(func(part int) int64 { return states[part].next }, now) {
		p.metrics.restore.WithLabelValues(clock.summary.From[part]).Observe(took.Seconds())
	}
	if r, ok := clock.finished(now); ok && !clock.reported {
		clock.reported = true
		p.metrics.restoreRecords.WithLabelValues("ratings").Add(float64(r.RatingsReplayed))
		p.restored.set(r)
		p.log.Info("taken-over partitions caught up", "partitions", r.Partitions, "from", r.From,
			"seconds", r.Seconds, "changelog_records", r.ChangelogRecords, "ratings_replayed", r.RatingsReplayed)
	}
}
