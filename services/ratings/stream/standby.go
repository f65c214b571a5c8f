package stream

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/model"
)

// Standby replicas (--standby-replicas N, effectively-once with
// --restore=changelog), Kafka Streams' num.standby.replicas: besides the
// partitions it owns, an instance keeps warm copies of the state of
// partitions it does not own by tailing their partitions of the changelog
// and of the request-id topic (committed records only). When the group
// hands it one of them, the restore starts from the copy and reads only
// what both got since (changelog.RestoreWarm), instead of all they hold.
//
// Placement: after each assignment every instance describes the group and
// orders its members by member id; the standbys of a partition go to the N
// members after its owner in that ring (never the owner, at most one copy
// per member). Every member computes the same placement from the same
// description, so no assignor has to carry it: with two replicas and N=1,
// each keeps a copy of the other's partitions. When the description is not
// usable (a rebalance in progress), an instance keeps copies of every
// partition it does not own: more reading, never a wrong state.
//
// The copies live in memory only (a restarted instance reads its standby
// partitions' changelog again, in the background); their reading runs on its
// own clients and goroutines (one per topic), never in the way of the owned
// partitions' batches, bounded by the fetchers' queues and standbyBatch
// records per step. The two topics are read independently, so a copy may
// hold request ids past its position for a moment: they are not part of its
// state until the position passes them (changelog.Partition.Entries).
// A copy is a cache: the restore checks it against the changelog's bounds
// (a copy below its start or past its end is an error, and the next attempt
// restores from the start), and the state it produces is the one a restore
// from the start produces (changelogrestore_test.go).

// standbyBatch bounds the records applied per step under the lock.
const standbyBatch = 2000

// standbys are an instance's warm copies and the reader that keeps them.
type standbys struct {
	k         *kafkaio.Cluster
	topics    changelog.Topics
	retention time.Duration
	replicas  int
	metrics   *metrics
	log       *slog.Logger

	mu     sync.Mutex
	copies map[int]*changelog.Warm // by partition; Next is kafka.FirstOffset before anything was read
	// floored: copies that started the request-id topic at its retention
	// floor; dropped if what they read goes back in time by more than the
	// floor search's margin.
	floored map[int]bool
	epoch   uint64             // bumped by take: a placement computed before it is stale
	stop    context.CancelFunc // stops the running reader
	done    chan struct{}      // closed when the running reader returned
}

func newStandbys(p *Processor) *standbys {
	if p.cfg.StandbyReplicas <= 0 || !p.keepsChangelog() {
		return nil
	}
	return &standbys{k: p.k, topics: p.topics(), retention: p.cfg.RequestIDRetention, replicas: p.cfg.StandbyReplicas,
		metrics: p.metrics, log: p.log, copies: map[int]*changelog.Warm{}, floored: map[int]bool{}}
}

// halt stops the reader and waits for it. Call with s.mu not held.
func (s *standbys) halt() {
	if s == nil {
		return
	}
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop, s.done = nil, nil
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// take stops the reader and hands over the copies of the given partitions
// (those that read anything): the instance owns them now. The epoch it
// returns is the one follow must be called with.
func (s *standbys) take(ids []int) (map[int]changelog.Warm, uint64) {
	if s == nil {
		return nil, 0
	}
	s.halt()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	warm := map[int]changelog.Warm{}
	for _, id := range ids {
		if c, ok := s.copies[id]; ok && c.Next >= 0 {
			warm[id] = *c
		}
		delete(s.copies, id)
		delete(s.floored, id)
	}
	s.metrics.standbyPartitions.Set(float64(len(s.copies)))
	return warm, s.epoch
}

// keep makes the changelog state of the partitions a generation owned
// (their writers' committed state and position) copies, as Kafka Streams
// keeps an active task's store: when the next generation assigns a
// partition again, its restore reads only what the changelog got since (if
// anything), and when it becomes a standby of this instance the copy goes
// on from there. A writer that broke leaves no copy.
func (s *standbys) keep(parts map[int]*changelogPart) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range parts {
		if c.broken != nil || c.state == nil {
			delete(s.copies, id)
			continue
		}
		s.copies[id] = &changelog.Warm{State: c.state, Next: c.next, RequestIDsNext: c.idsNext}
		delete(s.floored, id) // the restore checked its floor
	}
}

// follow keeps copies of exactly the given partitions from now on: copies
// of others are dropped, new ones start from the changelog's start, kept
// ones from where they are. A stale epoch (another take happened since the
// placement was computed) changes nothing.
func (s *standbys) follow(ctx context.Context, epoch uint64, ids []int) {
	s.halt()
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch != s.epoch || ctx.Err() != nil {
		return
	}
	for id := range s.copies {
		if !slices.Contains(ids, id) {
			delete(s.copies, id)
		}
	}
	start := make(map[int]int64, len(ids))
	idsStart := make(map[int]int64, len(ids))
	var cold []int // nothing of the request-id topic read yet
	for _, id := range ids {
		c, ok := s.copies[id]
		if !ok || c.Next < 0 { // nothing read yet: from the start
			c = &changelog.Warm{State: changelog.NewPartition(id, s.retention), Next: kafka.FirstOffset, RequestIDsNext: kafka.FirstOffset}
			s.copies[id] = c
			delete(s.floored, id)
		}
		start[id], idsStart[id] = c.Next, c.RequestIDsNext
		if c.RequestIDsNext == kafka.FirstOffset {
			cold = append(cold, id)
		}
	}
	s.metrics.standbyPartitions.Set(float64(len(s.copies)))
	if len(ids) == 0 {
		s.metrics.standbyLag.Set(0)
		return
	}
	f, err := s.k.NewFetcher(s.topics.State, start, kafkaio.FetchOptions{Queue: standbyBatch, ReadCommitted: true})
	if err != nil {
		s.log.Warn("standby replicas not kept: cannot read the changelog", "partitions", ids, "error", err.Error())
		return
	}
	rctx, stop := context.WithCancel(ctx)
	s.stop, s.done = stop, make(chan struct{})
	done := s.done
	s.log.Info("keeping standby replicas", "partitions", ids, "changelog", s.topics.State, "request_ids", s.topics.RequestIDs)
	go func() {
		defer close(done)
		defer f.Close()
		var wg sync.WaitGroup
		wg.Go(func() { s.trackLag(rctx, ids) })
		wg.Go(func() {
			// The request-id topic from the copies' positions, or from
			// the retention floor for copies that read nothing of it yet.
			s.startAtFloors(rctx, cold, idsStart)
			fids, err := s.k.NewFetcher(s.topics.RequestIDs, idsStart, kafkaio.FetchOptions{Queue: standbyBatch, ReadCommitted: true})
			if err != nil {
				s.log.Warn("standby replicas not kept: cannot read the request-id topic", "partitions", ids, "error", err.Error())
				s.mu.Lock()
				for _, id := range ids {
					delete(s.copies, id)
				}
				s.mu.Unlock()
				return
			}
			defer fids.Close()
			s.read(rctx, fids, requestIDsCopy)
		})
		s.read(rctx, f, stateCopy)
		wg.Wait()
	}()
}

// startAtFloors moves the request-id start of the cold copies (nothing of
// the topic read yet) to their retention floors. A copy that fails the
// search starts from the topic's start, as before.
func (s *standbys) startAtFloors(ctx context.Context, cold []int, idsStart map[int]int64) {
	if len(cold) == 0 {
		return
	}
	floors, err := changelog.RequestIDFloors(ctx, s.k, s.topics.RequestIDs, cold, s.retention, changelog.DefaultFloorSearch)
	if err != nil {
		s.log.Info("standby replicas read the request ids from the start of their topic", "partitions", cold, "why", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(floors)) {
		f := floors[id]
		c := s.copies[id]
		if c == nil || c.RequestIDsNext != kafka.FirstOffset {
			continue
		}
		if f.Fallback != "" {
			s.log.Info("standby replica reads the request ids from the start of their topic", "partition", id, "why", f.Fallback)
		}
		if f.From > f.First {
			c.RequestIDsNext, idsStart[id] = f.From, f.From
			s.floored[id] = true
		}
	}
}

// copyTopic is one of the two topics a copy follows: its position in the
// copy and how a record of it is applied.
type copyTopic struct {
	pos  func(*changelog.Warm) *int64
	load func(p *changelog.Partition, key, value []byte) error
}

var (
	stateCopy      = copyTopic{func(w *changelog.Warm) *int64 { return &w.Next }, (*changelog.Partition).Load}
	requestIDsCopy = copyTopic{func(w *changelog.Warm) *int64 { return &w.RequestIDsNext }, (*changelog.Partition).LoadRequestIDs}
)

// read applies one topic to the copies until ctx ends.
func (s *standbys) read(ctx context.Context, f *kafkaio.Fetcher, t copyTopic) {
	var buf []kafka.Message
	for {
		var err error
		if buf, err = f.Next(ctx, buf, standbyBatch); err != nil {
			return // ctx ended
		}
		applied := 0
		s.mu.Lock()
		for _, m := range buf {
			c := s.copies[m.Partition]
			if c == nil || m.Offset < *t.pos(c) {
				continue
			}
			if err := t.load(c.State, m.Key, m.Value); err != nil {
				// Not a state this instance can trust: the restore reads
				// the partition from the start instead.
				s.log.Warn("standby replica dropped", "partition", m.Partition, "offset", m.Offset, "error", err.Error())
				delete(s.copies, m.Partition)
				continue
			}
			*t.pos(c) = m.Offset + 1
			applied++
			if back := c.State.TimeWentBack(); s.floored[m.Partition] && back > changelog.DefaultFloorSearch.Margin {
				// The floor it started from is in doubt: the restore
				// reads the partition from the start instead.
				s.log.Info("standby replica dropped: it started the request ids at their retention floor, and their time went back by more than the margin",
					"partition", m.Partition, "went_back", back.String())
				delete(s.copies, m.Partition)
			}
		}
		for id, c := range s.copies {
			// Everything before a marker the position passed over is
			// applied (-1: none passed; never a position: as a fetcher
			// start it means the end).
			if end := f.ControlEnd(id); end >= 0 && end > *t.pos(c) {
				*t.pos(c) = end
			}
		}
		s.mu.Unlock()
		s.metrics.standbyRecords.Add(float64(applied))
	}
}

// trackLag sets the standby lag gauge (records of both topics' committed
// end not in the copies yet) every second until ctx ends.
func (s *standbys) trackLag(ctx context.Context, ids []int) {
	t := time.NewTicker(kafkaio.LagRefresh)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		bounds, err := s.k.OffsetsCommitted(qctx, s.topics.State, ids)
		var idsBounds map[int]kafkaio.Bounds
		if err == nil {
			idsBounds, err = s.k.OffsetsCommitted(qctx, s.topics.RequestIDs, ids)
		}
		cancel()
		if err == nil {
			var lag int64
			s.mu.Lock()
			for id, b := range bounds {
				if c := s.copies[id]; c != nil {
					lag += max(b.End-max(c.Next, b.First), 0)
					lag += max(idsBounds[id].End-max(c.RequestIDsNext, idsBounds[id].First), 0)
				}
			}
			s.mu.Unlock()
			s.metrics.standbyLag.Set(float64(lag))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// StandbyPartitions lists the partitions this instance keeps a standby
// replica of now.
func (p *Processor) StandbyPartitions() []int {
	s := p.standby
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.copies))
}

// placeStandbys computes which partitions this member keeps standbys of
// and starts following them (runs beside the generation, bounded).
func (p *Processor) placeStandbys(ctx context.Context, epoch uint64, member string, owned []int) {
	s := p.standby
	if s == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	owners, err := p.groupOwners(dctx)
	cancel()
	ids, ok := standbyPlacement(owners, member, p.partitions, s.replicas)
	if !ok {
		ids = nil // every partition not owned: a superset of any placement
		for id := range p.partitions {
			if !slices.Contains(owned, id) {
				ids = append(ids, id)
			}
		}
		p.log.Info("group description not usable for standby placement; keeping copies of every partition not owned", "error", fmt.Sprint(err))
	}
	s.follow(ctx, epoch, ids)
}

// groupOwners describes the consumer group: each member's ratings
// partitions, by member id.
func (p *Processor) groupOwners(ctx context.Context) (map[string][]int, error) {
	res, err := p.k.Client().DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{p.cfg.Group}})
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", p.cfg.Group, err)
	}
	owners := map[string][]int{}
	for _, g := range res.Groups {
		if g.GroupID != p.cfg.Group {
			continue
		}
		if g.Error != nil {
			return nil, fmt.Errorf("describe group %s: %w", p.cfg.Group, g.Error)
		}
		for _, m := range g.Members {
			owners[m.MemberID] = nil
			for _, t := range m.MemberAssignments.Topics {
				if t.Topic == model.TopicRatings {
					owners[m.MemberID] = append(owners[m.MemberID], t.Partitions...)
				}
			}
		}
	}
	return owners, nil
}

// standbyPlacement is the partitions member keeps standbys of: for each
// partition, the n members after its owner in the ring of members ordered
// by id (at most every other member). ok is false when the description does
// not name member, or not exactly one owner for every partition.
func standbyPlacement(owners map[string][]int, member string, partitions, n int) (ids []int, ok bool) {
	ring := slices.Sorted(maps.Keys(owners))
	me := slices.Index(ring, member)
	if me < 0 {
		return nil, false
	}
	ownerOf := make(map[int]int, partitions)
	for i, m := range ring {
		for _, part := range owners[m] {
			if _, dup := ownerOf[part]; dup || part < 0 || part >= partitions {
				return nil, false
			}
			ownerOf[part] = i
		}
	}
	if len(ownerOf) != partitions {
		return nil, false
	}
	n = min(n, len(ring)-1)
	for part := range partitions {
		ahead := (me - ownerOf[part] + len(ring)) % len(ring) // 0: the owner itself
		if ahead >= 1 && ahead <= n {
			ids = append(ids, part)
		}
	}
	return ids, true
}
