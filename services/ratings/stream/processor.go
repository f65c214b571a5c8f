package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/model"
)

// Delivery is how the processor ties its state to the consumed offsets.
type Delivery string

const (
	// EffectivelyOnce: state and offsets in one database transaction; the
	// database is the source of truth for where to resume.
	EffectivelyOnce Delivery = "effectively-once"
	// AtLeastOnce: state applied, then offsets committed to the consumer
	// group; a crash in between counts the batch again.
	AtLeastOnce Delivery = "at-least-once"
	// Transactional: Kafka transactions (Kafka Streams' exactly-once):
	// rated-movies, the changelog and the consumed offsets commit together
	// (transactional.go).
	Transactional Delivery = "transactional"
)

// ParseDelivery reads a --delivery value.
func ParseDelivery(s string) (Delivery, error) {
	switch d := Delivery(s); d {
	case EffectivelyOnce, AtLeastOnce, Transactional:
		return d, nil
	case "":
		return EffectivelyOnce, nil
	}
	return "", fmt.Errorf("--delivery %q: want %s, %s or %s", s, EffectivelyOnce, AtLeastOnce, Transactional)
}

// Config configures a Processor. Zero values mean the defaults.
type Config struct {
	Cluster  *kafkaio.Cluster // required
	DataDir  string           // required: the embedded database lives here
	Delivery Delivery
	// Group is the consumer group (default "ratings-stream").
	Group string
	// Changelog is the topic of the processor's state (default
	// model.TopicRatingsChangelog, the lab group's): one per consumer group,
	// co-partitioned with ratings, compacted. Transactional mode always
	// keeps it; effectively-once keeps it with Restore = RestoreChangelog.
	Changelog string
	// RequestIDs is the topic of the request-id record behind the state
	// (default model.TopicRatingsRequestIDs): written in the changelog's
	// transactions, co-partitioned with ratings, time-retained for at least
	// RequestIDRetention (the processor refuses to start otherwise).
	RequestIDs string
	// Restore is how effectively-once takes partitions over:
	// RestoreChangelog (default: write the changelog after each commit,
	// restore from it) or RestoreLog (no changelog: the instance's own
	// snapshot or the start of the log). changelogrestore.go.
	Restore string
	// StandbyReplicas is how many other instances keep a warm copy of each
	// partition's state (Kafka Streams' num.standby.replicas; default 0:
	// none). Effectively-once with RestoreChangelog only (standby.go).
	StandbyReplicas int
	// TransactionalID identifies this instance's transactional producer
	// (transactional mode; default: Group). Stable per instance, unique
	// among instances.
	TransactionalID string
	// MaxBatch bounds the records per transaction (default 5000).
	MaxBatch int
	// ChangelogInterval is how often effectively-once writes each
	// partition's committed changes to the changelog (Kafka Streams'
	// commit.interval.ms, 100 ms under exactly-once): changes of the batches
	// in between go out as one transaction, and a partition with changes
	// left when its batches stop is written once the interval has passed.
	// 0: after every batch. The ratings' acknowledgement does not wait for
	// it; a new owner restores an older position and reads more of
	// `ratings`.
	ChangelogInterval time.Duration
	// RequestIDRetention is how long, in the log's clock, a counted request
	// id is kept to drop a repeat (default requestids.DefaultRetention;
	// effectively-once only).
	RequestIDRetention time.Duration
	// TopicWait bounds the wait for the topics at start.
	TopicWait kafkaio.TopicWait
	// Group timing (defaults: 1s heartbeat, 10s session, 15s rebalance).
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	// Codec reads `ratings` and `movies` and writes `rated-movies` in the
	// lab's format (nil: JSON).
	Codec *model.Codec
	// Registerer receives the processor's metrics (nil: not registered).
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

func (c *Config) defaults() error {
	if c.Cluster == nil {
		return errors.New("ratings-stream: no Kafka cluster configured")
	}
	if c.Delivery == "" {
		c.Delivery = EffectivelyOnce
	}
	if _, err := ParseDelivery(string(c.Delivery)); err != nil {
		return err
	}
	if c.Group == "" {
		c.Group = "ratings-stream"
	}
	if c.TransactionalID == "" {
		c.TransactionalID = c.Group
	}
	if c.Changelog == "" {
		c.Changelog = model.TopicRatingsChangelog
	}
	if c.RequestIDs == "" {
		c.RequestIDs = model.TopicRatingsRequestIDs
	}
	restore, err := ParseRestore(c.Restore)
	if err != nil {
		return err
	}
	c.Restore = restore
	switch {
	case c.StandbyReplicas < 0:
		return fmt.Errorf("--standby-replicas %d: must be 0 (none) or more", c.StandbyReplicas)
	case c.StandbyReplicas > 0 && (c.Delivery != EffectivelyOnce || c.Restore != RestoreChangelog):
		return fmt.Errorf("--standby-replicas %d: standby replicas are copies of the changelog, kept with --delivery=%s and --restore=%s only (got --delivery=%s --restore=%s)",
			c.StandbyReplicas, EffectivelyOnce, RestoreChangelog, c.Delivery, c.Restore)
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 5000
	}
	if c.ChangelogInterval < 0 {
		return fmt.Errorf("--changelog-interval %s: must be 0 (after every batch) or more", c.ChangelogInterval)
	}
	if c.RequestIDRetention <= 0 {
		c.RequestIDRetention = requestids.DefaultRetention
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 15 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Processor is the ratings stream processor (see the package comment).
type Processor struct {
	cfg     Config
	k       *kafkaio.Cluster
	log     *slog.Logger
	store   *store
	metrics *metrics
	health  health

	throttle atomic.Int64 // nanoseconds slept before each batch

	// Set up by Run.
	movies     *movieTable
	partitions int // of `ratings`
	dlq        *kafkaio.Producer
	out        *kafkaio.Producer
	emitq      chan emitJob
	emitting   atomic.Bool // false after an emission gave up: the generation restarts to re-emit
	// endGeneration ends the running generation's loop (nil between
	// generations): an emission that gave up calls it, so the generation
	// restarts and re-emits at once rather than at the next ratings batch,
	// which may never come once the load has stopped.
	endGeneration atomic.Pointer[context.CancelCauseFunc]
	assigned      atomic.Pointer[[]int]
	fetcher       atomic.Pointer[kafkaio.Fetcher]
	duplicates    atomic.Int64
	committed     atomic.Int64 // ratings records processed and committed since start
	restored      lastRestore  // the latest restore of taken-over partitions (restore.go)
	standby       *standbys    // warm copies of partitions not owned; nil without --standby-replicas (standby.go)
	batchSeq      uint64
	halt          context.CancelCauseFunc // stops Run for good (a retention gap: gap.go)
	valid         []pending               // a batch's valid ratings (process)

	// restoreFailed is the latest changelog restore's failure, until one
	// succeeds (changelogrestore.go).
	restoreFailed atomic.Pointer[error]

	// testHookAfterCommit runs after a batch's transaction committed and
	// before its rated-movies are emitted; returning true simulates a crash
	// right there: nothing after the commit happens (crash tests).
	testHookAfterCommit func() bool
	// testHookBeforeCatchUp runs when a batch holds a rating of a movie the
	// table does not know yet, before the table catches up with the topic.
	testHookBeforeCatchUp func()
	// testHookBeforeEnd runs after a batch was produced in its
	// transaction (transactional mode) or its changelog transaction
	// (effectively-once) and before the transaction ends; returning true
	// simulates a crash there.
	testHookBeforeEnd func() bool
}

// New opens the processor's database. Run starts it.
func New(cfg Config) (*Processor, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s, err := openStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	p := &Processor{cfg: cfg, k: cfg.Cluster, log: cfg.Log, store: s, metrics: newMetrics(cfg.Registerer)}
	p.standby = newStandbys(p)
	p.health.set(phaseStarting, nil)
	p.emitting.Store(true)
	return p, nil
}

// Close releases the database. Call it after Run returned.
func (p *Processor) Close() error { return p.store.Close() }

// ThrottledMaxBatch caps the records per batch while a throttle is set.
// Without the cap a throttle barely slows the processor: the records that
// queue up during the sleep all go into the next batch (up to MaxBatch), so
// batches grow until they catch up. With it, a throttle of d allows at most
// about ThrottledMaxBatch/d ratings per second (100 per 1s, 1 000 per 100ms)
// and lag grows whenever the load is above that.
const ThrottledMaxBatch = 100

// SetThrottle makes the processor sleep d before every batch and take at
// most ThrottledMaxBatch records per batch (0: no throttle): the "consumer
// throttle" fault, which lets lag build up under load.
func (p *Processor) SetThrottle(d time.Duration) {
	if d < 0 {
		d = 0
	}
	p.throttle.Store(int64(d))
	p.log.Info("consumer throttle set", "per_batch", d.String(), "max_batch", p.batchLimit())
}

// Throttle is the current per-batch sleep.
func (p *Processor) Throttle() time.Duration { return time.Duration(p.throttle.Load()) }

// batchLimit is the most records the next batch may take.
func (p *Processor) batchLimit() int {
	if p.Throttle() > 0 {
		return min(p.cfg.MaxBatch, ThrottledMaxBatch)
	}
	return p.cfg.MaxBatch
}

// Delivery is the mode the processor runs in.
func (p *Processor) Delivery() Delivery { return p.cfg.Delivery }

// Run consumes until ctx ends. It returns nil after a clean stop, or an
// error when it cannot start (topics missing after the bounded wait, a data
// directory built for another mode).
func (p *Processor) Run(ctx context.Context) error {
	ctx, p.halt = context.WithCancelCause(ctx)
	defer p.halt(nil)
	defer p.standby.halt()
	err := p.run(ctx)
	if gap := p.haltedByGap(ctx); gap != nil {
		return gap
	}
	if ctx.Err() != nil {
		return nil // stopped: whatever failed was cut short by the stop
	}
	return err
}

func (p *Processor) run(ctx context.Context) error {
	needed := []string{model.TopicRatings, model.TopicMovies, model.TopicRatedMovies, model.TopicRatingsDLQ}
	if p.cfg.Delivery == Transactional || p.keepsChangelog() {
		needed = append(needed, p.cfg.Changelog, p.cfg.RequestIDs)
	}
	wait := p.cfg.TopicWait
	wait.OnWait = func(err error) { p.health.set(phaseWaitingForTopics, err) }
	parts, err := p.k.WaitForTopics(ctx, needed, wait)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		p.health.set(phaseStopped, err)
		return err
	}
	p.partitions = parts[model.TopicRatings]
	if err := p.store.claim(ctx, p.cfg.Delivery, p.partitions); err != nil {
		p.health.set(phaseStopped, err)
		return err
	}
	if err := p.store.recordRetention(ctx, p.cfg.RequestIDRetention); err != nil {
		p.health.set(phaseStopped, err)
		return err
	}
	if p.cfg.Delivery == Transactional || p.keepsChangelog() {
		if err := p.checkRequestIDsRetention(ctx); err != nil {
			p.health.set(phaseStopped, err)
			return err
		}
	}

	p.health.set(phaseLoadingMovies, nil)
	if err := eventformat.Prepare(ctx, p.cfg.Codec, p.log, p.cfg.TopicWait.Timeout, model.TopicRatedMovies); err != nil {
		p.health.set(phaseStopped, err)
		return err
	}
	p.movies, err = newMovieTable(ctx, p.k, p.store, parts[model.TopicMovies], p.cfg.Codec, p.log)
	if err != nil {
		p.health.set(phaseStopped, err)
		return err
	}
	var wg sync.WaitGroup
	tailCtx, stopTail := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() {
		if err := p.movies.tailer.Run(tailCtx); err != nil {
			p.log.Error("movies table stopped", "error", err.Error())
			p.health.set(phaseStopped, fmt.Errorf("movies table: %w", err))
		}
	})
	defer func() { stopTail(); wg.Wait() }()
	catchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := p.movies.tailer.WaitCaughtUp(catchCtx); err != nil {
		p.log.Warn("movies table not caught up; unknown movies will be re-checked before dead-lettering", "error", err.Error())
	}
	cancel()
	p.log.Info("movies table loaded", "movies", p.movies.Len())
	if p.cfg.Delivery == Transactional {
		return p.runTransactional(ctx)
	}

	p.dlq = p.k.Writer(model.TopicRatingsDLQ, kafkaio.WriterOptions{})
	defer p.dlq.Close()
	// kafka-go allocates every new batch at its full BatchSize (a
	// []kafka.Message of that capacity, ~150 bytes each, zeroed), once per
	// partition per write: with 5000 that was 0.7 MB per partition for the
	// few records a small batch emits, a fifth of the processor's CPU at
	// 300 ratings/s. One record per rated movie per batch fits 256 per
	// partition for the seed catalog; larger catalogs take more requests.
	p.out = p.k.Writer(model.TopicRatedMovies, kafkaio.WriterOptions{BatchSize: 256})
	defer p.out.Close()
	p.emitq = make(chan emitJob, 4)
	emitCtx, stopEmit := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEmit()
	var emitWG sync.WaitGroup
	emitWG.Go(func() { p.emit(emitCtx) })

	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                p.cfg.Group,
		Brokers:           p.k.Config().Brokers,
		Dialer:            p.k.Dialer(),
		Topics:            []string{model.TopicRatings},
		HeartbeatInterval: p.cfg.HeartbeatInterval,
		SessionTimeout:    p.cfg.SessionTimeout,
		RebalanceTimeout:  p.cfg.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		Timeout:           5 * time.Second,
		ErrorLogger:       kafka.LoggerFunc(func(f string, a ...any) { p.log.Warn(fmt.Sprintf(f, a...), "component", "consumer group") }),
	})
	if err != nil {
		p.health.set(phaseStopped, err)
		return err
	}
	p.health.setDetail(phaseJoining, p.cfg.Group, nil)
	p.log.Info("ratings processor started", "delivery", p.cfg.Delivery, "group", p.cfg.Group, "partitions", p.partitions)

	var gens sync.WaitGroup
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.health.setDetail(phaseJoining, p.cfg.Group, err)
			p.log.Warn("consumer group", "error", err.Error())
			continue // kafka-go backs off between join attempts
		}
		gens.Add(1)
		gen.Start(func(gctx context.Context) {
			defer gens.Done()
			if err := p.runGeneration(ctx, gctx, gen); err != nil && ctx.Err() == nil {
				if p.haltOnGap(err) {
					return
				}
				p.log.Error("generation ended with an error; rejoining", "generation", gen.ID, "error", err.Error())
				p.health.set(phaseRecovering, err)
				// A pause, so that a persistent failure does not turn into a
				// tight loop of rebalances for every member.
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
			}
		})
	}
	p.health.set(phaseStopping, nil)
	group.Close() // ends the generation; its function returns
	gens.Wait()
	// Let queued emissions finish (bounded); whatever is cut short is
	// re-emitted from the database at the next start.
	close(p.emitq)
	done := make(chan struct{})
	go func() { emitWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		stopEmit()
		<-done
	}
	p.log.Info("ratings processor stopped")
	return nil
}

// partState is one assigned partition during a generation.
type partState struct {
	next      int64                 // next offset to count: everything below is in the state
	committed atomic.Int64          // next, as last committed (read by the lag tracker)
	ids       *requestids.Partition // request ids counted; nil in at-least-once mode
}

// topics are the topics of the state (changelog.Topics).
func (p *Processor) topics() changelog.Topics {
	return changelog.Topics{State: p.cfg.Changelog, RequestIDs: p.cfg.RequestIDs}
}

// keepsChangelog says whether effectively-once writes and restores from
// the changelog.
func (p *Processor) keepsChangelog() bool {
	return p.cfg.Delivery == EffectivelyOnce && p.cfg.Restore == RestoreChangelog
}

// LastRestore is the latest completed restore of taken-over partitions
// (nil before the first).
func (p *Processor) LastRestore() *Restore { return p.restored.Get() }

// runGeneration owns the assigned partitions until the generation ends.
func (p *Processor) runGeneration(ctx, gctx context.Context, gen *kafka.Generation) (genErr error) {
	genStarted := time.Now()
	var ids []int
	assignment := map[int]int64{}
	for _, a := range gen.Assignments[model.TopicRatings] {
		ids = append(ids, a.ID)
		assignment[a.ID] = a.Offset
	}
	slices.Sort(ids)
	previous := p.Assigned()
	p.assigned.Store(&ids)
	defer func() {
		for _, id := range ids {
			p.k.Metrics().DropLag(model.TopicRatings, id)
		}
	}()
	p.log.Info("partitions assigned", "generation", gen.ID, "partitions", ids)
	if len(ids) == 0 {
		p.health.set(phaseRunning, nil)
		<-gctx.Done() // more members than partitions: idle until the next rebalance
		return nil
	}

	bounds, err := p.partitionBounds(gctx, ids)
	if err != nil {
		return err
	}
	var cl map[int]*changelogPart
	var rs restoredSet
	if p.keepsChangelog() {
		warm, epoch := p.standby.take(ids)
		cl, rs, err = p.restoreBounded(gctx, ids, warm)
		if err != nil {
			return err
		}
		defer func() { p.endChangelog(ctx, cl, ids, genErr) }()
		if p.standby != nil {
			go p.placeStandbys(ctx, epoch, gen.MemberID, ids)
		}
	}
	adopted, clRecords := rs.adopted, rs.total()
	offsets, aggs, err := p.store.snapshot(ctx, ids)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	p.log.Debug("state loaded", "took", time.Since(genStarted).String())
	states, start, err := p.partStates(ctx, ids, bounds, offsets, assignment)
	if err != nil {
		return err
	}
	if cl != nil {
		// The database was ahead of the changelog: catch the changelog up.
		if err := p.writeChangelog(gctx, cl, ids); err != nil {
			return err
		}
	}
	taken, from, ends := takenOver(ids, previous, bounds, offsets, adopted, rs.warm)
	clock := newRestoreClock(genStarted, taken, ends, start, from, clRecords)
	clock.summary.StandbyRecords = rs.warmRecords()
	p.metrics.restoreRecords.WithLabelValues("changelog").Add(float64(clRecords))
	p.metrics.restoreStart.WithLabelValues(startStandby).Add(float64(rs.warmRecords()))
	p.metrics.restoreStart.WithLabelValues(startScratch).Add(float64(clRecords - rs.warmRecords()))
	if len(adopted) > 0 {
		p.log.Info("partitions restored from the changelog", "generation", gen.ID, "partitions", adopted,
			"from_standby", rs.warm, "changelog_records", clRecords, "on_standby_copies", rs.warmRecords(),
			"took", time.Since(genStarted).Round(time.Millisecond).String())
	}
	p.noteRestore(clock, states)
	if p.cfg.Delivery == AtLeastOnce {
		// The state of a partition handed over from another instance is in
		// rated-movies (the changelog); adopt what is newer than ours.
		adopted, err := p.adopt(gctx, ids, aggs)
		if err != nil {
			return err
		}
		if err := p.store.commit(ctx, adopted, nil, nil); err != nil {
			return fmt.Errorf("store adopted state: %w", err)
		}
	}

	// From here on an emission that gives up, this generation's re-emit
	// included, ends the loop below (endGeneration).
	loopCtx, endLoop := context.WithCancelCause(gctx)
	defer endLoop(nil)
	p.endGeneration.Store(&endLoop)
	defer p.endGeneration.CompareAndSwap(&endLoop, nil)
	p.emitting.Store(true)

	// Re-emit the whole state of the partitions: a crash between a commit
	// and its emission leaves rated-movies behind, and the emission is
	// idempotent (consumers keep the highest source offset per movie).
	all := make([]*aggregate, 0, len(aggs))
	for _, a := range aggs {
		all = append(all, a)
	}
	if err := p.enqueue(gctx, emitJob{msgs: p.ratedMovies(all)}); err != nil {
		return nil // generation ended
	}

	f, err := p.k.NewFetcher(model.TopicRatings, start, kafkaio.FetchOptions{Queue: 4096})
	if err != nil {
		return err
	}
	p.fetcher.Store(f)
	defer func() {
		p.fetcher.Store(nil)
		f.Close()
		// Wait (bounded) until this generation's emissions are out, so the
		// next owner of a partition reads the newest rated-movies.
		barrier := make(chan struct{})
		if p.enqueue(ctx, emitJob{barrier: barrier}) == nil {
			select {
			case <-barrier:
			case <-time.After(10 * time.Second):
			}
		}
	}()
	p.health.set(phaseRunning, nil)
	p.log.Info("consuming", "generation", gen.ID, "from", start)
	lagCtx, stopLag := context.WithCancel(gctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		p.k.TrackLag(lagCtx, model.TopicRatings, ids, func(part int) int64 { return states[part].committed.Load() }, kafkaio.LagRefresh)
	}()
	defer func() { stopLag(); <-lagDone }() // before the gauges are dropped

	return p.consume(ctx, gctx, loopCtx, gen, f, states, aggs, cl, clock)
}

// endChangelog writes what is still pending to the changelog at the end of
// a generation, unless it ended in a simulated crash (a crash writes
// nothing more), and closes the partitions' changelog writers.
func (p *Processor) endChangelog(ctx context.Context, cl map[int]*changelogPart, ids []int, genErr error) {
	if !errors.Is(genErr, errSimulatedCrash) {
		var open []int // a broken writer stays as it is: the next owner aborts its transaction
		for _, id := range ids {
			if cl[id].broken == nil {
				open = append(open, id)
			}
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := p.writeChangelog(fctx, cl, open); err != nil {
			p.log.Warn("writing the changelog at the end of the generation failed; the next owner restores an older position and reads more of the log", "error", err.Error())
		}
		cancel()
		p.standby.keep(cl)
	}
	closeChangelogParts(cl)
}

// partStates is where each assigned partition starts: effectively once,
// from the position stored with the state (its request ids loaded); at
// least once, from the group's committed offset. A stored position beyond
// the log's end, or below its start, is an error naming the cause.
func (p *Processor) partStates(ctx context.Context, ids []int, bounds map[int]kafkaio.Bounds, offsets map[int]int64, assignment map[int]int64) (states map[int]*partState, start map[int]int64, _ error) {
	states = make(map[int]*partState, len(ids))
	start = make(map[int]int64, len(ids))
	for _, id := range ids {
		b := bounds[id]
		ps := &partState{}
		switch p.cfg.Delivery {
		case EffectivelyOnce:
			next, ok := offsets[id]
			if !ok {
				next = b.First
			}
			if next > b.End {
				return nil, nil, serve.Permanent(fmt.Errorf("ratings partition %d ends at offset %d but this processor's state already includes offset %d: the broker's log was reset or lost records; remove %s to rebuild the state from the new log", id, b.End, next, p.cfg.DataDir))
			}
			if err := kafkaio.CheckRetentionGap(model.TopicRatings, id, next, b); err != nil {
				return nil, nil, err
			}
			ps.next = next
			stored, err := p.store.loadRequestIDs(ctx, id)
			if err != nil {
				return nil, nil, fmt.Errorf("load state: %w", err)
			}
			ps.ids = requestids.NewPartition(p.cfg.RequestIDRetention, stored)
		case AtLeastOnce:
			// The group's committed offset is the truth; the state is
			// whatever was applied, possibly beyond it.
			next := assignment[id]
			if err := kafkaio.CheckRetentionGap(model.TopicRatings, id, next, b); err != nil {
				return nil, nil, err
			}
			if next < 0 {
				next = b.First
			}
			ps.next = next
		}
		ps.committed.Store(ps.next)
		states[id] = ps
		start[id] = ps.next
	}
	return states, start, nil
}

// takenOver lists the partitions this generation took over (not assigned
// before), each with its log end and where its state came from, for the
// restore clock.
func takenOver(ids, previous []int, bounds map[int]kafkaio.Bounds, offsets map[int]int64, adopted, warm []int) (taken []int, from map[int]string, ends map[int]int64) {
	from, ends = map[int]string{}, map[int]int64{}
	for _, id := range ids {
		if slices.Contains(previous, id) {
			continue
		}
		taken = append(taken, id)
		ends[id] = bounds[id].End
		_, had := offsets[id]
		switch {
		case slices.Contains(adopted, id) && slices.Contains(warm, id):
			from[id] = fromStandby
		case slices.Contains(adopted, id):
			from[id] = fromChangelog
		case had:
			from[id] = fromLocal
		default:
			from[id] = fromStart
		}
	}
	return taken, from, ends
}

// consume fetches the assigned partitions and processes them batch by
// batch (throttled, if set) until the generation's loop ends.
func (p *Processor) consume(ctx, gctx, loopCtx context.Context, gen *kafka.Generation, f *kafkaio.Fetcher, states map[int]*partState, aggs map[int64]*aggregate, cl map[int]*changelogPart, clock *restoreClock) error {
	var buf []kafka.Message
	for {
		var err error
		if at, ok := p.nextChangelogWrite(cl); ok {
			// Changes wait for the changelog: wait for a batch only until
			// they fall due.
			wctx, cancel := context.WithDeadline(loopCtx, at)
			buf, err = f.Next(wctx, buf, p.batchLimit())
			cancel()
			if err != nil && loopCtx.Err() == nil {
				// Not gctx, as after a batch (commit).
				if err := p.writeDueChangelog(context.WithoutCancel(ctx), cl); err != nil {
					return err
				}
				continue
			}
		} else {
			buf, err = f.Next(loopCtx, buf, p.batchLimit())
		}
		if err != nil {
			return loopEnded(loopCtx)
		}
		// A throttle set while Next waited finds a full-size fetch: it is
		// still counted in batches of the throttled size.
		for rest := buf; len(rest) > 0; {
			batch := rest[:min(len(rest), p.batchLimit())]
			rest = rest[len(batch):]
			if d := p.Throttle(); d > 0 {
				select {
				case <-loopCtx.Done():
					return loopEnded(loopCtx)
				case <-time.After(d):
				}
			}
			if !p.emitting.Load() {
				return errEmissionGaveUp
			}
			if err := p.process(ctx, gctx, gen, batch, states, aggs, cl); err != nil {
				return err
			}
			p.noteRestore(clock, states)
		}
	}
}

// partitionBounds asks the broker for the bounds of the assigned ratings
// partitions, retrying a few times (bounded, logged): a broker that has just
// restarted can answer the group before its partitions (an unknown server
// error for a moment), and giving up here would cost a whole rebalance.
func (p *Processor) partitionBounds(ctx context.Context, ids []int) (map[int]kafkaio.Bounds, error) {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		bounds, err := p.k.Offsets(ctx, model.TopicRatings, ids)
		if err == nil || attempt == attempts || ctx.Err() != nil {
			return bounds, err
		}
		p.log.Warn("reading the bounds of the assigned partitions failed; retrying", "attempt", attempt, "of", attempts, "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

var errSimulatedCrash = errors.New("simulated crash after commit")

// errEmissionGaveUp ends a generation whose rated-movies could not be
// written: the next one re-emits the whole state from the database.
var errEmissionGaveUp = errors.New("rated-movies emission failed; restarting the generation to re-emit from the database")

// loopEnded is what a generation whose loop context ended returns: the
// emission's failure, or nil when the generation itself ended.
func loopEnded(loopCtx context.Context) error {
	if cause := context.Cause(loopCtx); errors.Is(cause, errEmissionGaveUp) {
		return cause
	}
	return nil
}

// ratedMovies builds the rated-movies records of some aggregates.
func (p *Processor) ratedMovies(aggs []*aggregate) []kafka.Message {
	msgs := make([]kafka.Message, 0, len(aggs))
	for _, a := range aggs {
		mv, _ := p.movies.Get(a.MovieID)
		ev := model.RatedMovieEvent{
			RatedMovie: model.NewRatedMovie(model.Movie{ID: a.MovieID, Title: mv.Title, ReleaseYear: mv.ReleaseYear},
				model.CountAndSum{Count: a.Count, SumTenth: a.SumTenths}),
			LastEventTime:   a.LastEvent,
			SourcePartition: a.Partition,
			SourceOffset:    a.SourceOffset,
		}
		value, err := p.cfg.Codec.EncodeRatedMovie(context.Background(), ev)
		if err != nil {
			// The writer schema was registered at start (Prepare) and is
			// cached: this cannot fail unless a codec is broken.
			p.log.Error("encode rated-movies", "movie", a.MovieID, "error", err.Error())
			continue
		}
		msgs = append(msgs, kafka.Message{Key: strconv.AppendInt(nil, a.MovieID, 10), Value: value})
	}
	return msgs
}

// adopt merges the latest rated-movies of the given partitions into aggs
// where they are ahead (at-least-once hand-over) and returns what changed.
func (p *Processor) adopt(ctx context.Context, partitions []int, aggs map[int64]*aggregate) ([]*aggregate, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	latest, err := p.readRatedMovies(rctx)
	if err != nil {
		return nil, fmt.Errorf("read rated-movies to adopt state: %w", err)
	}
	var changed []*aggregate
	for id, ev := range latest {
		if !slices.Contains(partitions, ev.SourcePartition) {
			continue
		}
		if a := aggs[id]; a != nil && a.SourceOffset >= ev.SourceOffset {
			continue
		}
		a := &aggregate{MovieID: id, Partition: ev.SourcePartition, Count: ev.Count, SumTenths: ev.SumTenths,
			SourceOffset: ev.SourceOffset, LastEvent: ev.LastEventTime}
		aggs[id] = a
		changed = append(changed, a)
	}
	return changed, nil
}

// readRatedMovies reads the compacted rated-movies topic to its end
// (committed records only: in transactional mode it is written in
// transactions) and keeps, per movie, the update with the highest source
// offset.
func (p *Processor) readRatedMovies(ctx context.Context) (map[int64]model.RatedMovieEvent, error) {
	parts, err := p.k.WaitForTopics(ctx, []string{model.TopicRatedMovies}, kafkaio.TopicWait{Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	latest := map[int64]model.RatedMovieEvent{}
	err = p.k.ReadCommitted(ctx, model.TopicRatedMovies, kafkaio.AllPartitions(parts[model.TopicRatedMovies]), func(m kafka.Message) error {
		ev, err := p.cfg.Codec.DecodeRatedMovie(ctx, m.Value)
		if err != nil {
			if retry := transient(err); retry != nil {
				return retry
			}
			return nil
		}
		if old, ok := latest[ev.MovieID]; !ok || ev.SourceOffset > old.SourceOffset {
			latest[ev.MovieID] = ev
		}
		return nil
	})
	return latest, err
}

// Ready is the processor's health: nil when it consumes normally.
func (p *Processor) Ready(context.Context) error {
	if err := p.health.err(); err != nil {
		return err
	}
	if f := p.fetcher.Load(); f != nil {
		if err := f.Err(); err != nil {
			return err
		}
	}
	if t := p.movies; t != nil && t.tailer != nil {
		if err := t.tailer.Err(); err != nil {
			return fmt.Errorf("movies table: %w", err)
		}
	}
	return nil
}

// Assigned lists the partitions this instance owns now.
func (p *Processor) Assigned() []int {
	if a := p.assigned.Load(); a != nil {
		return slices.Clone(*a)
	}
	return nil
}

// phase is where the processor is in its life, as its health reports it;
// it is ready only while running.
type phase string

const (
	phaseStarting         phase = "starting"
	phaseWaitingForTopics phase = "waiting for kafka topics"
	phaseLoadingMovies    phase = "loading the movies table"
	phaseJoining          phase = "joining consumer group" // detail: the group
	phaseRestoring        phase = "restoring partitions"   // detail: which, from where
	phaseRecovering       phase = "recovering"
	phaseRunning          phase = "running"
	phaseStopping         phase = "stopping"
	phaseStopped          phase = "stopped"
)

// health is the processor's phase and its latest problem.
type health struct {
	mu     sync.Mutex
	phase  phase
	detail string // what the phase is about ("" for most)
	last   error
	noted  time.Time // when a transient problem was noted
}

func (h *health) set(ph phase, err error) { h.setDetail(ph, "", err) }

// setDetail sets a phase that names what it is about (the group joined,
// the partitions restored).
func (h *health) setDetail(ph phase, detail string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.phase, h.detail, h.last, h.noted = ph, detail, err, time.Time{}
}

// note records a transient problem that keeps the part unhealthy for a while.
func (h *health) note(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last, h.noted = err, time.Now()
}

// resolve clears a noted transient problem: what failed works again.
func (h *health) resolve() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.noted.IsZero() {
		h.last, h.noted = nil, time.Time{}
	}
}

func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.noted.IsZero() && time.Since(h.noted) > 15*time.Second {
		h.last, h.noted = nil, time.Time{} // a transient problem that went away
	}
	what := string(h.phase)
	if h.detail != "" {
		what += " " + h.detail
	}
	switch {
	case h.phase == phaseRunning && h.last == nil:
		return nil
	case h.last != nil:
		return fmt.Errorf("%s: %w", what, h.last)
	default:
		return errors.New(what)
	}
}
