package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// GroupCommit writes concurrent callers' operations in shared
// transactions, the way databases batch concurrent commits into one log
// write: one goroutine owns the writer connection, takes the first waiting
// operation and every other one already waiting (up to the batch's
// maximum), and applies them in one transaction. Nobody waits for a batch
// to fill: an operation arriving at an idle store commits alone, and under
// load the operations that queued while one commit ran share the next.
// Do returns only after the COMMIT of the transaction holding its
// operation, so durability is that of one transaction per operation.
type GroupCommit[Op, Res any] struct {
	db       *sql.DB
	maxBatch int
	gather   time.Duration // see NewGatheringGroupCommit; 0: never
	apply    ApplyFunc[Op, Res]

	queue   chan *pending[Op, Res]
	quit    chan struct{}
	stopped chan struct{}
	batches atomic.Int64
	ops     atomic.Int64
}

// ApplyFunc writes ops within tx in their order and sets results[i] to
// ops[i]'s outcome. An error fails every operation of the batch: the
// transaction is rolled back and none of them is written.
type ApplyFunc[Op, Res any] func(ctx context.Context, tx *sql.Tx, ops []Op, results []Res) error

type pending[Op, Res any] struct {
	ctx  context.Context
	op   Op
	done chan outcome[Res] // buffered: the committer never blocks on it
}

type outcome[Res any] struct {
	res Res
	err error
}

// CommitTimeout bounds one batch's transaction: the callers in it have
// handed their operations over and wait for the outcome, whatever their
// own deadlines.
const CommitTimeout = 10 * time.Second

// ErrClosed is Do's error after Close.
var ErrClosed = errors.New("closed")

// NewGroupCommit starts the committer of db (open it with one
// connection: the committer owns it). Close stops it.
func NewGroupCommit[Op, Res any](db *sql.DB, maxBatch int, apply ApplyFunc[Op, Res]) *GroupCommit[Op, Res] {
	return NewGatheringGroupCommit(db, maxBatch, 0, apply)
}

// NewGatheringGroupCommit is NewGroupCommit for a store that trades a
// little latency under load for fewer transactions: an operation arriving
// less than gather after the previous COMMIT ended (the store is busy)
// waits until gather has passed since that COMMIT, and every operation
// that arrived meanwhile joins its batch. An operation at a store idle for
// gather or longer commits at once, as with NewGroupCommit. Durability is
// the same: Do still returns after the COMMIT holding the operation.
func NewGatheringGroupCommit[Op, Res any](db *sql.DB, maxBatch int, gather time.Duration, apply ApplyFunc[Op, Res]) *GroupCommit[Op, Res] {
	if maxBatch < 1 {
		maxBatch = 1
	}
	g := &GroupCommit[Op, Res]{db: db, maxBatch: maxBatch, gather: max(gather, 0), apply: apply,
		queue: make(chan *pending[Op, Res]), quit: make(chan struct{}), stopped: make(chan struct{})}
	go g.loop()
	return g
}

// Do applies op in the next batch and returns its result once that batch
// committed (or failed). A ctx that ends before op joins a batch leaves
// it unwritten (ctx's error); one that ends later changes nothing.
func (g *GroupCommit[Op, Res]) Do(ctx context.Context, op Op) (Res, error) {
	p := &pending[Op, Res]{ctx: ctx, op: op, done: make(chan outcome[Res], 1)}
	select {
	case g.queue <- p:
	case <-ctx.Done():
		var zero Res
		return zero, ctx.Err()
	case <-g.quit:
		var zero Res
		return zero, ErrClosed
	}
	o := <-p.done // the committer answers every operation it took, within CommitTimeout
	return o.res, o.err
}

// Close stops the committer after the batch it is writing. It does not
// close db.
func (g *GroupCommit[Op, Res]) Close() {
	select {
	case <-g.quit:
	default:
		close(g.quit)
	}
	<-g.stopped
}

// Batches is how many transactions committed and how many operations
// they held: ops/batches is the mean batch.
func (g *GroupCommit[Op, Res]) Batches() (batches, ops int64) {
	return g.batches.Load(), g.ops.Load()
}

func (g *GroupCommit[Op, Res]) loop() {
	defer close(g.stopped)
	batch := make([]*pending[Op, Res], 0, g.maxBatch)
	ops := make([]Op, 0, g.maxBatch)
	results := make([]Res, g.maxBatch)
	var lastCommit time.Time
	for {
		select {
		case p := <-g.queue:
			batch = append(batch[:0], p)
		case <-g.quit:
			return
		}
		if g.gather > 0 {
			if wait := g.gather - time.Since(lastCommit); wait > 0 {
				time.Sleep(wait) // busy: let the batch gather
			}
		}
		// Let the goroutines that are ready to run (their answers came
		// in with the first one's) reach the queue before the batch is
		// sealed: without the yield the committer, woken first, took one
		// operation a transaction. A yield waits for no one who is not
		// ready: an idle store still commits at once.
		runtime.Gosched()
	fill:
		for len(batch) < g.maxBatch {
			select {
			case p := <-g.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		// Operations whose callers left before their batch began are
		// answered unwritten.
		live := batch[:0]
		for _, p := range batch {
			if err := p.ctx.Err(); err != nil {
				p.done <- outcome[Res]{err: err}
				continue
			}
			live = append(live, p)
		}
		ops = ops[:0]
		for _, p := range live {
			ops = append(ops, p.op)
		}
		if len(ops) > 0 {
			g.commit(live, ops, results[:len(ops)])
			lastCommit = time.Now()
		}
		clear(batch[:cap(batch)]) // drop the references until the next batch
		clear(ops)
		clear(results)
	}
}

func (g *GroupCommit[Op, Res]) commit(batch []*pending[Op, Res], ops []Op, results []Res) {
	ctx, cancel := context.WithTimeout(context.Background(), CommitTimeout)
	defer cancel()
	err := g.inTx(ctx, ops, results)
	if err == nil {
		g.batches.Add(1)
		g.ops.Add(int64(len(ops)))
	}
	for i, p := range batch {
		if err != nil {
			p.done <- outcome[Res]{err: err}
			continue
		}
		p.done <- outcome[Res]{res: results[i]}
	}
}

func (g *GroupCommit[Op, Res]) inTx(ctx context.Context, ops []Op, results []Res) error {
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // after Commit: a no-op
	if err := g.apply(ctx, tx, ops, results); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
