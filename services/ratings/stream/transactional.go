package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/model"
)

// Transactional delivery (--delivery=transactional) is Kafka Streams'
// exactly-once processing, done with franz-go's GroupTransactSession
// (kafka-go has no transactions). Per batch, one Kafka transaction holds
// the batch's rated-movies records, its dead letters, its changelog records
// (services/lib/kafkaio/changelog: changed aggregates and the position, and
// the request ids it counted in the request-id topic) and the consumed
// offsets of `ratings`. Either all of it is committed or none of it is (a
// transaction one of whose records failed is aborted: franz-go would commit
// the rest), and readers of rated-movies and the changelog read committed
// records only.
//
// The changelog is the truth; the SQLite database is a cache written after
// each commit (for GET /state, the audit and replay). When partitions are
// assigned, their state is restored from the changelog and the request-id
// topic (read committed) and consumption resumes at the changelog's position — not the
// group's offset, though after a commit both are the same: a group reset by
// hand is answered by re-reading or skipping up to the position, never by
// counting twice. A transaction that aborts (a rebalance, a broker failure,
// a crash) leaves nothing behind: the batch's changes are applied to the
// in-memory state only after the commit, and franz-go rewinds to the
// committed offsets.
//
// Rebalances are blocked while a batch is processed (BlockRebalanceOnPoll):
// the state of the partitions a batch touches cannot change under it. The
// transactional id (--transactional-id) must be stable per instance: a
// restarted instance fences its previous incarnation and aborts the
// transaction it left open at once, instead of after the transaction
// timeout.

// txnTimeout bounds a transaction at the coordinator: an instance that dies
// mid-transaction and does not come back holds the last stable offset of
// its partitions (readers wait) for at most this long.
const txnTimeout = 10 * time.Second

// endTimeout bounds the commit of one transaction (flush, offsets, EndTxn):
// past the transaction timeout the coordinator aborts it anyway, so the
// session is rebuilt and the state restored rather than waiting longer.
const endTimeout = 2 * txnTimeout

// txnMetrics count transactions by outcome.
type txnMetrics struct {
	txns *prometheus.CounterVec
}

func newTxnMetrics(reg prometheus.Registerer) *txnMetrics {
	m := &txnMetrics{txns: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricname.StreamTransactionsTotal,
		Help: "Kafka transactions of ratings-stream in transactional delivery, by result: committed, aborted, or unknown (ending it failed; the state is restored from the changelog).",
	}, []string{"result"})}
	for _, r := range []string{"committed", "aborted", "unknown"} {
		m.txns.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.txns)
	}
	return m
}

// runTransactional consumes in transactional mode until ctx ends. A session
// that fails (the transactional id fenced, a commit that could not finish)
// is replaced by a new one, which restores the state from the changelog.
func (p *Processor) runTransactional(ctx context.Context) error {
	m := newTxnMetrics(p.cfg.Registerer)
	p.log.Info("ratings processor started", "delivery", p.cfg.Delivery, "group", p.cfg.Group,
		"transactional_id", p.cfg.TransactionalID, "partitions", p.partitions)
	for ctx.Err() == nil {
		err := p.transactSession(ctx, m)
		if ctx.Err() != nil {
			break
		}
		p.log.Error("transactional session ended; starting a new one (the state is restored from the changelog)", "error", fmt.Sprint(err))
		p.health.set(phaseRecovering, err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	p.log.Info("ratings processor stopped")
	return nil
}

// txnSession is one GroupTransactSession and the state of the partitions
// it owns.
type txnSession struct {
	p *Processor
	m *txnMetrics

	mu    sync.Mutex
	owned map[int]*changelog.Partition // restored, by ratings partition
}

func (p *Processor) transactSession(ctx context.Context, m *txnMetrics) error {
	s := &txnSession{p: p, m: m, owned: map[int]*changelog.Partition{}}
	p.health.setDetail(phaseJoining, p.cfg.Group, nil)
	sess, err := kgo.NewGroupTransactSession(p.k.FranzOpts(
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(model.TopicRatings),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.RebalanceTimeout(p.cfg.RebalanceTimeout),
		kgo.HeartbeatInterval(p.cfg.HeartbeatInterval),
		kgo.FetchMaxWait(time.Second),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.AdjustFetchOffsetsFn(s.restore),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
		kgo.TransactionalID(p.cfg.TransactionalID),
		kgo.TransactionTimeout(txnTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(15*time.Second),
		kgo.WithHooks(txnHealth{p}),
	)...)
	if err != nil {
		return fmt.Errorf("transactional client: %w", err)
	}
	defer sess.Close()
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); s.trackLag(lagCtx) }()
	defer func() { stopLag(); <-lagDone; s.dropAll() }()

	for {
		// The throttle sleeps while rebalances are allowed: a long one must
		// not cost the group membership.
		if d := p.Throttle(); d > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
		}
		fs := sess.PollRecords(ctx, p.batchLimit())
		if ctx.Err() != nil {
			sess.AllowRebalance()
			return nil
		}
		if fs.IsClientClosed() {
			return errors.New("the transactional client was closed")
		}
		fs.EachError(func(topic string, part int32, err error) {
			p.health.note(fmt.Errorf("reading %s partition %d: %w", topic, part, err))
			p.log.Warn("fetch failed", "topic", topic, "partition", part, "error", err.Error())
		})
		recs := fs.Records()
		if len(recs) == 0 {
			sess.AllowRebalance()
			continue
		}
		err := s.transact(ctx, sess, recs)
		sess.AllowRebalance()
		if err != nil {
			return err
		}
	}
}

// txnHealth turns what franz-go retries silently (a broker gone, a cut
// proxy) into health: a failed connect or fetch makes the processor
// unhealthy, a fetch that works again clears it.
type txnHealth struct{ p *Processor }

func (h txnHealth) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.p.health.note(fmt.Errorf("connect to broker %s:%d: %w", meta.Host, meta.Port, err))
	}
}

func (h txnHealth) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	switch err := e2e.Err(); {
	case errors.Is(err, context.Canceled):
		// franz-go cancelled it itself (a rebalance, a moved partition).
	case err != nil:
		h.p.health.note(fmt.Errorf("%s to broker %s:%d: %w", kmsg.NameForKey(key), meta.Host, meta.Port, err))
	case key == int16(kmsg.Fetch):
		h.p.health.resolve()
	}
}

// assigned marks the processor running when there is nothing to restore.
func (s *txnSession) assigned(_ context.Context, _ *kgo.Client, added map[string][]int32) {
	if len(added[model.TopicRatings]) == 0 {
		s.p.health.set(phaseRunning, nil)
	}
}

// restore runs when offsets of newly assigned partitions were fetched,
// before any of their records is consumed: their state is read from the
// changelog, and consumption starts at its position.
func (s *txnSession) restore(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	fetched := offsets[model.TopicRatings]
	if len(fetched) == 0 {
		return offsets, nil
	}
	var ids []int
	for part := range fetched {
		ids = append(ids, int(part))
	}
	slices.Sort(ids)
	s.p.health.setDetail(phaseRestoring, fmt.Sprintf("%v from %s and %s", ids, s.p.cfg.Changelog, s.p.cfg.RequestIDs), nil)
	started := time.Now()
	res, err := changelog.RestoreWarm(ctx, s.p.k, s.p.topics(), ids, nil, s.p.cfg.RequestIDRetention)
	if err != nil {
		s.p.health.set(phaseRecovering, err)
		return nil, err
	}
	s.p.logFloors(res.Floors)
	restored := res.State
	// As in the other modes: a log that ends before the state, or ratings
	// deleted before they were counted, is not something a retry fixes.
	bounds, err := s.p.partitionBounds(ctx, ids)
	if err != nil {
		s.p.health.set(phaseRecovering, err)
		return nil, err
	}
	for _, id := range ids {
		next, b := restored[id].Next, bounds[id]
		var perr error
		switch {
		case next > b.End:
			perr = serve.Permanent(fmt.Errorf("ratings partition %d ends at offset %d but the state in %s already includes offset %d: the broker's log was reset or lost records; delete that topic's records and %s to rebuild the state from the new log",
				id, b.End, s.p.cfg.Changelog, next, s.p.cfg.DataDir))
		case next >= 0:
			perr = kafkaio.CheckRetentionGap(model.TopicRatings, id, next, b)
		}
		if perr != nil {
			s.p.haltOnGap(perr)
			return nil, perr
		}
	}
	var aggs []*aggregate
	next := map[int]int64{}
	seen := 0
	for _, id := range ids {
		st := restored[id]
		group := fetched[int32(id)].EpochOffset().Offset
		if st.Next >= 0 {
			fetched[int32(id)] = kgo.NewOffset().At(st.Next).WithEpoch(-1)
			next[id] = st.Next
		} else {
			fetched[int32(id)] = kgo.NewOffset().AtStart()
		}
		if group >= 0 && group != st.Next {
			s.p.log.Warn("the group's offset differs from the changelog's position; resuming at the changelog's (the state is the truth)",
				"partition", id, "group_offset", group, "changelog_position", st.Next)
		}
		for _, a := range st.Movies {
			aggs = append(aggs, cachedAggregate(id, a))
		}
		seen += st.RequestIDs()
	}
	// The database is a cache of the changelog: bring it up to date.
	err = s.p.store.commit(ctx, aggs, next, nil)
	if err == nil {
		err = s.p.store.replaceRequestIDs(ctx, restored)
	}
	if err != nil {
		s.p.health.set(phaseRecovering, err)
		return nil, fmt.Errorf("cache the restored state: %w", err)
	}
	s.mu.Lock()
	maps.Copy(s.owned, restored)
	s.mu.Unlock()
	s.p.setAssigned(s.ownedIDs())
	s.p.log.Info("partitions restored from the changelog", "partitions", ids, "movies", len(aggs),
		"request_ids", seen, "positions", next, "took", time.Since(started).Round(time.Millisecond).String())
	s.p.health.set(phaseRunning, nil)
	return offsets, nil
}

// revoked forgets partitions that left: their state is restored again,
// from the changelog, whenever they come back.
func (s *txnSession) revoked(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	for _, part := range lost[model.TopicRatings] {
		delete(s.owned, int(part))
		s.p.k.Metrics().DropLag(model.TopicRatings, int(part))
	}
	s.mu.Unlock()
	s.p.setAssigned(s.ownedIDs())
}

func (s *txnSession) dropAll() {
	s.mu.Lock()
	for part := range s.owned {
		s.p.k.Metrics().DropLag(model.TopicRatings, part)
	}
	s.owned = map[int]*changelog.Partition{}
	s.mu.Unlock()
	s.p.setAssigned(nil)
}

func (s *txnSession) ownedIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.owned))
}

// trackLag exports the lag of the owned partitions against their committed
// positions, like the other modes (kafkaio.TrackLag for a changing set).
func (s *txnSession) trackLag(ctx context.Context) {
	t := time.NewTicker(kafkaio.LagRefresh)
	defer t.Stop()
	for {
		s.mu.Lock()
		next := map[int]int64{}
		for part, st := range s.owned {
			next[part] = st.Next
		}
		s.mu.Unlock()
		if len(next) > 0 {
			qctx, cancel := context.WithTimeout(ctx, kafkaio.LagRefresh)
			bounds, err := s.p.k.Offsets(qctx, model.TopicRatings, slices.Sorted(maps.Keys(next)))
			cancel()
			if err == nil {
				for part, b := range bounds {
					n := next[part]
					if n < 0 {
						n = b.First
					}
					s.p.k.Metrics().SetLag(model.TopicRatings, part, b.End-n)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// transact processes one polled batch in one Kafka transaction.
func (s *txnSession) transact(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record) error {
	p := s.p
	started := time.Now()
	s.mu.Lock()
	owned := maps.Clone(s.owned)
	s.mu.Unlock()
	t := &txnBatch{batches: map[int]*changelog.Batch{}}
	// Decode and check every record first, then count in offset order, as
	// process does: the request-id record must see a partition's ratings in
	// the order of the log, also when one of them waits for its movie.
	valid, unknown, err := t.classify(ctx, p, recs, owned)
	if err != nil {
		return err
	}
	if err := t.confirm(ctx, p, valid, unknown); err != nil {
		return err
	}
	out, produced, cached, next := t.records(p)
	if committed, err := s.commit(ctx, sess, t, out, len(recs)); err != nil || !committed {
		return err
	}

	// Committed: the batch is now part of the state.
	s.mu.Lock()
	ids := make(map[int]idChanges, len(t.batches))
	for part, b := range t.batches {
		added, forget := b.RequestIDChanges()
		ids[part] = idChanges{added: added, forgetBelow: forget}
		if s.owned[part] == owned[part] { // not revoked and restored since
			b.Apply()
		}
	}
	s.mu.Unlock()
	if p.testHookAfterCommit != nil && p.testHookAfterCommit() {
		return errSimulatedCrash
	}
	if err := p.store.commit(ctx, cached, next, ids); err != nil {
		// Only the cache is behind; the next restore repairs it.
		p.log.Warn("caching committed state in the database failed", "error", err.Error())
	}
	p.committed.Add(int64(t.applied))
	p.k.Metrics().Consumed(model.TopicRatings, t.applied)
	for topic, n := range produced {
		p.k.Metrics().Produced(topic, n)
	}
	p.metrics.batch.Observe(time.Since(started).Seconds())
	for _, d := range t.dead {
		p.metrics.dlq.WithLabelValues(header(d, hdrReason)).Inc()
	}
	return nil
}

// txnBatch is what one transactional batch has done so far.
type txnBatch struct {
	batches map[int]*changelog.Batch // by ratings partition
	dead    []kafka.Message          // its records for the DLQ
	applied int                      // records it consumed
}

// classify decodes and checks every new record of the batch: valid ones
// are returned (unknown of them name a movie not in the movies table yet),
// invalid ones go to the DLQ. A transient decoding error discards the
// batch: the session restarts and reads it again.
func (t *txnBatch) classify(ctx context.Context, p *Processor, recs []*kgo.Record, owned map[int]*changelog.Partition) (valid []pending, unknown int, _ error) {
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		m := &msgs[i]
		*m = kafkaio.MessageOf(r)
		st := owned[m.Partition]
		if st == nil {
			return nil, 0, fmt.Errorf("records of ratings partition %d arrived before its state was restored", m.Partition)
		}
		b := t.batches[m.Partition]
		if b == nil {
			b = st.Begin()
			t.batches[m.Partition] = b
		}
		if m.Offset < b.Next() {
			continue // already in the state (the group's offset was behind the changelog)
		}
		t.applied++
		ev, err := p.validate(ctx, m)
		if err != nil {
			if retry := transient(err); retry != nil {
				discard(t.batches)
				return nil, 0, retry // the session restarts and reads the batch again
			}
			t.dead = append(t.dead, deadLetter(m, err))
			b.Skip(m.Offset)
			continue
		}
		if _, ok := p.movies.Get(ev.MovieID); !ok {
			unknown++
		}
		valid = append(valid, pending{m, ev})
	}
	return valid, unknown, nil
}

// confirm waits (bounded) for the movies table when some ratings name a
// movie it does not hold yet, then counts each valid rating in offset
// order, or dead-letters it (unknown movie, request-id conflict).
func (t *txnBatch) confirm(ctx context.Context, p *Processor, valid []pending, unknown int) error {
	if err := p.catchUpMovies(ctx, unknown); err != nil {
		discard(t.batches)
		return err
	}
	for _, v := range valid {
		b := t.batches[v.msg.Partition]
		if _, ok := p.movies.Get(v.ev.MovieID); !ok {
			t.dead = append(t.dead, deadLetter(v.msg, unknownMovie(v.ev.MovieID)))
			b.Skip(v.msg.Offset)
			continue
		}
		verdict, first := b.Count(changelog.Rating{Offset: v.msg.Offset, Time: v.msg.Time, RequestID: v.ev.RequestID,
			MovieID: v.ev.MovieID, Tenths: v.ev.Tenths, UserID: v.ev.UserID, EventTime: v.ev.EventTime})
		switch verdict {
		case requestids.Repeat:
			p.duplicates.Add(1)
		case requestids.Conflict:
			t.dead = append(t.dead, deadLetter(v.msg, requestIDConflict(v.ev.RequestID, first.Offset)))
		}
	}
	return nil
}

// records is everything the batch writes in its transaction (changelog,
// rated-movies, dead letters), the count per topic, the aggregates to cache
// once committed and each partition's next offset.
func (t *txnBatch) records(p *Processor) (out []*kgo.Record, produced map[string]int, cached []*aggregate, next map[int]int64) {
	produced = map[string]int{}
	next = map[int]int64{}
	for part, b := range t.batches {
		state, ids := b.Records()
		for _, m := range state {
			out = append(out, kafkaio.RecordOf(m, p.cfg.Changelog, part))
		}
		for _, m := range ids {
			out = append(out, kafkaio.RecordOf(m, p.cfg.RequestIDs, part))
		}
		var changed []*aggregate
		for _, a := range b.Changed() {
			changed = append(changed, cachedAggregate(part, a))
		}
		for _, m := range p.ratedMovies(changed) {
			out = append(out, kafkaio.RecordOf(m, model.TopicRatedMovies, part))
			produced[model.TopicRatedMovies]++
		}
		cached = append(cached, changed...)
		next[part] = b.Next()
	}
	for _, d := range t.dead {
		out = append(out, kafkaio.RecordOf(d, model.TopicRatingsDLQ, 0))
	}
	produced[model.TopicRatingsDLQ] = len(t.dead)
	return out, produced, cached, next
}

// commit writes out in one transaction with the batch's offsets. Not
// committed without an error: the transaction aborted, and the batch is
// consumed again from the committed offsets.
func (s *txnSession) commit(ctx context.Context, sess *kgo.GroupTransactSession, t *txnBatch, out []*kgo.Record, polled int) (committed bool, _ error) {
	p := s.p
	if err := sess.Begin(); err != nil {
		return false, fmt.Errorf("begin transaction: %w", err)
	}
	var perrMu sync.Mutex
	var perr error
	var answered sync.WaitGroup
	for _, r := range out {
		answered.Add(1)
		sess.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer answered.Done()
			if err != nil {
				perrMu.Lock()
				perr = errors.Join(perr, fmt.Errorf("%s: %w", r.Topic, err))
				perrMu.Unlock()
			}
		})
	}
	if p.testHookBeforeEnd != nil && p.testHookBeforeEnd() {
		discard(t.batches)
		return false, errSimulatedCrash
	}
	ectx, cancel := context.WithTimeout(ctx, endTimeout)
	defer cancel()
	// End commits whatever reached the broker: a record that failed on
	// its own (refused, or failed unsent because its partition's leader
	// could not be reached) would be missing from a committed
	// transaction, and the state would move on without it. So every
	// record's answer is awaited, and one failure ends it with an abort.
	err := allAnswered(ectx, sess.Client(), &answered)
	perrMu.Lock()
	why := perr
	perrMu.Unlock()
	if err == nil {
		end := kgo.TryCommit
		if why != nil {
			end = kgo.TryAbort
		}
		committed, err = sess.End(ectx, end)
	}
	if err != nil {
		discard(t.batches)
		if ctx.Err() == nil {
			s.m.txns.WithLabelValues("unknown").Inc()
		}
		return false, fmt.Errorf("end transaction (its outcome is restored from the changelog): %w", err)
	}
	if !committed {
		discard(t.batches)
		s.m.txns.WithLabelValues("aborted").Inc()
		p.log.Warn("transaction aborted; the batch is consumed again from the committed offsets", "records", polled, "produce_error", fmt.Sprint(why))
		if why != nil {
			p.health.note(fmt.Errorf("transaction aborted: %w", why))
		}
		return false, nil
	}
	s.m.txns.WithLabelValues("committed").Inc()
	p.health.resolve()
	return true, nil
}

// allAnswered returns once every record produced in the transaction has its
// answer (answered is done) or ctx ends. Flush waits for the buffered
// records; a record that failed before it was buffered is answered apart.
func allAnswered(ctx context.Context, cl *kgo.Client, answered *sync.WaitGroup) error {
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { answered.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// setAssigned publishes the partitions this instance owns (GET /state).
func (p *Processor) setAssigned(ids []int) {
	if ids == nil {
		ids = []int{}
	}
	p.assigned.Store(&ids)
}

// discard drops batches whose transaction did not commit.
func discard(batches map[int]*changelog.Batch) {
	for _, b := range batches {
		b.Discard()
	}
}

// cachedAggregate is a changelog aggregate as the database caches it.
func cachedAggregate(part int, a changelog.Aggregate) *aggregate {
	return &aggregate{MovieID: a.MovieID, Partition: part, Count: a.Count, SumTenths: a.SumTenths,
		SourceOffset: a.SourceOffset, LastEvent: a.LastEvent}
}
