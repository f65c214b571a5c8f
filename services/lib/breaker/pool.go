package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// pool is the connection pool to one dependency as its callers see it: at
// most size calls hold a connection at once (the transport's
// MaxConnsPerHost is the same number), at most pending more wait for one,
// each no longer than its attempt's deadline. Reads and writes share it,
// as they share one HTTP client in real services: slow writes that hold
// every connection make fast reads wait.
type pool struct {
	size, pending int
	slots         chan struct{}
	waiting       atomic.Int64
}

func newPool(o ClientOptions) *pool {
	return &pool{size: o.MaxConnsPerHost, pending: o.MaxPending, slots: make(chan struct{}, o.MaxConnsPerHost)}
}

// errPoolFull: the pending queue is full; the call was not sent.
var errPoolFull = errors.New("connection pool exhausted")

// acquire takes a connection slot, waiting while ctx lasts. Its error says
// the call was never sent: the queue was full, or the deadline came first.
func (p *pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	if p.waiting.Add(1) > int64(p.pending) {
		p.waiting.Add(-1)
		return fmt.Errorf("%w: %d connections busy and %d calls waiting", errPoolFull, p.size, p.pending)
	}
	defer p.waiting.Add(-1)
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waited for one of %d busy connections: %w", p.size, ctx.Err())
	}
}

func (p *pool) release() { <-p.slots }

// inUse and queued are the pool's use now, for metrics.
func (p *pool) inUse() int  { return len(p.slots) }
func (p *pool) queued() int { return int(p.waiting.Load()) }
