package stream

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/model"
)

// emitJob is one batch's rated-movies records and, after they are
// acknowledged, the offsets to commit to the consumer group. A job with a
// barrier only signals that everything queued before it was handled.
type emitJob struct {
	msgs    []kafka.Message
	gen     *kafka.Generation
	commit  map[int]int64 // next offset per ratings partition
	barrier chan struct{}
}

func (p *Processor) enqueue(ctx context.Context, j emitJob) error {
	select {
	case p.emitq <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxCoalesce bounds how many queued jobs one produce request carries.
const maxCoalesce = 64

// emit writes rated-movies in batch order, then hands the offsets to the
// group committer. Jobs queued behind each other (the broker is slower than
// the batch loop) go out as one produce request with only the newest record
// per movie: every record carries the movie's full state, so the older ones
// add nothing. One round trip per turn instead of one per batch keeps
// freshness bounded when the broker edge is slow.
func (p *Processor) emit(ctx context.Context) {
	c := newCommitter(p)
	var cwg sync.WaitGroup
	cctx, stopCommits := context.WithCancel(context.WithoutCancel(ctx))
	cwg.Go(func() { c.run(cctx) })
	defer func() {
		c.flush(ctx)
		stopCommits()
		cwg.Wait()
	}()

	var held *emitJob // read ahead while coalescing, handled next turn
	closed := false
	for !closed || held != nil {
		var j emitJob
		if held != nil {
			j, held = *held, nil
		} else {
			var ok bool
			if j, ok = <-p.emitq; !ok {
				return
			}
		}
		if j.barrier != nil {
			// The generation is ending: its offsets go to the group now,
			// while its membership may still be valid.
			c.commitPending()
			close(j.barrier)
			continue
		}
		jobs := []emitJob{j}
	coalesce:
		for len(jobs) < maxCoalesce {
			select {
			case n, ok := <-p.emitq:
				if !ok {
					closed = true
					break coalesce
				}
				if n.barrier != nil || n.gen != j.gen {
					held = &n
					break coalesce
				}
				jobs = append(jobs, n)
			default:
				break coalesce
			}
		}
		if !p.write(ctx, newestPerKey(jobs)) {
			continue
		}
		if j.gen == nil {
			continue
		}
		commit := map[int]int64{}
		for _, jb := range jobs {
			for part, next := range jb.commit {
				commit[part] = max(commit[part], next)
			}
		}
		c.offer(j.gen, commit)
	}
}

// newestPerKey merges the jobs' records, keeping the last record of each key
// in the order the last ones were produced.
func newestPerKey(jobs []emitJob) []kafka.Message {
	if len(jobs) == 1 {
		return jobs[0].msgs
	}
	last := map[string]int{}
	var all []kafka.Message
	for _, j := range jobs {
		for _, m := range j.msgs {
			last[string(m.Key)] = len(all)
			all = append(all, m)
		}
	}
	out := make([]kafka.Message, 0, len(last))
	for i, m := range all {
		if last[string(m.Key)] == i {
			out = append(out, m)
		}
	}
	return out
}

// write produces records with bounded retries. When it gives up it flags the
// generation to restart, which re-emits the state from the database.
func (p *Processor) write(ctx context.Context, msgs []kafka.Message) bool {
	if len(msgs) == 0 {
		return true
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.out.Write(wctx, msgs...)
		cancel()
		if err == nil {
			p.health.resolve() // emission works again (after a broker restart, say)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.health.note(fmt.Errorf("emitting rated-movies: %w", err))
		if attempt == attempts {
			p.log.Error("giving up emitting rated-movies; the generation restarts and re-emits", "records", len(msgs), "error", err.Error())
			p.emitting.Store(false)
			if end := p.endGeneration.Load(); end != nil {
				(*end)(errEmissionGaveUp)
			}
			return false
		}
		p.log.Warn("emitting rated-movies failed; retrying", "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Duration(attempt) * 300 * time.Millisecond):
		}
	}
}

// committer commits offsets to the consumer group in the background, newest
// first: while one commit is in flight, later offers replace each other, so
// a slow coordinator never holds up the emission of rated-movies.
//
// In effectively-once mode these commits are only for tools (lag,
// `kafka-consumer-groups`): the database is the truth, so a failed commit
// changes nothing. In at-least-once mode they are the truth, and offsets
// whose commit is lost are counted again after a restart or rebalance.
type committer struct {
	p    *Processor
	mu   sync.Mutex
	gen  *kafka.Generation
	next map[int]int64
	wake chan struct{}
}

func newCommitter(p *Processor) *committer {
	return &committer{p: p, wake: make(chan struct{}, 1)}
}

// offer queues offsets of gen; offsets of an older generation are dropped.
func (c *committer) offer(gen *kafka.Generation, next map[int]int64) {
	c.mu.Lock()
	if c.gen != gen {
		c.gen, c.next = gen, map[int]int64{}
	}
	for part, n := range next {
		c.next[part] = max(c.next[part], n)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
			c.commitPending()
		}
	}
}

// flush commits what is pending, bounded by the group's own timeout.
func (c *committer) flush(ctx context.Context) {
	done := make(chan struct{})
	go func() { c.commitPending(); close(done) }()
	select {
	case <-done:
	case <-time.After(6 * time.Second):
	}
}

func (c *committer) commitPending() {
	c.mu.Lock()
	gen, next := c.gen, c.next
	c.next = map[int]int64{}
	c.mu.Unlock()
	if gen == nil || len(next) == 0 {
		return
	}
	err := gen.CommitOffsets(map[string]map[int]int64{model.TopicRatings: maps.Clone(next)})
	if err == nil {
		return
	}
	if c.p.cfg.Delivery == AtLeastOnce {
		c.p.log.Warn("group offset commit failed; these ratings will be counted again after a restart or rebalance", "error", err.Error())
	} else {
		c.p.log.Debug("group offset commit failed (informational in effectively-once mode)", "error", err.Error())
	}
}
